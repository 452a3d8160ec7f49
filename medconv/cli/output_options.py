"""The output option group: format, output names, sidecars, overwrite, manifest, previews.

The formats offered are those of the writer registry (:mod:`medconv.registry`),
looked up only when help is shown or a value is checked, so a plugin writer's
format is offered too; the built-in writers' formats are known without loading
them (a ``.nii.gz`` run never imports Pillow for the PNG writer).
"""

from __future__ import annotations

import enum
import os
import re
from typing import Any, Mapping

import click

from ..errors import UsageError
from .options import OptionGroup, Target

DEFAULT_FORMAT = "nii.gz"


def output_formats() -> tuple[str, ...]:
    """Every ``--format`` value: the installed writers' suffixes without the dot, in registry order."""
    from ..registry import writers

    return tuple(suffix.lstrip(".") for suffix in writers.claimed_suffixes())


#: A name that ends like a file (``out.png``, ``out.tar.gz``), not like a folder (``out``, ``run.v2``, ``2024.11``).
FILE_LIKE_SUFFIX = re.compile(r"(\.[A-Za-z]{2,5})+$")


class Destination(enum.Enum):
    """What DST names: one output file, or the folder of a dataset's outputs."""

    FILE = "file"
    FOLDER = "folder"


def destination_kind(dst: str, *, file_allowed: bool) -> Destination:
    """Whether ``dst`` is one output file (its suffix is a writer's) or a folder.

    A name that ends like a file but is no format medconv writes (``out.png``) is a
    usage error listing the formats, never a folder of that name; so is a file
    name where a command writes a folder (``tcia2nii SRC out.nrrd``). An existing
    folder is always a folder.
    """
    if os.path.isdir(dst):
        return Destination.FOLDER
    from ..registry import matching_suffix

    formats = output_formats()
    suffix = matching_suffix(dst, ["." + fmt for fmt in formats])
    if suffix and file_allowed:
        return Destination.FILE
    if suffix:
        raise UsageError("DST is the folder the outputs go to, not a file", dst,
                         f"give a folder name and --format {suffix.lstrip('.')}")
    looks_like_file = FILE_LIKE_SUFFIX.search(os.path.basename(os.path.normpath(dst)))
    if looks_like_file:
        listed = ", ".join("." + fmt for fmt in formats)
        raise UsageError(f"{looks_like_file.group(0)!r} is not an output format medconv writes", dst,
                         f"formats: {listed}; for a folder of outputs give a name without a suffix, "
                         "or create the folder first")
    return Destination.FOLDER


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
        Target.WRITE: {"sidecar": bool(values["sidecar"]), "overwrite": overwrite,
                       "png_depth": int(values["png_depth"]) if values["png_depth"] else None},
        Target.RUN: {"overwrite": overwrite, "manifest": values["manifest"], "preview": bool(values["preview"])},
    }


def output_group(default_format: str = DEFAULT_FORMAT) -> OptionGroup:
    """The "Output" group with ``default_format`` as ``--format``'s default (``dcm2png``: png)."""
    return OptionGroup("Output", _format_option(default_format), *_OUTPUT_OPTIONS, fields=_output_fields)


def _format_option(default_format: str):
    return click.option("-f", "--format", "fmt", type=OutputFormat(), default=default_format, show_default=True,
                        help="Output format of every unit.")


_OUTPUT_OPTIONS = (
    click.option("--png-depth", type=click.Choice(("8", "16")), default=None,
                 help="Bits per sample of .png outputs [default: 8 for 8-bit data, else 16]; values that do not "
                      "fit are an error, never clipped."),
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
)

output_options = output_group()
