"""Any dataset, through an explicit table (``--pairs pairs.csv``).

A CSV file with a header row and the columns ``case``, ``channel`` and ``path``
(other columns are ignored): one row per image channel, and one row with the
channel ``label`` for the case's label map::

    case,channel,path
    pat01,CT,scans/pat01.nii.gz
    pat01,PET,scans/pat01_pet.nii.gz
    pat01,label,masks/pat01_gtv.nii.gz
    pat02,CT,scans/pat02.nii.gz

Paths are relative to the dataset folder (SRC), or absolute; a DICOM series is
named by its folder. Channels are in the order they first appear. A case without
a ``label`` row is a test case. Units of the dataset that the table does not
name are listed as left out.
"""

from __future__ import annotations

import csv
import os
from typing import Optional

from ...batch.plan import source_location
from ...errors import UsageError
from ...source import Source
from ..cases import Pairing, Unpaired, UnpairedReason
from .annotations import with_annotation_naming
from .base import Claim, DatasetView, Role, assemble

COLUMNS = ("case", "channel", "path")
#: The ``channel`` value that marks the label map (case-insensitive).
LABEL_CHANNEL = "label"


class TableRule:
    """Cases listed in a CSV table."""

    name = "pairs"
    summary = "an explicit table: --pairs pairs.csv with columns case, channel, path (channel 'label' for the mask)"

    def __init__(self, table_path: str | os.PathLike):
        self.table_path = os.fspath(table_path)

    def claims(self, dataset: DatasetView) -> bool:
        return True

    def pair(self, dataset: DatasetView) -> Pairing:
        rows = read_pairs_table(self.table_path)
        by_path = _sources_by_path(dataset)
        claims, unpaired, used = [], dataset.set_apart(), set()
        channel_order: list[str] = []
        for line, case_id, channel, path in rows:
            resolved = path if os.path.isabs(path) else os.path.join(dataset.root, path)
            source = by_path.get(_key(resolved))
            if source is None:
                unpaired.append(Unpaired(UnpairedReason.NOT_FOUND,
                                         f"{self.table_path} line {line}: {path!r} is not an image medconv found "
                                         f"under {dataset.root} (check the path, relative to SRC)", case_id))
                continue
            used.add(source.id)
            if channel.lower() == LABEL_CHANNEL:
                claims.append(Claim(source, case_id, Role.LABEL))
            else:
                if channel not in channel_order:
                    channel_order.append(channel)
                claims.append(Claim(source, case_id, Role.IMAGE, channel))
        unpaired += [Unpaired(UnpairedReason.NOT_A_CHANNEL, f"not listed in {os.path.basename(self.table_path)}; left out",
                              sources=(source,)) for source in dataset.images() if source.id not in used]
        pairing = assemble(self.name, claims, channel_names=tuple(channel_order), unpaired=unpaired,
                           what_to_do=f"fix {os.path.basename(self.table_path)}")
        return with_annotation_naming(pairing)  # an annotation file as a label: named by its own table


def read_pairs_table(path: str) -> list[tuple[int, str, str, str]]:
    """``(line, case, channel, path)`` for every row of a pairs table; a malformed table is a UsageError."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            fields = {name.strip().lower(): name for name in (reader.fieldnames or [])}
            missing = [column for column in COLUMNS if column not in fields]
            if missing:
                raise UsageError(f"the pairs table has no column {', '.join(missing)}", path,
                                 "its first row must name the columns case,channel,path")
            rows = []
            for number, row in enumerate(reader, start=2):
                values = [(row.get(fields[column]) or "").strip() for column in COLUMNS]
                if not any(values):
                    continue
                if not all(values):
                    raise UsageError(f"line {number} needs a case, a channel and a path", path)
                rows.append((number, *values))
    except OSError as exc:
        raise UsageError(f"cannot read the pairs table ({exc.strerror or exc})", path) from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise UsageError(f"the pairs table is not a readable CSV file ({exc})", path) from None
    if not rows:
        raise UsageError("the pairs table lists no case", path, "add rows case,channel,path")
    return rows


def _key(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


def _sources_by_path(dataset: DatasetView) -> dict[str, Source]:
    """Every unit under each name a table may use for it: its first file, its location, each of its files."""
    found: dict[str, Optional[Source]] = {}
    for source in dataset.images():
        for path in (source_location(source),) + source.paths[:1]:
            found.setdefault(_key(path), source)
    return {key: source for key, source in found.items() if source is not None}
