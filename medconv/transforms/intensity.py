"""Intensity transforms: CT windows, clipping, output scaling, MR normalisation.

A **window** ``(level, width)`` is the value range ``[level - width/2, level + width/2]``
(both ends included). ``clip`` gives the same range directly as ``(min, max)``.
Values are clipped to the range and then scaled:

* ``scale="none"``: clipped values in the input's units (HU for CT). An integer
  volume keeps its dtype; a range end that is not a whole number is moved inwards
  to the nearest whole number (no integer value lies between, so nothing else changes).
* ``scale="unit"``: float32 ``(x - lo) / (hi - lo)``, exactly 0 at ``lo`` and 1 at ``hi``.
* ``scale="uint8"``: ``floor(255 * (x - lo) / (hi - lo) + 0.5)`` (round half up),
  exactly 0 at ``lo``, 255 at ``hi``, 128 at the level.

Labels are never windowed, clipped or normalised: they pass through unchanged
with a warning in ``meta["warnings"]``.

Preset values are Radiopaedia's "Windowing (CT)" table (see docs/preprocessing.md).
"""

from __future__ import annotations

import math
from typing import Literal, Sequence

import numpy as np

from ..errors import NotApplicableError, UsageError
from ..preprocessing_names import SCALES, WINDOW_PRESETS
from ..volume import Volume

__all__ = ["WINDOW_PRESETS", "PRESET_ALIASES", "SCALES", "NORMALIZATIONS", "window_preset", "window_range",
           "preset_name", "dicom_window", "window", "clip", "normalize"]

Scale = Literal["none", "unit", "uint8"]
NORMALIZATIONS = ("zscore", "percentile")

#: other names accepted for a preset.
PRESET_ALIASES: dict[str, str] = {
    "lungs": "lung",
    "mediastinal": "mediastinum",
    "abdomen": "soft-tissue",
    "soft": "soft-tissue",
    "softtissue": "soft-tissue",
    "bones": "bone",
}


def preset_name(name: str) -> str:
    """The key of :data:`WINDOW_PRESETS` that ``name`` means (case-insensitive; ``_``, spaces read as ``-``)."""
    key = str(name).strip().lower().replace("_", "-").replace(" ", "-")
    key = PRESET_ALIASES.get(key, key)
    if key not in WINDOW_PRESETS:
        raise UsageError(f"unknown window preset {name!r}",
                         hint=f"use one of {', '.join(WINDOW_PRESETS)}, 'dicom', or LEVEL,WIDTH")
    return key


def window_preset(name: str) -> tuple[float, float]:
    """``(level, width)`` of the preset ``name`` (see :func:`preset_name`)."""
    return WINDOW_PRESETS[preset_name(name)]


def window_range(level: float, width: float) -> tuple[float, float]:
    """``(lo, hi) = (level - width/2, level + width/2)``."""
    if not (math.isfinite(level) and math.isfinite(width)) or width <= 0:
        raise UsageError(f"a window needs a finite level and a positive width, got level {level:g}, width {width:g}")
    return level - width / 2.0, level + width / 2.0


def dicom_window(volume: Volume) -> tuple[float, float]:
    """The ``(level, width)`` the file recommends (``meta["window"]``; the first one if several)."""
    value = volume.meta.get("window")
    source = (volume.meta.get("source_files") or [None])[0]
    if value is None:
        raise UsageError("--window dicom: this volume carries no DICOM WindowCenter/WindowWidth", source,
                         hint="use a preset (e.g. --window lung) or LEVEL,WIDTH")
    try:
        centre, width = value[0], value[1]
        if isinstance(centre, (list, tuple)):
            centre = centre[0]
        if isinstance(width, (list, tuple)):
            width = width[0]
        return float(centre), float(width)
    except (TypeError, ValueError, IndexError) as exc:
        raise UsageError(f"--window dicom: meta['window'] is not [centre, width]: {value!r}", source) from exc


def _label_passthrough(volume: Volume, what: str) -> Volume:
    message = f"{what} skipped: labels are never windowed or normalised"
    return volume.with_warning(message).with_step(f"{what}: skipped (label)")


def _scaled(array: np.ndarray, lo: float, hi: float, scale: Scale) -> np.ndarray:
    if scale == "none":
        if np.issubdtype(array.dtype, np.integer):
            info = np.iinfo(array.dtype)
            lo_i, hi_i = max(math.ceil(lo), info.min), min(math.floor(hi), info.max)
            if lo_i > hi_i:
                raise UsageError(f"the range [{lo:g}, {hi:g}] holds no {array.dtype} value")
            return np.clip(array, lo_i, hi_i).astype(array.dtype, copy=False)
        return np.clip(array, lo, hi).astype(array.dtype, copy=False)
    if scale not in ("unit", "uint8"):
        raise UsageError(f"unknown scale {scale!r}", hint="use none, unit or uint8")
    # (clip(x) - lo) / (hi - lo) in float64, each operation in place on one working copy: the
    # same operations in the same order as the one-expression form, so bit for bit the same
    # values, without its three full-size temporaries (2-3x faster, scripts/bench_window.py)
    unit = array.astype(np.float64)
    np.clip(unit, lo, hi, out=unit)
    np.subtract(unit, lo, out=unit)
    np.divide(unit, hi - lo, out=unit)
    if scale == "unit":
        return unit.astype(np.float32)
    np.multiply(unit, 255.0, out=unit)
    np.add(unit, 0.5, out=unit)
    np.floor(unit, out=unit)
    return unit.astype(np.uint8)


