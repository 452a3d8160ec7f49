"""Choosing output dtypes that hold rescaled values exactly.

Used by every reader that applies a linear rescale (DICOM RescaleSlope/Intercept,
NIfTI scl_slope/scl_inter): the result keeps the smallest integer dtype that holds
it exactly (CT becomes int16 Hounsfield units), and becomes float32 only when it is
not integral, or float64 when float32 would lose precision.
"""

from __future__ import annotations

import numpy as np

_INTEGER_CANDIDATES = (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.int64)


def smallest_integer_dtype(low: float, high: float, prefer_signed: bool = False,
                           min_itemsize: int = 1) -> np.dtype | None:
    """The smallest integer dtype of at least ``min_itemsize`` bytes holding ``[low, high]``; ``None`` if none does.

    ``prefer_signed`` picks int16 over uint16 for data whose natural type is
    signed (CT), when both hold the range equally.
    """
    for candidate in _INTEGER_CANDIDATES:
        info = np.iinfo(candidate)
        if info.bits // 8 < min_itemsize:
            continue
        if info.min <= low and high <= info.max:
            if prefer_signed and info.min == 0:
                signed = np.dtype(f"int{info.bits}")
                if np.iinfo(signed).max >= high:
                    return signed
            return np.dtype(candidate)
    return None


def rescaled_dtype(stored: np.dtype, stored_range: tuple[float, float], slope: float, intercept: float) -> np.dtype:
    """The dtype for ``stored * slope + intercept`` over stored values in ``stored_range``.

    Integer when slope and intercept are integers and the stored type is integer
    (never narrower than the stored type, so one dataset keeps one dtype: 16-bit
    CT stays int16 even when a volume's values would fit 8 bits),
    float32 when float32 represents every result exactly enough (24-bit mantissa
    covers the stored range times the slope), float64 otherwise.
    """
    stored = np.dtype(stored)
    low, high = stored_range
    ends = (low * slope + intercept, high * slope + intercept)
    out_low, out_high = min(ends), max(ends)
    integral = float(slope).is_integer() and float(intercept).is_integer()
    if stored.kind in "iub" and integral:
        dtype = smallest_integer_dtype(out_low, out_high, prefer_signed=out_low < 0 or stored.kind == "i",
                                       min_itemsize=stored.itemsize)
        if dtype is not None:
            return dtype
    if stored.kind in "iub" and max(abs(low), abs(high)) < 2**24:
        return np.dtype(np.float32)
    if stored.kind == "f" and stored.itemsize <= 4:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def apply_rescale(stored: np.ndarray, slope: float, intercept: float, out: np.ndarray | None = None) -> np.ndarray:
    """``stored * slope + intercept`` in the dtype :func:`rescaled_dtype` chooses, with no float64 detour
    for integer results."""
    if stored.size:
        stored_range = (float(stored.min()), float(stored.max()))
    else:
        stored_range = (0.0, 0.0)
    dtype = rescaled_dtype(stored.dtype, stored_range, slope, intercept)
    if out is None:
        out = np.empty_like(stored, dtype=dtype)  # keeps C or Fortran layout
    if dtype.kind in "iu":
        np.copyto(out, stored, casting="unsafe")
        # Operands wrap modulo 2**bits like the arithmetic (an intercept of -1024 need not fit
        # an int8 or uint16 result); the result is exact because the dtype holds it.
        if slope != 1:
            np.multiply(out, np.array(int(slope)).astype(dtype), out=out, casting="unsafe")
        if intercept != 0:
            np.add(out, np.array(int(intercept)).astype(dtype), out=out, casting="unsafe")
    else:
        np.multiply(stored, slope, out=out, casting="unsafe", dtype=dtype)
        if intercept != 0:
            np.add(out, dtype.type(intercept), out=out)
    return out
