"""``medconv scan SRC``: what a dataset holds, from headers only, before spending hours converting it.

One row per unit (:func:`scan_row`), each flagged unit with a note saying what
converting it will do (:mod:`.scan_notes`). On screen the table fits the
terminal (:func:`scan_table`): low-value columns go first (reader, files, slices,
patient, modality), the note wraps, and when even that is too wide (or the
unit names would have to wrap) each unit becomes a short record (name; facts and flags; note), wrapped
to the width. The flags and the note are never dropped. ``--csv`` and ``--json`` write every column and every header fact.
"""

from __future__ import annotations

import csv
import json
import os
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import click

from ..source import InfoKey
from .hints import nothing_found, unread_inputs
from .options import Example, command
from .scan_notes import unit_note

if TYPE_CHECKING:
    from ..source import Source

#: Geometry and content flags a reader may set in ``Source.info`` (as booleans or in ``info["flags"]``).
FLAG_KEYS = ("gap", "tilt", "uneven", "duplicates", "localizer", "non_image", "multiframe", "mosaic", "rgb", "4d")
COLUMNS = ("unit", "reader", "patient", "modality", "size", "spacing", "slices", "files", "flags", "note")

#: Columns shown whatever the width: the unit, its grid, its flags and the note.
KEPT_COLUMNS = ("unit", "size", "spacing", "flags", "note")
#: The other columns, dropped in this order when the terminal is too narrow.
DROPPED_FIRST = ("reader", "files", "slices", "patient", "modality")
#: Widest the note column grows to (longer notes wrap).
MAX_NOTE_WIDTH = 60
#: Width used when the output is not a terminal (a file or a pipe): rows stay one line where possible.
PIPE_WIDTH = 200


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
    from ..batch.plan import source_location  # here, not at import: ``medconv --help`` imports this module

    info = source.info
    shape = _first(info, InfoKey.SHAPE, "size")
    slices = _first(info, "slice_count", "n_slices", "slices")
    if slices is None and isinstance(shape, (list, tuple)) and len(shape) >= 3:
        slices = shape[2]
    flags = flags_of(info)
    return {
        "unit": source.id,
        "reader": source.reader,
        "patient": _first(info, InfoKey.PATIENT_ID) or "",
        "modality": _first(info, InfoKey.MODALITY) or "",
        "size": _join(shape),
        "spacing": _join(_first(info, "spacing")),
        "slices": "" if slices is None else str(slices),
        "files": str(len(source.paths)),
        "flags": ",".join(flags),
        "note": unit_note(info, flags),
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


def scan_json(rows: Sequence[dict[str, Any]]) -> str:
    """The scan as one JSON array: the CSV's fields, with ``flags`` a list and ``info`` an object."""
    records = [{**row, "flags": [f for f in row["flags"].split(",") if f], "info": json.loads(row["info"])}
               for row in rows]
    return json.dumps(records, indent=2)


def _shown_flags(row: dict[str, Any]) -> str:
    return row["flags"].replace(",", ", ")  # wraps between flags, never inside one


def _natural_width(rows: Sequence[dict[str, Any]], column: str) -> int:
    cells = [_shown_flags(row) if column == "flags" else row[column] for row in rows]
    return max([len(column)] + [len(cell) for cell in cells])


def table_columns(rows: Sequence[dict[str, Any]], width: int) -> list[str] | None:
    """The table columns that fit ``width`` characters, or ``None`` when only the record layout fits.

    Columns holding nothing are not shown. Each column costs its widest cell plus
    2 characters of padding (the note at most :data:`MAX_NOTE_WIDTH`, it wraps):
    :data:`DROPPED_FIRST` columns go, in that order, until the rest fits. A
    table that would have to wrap unit names is worse than the records.
    """
    columns = [column for column in COLUMNS if any(row[column] for row in rows) or column == "unit"]

    def needed(shown: list[str]) -> int:
        return sum(min(_natural_width(rows, c), MAX_NOTE_WIDTH if c == "note" else 10 ** 6) + 2 for c in shown)

    optional = [column for column in DROPPED_FIRST if column in columns]
    while needed(columns) > width and optional:
        columns.remove(optional.pop(0))
    return columns if needed(columns) <= width else None


def scan_table(rows: Sequence[dict[str, Any]], title: str, columns: Sequence[str]):
    """The rich Table of ``rows`` with these columns (the unit and note wrap, the flags wrap between flags)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold", no_wrap=column in ("size", "spacing", "slices", "files"),
                         max_width=MAX_NOTE_WIDTH if column == "note" else None)
    for row in rows:  # header values are text, never rich markup
        table.add_row(*(Text(_shown_flags(row), style="bold") if column == "flags" else Text(row[column])
                        for column in columns))
    return table


#: Indent of a unit's facts and note in the record layout.
RECORD_INDENT = "   "


def scan_records(rows: Sequence[dict[str, Any]], width: int) -> list[str]:
    """The narrow layout: per unit its name, then its facts and flags, then its note, each wrapped to ``width``."""
    import textwrap

    lines = []
    for row in rows:
        facts = [row["modality"], row["patient"], row["size"], row["spacing"] and row["spacing"] + " mm",
                 row["files"] + " file(s)", row["reader"]]
        if row["flags"]:
            facts.append("[" + row["flags"] + "]")  # one word: never split between lines
        lines.extend(textwrap.wrap(row["unit"], width, break_on_hyphens=False) or [""])
        for text in ("  ".join(fact for fact in facts if fact), row["note"]):
            lines.extend(textwrap.wrap(text, width, initial_indent=RECORD_INDENT, subsequent_indent=RECORD_INDENT,
                                       break_on_hyphens=False))
    return lines


SCAN_EXAMPLES = (
    Example("what a TCIA download holds, before converting it", "medconv scan ./LIDC-IDRI"),
    Example("the same as a spreadsheet (every header fact in the info column)",
            "medconv scan ./LIDC-IDRI --csv lidc-scan.csv"),
    Example("for scripts: one JSON array", "medconv scan ./LIDC-IDRI --json > lidc-scan.json"),
    Example("only the MetaImage volumes of a mixed folder", "medconv scan ./LUNA16 --reader metaimage"),
)


@command(examples=SCAN_EXAMPLES, short_help="Audit SRC from headers only: units, size, spacing, geometry flags.")
@click.argument("src", type=click.Path(exists=True))
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None, metavar="PATH",
              help="Also write the table (plus every header fact) to this CSV file.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array (every header fact) instead of the table.")
@click.option("--reader", "reader_names", multiple=True, metavar="NAME",
              help="Only use these readers (dicom, metaimage, nifti, tiff ...); repeatable. Default: all.")
@click.option("-q", "--quiet", is_flag=True, help="No table on screen (with --csv).")
def scan(src: str, csv_path: str | None, as_json: bool, reader_names: tuple[str, ...], quiet: bool) -> int:
    """List every unit under SRC without converting: patient, modality, size, spacing, slices, flags.

    Flags come from the headers: gap, tilt, uneven, localizer, non_image, label ...
    The note says what converting the unit will do: excluded and why, fail and
    why, or how a flag is handled (a tilted series is resampled, ...).
    """
    from rich.console import Console

    from ..batch.plan import discover_sources

    sources = discover_sources(src, reader_names or None)
    if not sources:
        raise nothing_found(src, None, reader_names)
    rows = [scan_row(source) for source in sources]
    if csv_path:
        write_scan_csv(rows, csv_path)
    if as_json:
        click.echo(scan_json(rows))
        return 0
    if quiet:
        return 0
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=PIPE_WIDTH, highlight=False)
    title = f"{len(rows)} unit(s) in {src}"
    columns = table_columns(rows, console.width)
    if columns is not None:
        console.print(scan_table(rows, title, columns))
    else:
        console.print(title, markup=False)
        for line in scan_records(rows, console.width):
            console.print(line, markup=False, soft_wrap=True)
    flagged = sum(1 for row in rows if row["flags"] or row["note"])
    console.print(f"{len(rows)} unit(s), {flagged} with flags or notes" + (f"; CSV: {csv_path}" if csv_path else ""))
    for line in unread_inputs(src):
        console.print(f"note: {line}", markup=False)
    from ..export.report import print_cases  # the cases a training export would make, and what is unpaired

    print_cases(src, sources, console)
    return 0