def _range_step(volume: Volume, lo: float, hi: float, scale: Scale, step: str) -> Volume:
    if hi <= lo:
        raise UsageError(f"an intensity range needs min < max, got [{lo:g}, {hi:g}]")
    array = _scaled(volume.array, lo, hi, scale)
    scaled = {"none": "", "unit": ", scaled to [0, 1] float32", "uint8": ", scaled to 0-255 uint8"}[scale]
    changes = {}
    if scale != "none":  # the values are no longer in the file's units, nor its display window
        meta = dict(volume.meta)
        meta["units"] = SCALED_UNITS[scale]
        meta.pop("window", None)
        changes["meta"] = meta
    return volume.with_step(f"{step} -> [{lo:g}, {hi:g}]{scaled}", array=array, **changes)


#: ``meta["units"]`` after scaling: the values are fractions of the window, not HU.
SCALED_UNITS = {"unit": "window fraction [0, 1]", "uint8": "window fraction 0-255"}


def known_not_hounsfield(volume: Volume) -> str | None:
    """Why ``volume`` is known not to hold Hounsfield units (``None``: HU, or unknown)."""
    units = volume.meta.get("units")
    if units is not None and units != "HU":
        return f"its values are in {units!r}, not HU"
    modality = str(volume.meta.get("modality") or "").upper()
    if modality and modality != "CT":
        return f"it is {modality}, not CT"
    return None


def window(volume: Volume, level: float | None = None, width: float | None = None, *, preset: str | None = None,
           scale: Scale = "none") -> Volume:
    """Clip ``volume`` to a window and scale it.

    Parameters
    ----------
    volume:
        An intensity volume (labels pass through with a warning).
    level, width:
        The window in the volume's units (HU for CT). Or give ``preset``.
    preset:
        A name from :data:`WINDOW_PRESETS` (or an alias), or ``"dicom"`` for the
        volume's own ``meta["window"]``.
    scale:
        ``"none"``, ``"unit"`` or ``"uint8"`` (module docstring).
    """
    if (preset is None) == (level is None or width is None):
        raise UsageError("window needs either a preset or both level and width")
    if volume.kind == "label":
        return _label_passthrough(volume, "window")
    if preset is not None:
        if str(preset).strip().lower() == "dicom":
            level, width = dicom_window(volume)
            name = "dicom"
        else:
            name = preset_name(preset)
            level, width = WINDOW_PRESETS[name]
            problem = known_not_hounsfield(volume)
            if problem is not None:
                source = (volume.meta.get("source_files") or [None])[0]
                raise NotApplicableError(f"the {name} window is in Hounsfield units, but {problem}", source,
                                         "window CT only (e.g. --reader or a CT-only folder), or give "
                                         "--window L,W / --clip in this volume's units")
    else:
        name = ""
    lo, hi = window_range(float(level), float(width))
    label = f"window {name + ' ' if name else ''}L {level:g} W {width:g}"
    return _range_step(volume, lo, hi, scale, label)


def clip(volume: Volume, minimum: float, maximum: float, *, scale: Scale = "none") -> Volume:
    """Clip ``volume`` to ``[minimum, maximum]`` and scale it (labels pass through with a warning)."""
    if volume.kind == "label":
        return _label_passthrough(volume, "clip")
    return _range_step(volume, float(minimum), float(maximum), scale, "clip")


def _foreground(array: np.ndarray) -> np.ndarray:
    """Voxels above the volume's mean: TorchIO's "mean" foreground, a cheap body mask for MR."""
    mean = float(array.mean())
    mask = array > mean
    return mask if mask.any() else np.ones(array.shape, dtype=bool)


#: The meanings of a 4th axis whose volumes are normalised together: their relative
#: intensities are the signal (a time series; multi-echo T2* decay).
JOINT_AXIS4 = ("time", "echo")


def normalizes_per_channel(volume: Volume) -> bool:
    """Whether :func:`normalize` treats each volume of ``volume``'s 4th axis on its own by default.

    Yes for a 4D image of channels (``meta["axis4"]`` ``"channel"``, or ``"volume"`` / unknown,
    e.g. a Decathlon multi-modal NIfTI): FLAIR, T1 and T2 have unrelated intensity scales.
    No for ``"time"`` and ``"echo"``, whose volumes share one scale.
    """
    return volume.array.ndim == 4 and volume.meta.get("axis4") not in JOINT_AXIS4


