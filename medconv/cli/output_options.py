"""The output option group: format, output names, sidecars, overwrite, manifest, previews.

The formats offered are those of the writer registry (:mod:`medconv.registry`),
looked up only when help is shown or a value is checked, so a plugin writer's
format is offered too and ``--help`` does not load every writer.
"""

from __future__ import annotations

from typing import Any, Mapping

import click

from .options import OptionGroup, Target

DEFAULT_FORMAT = "nii.gz"


def output_formats() -> tuple[str, ...]:
    """Every ``--format`` value: the installed writers' suffixes without the dot, in registry order."""
    from ..registry import writers

    return tuple(suffix.lstrip(".") for writer in writers.available() for suffix in writer.suffixes)


class OutputFormat(click.ParamType):
    """A ``--format`` value: one of :func:`output_formats` (case-insensitive, a leading dot allowed)."""

    name = "format"

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return "|".join(output_formats())

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        fmt = str(value).lower().lstrip(".")
        known = output_formats()
        if fmt not in known:
            self.fail(f"{value!r} is not an output format medconv writes; use one of: {', '.join(known)}", param, ctx)
        return fmt


def _output_fields(values: Mapping[str, Any]):
    overwrite = bool(values["overwrite"])
    return {
        Target.DATASET: {"fmt": values["fmt"], "template": values["name"]},
        Target.WRITE: {"sidecar": bool(values["sidecar"]), "overwrite": overwrite},
        Target.RUN: {"overwrite": overwrite, "manifest": values["manifest"], "preview": bool(values["preview"])},
    }


output_options = OptionGroup(
    "Output",
    click.option("-f", "--format", "fmt", type=OutputFormat(), default=DEFAULT_FORMAT, show_default=True,
                 help="Output format of every unit."),
    click.option("--name", "name", default=None, metavar="TEMPLATE",
                 help="Output names, e.g. '{patient_id}/{series_number}_{modality}': header facts plus {id} {stem} "
                      "{parent} {reader} {ext} (docs/batch.md)."),
    click.option("--sidecar/--no-sidecar", default=True, show_default=True,
                 help="A JSON sidecar (geometry, header facts, warnings) beside each output."),
    click.option("--overwrite", is_flag=True,
                 help="Redo units whose output exists (default: skip them, so a rerun resumes)."),
    click.option("--manifest", type=click.Path(dir_okay=False), default=None, metavar="PATH",
                 help="Manifest path (.csv and .jsonl are written) [default: DST/medconv-manifest.csv]."),
    click.option("--preview", is_flag=True,
                 help="Also write a PNG of three slices per output and DST/_preview/index.html."),
    fields=_output_fields,
)
