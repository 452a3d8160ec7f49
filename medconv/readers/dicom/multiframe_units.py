"""How discovery turns multi-frame files into units: pooled files, one unit per frame group.

Discovery (:mod:`.reader`) hands this module the multi-frame files of one stack
(:mod:`.grouping` pools the files of one series, matrix and image type: Siemens
XA writes one enhanced file per time point). Their functional groups are parsed
(headers only, no pixel data) and:

* each **frame group** (magnitude, phase, field map ...: see
  :func:`.multiframe.frame_groups`) becomes a unit of its own, read with
  ``source.info["frame_group"]``, so that nothing is left out;
* the pooled files stay **one unit** when, within every frame group, their frames
  form complete volumes at shared positions (the 4D case); otherwise each file
  becomes a unit of its own, as it would be on its own.

A file whose frames cannot be placed in space is kept as a unit without a frame
group; reading it raises the typed error that says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from medconv.errors import GeometryError, MedconvError

from .decode import read_datasets
from .multiframe import _frames_of, _group_labels, _split_repeats


@dataclass(frozen=True)
class FrameUnit:
    """One discovery unit made of multi-frame files.

    Attributes
    ----------
    paths:
        The files read for this unit (every file of the pool: each holds frames of every group).
    frame_group:
        The group label for ``source.info["frame_group"]``; ``""`` when the files hold one group.
    shape:
        ``(columns, rows, slices[, volumes])`` of the volume it reads to; ``None`` if unknown.
    spacing:
        ``(column step, row step, mean slice step)`` in mm; ``None`` if unknown.
    groups:
        How many frame groups the files hold (1 for a plain object).
    """

    paths: tuple[str, ...]
    frame_group: str = ""
    shape: tuple[int, ...] | None = None
    groups: int = 1
    spacing: tuple[float, float, float] | None = None


def _units_of(datasets: Sequence, paths: Sequence[str]) -> list[FrameUnit]:
    """One unit per frame group of files read together; GeometryError if a group is not complete volumes."""
    frames = _frames_of(datasets, paths)
    labels = _group_labels(frames)
    rows, columns = int(datasets[0].Rows), int(datasets[0].Columns)
    units = []
    for key, label in labels.items():
        selected = [frame for frame in frames if frame.group == key]
        iop = selected[0].iop
        if any(not np.allclose(frame.iop, iop, atol=1e-4) for frame in selected):
            raise GeometryError("frames of one group have different orientations", path=paths[0])
        normal = np.cross(iop[:3], iop[3:])
        volumes = _split_repeats(selected, normal, paths[0])
        reference = np.sort([float(np.dot(frame.position, normal)) for frame in volumes[0]])
        for volume in volumes[1:]:
            distances = np.sort([float(np.dot(frame.position, normal)) for frame in volume])
            if not np.allclose(distances, reference, atol=0.01):
                raise GeometryError("repeated volumes are not at the same positions", path=paths[0])
        shape = (columns, rows, len(volumes[0])) + ((len(volumes),) if len(volumes) > 1 else ())
        step = float(reference[-1] - reference[0]) / (len(reference) - 1) if len(reference) > 1 else 0.0
        row_step, column_step = selected[0].pixel_spacing
        spacing = (round(column_step, 6), round(row_step, 6), round(step, 6))
        units.append(FrameUnit(tuple(paths), label, shape, len(labels), spacing))
    return units


def plan_multiframe_units(paths: Sequence[str]) -> list[FrameUnit]:
    """The discovery units of the multi-frame files of one stack (see the module doc).

    Never raises for a bad file: what cannot be planned stays a unit without a
    frame group, and reading it gives the typed error.
    """
    paths = [str(p) for p in paths]
    try:
        datasets = read_datasets(paths)
    except MedconvError:
        return [FrameUnit((path,)) for path in paths]
    try:
        return _units_of(datasets, paths)
    except MedconvError:
        if len(paths) == 1:
            return [FrameUnit(tuple(paths))]
    except Exception:  # a malformed functional group: reading says what is wrong
        if len(paths) == 1:
            return [FrameUnit(tuple(paths))]
    units: list[FrameUnit] = []
    for ds, path in zip(datasets, paths):  # the pool does not form volumes: each file on its own
        try:
            units.extend(_units_of([ds], [path]))
        except Exception:
            units.append(FrameUnit((path,)))
    return units