def _zscore(data: np.ndarray) -> tuple[np.ndarray, float, float]:
    values = data[_foreground(data)]
    mean, std = float(values.mean()), float(values.std())
    if not std > 0:
        std = 1.0
    return ((data - mean) / std).astype(np.float32), mean, std


def normalize(volume: Volume, method: str = "zscore", *, percentiles: Sequence[float] = (0.5, 99.5),
              scale: Scale = "unit", per_channel: bool | None = None) -> Volume:
    """MR-style intensity normalisation.

    Parameters
    ----------
    method:
        ``"zscore"``: float32 ``(x - mean) / std`` with mean and std taken over the
        foreground (voxels above the volume's mean, TorchIO's ``masking_method="mean"``;
        the whole volume if that is empty or constant). ``"percentile"``: clip to the
        ``percentiles`` (over all voxels, linear interpolation between values) and
        scale as in :func:`clip` (default ``"unit"``).
    percentiles:
        ``(low, high)`` in percent, for ``"percentile"``.
    scale:
        Output scaling for ``"percentile"``; ``zscore`` takes none.
    per_channel:
        Normalise each volume of a 4D image's 4th axis on its own, with its own
        statistics (recorded per channel in the history). ``None`` decides by
        :func:`normalizes_per_channel`: channels yes, time series and echoes no.
    """
    if method not in NORMALIZATIONS:
        raise UsageError(f"unknown normalisation {method!r}", hint="use zscore or percentile[:LOW,HIGH]")
    if volume.kind == "label":
        return _label_passthrough(volume, f"normalize {method}")
    if per_channel is None:
        per_channel = normalizes_per_channel(volume)
    if per_channel and volume.array.ndim == 4:
        return _normalize_channels(volume, method, percentiles, scale)
    data = volume.array.astype(np.float64)
    if method == "zscore":
        result, mean, std = _zscore(data)
        return volume.with_step(f"normalize zscore over foreground (mean {mean:.6g}, std {std:.6g}) -> float32",
                                array=result)
    low, high = _checked_percentiles(percentiles)
    lo, hi = (float(v) for v in np.percentile(data, [low, high]))
    if hi <= lo:
        return volume.with_warning(f"normalize percentile {low:g}-{high:g}: the range is empty ({lo:g}); "
                                   f"volume left unchanged").with_step("normalize percentile: skipped (constant)")
    return _range_step(volume, lo, hi, scale, f"normalize percentile {low:g}-{high:g}")


def _checked_percentiles(percentiles: Sequence[float]) -> tuple[float, float]:
    low, high = (float(p) for p in percentiles)
    if not 0 <= low < high <= 100:
        raise UsageError(f"percentiles need 0 <= low < high <= 100, got {low:g}, {high:g}")
    return low, high


def _normalize_channels(volume: Volume, method: str, percentiles: Sequence[float], scale: Scale) -> Volume:
    """:func:`normalize` applied to each volume of the 4th axis with its own statistics; one history step."""
    parts, described, warnings = [], [], []
    if method == "zscore":
        for index in range(volume.array.shape[3]):
            result, mean, std = _zscore(volume.array[..., index].astype(np.float64))
            parts.append(result)
            described.append(f"{index}: mean {mean:.6g}, std {std:.6g}")
        step = "normalize zscore per channel over each channel's foreground (" + "; ".join(described) + ") -> float32"
        return volume.with_step(step, array=np.stack(parts, axis=3))
    low, high = _checked_percentiles(percentiles)
    for index in range(volume.array.shape[3]):
        data = volume.array[..., index].astype(np.float64)
        lo, hi = (float(v) for v in np.percentile(data, [low, high]))
        if hi <= lo:  # a constant channel: left as it is (scaled to 0 when the others are scaled)
            warnings.append(f"normalize percentile {low:g}-{high:g}: channel {index} is constant ({lo:g})")
            parts.append(np.zeros(data.shape, np.float32) if scale != "none" else data.astype(volume.array.dtype))
            described.append(f"{index}: constant {lo:g}")
            continue
        parts.append(_scaled(data if scale != "none" else volume.array[..., index], lo, hi, scale))
        described.append(f"{index}: [{lo:g}, {hi:g}]")
    scaled = {"none": "", "unit": ", scaled to [0, 1] float32", "uint8": ", scaled to 0-255 uint8"}[scale]
    step = f"normalize percentile {low:g}-{high:g} per channel (" + "; ".join(described) + f"){scaled}"
    changes = {}
    if scale != "none":
        meta = dict(volume.meta)
        meta["units"] = SCALED_UNITS[scale]
        meta.pop("window", None)
        changes["meta"] = meta
    out = volume.with_step(step, array=np.stack(parts, axis=3), **changes)
    for warning in warnings:
        out = out.with_warning(warning)
    return out
