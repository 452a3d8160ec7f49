"""``medconv info`` on an annotation object (RTSTRUCT, DICOM SEG, LIDC-IDRI XML): what it holds and references."""

from __future__ import annotations

import json
from typing import Any

import click


def _rows(description: dict[str, Any]) -> list[tuple[str, str]]:
    kind = description["kind"]
    annotates = (f"{description['annotates']} (by {description['pairing']})" if description["annotates"]
                 else f"nothing found ({description['pairing']})")  # pairing: the rule, or why none paired
    rows = [("file", description["file"]), ("format", kind), ("patient", description["patient_id"] or "-"),
            ("label", description["label"] or "-"),
            ("references", ", ".join(description["referenced_series"]) or "no series"),
            ("instances", f"{description['referenced_instances']} referenced"), ("annotates", annotates)]
    if kind == "rtstruct":
        rows.append(("ROIs", f"{len(description['rois'])}, {description['contours']} contour(s)"))
        for roi in description["rois"]:
            types = ", ".join(f"{n} {t}" for t, n in roi["geometry"].items()) or "no contours"
            extra = f"  ({roi['problem']})" if roi.get("problem") else ""
            rows.append((f"  #{roi['number']}", f"{roi['name']}: {types}{extra}"))
    elif kind == "seg":
        rows.append(("segments", f"{len(description['segments'])}, {description['segmentation_type']}, "
                                 f"{description['frames']} frame(s) of {description['columns']}x{description['rows']}"))
        rows.extend((f"  #{s['number']}", f"{s['name']}: {s['frames']} frame(s)") for s in description["segments"])
    else:
        rows.append(("sessions", str(len(description["sessions"]))))
        rows.extend((f"  reader {s['session']}", f"{s['nodules']} nodule(s) on {s['rois']} slice outline(s), "
                                                 f"{s['small_nodules']} < 3 mm, {s['non_nodules']} non-nodule(s)")
                    for s in description["sessions"])
    return rows


def show_annotation(path: str, as_json: bool) -> int:
    """Print what the annotation object at ``path`` holds; 0, or 1 when it cannot be read (one line on stderr)."""
    from ..errors import MedconvError
    from ..readers.annotations.describe import describe_annotation, paired_image
    from ..writers.sidecar import to_jsonable

    try:
        description = describe_annotation(path)
    except MedconvError as error:
        click.echo(f"medconv: {error.one_line()}", err=True)
        return 1
    image, description["pairing"] = paired_image(path)
    description["annotates"] = image or ""
    if as_json:
        click.echo(json.dumps(to_jsonable(description), indent=2))
        return 0
    rows = _rows(description)
    width = max(len(name) for name, _ in rows)
    click.echo("\n".join(f"{name:<{width}}  {value}" for name, value in rows))
    return 0
