"""Input option groups: which readers run, and the reading policies that apply to some formats only.

Each group fills fields of ``ReadOptions`` (or ``DatasetOptions.readers``) and is
offered only by the commands whose readers use it: ``--on-tilt`` by the
commands that read DICOM, ``--labels`` by those that read files, and so on. ``--max-voxels`` and
``--follow-outside`` (docs/reliability.md) are offered by the commands whose readers
apply them (DICOM, MetaImage, NIfTI, TIFF, npz).
"""

from __future__ import annotations

from typing import Any, Mapping

import click

from .options import OptionGroup, Target


def _reader_fields(values: Mapping[str, Any]):
    return {Target.DATASET: {"readers": tuple(values["reader_names"])}}


reader_choice = OptionGroup(
    "Input",
    click.option("--reader", "reader_names", multiple=True, metavar="NAME",
                 help="Only use these readers (dicom, metaimage, nifti, tiff, npz ...); repeatable. Default: all."),
    fields=_reader_fields,
)


def _dicom_fields(values: Mapping[str, Any]):
    return {Target.READ: {"on_tilt": values["on_tilt"], "on_uneven": values["on_uneven"],
                          "include_2d": bool(values["include_2d"])}}


dicom_input = OptionGroup(
    "Input: DICOM",
    click.option("--on-tilt", type=click.Choice(("resample", "error")), default="resample", show_default=True,
                 help="Gantry tilt: resample onto an orthogonal grid, or refuse the series."),
    click.option("--on-uneven", type=click.Choice(("resample", "error")), default="resample", show_default=True,
                 help="Uneven slice spacing or missing slices: resample onto a regular grid, or refuse."),
    click.option("--include-2d", is_flag=True,
                 help="Convert single 2D images (radiographs, lone slices) as one-slice volumes instead of "
                      "excluding them."),
    fields=_dicom_fields,
)


def _label_fields(values: Mapping[str, Any]):
    return {Target.READ: {"kind": values["kind"],
                          "label_patterns": tuple(values["labels"]) if values["labels"] else None}}


label_input = OptionGroup(
    "Input: labels",
    click.option("--labels", multiple=True, metavar="PATTERN",
                 help="Glob (relative to SRC) marking label masks, e.g. 'seg-lungs-*/*'; repeatable. "
                      "Default: the documented name patterns (seg, mask, label ...) and content."),
    click.option("--kind", type=click.Choice(("intensity", "label")), default=None,
                 help="Treat every volume as an intensity image or as a label map (default: decide per file)."),
    fields=_label_fields,
)


def parse_tiff_spacing(ctx: click.Context, param: click.Parameter, value: str | None):
    """``0.5`` or ``0.5,0.5,2`` (mm along i, j, k) -> a 3-tuple of positive floats; ``None`` stays."""
    if value is None:
        return None
    try:
        numbers = tuple(float(part) for part in value.split(","))
    except ValueError:
        numbers = ()
    if len(numbers) == 1:
        numbers = numbers * 3
    if len(numbers) != 3 or not all(n > 0 and n < float("inf") for n in numbers):
        raise click.BadParameter(f"{value!r}: give one spacing in mm or three (SX,SY,SZ), all positive, e.g. 0.5,0.5,2")
    return numbers


def _tiff_fields(values: Mapping[str, Any]):
    return {Target.READ: {"tiff_spacing": values["tiff_spacing"]}}


tiff_input = OptionGroup(
    "Input: TIFF",
    click.option("--tiff-spacing", metavar="S|SX,SY,SZ", callback=parse_tiff_spacing,
                 help="Spacing in mm for the axes a TIFF states none for (columns, rows, pages), e.g. "
                      "0.5,0.5,2; one value for all three. Stated OME/ImageJ sizes still win."),
    fields=_tiff_fields,
)


_VOXEL_SUFFIXES = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def parse_max_voxels(ctx: click.Context, param: click.Parameter, value: str | None):
    """``2000000000``, ``2G``, ``500M`` (powers of 1000) -> a positive int; ``None`` stays (the default limit)."""
    if value is None:
        return None
    text = value.strip().lower()
    digits, suffix = (text[:-1], text[-1]) if text[-1:] in "kmgt" else (text, "")
    try:
        number = int(digits) * _VOXEL_SUFFIXES[suffix]
    except ValueError:
        number = 0
    if number <= 0:
        raise click.BadParameter(f"{value!r}: give a positive number of voxels, e.g. 2000000000 or 2G")
    return number


def _limit_fields(values: Mapping[str, Any]):
    return {Target.READ: {"max_voxels": values["max_voxels"], "follow_outside": bool(values["follow_outside"])}}


limit_input = OptionGroup(
    "Input: limits",
    click.option("--max-voxels", metavar="N", callback=parse_max_voxels,
                 help="Refuse a unit whose header declares more than N voxels (e.g. 2G), before anything is "
                      "allocated. Default: as many 4-byte values as the memory available holds."),
    click.option("--follow-outside", is_flag=True,
                 help="Read data files and links that resolve outside SRC (MetaImage ElementDataFile = ../x.raw, "
                      "a link to another disk); refused by default. Devices and FIFOs are always refused."),
    fields=_limit_fields,
)
