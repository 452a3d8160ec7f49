"""Vendor multi-volume MR from single-frame files: repeats of every slice position that no standard index orders.

Philips and GE write diffusion series, and GE / Philips fMRI exported as one file
per slice per volume, as single-frame files in which every slice position repeats
once per volume with no TemporalPositionIdentifier; grouping by temporal position,
trigger time or acquisition number (:mod:`..grouping`) cannot split them, and one
3D stack of them is refused (duplicate positions). This module makes them one 4D
unit:

* **diffusion** series: the repeats are told apart by their **diffusion key** --
  b-value and gradient direction, from the standard attributes or the vendors'
  private ones -- one weighting per volume, in acquisition order (the weighting
  whose first file has the smallest InstanceNumber first);
* **everything else** (classic fMRI): every position must repeat the same number of
  times; the repeats are ordered by acquisition (:func:`..order.acquisition_key`:
  InstanceNumber, then AcquisitionNumber, TriggerTime, AcquisitionTime) and the
  t-th repeat of every position is volume t. The 4th axis is time when the files
  state NumberOfTemporalPositions, "volume" otherwise. Positions holding different
  numbers of repeats (a missing file) are refused, and so are repeats that nothing
  orders (the same InstanceNumber, AcquisitionNumber, TriggerTime and AcquisitionTime:
  duplicated files).

Where the b-value comes from (first found wins):

=========== ============================== ==========================================
vendor      b-value                        gradient direction
=========== ============================== ==========================================
any         DiffusionBValue (0018,9087)    DiffusionGradientOrientation (0018,9089)
Philips     (2001,1003)                    (2005,10B0) (2005,10B1) (2005,10B2)
GE          (0043,1039) first value [#]_   (0019,10BB) (0019,10BC) (0019,10BD)
Siemens     (0019,100C)                    (0019,100E)
=========== ============================== ==========================================

.. [#] GE adds 10^9 to the b-value in some software versions; it is removed.

The b-values and gradients (patient LPS frame, as stored) go into
``meta["dicom"]["DiffusionBValues"]`` / ``["DiffusionGradients"]``, one per
volume. dicom2nifti was considered as the delegate for these series; it
reorients to LAS by default and is configured through global settings, which
worker processes do not share (DESIGN.md), so the split is done here instead,
with medconv's own stack geometry.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from medconv.errors import GeometryError

from ..decode import first_float, read_datasets
from ..order import order_frames
from ..plan import Axis4, Layout, UnitPlan
from .single_frame import frame_of

_GRADIENT_TAGS = {
    "philips": (0x200510B0, 0x200510B1, 0x200510B2),
    "ge": (0x001910BB, 0x001910BC, 0x001910BD),
}


def _value(ds: Any, tag: int) -> Any:
    element = ds.get(tag)
    if element is None:
        return None
    value = element.value
    if isinstance(value, (bytes, bytearray)):
        text = value.decode("ascii", "replace").strip("\x00 ")
        if element.VR in ("UN", "OB") and len(value) in (4, 8) and not text.replace(".", "").replace("-", "").isdigit():
            dtype = "<f4" if len(value) == 4 else "<f8"
            return float(np.frombuffer(value, dtype=dtype)[0])
        value = text.split("\\") if "\\" in text else text
    return value


def _number(value: Any) -> float | None:
    number = first_float(value)
    return number if number is not None and math.isfinite(number) else None


def _vendor(ds: Any) -> str:
    manufacturer = str(ds.get("Manufacturer", "")).lower()
    if "philips" in manufacturer:
        return "philips"
    if manufacturer.split()[:1] == ["ge"] or "general electric" in manufacturer:
        return "ge"
    if "siemens" in manufacturer:
        return "siemens"
    return ""


def diffusion_key(ds: Any) -> tuple[float, tuple[float, float, float]] | None:
    """``(b-value, gradient)`` of one file, or None when it carries no diffusion weighting."""
    vendor = _vendor(ds)
    b_value = _number(ds.get("DiffusionBValue"))
    gradient = ds.get("DiffusionGradientOrientation")
    if b_value is None and vendor == "philips":
        b_value = _number(_value(ds, 0x20011003))
    if b_value is None and vendor == "ge":
        b_value = _number(_value(ds, 0x00431039))
        if b_value is not None and b_value >= 1e9:
            b_value -= 1e9
    if b_value is None and vendor == "siemens":
        b_value = _number(_value(ds, 0x0019100C))
    if b_value is None:
        return None
    if gradient is None:
        if vendor in _GRADIENT_TAGS:
            parts = [_number(_value(ds, tag)) for tag in _GRADIENT_TAGS[vendor]]
            gradient = parts if all(p is not None for p in parts) else None
        elif vendor == "siemens":
            gradient = _value(ds, 0x0019100E)
    try:
        vector = tuple(round(float(v), 4) for v in gradient) if gradient is not None else (0.0, 0.0, 0.0)
    except (TypeError, ValueError):
        vector = (0.0, 0.0, 0.0)
    if len(vector) != 3:
        vector = (0.0, 0.0, 0.0)
    return round(b_value, 3), vector  # type: ignore[return-value]


def _instance(ds: Any) -> float:
    number = _number(ds.get("InstanceNumber"))
    return math.inf if number is None else number


#: The acquisition attributes :func:`..order.acquisition_key` orders repeats by, in its order (for messages).
ACQUISITION_ORDER_ATTRIBUTES = ("InstanceNumber", "AcquisitionNumber", "TriggerTime", "AcquisitionTime")


def plan_vendor_4d(group) -> UnitPlan:
    """The 4D plan of single-frame files whose slice positions repeat with no standard index.

    Each file is parsed once, here (the vendors' diffusion tags are not in the header scan).

    Raises
    ------
    GeometryError
        Positions holding different numbers of repeats; repeats nothing orders; a
        diffusion series with a file without a b-value, or whose weightings do not
        each hold the same slice positions once.
    """
    headers = tuple(group.headers)
    datasets = read_datasets([h.path for h in headers])
    keys = [diffusion_key(ds) for ds in datasets]
    if all(key is None for key in keys):
        return _plan_by_acquisition(group)
    for header, key in zip(headers, keys):
        if key is None:
            raise GeometryError("a file of this diffusion series carries no b-value: the volumes cannot be told apart",
                                path=header.path, hint="the series is incomplete or mixed; get the complete series")
    first_instance: dict[tuple, float] = {}
    for header, key in zip(headers, keys):
        number = math.inf if header.instance_number is None else float(header.instance_number)
        first_instance[key] = min(first_instance.get(key, math.inf), number)
    rank = {key: index for index, key in enumerate(sorted(first_instance, key=lambda k: first_instance[k]))}
    if len(rank) < 2:
        raise GeometryError("slices repeat positions but all carry the same diffusion weighting", headers[0].path,
                            "the series holds duplicated files; remove the duplicates")
    frames = tuple(frame_of(header, diffusion=key, acquisition=(rank[key],) + frame_of(header).acquisition)
                   for header, key in zip(headers, keys))
    first = headers[0]
    plan = UnitPlan(layout=Layout.VENDOR_4D, frames=frames, headers=headers, iop=first.iop,
                    pixel_spacing=first.pixel_spacing, rows=first.rows, columns=first.columns, axis4=Axis4.VOLUME,
                    splits=tuple(group.split), label=group.frame_group,
                    warnings=(f"{len(rank)} diffusion-weighted volumes at the same positions stacked as a 4D volume "
                              "(b-values and gradients in the sidecar)",))
    order = order_frames(plan)
    for volume in order.volumes:
        if len({frames[i].diffusion for i in volume}) != 1:
            raise GeometryError("a diffusion weighting does not cover every slice position once", headers[0].path,
                                "the series is incomplete; convert it with dcm2niix")
    return plan


def _plan_by_acquisition(group) -> UnitPlan:
    """Repeats without diffusion key (classic fMRI): the t-th acquired repeat of every position is volume t."""
    headers = tuple(group.headers)
    first = headers[0]
    frames = tuple(frame_of(header) for header in headers)
    stated = first.temporal_positions if first.temporal_positions and first.temporal_positions > 1 else None
    plan = UnitPlan(layout=Layout.VENDOR_4D, frames=frames, headers=headers, iop=first.iop,
                    pixel_spacing=first.pixel_spacing, rows=first.rows, columns=first.columns,
                    axis4=Axis4.TIME if stated else Axis4.VOLUME, splits=tuple(group.split), label=group.frame_group)
    order = order_frames(plan)  # equal repeats at every position, or GeometryError naming the counts
    by = _ordering_attribute(frames, order)
    if by is None:
        raise GeometryError(
            f"slices repeat a position {order.count} times and nothing orders the repeats (no temporal index; "
            f"{', '.join(ACQUISITION_ORDER_ATTRIBUTES)} are the same)", first.path,
            "the series holds duplicated files; remove the duplicates")
    positions = len(order.volumes[0])
    note = (f"{order.count} volumes at the same {positions} positions and no temporal index: ordered by acquisition "
            f"({by}), the t-th repeat of each position is volume t")
    if stated and stated != order.count:
        note += f"; NumberOfTemporalPositions says {stated}"
    if not stated:
        note += "; the headers do not say what the 4th axis is (no NumberOfTemporalPositions)"
    from dataclasses import replace

    return replace(plan, warnings=(note,))


def _ordering_attribute(frames, order) -> str | None:
    """The first acquisition attribute that differs between the repeats of a position, or ``None``."""
    for index, name in enumerate(ACQUISITION_ORDER_ATTRIBUTES):
        if all(len({frames[volume[k]].acquisition[index] for volume in order.volumes}) == order.count
               for k in range(len(order.volumes[0]))):
            return name
    return None
