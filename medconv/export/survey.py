"""The label values a dataset's label maps hold, when nothing declares them.

An export needs its label table before the first case is written (every case
maps its values onto it). When neither the user (``--label``) nor the dataset
(``dataset.json``, an annotation's label table) declares the labels, the label
maps are read once to find their values. The result is kept in the dataset
folder (``medconv-cases/label-values.json``, by file size and modification
time), so a rerun does not read them again. A map that carries its own label table
(``Volume.meta["labels"]``: an RTSTRUCT's drawn ROIs, a SEG's segments, known only once the
object is drawn on its image) is recorded with that table, so the dataset's table can
name its values.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional

from ..batch.pool import map_in_workers
from ..errors import MedconvError
from ..guard import Outcome, Raised, Returned
from ..options import ReadOptions
from ..source import Source
from .formats.base import write_json
from .labelmap import present_values

CACHE_NAME = "label-values.json"


def _stamp(source: Source) -> list:
    stamps = []
    for path in source.paths:
        try:
            status = os.stat(path)
            stamps.append([os.path.abspath(path), status.st_size, status.st_mtime_ns])
        except OSError:
            stamps.append([os.path.abspath(path), None, None])
    return stamps


@dataclass(frozen=True)
class SurveyedMap:
    """What one label map holds: its distinct values, and its own label table when it carries one."""

    values: tuple[int, ...]
    names: Mapping[int, str] = field(default_factory=dict)  #: ``{value: name}`` from ``meta["labels"]``

    def as_json(self) -> dict:
        return {"values": list(self.values), "names": {str(k): v for k, v in self.names.items()}}

    @classmethod
    def from_json(cls, entry: Mapping) -> "SurveyedMap":
        return cls(tuple(int(v) for v in entry.get("values") or ()),
                   {int(k): str(v) for k, v in (entry.get("names") or {}).items()})


def own_label_table(meta: Mapping) -> dict[int, str]:
    """``{value: name}`` of a label Volume's own table (``meta["labels"]``; empty when it has none)."""
    table = {}
    for entry in meta.get("labels") or ():
        try:
            table[int(entry["value"])] = str(entry.get("name") or f"label_{int(entry['value'])}")
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return table


def survey_of(source: Source, options: ReadOptions) -> Optional[SurveyedMap]:
    """One label map's values and own table (``None`` when it cannot be read: its case fails later, naming why)."""
    from ..registry import readers

    try:
        volume = readers.get(source.reader).read(source, dataclasses.replace(options, kind="label"))
        return SurveyedMap(tuple(present_values(volume.array)), own_label_table(volume.meta))
    except MedconvError:
        return None


def survey_label_maps(sources: Iterable[Source], options: ReadOptions, cache_folder: Optional[str] = None,
                      jobs: int = 1) -> dict[str, Optional[SurveyedMap]]:
    """``{unit id: SurveyedMap}`` of every label map in ``sources`` (read in up to ``jobs`` guarded workers)."""
    sources = list(sources)
    cache_path = os.path.join(cache_folder, CACHE_NAME) if cache_folder else None
    cached = _load(cache_path)
    found: dict[str, Optional[SurveyedMap]] = {}
    todo = []
    for source in sources:
        entry = cached.get(source.id)
        if entry and entry.get("files") == _stamp(source) and entry.get("read") == _read_fingerprint(options):
            found[source.id] = SurveyedMap.from_json(entry)
        else:
            todo.append(source)
    if todo:
        outcomes = map_in_workers(survey_of, [(source, options) for source in todo], jobs)
        for source, surveyed in zip(todo, map(_surveyed, outcomes)):
            found[source.id] = surveyed
            if surveyed is not None:
                cached[source.id] = {"files": _stamp(source), "read": _read_fingerprint(options),
                                     **surveyed.as_json()}
        if cache_path:
            os.makedirs(os.path.dirname(cache_path), exist_ok=True)
            write_json(cache_path, cached)
    return found


def _read_fingerprint(options: ReadOptions) -> str:
    """What of the read options decides a map's values (an annotation's consensus level, a SEG's threshold)."""
    annotations = options.annotations
    return repr(annotations) if annotations is not None else ""


def _surveyed(outcome: Outcome) -> Optional[SurveyedMap]:
    """What :func:`survey_of` returned; ``None`` when its worker died reading the file (its case fails later,
    in a worker of its own, saying how)."""
    if isinstance(outcome, Returned):
        return outcome.value
    if isinstance(outcome, Raised):
        raise outcome.error
    return None


def _load(path: Optional[str]) -> dict:
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            content = json.load(handle)
        return content if isinstance(content, dict) else {}
    except (OSError, ValueError):
        return {}
