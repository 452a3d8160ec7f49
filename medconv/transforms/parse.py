"""Turning the text of preprocessing options (CLI flags, config values) into values.

Each parser raises :class:`medconv.errors.UsageError` with a hint showing the
expected form; the CLI turns that into ``click.BadParameter``.
"""

from __future__ import annotations

import math

from ..errors import UsageError
from .intensity import NORMALIZATIONS, WINDOW_PRESETS, preset_name
from .resample import INTERPOLATIONS

__all__ = ["parse_spacing", "parse_window", "parse_range", "parse_normalize", "parse_interpolation", "parse_number"]

_KEEP = {"keep", "k", "-", "0", "none"}


def parse_number(text: str | float, what: str) -> float:
    """A finite float from ``text``."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise UsageError(f"{what}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise UsageError(f"{what}: {text!r} is not finite")
    return value


def parse_spacing(text: str | float | tuple) -> tuple[float | None, float | None, float | None]:
    """``"1"`` -> ``(1, 1, 1)``; ``"0.7,0.7,keep"`` (or ``0``) -> ``(0.7, 0.7, None)``."""
    if isinstance(text, (int, float)):
        parts = [str(text)]
    elif isinstance(text, (tuple, list)):
        parts = ["keep" if p is None else str(p) for p in text]
    else:
        parts = [p.strip() for p in str(text).replace(" ", ",").split(",") if p.strip()]
    if len(parts) == 1:
        parts = parts * 3
    hint = "give one spacing in mm (e.g. 1) or three (e.g. 0.7,0.7,1.25); 'keep' or 0 keeps an axis"
    if len(parts) != 3:
        raise UsageError(f"spacing {text!r} needs one or three values", hint=hint)
    values: list[float | None] = []
    for part in parts:
        if part.lower() in _KEEP:
            values.append(None)
            continue
        value = parse_number(part, "spacing")
        if value <= 0:
            raise UsageError(f"spacing {text!r}: {part} is not a positive number of mm", hint=hint)
        values.append(value)
    if all(v is None for v in values):
        raise UsageError(f"spacing {text!r} keeps every axis: nothing to resample", hint=hint)
    return tuple(values)  # type: ignore[return-value]


def parse_window(text: str) -> tuple[str | None, tuple[float, float] | None]:
    """``(name, (level, width))``: a preset gives both, ``"dicom"`` gives ``("dicom", None)``,
    ``"L,W"`` gives ``(None, (L, W))``."""
    raw = str(text).strip()
    if raw.lower() == "dicom":
        return "dicom", None
    if "," in raw:
        parts = [p.strip() for p in raw.split(",")]
        if len(parts) != 2:
            raise UsageError(f"window {text!r} needs LEVEL,WIDTH", hint="e.g. --window -600,1500")
        level, width = parse_number(parts[0], "window level"), parse_number(parts[1], "window width")
        if width <= 0:
            raise UsageError(f"window {text!r}: the width must be positive")
        return None, (level, width)
    name = preset_name(raw)
    return name, WINDOW_PRESETS[name]


def parse_range(text: str | tuple, what: str = "clip") -> tuple[float, float]:
    """``"MIN,MAX"`` -> ``(MIN, MAX)`` with MIN < MAX."""
    parts = list(text) if isinstance(text, (tuple, list)) else [p.strip() for p in str(text).split(",")]
    if len(parts) != 2:
        raise UsageError(f"{what} {text!r} needs MIN,MAX", hint="e.g. --clip=-1000,400")
    low, high = parse_number(parts[0], what), parse_number(parts[1], what)
    if not low < high:
        raise UsageError(f"{what} {text!r}: MIN must be below MAX")
    return low, high


def parse_normalize(text: str) -> tuple[str, tuple[float, float]]:
    """``"zscore"`` or ``"percentile"`` / ``"percentile:1,99"`` -> ``(method, (low, high))``."""
    method, _, rest = str(text).strip().lower().partition(":")
    if method not in NORMALIZATIONS:
        raise UsageError(f"unknown normalisation {text!r}", hint="use zscore, percentile or percentile:LOW,HIGH")
    percentiles = (0.5, 99.5)
    if rest:
        if method != "percentile":
            raise UsageError(f"{method} takes no parameters, got {text!r}")
        percentiles = parse_range(rest, "percentiles")
        if percentiles[0] < 0 or percentiles[1] > 100:
            raise UsageError(f"percentiles {rest!r} must lie in 0..100")
    return method, percentiles


def parse_interpolation(text: str) -> str:
    """One of :data:`INTERPOLATIONS` (``"b-spline"``/``"cubic"`` read as ``"bspline"``)."""
    value = str(text).strip().lower().replace("-", "")
    value = {"cubic": "bspline", "nn": "nearest", "trilinear": "linear"}.get(value, value)
    if value not in INTERPOLATIONS:
        raise UsageError(f"unknown interpolation {text!r}", hint=f"use one of {', '.join(INTERPOLATIONS)}")
    return value
