"""Vendor multi-volume MR (DWI, and fMRI without a temporal index) from single-frame files.

Philips and GE write a diffusion series as single-frame files in which every
slice position repeats once per diffusion weighting, with no temporal position
index to tell the repeats apart; grouping by temporal position, trigger time or
acquisition number (:mod:`.grouping`) cannot split them, and reading them as one
stack is refused (duplicate positions). This module tells the repeats apart by
their **diffusion key** -- b-value and gradient direction, from the standard
attributes or the vendors' private ones -- and builds one 4D volume, one
weighting per volume, in acquisition order (smallest InstanceNumber first).

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
with medconv's own stack geometry. Files that no key tells apart are refused.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from medconv.errors import GeometryError
from medconv.options import ReadOptions
from medconv.source import Source
from medconv.volume import Volume

from .decode import first_float, read_datasets
from .series_meta import meta_from_dataset

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


def diffusion_volume_count(paths: Sequence[str]) -> int | None:
    """How many diffusion volumes single-frame files with repeated positions form, or ``None``.

    Discovery asks this of a stack whose repeated positions no temporal or echo
    index tells apart: when every file carries a diffusion key and each key holds
    the same slice positions once, the stack is read by :func:`read_vendor_4d`.
    Headers only; never raises (``None``: not a complete diffusion series).
    """
    try:
        datasets = read_datasets(paths)
        volumes: dict[tuple, list[int]] = {}
        normal = None
        for ds in datasets:
            key = diffusion_key(ds)
            if key is None:
                return None
            if normal is None:
                iop = [float(v) for v in ds.ImageOrientationPatient]
                normal = np.cross(iop[:3], iop[3:])
            distance = float(np.dot([float(v) for v in ds.ImagePositionPatient], normal))
            volumes.setdefault(key, []).append(int(round(distance / 0.01)))
    except Exception:
        return None
    position_sets = [sorted(bins) for bins in volumes.values()]
    if len(volumes) < 2 or any(len(set(p)) != len(p) or p != position_sets[0] for p in position_sets):
        return None
    return len(volumes)


def read_vendor_4d(source: Source, options: ReadOptions = ReadOptions()) -> Volume:
    """Read single-frame files whose positions repeat once per diffusion weighting as one 4D volume.

    Raises
    ------
    GeometryError
        Repeats that no diffusion key tells apart, weightings that do not cover
        the same slice positions, or a stack refused by the tilt/spacing policy.
    UnreadableFileError
        A file cannot be parsed or decoded.
    """
    from .pixels import read_pixel_stack
    from .stack import plan_stack, volume_from_stack

    datasets = read_datasets(source.paths)
    volumes: dict[tuple, list[int]] = {}
    for index, ds in enumerate(datasets):
        key = diffusion_key(ds)
        if key is None:
            raise GeometryError(
                "slices repeat positions but carry no diffusion b-value to tell the volumes apart",
                path=source.paths[index], hint="convert this series with dcm2niix",
            )
        volumes.setdefault(key, []).append(index)
    keys = sorted(volumes, key=lambda key: min(_instance(datasets[i]) for i in volumes[key]))
    first = datasets[volumes[keys[0]][0]]
    iop = [float(v) for v in first.ImageOrientationPatient]
    spacing = [float(v) for v in first.PixelSpacing]
    normal = np.cross(iop[:3], iop[3:])

    def positions(indices: Sequence[int]) -> np.ndarray:
        return np.array([[float(v) for v in datasets[i].ImagePositionPatient] for i in indices])

    base = volumes[keys[0]]
    plan = plan_stack(positions(base), iop, spacing, options, path=source.paths[base[0]],
                      rows=int(first.Rows), columns=int(first.Columns))
    reference = np.sort(positions(base) @ normal)
    ordered_paths: list[str] = []  # volume by volume, each ascending along the normal like plan.order
    for key in keys:
        indices = volumes[key]
        distances = positions(indices) @ normal
        if len(indices) != len(base) or not np.allclose(np.sort(distances), reference, atol=0.01):
            raise GeometryError(
                f"diffusion volume b={key[0]:g} gradient={key[1]} does not cover the same {len(base)} slice "
                f"positions as the first volume", path=source.paths[indices[0]],
                hint="the series is incomplete; convert it with dcm2niix",
            )
        ordered_paths.extend(source.paths[indices[k]] for k in np.argsort(distances, kind="stable"))
    stack = read_pixel_stack(ordered_paths)
    count = len(base)
    array = stack.array.reshape((len(keys), count) + stack.array.shape[1:])
    meta = meta_from_dataset(first, ordered_paths, stack.units, stack.warnings)
    meta["axis4"] = "volume"
    meta.setdefault("dicom", {})["DiffusionBValues"] = [key[0] for key in keys]
    meta["dicom"]["DiffusionGradients"] = [list(key[1]) for key in keys]
    meta["warnings"] = list(meta["warnings"]) + [
        f"{len(keys)} diffusion-weighted volumes at the same positions stacked as a 4D volume "
        "(b-values and gradients in the sidecar)"
    ]
    return volume_from_stack(np.ascontiguousarray(array), plan, meta, options.kind or "intensity", options)
