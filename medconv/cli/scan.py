"""``medconv scan SRC``: what a dataset holds, from headers only, before spending hours converting it."""

from __future__ import annotations

import csv
import json
import os
from typing import Any, Iterable

import click

from ..batch.plan import discover_sources, source_location
from ..source import Source
from .hints import nothing_found
from .options import Example, command

#: Geometry and content flags a reader may set in ``Source.info`` (as booleans or in ``info["flags"]``).
FLAG_KEYS = ("gap", "tilt", "uneven", "duplicates", "localizer", "non_image", "multiframe", "mosaic", "rgb", "4d")
COLUMNS = ("unit", "reader", "patient", "modality", "size", "spacing", "slices", "files", "flags", "note")


def _first(info, *keys) -> Any:
    for key in keys:
        value = info.get(key)
        if value not in (None, "", []):
            return value
    return None


def _join(values, sep="x") -> str:
    if values is None:
        return ""
    if isinstance(values, (list, tuple)):
        return sep.join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in values)
    return str(values)


def flags_of(info) -> list[str]:
    """The geometry/content flags of a unit: ``info["flags"]`` plus every true flag key."""
    flags = info.get("flags") or []
    flags = [flags] if isinstance(flags, str) else list(flags)
    flags += [key for key in FLAG_KEYS if info.get(key) is True and key not in flags]
    if info.get("kind_guess") == "label" and "label" not in flags:
        flags.append("label")
    return flags


def scan_row(source: Source) -> dict[str, Any]:
    """One audit row for ``source``, from the facts its reader put in ``Source.info``."""
    info = source.info
    shape = _first(info, "shape", "size")
    slices = _first(info, "slice_count", "n_slices", "slices")
    if slices is None and isinstance(shape, (list, tuple)) and len(shape) >= 3:
        slices = shape[2]
    note = _first(info, "excluded", "error", "reason") or ""
    return {
        "unit": source.id,
        "reader": source.reader,
        "patient": _first(info, "patient_id") or "",
        "modality": _first(info, "modality") or "",
        "size": _join(shape),
        "spacing": _join(_first(info, "spacing")),
        "slices": "" if slices is None else str(slices),
        "files": str(len(source.paths)),
        "flags": ",".join(flags_of(info)),
        "note": str(note),
        "source": source_location(source),
        "info": json.dumps(dict(info), default=str, sort_keys=True),
    }


def write_scan_csv(rows: Iterable[dict[str, Any]], path: str) -> None:
    """The scan as CSV: the table's columns plus the source and every header fact as JSON."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8", errors="backslashreplace") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS + ("source", "info"))
        writer.writeheader()
        writer.writerows(rows)


SCAN_EXAMPLES = (
    Example("what a TCIA download holds, before converting it", "medconv scan ./LIDC-IDRI"),
    Example("the same as a spreadsheet (every header fact in the info column)",
            "medconv scan ./LIDC-IDRI --csv lidc-scan.csv"),
    Example("only the MetaImage volumes of a mixed folder", "medconv scan ./LUNA16 --reader metaimage"),
)


@command(examples=SCAN_EXAMPLES, short_help="Audit SRC from headers only: units, size, spacing, geometry flags.")
@click.argument("src", type=click.Path(exists=True))
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None, metavar="PATH",
              help="Also write the table (plus every header fact) to this CSV file.")
@click.option("--reader", "reader_names", multiple=True, metavar="NAME",
              help="Only use these readers (dicom, metaimage, nifti, tiff ...); repeatable. Default: all.")
@click.option("-q", "--quiet", is_flag=True, help="No table on screen (with --csv).")
def scan(src: str, csv_path: str | None, reader_names: tuple[str, ...], quiet: bool) -> int:
    """List every unit under SRC without converting: patient, modality, size, spacing, slices, flags.

    Flags come from the headers: gap, tilt, uneven, localizer, non_image, label ...
    The note column says why a unit would be excluded or cannot be read.
    """
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    sources = discover_sources(src, reader_names or None)
    if not sources:
        raise nothing_found(src, None, reader_names)
    rows = [scan_row(source) for source in sources]
    if csv_path:
        write_scan_csv(rows, csv_path)
    if not quiet:
        console = Console()
        if not console.is_terminal:
            console = Console(width=200)
        shown = [column for column in COLUMNS if any(row[column] for row in rows)]  # no empty columns
        table = Table(title=f"{len(rows)} unit(s) in {src}")
        for column in shown:
            table.add_column(column, overflow="fold", no_wrap=column in ("unit", "size", "spacing"),
                             min_width=40 if column == "note" else None)
        for row in rows:  # header values are text, never rich markup
            table.add_row(*(Text(row[column]) for column in shown))
        console.print(table)
        flagged = sum(1 for row in rows if row["note"] or set(row["flags"].split(",")) - {"", "label"})
        console.print(f"{len(rows)} unit(s), {flagged} with geometry flags or notes" + (f"; CSV: {csv_path}" if csv_path else ""),
                      highlight=False)
    return 0
