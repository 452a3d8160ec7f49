"""Vendor multi-volume MR from single-frame files: repeats of every slice position that no standard index orders.

Philips and GE write diffusion series, and GE / Philips fMRI exported as one file
per slice per volume, as single-frame files in which every slice position repeats
once per volume with no TemporalPositionIdentifier; grouping by temporal position,
trigger time or acquisition number (:mod:`..grouping`) cannot split them, and one
3D stack of them is refused (duplicate positions). This module makes them one 4D
unit. Every position must repeat the same number of times; the repeats are
ordered by acquisition (:func:`..order.acquisition_key`: InstanceNumber, then
AcquisitionNumber, TriggerTime, AcquisitionTime) and the t-th repeat of every
position is volume t.

* **diffusion** series (every file states a b-value, :mod:`..diffusion`): the
  4th axis is "volume", and every volume must hold one weighting (else the
  acquisition order does not keep a weighting's slices together, and the series
  is refused); repeated weightings (several b = 0 volumes) stay where they were
  acquired;
* **everything else** (classic fMRI): the 4th axis is time when the files state
  NumberOfTemporalPositions, "volume" otherwise.

Positions holding different numbers of repeats (a missing file) are refused, and
so are repeats that nothing orders (the same InstanceNumber, AcquisitionNumber,
TriggerTime and AcquisitionTime: duplicated files). No file is opened: the header
scan holds every fact (the vendors' diffusion tags included).

dicom2nifti was considered as the delegate for these series; it reorients to LAS
by default and is configured through global settings, which worker processes do
not share (DESIGN.md), so the split is done here instead, with medconv's own
stack geometry.
"""

from __future__ import annotations

from dataclasses import replace

from medconv.errors import GeometryError

from ..order import order_frames
from ..plan import Axis4, Layout, UnitPlan
from .single_frame import frame_of

#: The acquisition attributes :func:`..order.acquisition_key` orders repeats by, in its order (for messages).
ACQUISITION_ORDER_ATTRIBUTES = ("InstanceNumber", "AcquisitionNumber", "TriggerTime", "AcquisitionTime")


def plan_vendor_4d(group) -> UnitPlan:
    """The 4D plan of single-frame files whose slice positions repeat with no standard index.

    Raises
    ------
    GeometryError
        Positions holding different numbers of repeats; repeats nothing orders; a
        diffusion series with a file without a b-value, or whose acquisition order
        mixes weightings within a volume.
    """
    headers = tuple(group.headers)
    first = headers[0]
    stated = [header.diffusion is not None for header in headers]
    if any(stated) and not all(stated):
        missing = headers[stated.index(False)]
        raise GeometryError("a file of this diffusion series carries no b-value: the volumes cannot be told apart",
                            path=missing.path, hint="the series is incomplete or mixed; get the complete series")
    diffusion = all(stated)
    frames = tuple(frame_of(header) for header in headers)
    temporal_positions = first.temporal_positions if first.temporal_positions and first.temporal_positions > 1 \
        else None
    axis4 = Axis4.VOLUME if diffusion or not temporal_positions else Axis4.TIME
    plan = UnitPlan(layout=Layout.VENDOR_4D, frames=frames, headers=headers, iop=first.iop,
                    pixel_spacing=first.pixel_spacing, rows=first.rows, columns=first.columns, axis4=axis4,
                    splits=tuple(group.split), label=group.frame_group)
    order = order_frames(plan)  # equal repeats at every position, or GeometryError naming the counts
    by = _ordering_attribute(frames, order)
    if by is None:
        raise GeometryError(
            f"slices repeat a position {order.count} times and nothing orders the repeats (no temporal index; "
            f"{', '.join(ACQUISITION_ORDER_ATTRIBUTES)} are the same)", first.path,
            "the series holds duplicated files; remove the duplicates")
    positions = len(order.volumes[0])
    what = "diffusion-weighted volumes" if diffusion else "volumes"
    note = (f"{order.count} {what} at the same {positions} positions and no temporal index: ordered by "
            f"acquisition ({by}), the t-th repeat of each position is volume t")
    if diffusion:
        for t, volume in enumerate(order.volumes):
            if len({frames[i].diffusion for i in volume}) != 1:
                raise GeometryError(
                    f"in acquisition order ({by}), volume {t + 1} mixes diffusion weightings: the files do not say "
                    "which slices belong together", headers[0].path,
                    "the InstanceNumbers may have been rewritten; convert the original export")
        note += " (b-values and gradients in the sidecar)"
    elif temporal_positions and temporal_positions != order.count:
        note += f"; NumberOfTemporalPositions says {temporal_positions}"
    elif not temporal_positions:
        note += "; the headers do not say what the 4th axis is (no NumberOfTemporalPositions)"
    return replace(plan, warnings=(note,))


def _ordering_attribute(frames, order) -> str | None:
    """The first acquisition attribute that differs between the repeats of a position, or ``None``."""
    for index, name in enumerate(ACQUISITION_ORDER_ATTRIBUTES):
        if all(len({frames[volume[k]].acquisition[index] for volume in order.volumes}) == order.count
               for k in range(len(order.volumes[0]))):
            return name
    return None
