"""The label values a dataset's label maps hold, when nothing declares them.

An export needs its label table before the first case is written (every case
maps its values onto it). When neither the user (``--label``) nor the dataset
(``dataset.json``, an annotation's label table) declares the labels, the label
maps are read once to find their values. The result is kept in the dataset
folder (``medconv-cases/label-values.json``, by file size and modification
time), so a rerun does not read them again.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Iterable, Optional

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


def values_of(source: Source, options: ReadOptions) -> Optional[list[int]]:
    """The distinct values of one label map (``None`` when it cannot be read: its case fails later, naming why)."""
    from ..registry import readers

    try:
        volume = readers.get(source.reader).read(source, dataclasses.replace(options, kind="label"))
        return present_values(volume.array)
    except MedconvError:
        return None


def survey_label_values(sources: Iterable[Source], options: ReadOptions, cache_folder: Optional[str] = None,
                        jobs: int = 1) -> dict[str, Optional[list[int]]]:
    """``{unit id: sorted values}`` of every label map in ``sources`` (read in up to ``jobs`` guarded workers)."""
    sources = list(sources)
    cache_path = os.path.join(cache_folder, CACHE_NAME) if cache_folder else None
    cached = _load(cache_path)
    found: dict[str, Optional[list[int]]] = {}
    todo = []
    for source in sources:
        entry = cached.get(source.id)
        if entry and entry.get("files") == _stamp(source):
            found[source.id] = entry.get("values")
        else:
            todo.append(source)
    if todo:
        outcomes = map_in_workers(values_of, [(source, options) for source in todo], jobs)
        for source, values in zip(todo, map(_values, outcomes)):
            found[source.id] = values
            if values is not None:
                cached[source.id] = {"files": _stamp(source), "values": values}
        if cache_path:
            os.makedirs(os.path.dirname(cache_path), exist_ok=True)
            write_json(cache_path, cached)
    return found


def _values(outcome: Outcome) -> Optional[list[int]]:
    """What :func:`values_of` returned; ``None`` when its worker died reading the file (its case fails later,
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
