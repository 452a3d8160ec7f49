"""After a dataset run with ``--boxes``: the box table moved into the outputs' frames, one CSV next to them."""

from __future__ import annotations

import click

from .options import ParsedOptions


def write_run_boxes(boxes, dst: str, options: ParsedOptions) -> None:
    """Write ``DST/boxes.csv`` (:func:`medconv.transforms.box_export.export_boxes`) and say so unless quiet."""
    from ..batch.manifest import manifest_paths
    from ..registry import writer_for_format
    from ..transforms.box_export import export_boxes

    _, jsonl = manifest_paths(dst, options.run.manifest)
    _, suffix = writer_for_format(options.dataset.fmt)
    written = export_boxes(boxes, dst, jsonl, suffix)
    if options.run.summary:
        click.echo(written.summary(), err=True)  # beside the run's summary
