"""Where the order of a unit's frames is decided: slices along the normal, volumes by acquisition.

Every layout hands the assembly a flat list of :class:`~.plan.FrameRef`. This
module turns it into ``volumes[t][k]``:

* **slices** (``k``) are ordered by their position projected on the slice
  normal ``n = cross(IOP[0:3], IOP[3:6])``, never by InstanceNumber or file name;
  the sort itself is :func:`.stack.plan_stack`'s (it also measures and checks
  the spacing), here only the frames at one position are gathered;
* **volumes** (``t``) of a 4D unit: the frames at one position (within
  :data:`POSITION_TOLERANCE_MM` along ``n``) are its repeats, ordered by
  :func:`volume_key`: temporal index, then echo time, then the acquisition key
  the layout recorded (:func:`acquisition_key`: InstanceNumber, AcquisitionNumber,
  trigger time, acquisition time, in that order), then file and frame. Every
  position must hold the same number of repeats, and every volume the same
  positions (to :data:`REPEAT_POSITION_TOLERANCE_MM`), else the unit is refused.

A 3D unit keeps its frames in file order (the stack sort is stable).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...errors import GeometryError
from .plan import FrameRef, UnitPlan
from .stack import orientation_direction

#: Frames closer than this along the normal (mm) are at the same slice position (repeats of it).
POSITION_TOLERANCE_MM = 0.01
#: The volumes of a 4D unit must put their k-th slices at the same LPS position to this (mm, per coordinate).
REPEAT_POSITION_TOLERANCE_MM = 0.01


def acquisition_key(instance_number: int | None, acquisition_number: int | None, trigger_time: float | None,
                    acquisition_time: str | None) -> tuple:
    """The documented acquisition order of repeats no index tells apart: InstanceNumber, AcquisitionNumber,
    TriggerTime, AcquisitionTime (missing values last)."""
    def number(value) -> float:
        return math.inf if value is None else float(value)

    return (number(instance_number), number(acquisition_number), number(trigger_time), acquisition_time or "~")


def _nan_last(value: float | None) -> float:
    return math.inf if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def volume_key(frame: FrameRef) -> tuple:
    """How the repeats at one slice position are ordered into volumes (see the module doc)."""
    return (_nan_last(frame.temporal), _nan_last(frame.echo), frame.acquisition, frame.path, frame.frame)


@dataclass(frozen=True)
class FrameOrder:
    """The frames of a unit as volumes: ``volumes[t]`` lists frame indices (into ``plan.frames``).

    Within a volume the frames are in input order (3D) or ascending along the
    normal (4D); the stack plan sorts them.
    """

    volumes: tuple[tuple[int, ...], ...]

    @property
    def count(self) -> int:
        return len(self.volumes)


def normal_of(iop, path: str | None = None) -> np.ndarray:
    """The unit slice normal ``cross(IOP[0:3], IOP[3:6])`` of an orientation that passes the stack's rule.

    Raises :class:`GeometryError` naming ``path`` for a corrupt orientation
    (:func:`.stack.orientation_direction`), before any position is projected on it.
    """
    return orientation_direction(iop, path)[:, 2]


#: The last plan ordered and its order: planning checks a plan's order, discovery counts its volumes and
#: reading assembles them, three calls on one (frozen) plan in a run of one process.
_last_order: tuple[UnitPlan, FrameOrder] | None = None


def order_frames(plan: UnitPlan) -> FrameOrder:
    """Split the plan's frames into volumes (see the module doc); a plan ordered last time is not ordered again.

    A unit planned as 3D (``plan.axis4`` is ``None``) is one volume in file
    order, whatever its positions: repeated positions there are an error that
    :func:`.stack.plan_stack` reports.

    Raises
    ------
    GeometryError
        Positions holding different numbers of frames, or volumes whose slices
        are not at the same positions.
    """
    global _last_order
    last = _last_order
    if last is not None and last[0] is plan:
        return last[1]
    order = _order_frames(plan)
    _last_order = (plan, order)
    return order


def _order_frames(plan: UnitPlan) -> FrameOrder:
    frames = plan.frames
    if plan.axis4 is None or len(frames) < 2 or plan.iop is None:
        return FrameOrder((tuple(range(len(frames))),))
    normal = normal_of(plan.iop, plan.paths[0])
    positions = np.array([f.position if f.position is not None else (np.nan,) * 3 for f in frames], dtype=float)
    distance = positions @ normal
    if not np.all(np.isfinite(distance)):
        missing = frames[int(np.flatnonzero(~np.isfinite(distance))[0])]
        raise GeometryError("a frame of this 4D series has no ImagePositionPatient (0020,0032)", missing.path,
                            "the file is incomplete or corrupt: re-export or re-download the series")
    at_position: list[list[int]] = []
    last = None
    for index in np.argsort(distance, kind="stable"):
        if last is None or abs(distance[index] - last) > POSITION_TOLERANCE_MM:
            at_position.append([])
            last = distance[index]
        at_position[-1].append(int(index))
    counts = sorted({len(group) for group in at_position})
    if len(counts) != 1:
        raise GeometryError(
            f"{len(frames) - len(at_position)} slice(s) repeat a position, but the positions hold different "
            f"numbers of frames ({counts}): the files do not form complete volumes", plan.paths[0],
            "the series is incomplete or mixes acquisitions; get the complete series")
    for group in at_position:
        group.sort(key=lambda i: volume_key(frames[i]))
    volumes = tuple(tuple(group[t] for group in at_position) for t in range(counts[0]))
    reference = positions[list(volumes[0])]
    for volume in volumes[1:]:
        if not np.allclose(positions[list(volume)], reference, atol=REPEAT_POSITION_TOLERANCE_MM, rtol=0):
            raise GeometryError("the volumes of this 4D series do not share slice positions", plan.paths[0],
                                "the series mixes acquisitions; convert them separately")
    return FrameOrder(volumes)
