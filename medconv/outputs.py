"""What a reader returns for a unit that makes several files (an annotation object: masks, a table).

Most units are one Volume (``reader.read``). A reader whose units each give several
volumes, named after the unit, also offers ``read_outputs(source, options) -> UnitOutputs``;
the batch then writes every volume (after the same preprocessing as any volume, so label
maps follow their image's reorientation and resampling), every table as CSV, and last the
unit's *record* (its sidecar), which lists the files and lets a rerun resume. The batch
knows no format: the names come from each output's ``suffix``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .volume import Volume


@dataclass(frozen=True)
class NamedVolume:
    """One volume of a unit: ``suffix`` is appended to the unit's output name (``""``: the name itself)."""

    suffix: str
    volume: Volume


@dataclass(frozen=True)
class NamedTable:
    """One table of a unit, written as ``<unit name><suffix>.csv`` with these columns in this order."""

    suffix: str
    columns: tuple[str, ...]
    rows: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class UnitOutputs:
    """Everything one unit writes: its volumes, its tables, and what its record says besides the file list.

    ``record`` holds JSON-ready facts about the unit as a whole (for an annotation object:
    its label table, what happened to each ROI, its warnings); ``warnings`` are the unit's
    one-line warnings for the manifest.
    """

    volumes: tuple[NamedVolume, ...]
    tables: tuple[NamedTable, ...] = ()
    record: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
