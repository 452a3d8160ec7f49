"""The manifest: one row per unit, as CSV and JSON Lines, written as units finish.

Each row is flushed as soon as its unit is done, so a run that is interrupted
(Ctrl-C, ``kill -9``, a crash) still leaves a manifest that is true for every
unit it lists. Columns (:data:`COLUMNS`):

==================  =========================================================
``unit_id``         the unit's stable id (file: relative path without suffix)
``status``          ``converted``, ``skipped``, ``failed`` or ``excluded``
``reason``          why it was skipped, failed or excluded ('' when converted)
``error_type``      the error's short code (``unreadable``, ``geometry`` ...,
                    ``internal`` for a bug in medconv)
``source``          the input file, or the folder holding a series' files
``reader``          the reader that read it
``files``           how many input files make up the unit
``output``          the output path relative to the destination folder ('' when
                    nothing was written: failed and excluded units)
``shape``           array shape, e.g. ``512x512x133``
``spacing``         mm along i, j, k
``dtype``           the written dtype
``kind``            ``intensity`` or ``label``
``warnings``        what the reader or transforms had to decide
``history``         the preprocessing steps applied, in order
``seconds``         wall time of this unit in its worker
``medconv_version`` the version that wrote the row
``finished_at``     UTC time the row was written
``traceback``       internal errors only: the traceback (also in the log file)
==================  =========================================================

In the CSV, lists are joined with ``" | "`` and shape/spacing with ``x``; the JSON
Lines file keeps them as lists.
"""

from __future__ import annotations

import csv
import json
import os
from datetime import datetime, timezone
from typing import Any, Iterable

COLUMNS = ("unit_id", "status", "reason", "error_type", "source", "reader", "files", "output", "shape", "spacing",
           "dtype", "kind", "warnings", "history", "seconds", "medconv_version", "finished_at", "traceback")
STATUSES = ("converted", "skipped", "failed", "excluded")
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


class ManifestWriter:
    """Writes rows to the CSV and JSON Lines manifests, flushing each row."""

    def __init__(self, csv_path: str, jsonl_path: str):
        self.csv_path, self.jsonl_path = csv_path, jsonl_path
        for path in (csv_path, jsonl_path):
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._csv_handle = open(csv_path, "w", newline="", encoding="utf-8", errors="backslashreplace")
        self._jsonl_handle = open(jsonl_path, "w", encoding="utf-8")
        self._csv = csv.DictWriter(self._csv_handle, fieldnames=COLUMNS, extrasaction="ignore")
        self._csv.writeheader()
        self._csv_handle.flush()
        self.rows = 0

    def write(self, row: dict[str, Any]) -> None:
        """Append one row to both files and flush them."""
        row = {key: row.get(key) for key in COLUMNS}
        row["finished_at"] = row["finished_at"] or datetime.now(timezone.utc).isoformat(timespec="seconds")
        self._csv.writerow({key: _csv_value(key, value) for key, value in row.items()})
        self._jsonl_handle.write(json.dumps(row, default=str) + "\n")
        self._csv_handle.flush()
        self._jsonl_handle.flush()
        self.rows += 1

    def close(self) -> None:
        for handle in (self._csv_handle, self._jsonl_handle):
            handle.close()

    def __enter__(self) -> "ManifestWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
