"""``medconv info PATH``: what an image holds, for a person or (``--json``) a machine."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import click

from ..errors import UnreadableFileError
from .options import Example, command

if TYPE_CHECKING:
    from ..volume import Volume

_KEY_META = ("source_format", "modality", "units", "patient_id", "series_number", "series_description",
             "manufacturer", "study_date", "axis4", "window")


def describe(volume: Volume) -> dict:
    """The facts ``info`` reports: geometry, dtype, value range and the key meta."""
    import numpy as np  # here, not at import: ``medconv --help`` imports this module

    from ..writers.sidecar import volume_description

    description = volume_description(volume)
    array = volume.array
    finite = array if array.dtype.kind in "iub" else array[np.isfinite(array)]
    description["value_range"] = [finite.min().item(), finite.max().item()] if finite.size else None
    description["warnings"] = list(volume.warnings)
    return description


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_format(v) for v in value) + ")"
    return str(value)


def render(path: str, description: dict) -> str:
    """``describe``'s facts as aligned lines for a terminal."""
    meta = description["meta"]
    lines = [
        ("file", path),
        ("format", meta.get("source_format", "?")),
        ("shape", "x".join(str(n) for n in description["shape"]) + "  (i, j, k" + (", t)" if len(description["shape"]) == 4 else ")")),
        ("dtype", f"{description['dtype']}  ({description['kind']})"),
        ("spacing", _format(description["spacing"]) + " mm"),
        ("origin", _format(description["origin_lps"]) + " mm LPS"),
        ("axis codes", f"{description['axis_codes']}  (RAS+ affine below; i, j, k point to these)"),
        ("direction", "  ".join(_format(row) for row in description["direction_lps"]) + "  (LPS, columns = axes)"),
        ("value range", _format(description["value_range"]) if description["value_range"] else "unknown"),
    ]
    for key in _KEY_META[1:]:
        if meta.get(key) not in (None, "", []):
            lines.append((key.replace("_", " "), _format(meta[key])))
    width = max(len(name) for name, _ in lines)
    text = [f"{name:<{width}}  {value}" for name, value in lines]
    text.append(f"{'affine RAS':<{width}}  " + _format(description["affine_ras"][0]))
    text.extend(f"{'':<{width}}  " + _format(row) for row in description["affine_ras"][1:])
    for warning in description["warnings"]:
        text.append(f"{'warning':<{width}}  {warning}")
    if description["history"]:
        text.append(f"{'history':<{width}}  " + " -> ".join(description["history"]))
    return "\n".join(text)


INFO_EXAMPLES = (
    Example("one output (after medconv sample ./sample && medconv tcia2nii ./sample ./out)",
            "medconv info out/SAMPLE-CT-0001/20000101_3_CT_Chest_CT.nii.gz"),
    Example("a folder holding one DICOM series", "medconv info './sample/SAMPLE-CT-0001/01-01-2000-NA-CT CHEST-10007/3.000000-Chest CT-20013'"),
    Example("for scripts: one JSON object", "medconv info scan.mhd --json"),
    Example("an annotation object: its ROIs, contours and the series it is drawn on", "medconv info RS.dcm"),
)


@command(examples=INFO_EXAMPLES, short_help="Shape, dtype, geometry, value range and key metadata of one image.")
@click.argument("path", type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option("--reader", default=None, metavar="NAME", help="Force a reader (nifti, dicom, metaimage, tiff ...).")
def info(path: str, as_json: bool, reader: str | None) -> int:
    """Show the shape, dtype, geometry, value range and key metadata of an image.

    PATH is an image file, or a folder holding exactly one DICOM series. For an
    RTSTRUCT, DICOM SEG or LIDC-IDRI XML: its ROIs, segments or readings, the
    series it references and the image beside it it would be drawn on.
    """
    if os.path.isfile(path) and reader is None:
        from ..readers.annotations.headers import annotation_kind

        if annotation_kind(path) is not None:  # an RTSTRUCT, SEG or LIDC XML: what it holds and references
            from .annotation_info import show_annotation

            return show_annotation(path, as_json)
    from ..api import read
    from ..writers.sidecar import to_jsonable

    try:
        description, problem = describe(read(path, reader=reader)), None
    except UnreadableFileError as exc:
        description, problem = _header_only(path, reader, exc), exc
    if as_json:
        extra = {"error": problem.one_line()} if problem else {}
        click.echo(json.dumps(to_jsonable({"file": path, **description, **extra}), indent=2))
    else:
        click.echo(render(path, description))
    if problem:
        click.echo(f"medconv: {problem.one_line()}", err=True)
        return 1
    return 0


def _header_only(path: str, reader_name: str | None, error: UnreadableFileError) -> dict:
    """What the header says when the voxels cannot be read, if the reader can tell; else re-raise."""
    import numpy as np

    from ..geometry import LPS_TO_RAS, affine_from_geometry, axis_codes
    from ..registry import reader_for

    if os.path.isdir(path):
        raise error
    reader = reader_for(path, reader_name)
    if not hasattr(reader, "header_summary"):
        raise error
    summary = reader.header_summary(path)
    direction = np.asarray(summary["direction"])
    affine = affine_from_geometry(summary["spacing"], summary["origin"], direction)
    return {
        "shape": summary["shape"], "dtype": summary["dtype"], "kind": "unknown",
        "spacing": list(summary["spacing"]), "origin_lps": list(summary["origin"]),
        "direction_lps": direction.tolist(), "axis_codes": axis_codes(direction),
        "affine_ras": (LPS_TO_RAS @ affine).tolist(), "history": [], "value_range": None,
        "meta": {"source_format": reader.name}, "warnings": [f"header only: {error.message}"],
    }
