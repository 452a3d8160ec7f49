"""The manifest: one row per unit, as CSV and JSON Lines, written as units finish, sorted at the end.

Each row is flushed as soon as its unit is done, so a run that is interrupted
(Ctrl-C, ``kill -9``, a crash) still leaves a manifest that is true for every
unit it lists. When the run ends, both files are rewritten with the rows sorted
by unit name (then id), so that two runs of one plan give their rows in the
same order. Columns (:data:`COLUMNS`):

======================  =========================================================
``unit_id``             the unit's stable id (file: relative path without suffix)
``name``                the unit's output name relative to the destination,
                        without suffix (also for units that wrote nothing); the
                        rows are sorted by it
``status``              ``converted``, ``skipped``, ``failed`` or ``excluded`` (:class:`Status`)
``reason``              why it was skipped, failed or excluded ('' when converted)
``error_type``          the error's short code (``unreadable``, ``geometry``,
                        ``crashed``, ``disk-full`` ..., ``internal`` for a bug)
``source``              absolute path of the unit's file (a unit of one file, or
                        named after its first file: NIfTI, ``.mhd`` + data file,
                        TIFF) or of the folder holding its files (a DICOM series)
``reader``              the reader that read it
``files``               how many input files make up the unit
``output``              ``name`` plus the format suffix: the file written, relative
                        to the destination folder ('' when nothing was written:
                        failed and excluded units); a unit that writes several
                        files (an annotation object's masks) lists them
``annotates``           annotation units: the unit id of the image they are drawn on
``patient_id``          header facts of the unit (DICOM PatientID,
``study_uid``           StudyInstanceUID, SeriesInstanceUID, Modality,
``series_uid``          SeriesDescription; '' when the format has none)
``modality``
``series_description``
``shape``               array shape, e.g. ``512x512x133``
``spacing``             mm along i, j, k
``dtype``               the written dtype
``kind``                ``intensity`` or ``label``
``warnings``            what the reader or transforms had to decide
``history``             the preprocessing steps applied, in order
``seconds``             wall time of this unit in its worker
``medconv_version``     the version that wrote the row
``finished_at``         UTC time the row was written
``traceback``           internal errors and crashes only: the traceback, or the
                        dead process's last output (also in the log file)
======================  =========================================================

In the CSV, lists are joined with ``" | "`` and shape/spacing with ``x``; the JSON
Lines file keeps them as lists.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from datetime import datetime, timezone
from enum import Enum, unique
from typing import Any, Iterable

from ..atomic import temporary_name
from ..errors import ManifestWriteError, environment_fault

COLUMNS = ("unit_id", "name", "status", "reason", "error_type", "source", "reader", "files", "output", "annotates",
           "patient_id", "study_uid", "series_uid", "modality", "series_description", "shape", "spacing",
           "dtype", "kind", "warnings", "history", "seconds", "medconv_version", "finished_at", "traceback")


@unique
class Status(str, Enum):
    """A manifest row's ``status``: what became of the unit.

    Every row is written with one of these and every comparison uses them; the
    values are the manifest's public text (docs/batch.md lists exactly these), and a
    member prints, formats and serialises (CSV, JSON) as that text.
    """

    CONVERTED = "converted"  #: written by this run
    SKIPPED = "skipped"  #: its complete output from an earlier run of the same files and options is kept (resume)
    FAILED = "failed"  #: nothing written: ``reason`` and ``error_type`` say why
    EXCLUDED = "excluded"  #: not an image volume (a localizer, a report ...): nothing read, nothing written

    def __str__(self) -> str:
        return self.value


#: The statuses of a unit whose output is on disk after the run (written by it, or kept from an earlier one).
WITH_OUTPUT = frozenset({Status.CONVERTED, Status.SKIPPED})

DEFAULT_NAME = "medconv-manifest"


def manifest_paths(dest: str, manifest: str | None = None) -> tuple[str, str]:
    """``(csv_path, jsonl_path)`` for a run writing to ``dest``.

    ``manifest`` names either file (``.csv`` or ``.jsonl``) or their common stem;
    the other one is written beside it. Default: ``DEST/medconv-manifest.{csv,jsonl}``.
    """
    if not manifest:
        base = os.path.join(dest, DEFAULT_NAME)
    else:
        base = os.fspath(manifest)
        for suffix in (".csv", ".jsonl"):
            if base.lower().endswith(suffix):
                base = base[: -len(suffix)]
    return base + ".csv", base + ".jsonl"


def _csv_value(key: str, value: Any) -> str:
    if value is None:
        return ""
    if key in ("shape", "spacing") and isinstance(value, (list, tuple)):
        return "x".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    if isinstance(value, (list, tuple)):
        return " | ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def row_order(row: dict[str, Any]) -> tuple[str, str]:
    """The sort key of a manifest row: its name, then its unit id (case-insensitive first)."""
    name = str(row.get("name") or row.get("unit_id") or "")
    return (name.casefold(), name, str(row.get("unit_id") or ""))


def _cannot_write(path: str, exc: OSError) -> ManifestWriteError:
    fault = environment_fault(exc, path)
    why = fault.message if fault is not None else f"{type(exc).__name__}: {exc}"
    hint = fault.hint if fault is not None else None
    return ManifestWriteError(f"the manifest cannot be written: {why}", exc.filename or path,
                              (hint + "; " if hint else "") + "or give --manifest a path you can write to")


class ManifestWriter:
    """Writes rows to the CSV and JSON Lines manifests, flushing each row; :meth:`finish` sorts them.

    Raises :class:`~medconv.errors.ManifestWriteError` (a user error naming the file)
    when a manifest cannot be created or written.
    """

    def __init__(self, csv_path: str, jsonl_path: str):
        self.csv_path, self.jsonl_path = csv_path, jsonl_path
        self._csv_handle = self._jsonl_handle = None
        self._rows: list[dict[str, Any]] = []
        try:
            for path in (csv_path, jsonl_path):
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self._csv_handle = open(csv_path, "w", newline="", encoding="utf-8", errors="backslashreplace")
            self._jsonl_handle = open(jsonl_path, "w", encoding="utf-8")
            self._csv = csv.DictWriter(self._csv_handle, fieldnames=COLUMNS, extrasaction="ignore")
            self._csv.writeheader()
            self._csv_handle.flush()
        except OSError as exc:
            self.close()
            raise _cannot_write(csv_path if self._csv_handle is None else jsonl_path, exc) from None

    @property
    def rows(self) -> int:
        """How many rows were written."""
        return len(self._rows)

    def write(self, row: dict[str, Any]) -> None:
        """Append one row to both files and flush them."""
        row = {key: row.get(key) for key in COLUMNS}
        row["finished_at"] = row["finished_at"] or datetime.now(timezone.utc).isoformat(timespec="seconds")
        try:
            self._csv.writerow(_csv_row(row))
            self._jsonl_handle.write(_json_line(row))
            self._csv_handle.flush()
            self._jsonl_handle.flush()
        except OSError as exc:
            raise _cannot_write(self.csv_path, exc) from None
        self._rows.append(row)

    def finish(self) -> None:
        """Rewrite both files with the rows sorted by :func:`row_order` (each replaced in one rename)."""
        self.close()
        rows = sorted(self._rows, key=row_order)
        for path, write in ((self.csv_path, _write_csv), (self.jsonl_path, _write_jsonl)):
            temp = temporary_name(path)
            try:
                write(temp, rows)
                os.replace(temp, path)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.remove(temp)
                raise _cannot_write(path, exc) from None

    def close(self) -> None:
        for handle in (self._csv_handle, self._jsonl_handle):
            if handle is not None:
                with contextlib.suppress(OSError):
                    handle.close()

    def __enter__(self) -> "ManifestWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _csv_row(row: dict[str, Any]) -> dict[str, str]:
    return {key: _csv_value(key, value) for key, value in row.items()}


def _json_line(row: dict[str, Any]) -> str:
    return json.dumps(row, default=str) + "\n"


def _write_csv(path: str, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8", errors="backslashreplace") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(_csv_row(row) for row in rows)


def _write_jsonl(path: str, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(_json_line(row) for row in rows)


def read_manifest(jsonl_path: str) -> list[dict[str, Any]]:
    """The rows of a JSON Lines manifest; a torn last line (a killed run) is ignored."""
    rows: list[dict[str, Any]] = []
    try:
        with open(jsonl_path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    except FileNotFoundError:
        pass
    return rows


def rows_by_unit(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The last row of each unit id."""
    return {row["unit_id"]: row for row in rows if row.get("unit_id")}
