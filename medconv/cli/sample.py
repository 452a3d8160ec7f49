"""``medconv sample DEST``: write a small TCIA-style DICOM tree to try medconv on."""

from __future__ import annotations

import os
import time

import click

from .options import Example, command

SAMPLE_EXAMPLES = (
    Example("a small TCIA-style tree, then convert it with previews",
            "medconv sample ./sample && medconv tcia2nii ./sample ./out --preview"),
    Example("a bigger one: 10 patients, 512x512 slices", "medconv sample ./big --patients 10 --size 512 --slices 200"),
    Example("see what it holds", "medconv sample ./sample && medconv scan ./sample"),
)


@command(examples=SAMPLE_EXAMPLES, short_help="Write a small TCIA-style CT tree (localizer, RTSTRUCT, tilt) to try medconv on.")
@click.argument("dest", type=click.Path(file_okay=False))
@click.option("--patients", default=3, show_default=True, type=click.IntRange(1, 99), help="Patients to write.")
@click.option("--slices", default=40, show_default=True, type=click.IntRange(2, 2000),
              help="Slices of each main CT series (2.5 mm apart).")
@click.option("--size", default=128, show_default=True, type=click.IntRange(8, 2048),
              help="Rows and columns of each slice (360 mm field of view).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for UIDs (same seed, same tree).")
def sample(dest: str, patients: int, slices: int, size: int, seed: int) -> int:
    """Write a sample TCIA/NBIA-style CT tree (phantom in HU, a localizer, an RTSTRUCT, a tilted series)."""
    from ..sample import write_sample_dataset

    started = time.perf_counter()
    series = write_sample_dataset(dest, patients=patients, slices=slices, size=size, seed=seed)
    for item in series:
        note = ", tilted 15 deg" if item.tilted else ""
        click.echo(f"{item.kind:<9} {item.n_files:>4} file(s)  {os.path.relpath(item.folder, dest)}{note}")
    files = sum(item.n_files for item in series)
    click.echo(f"wrote {len(series)} series ({files} files) under {dest} in {time.perf_counter() - started:.1f} s")
    return 0
