"""Choosing output dtypes that hold rescaled values exactly, and refusing rescales that cannot.

Used by every reader that applies a linear rescale (DICOM RescaleSlope/Intercept,
NIfTI scl_slope/scl_inter): the result keeps the smallest integer dtype that holds
it exactly (CT becomes int16 Hounsfield units), and becomes float32 only when it is
not integral, or float64 when float32 would lose precision or range (a result
beyond float32's largest value, 3.4e38, is float64, never ``inf``; so is one whose
slope is below float32's smallest normal value, which would turn values into 0).

**A rescale whose result is not finite is an error** (:func:`rescaled_range`, the
one place of that rule): ``stored * slope + intercept`` over the finite stored
range must be finite in float64, or the unit fails with
:class:`~medconv.errors.UnreadableFileError` naming the file. Non-finite values the
file itself stores (NaN in a float image) are data, not an error, and pass through.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import UnreadableFileError

_FLOAT32_MAX = float(np.finfo(np.float32).max)
_FLOAT32_TINY = float(np.finfo(np.float32).tiny)  # the smallest normal float32: below it, precision is lost

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


def rescaled_range(stored_range: tuple[float, float], slope: float, intercept: float,
                   path: str | None = None) -> tuple[float, float]:
    """``(low, high)`` of ``stored * slope + intercept`` over ``stored_range``, computed in float64.

    Raises :class:`UnreadableFileError` about ``path`` when the slope, the intercept or
    the result is not finite (RescaleIntercept 1e308, scl_slope 1e38 on float64 data):
    such a header cannot describe real values, and writing ``inf`` would hide it.
    """
    low, high = (float(v) for v in stored_range)
    with np.errstate(over="ignore", invalid="ignore"):
        ends = (low * float(slope) + float(intercept), high * float(slope) + float(intercept))
    if not all(math.isfinite(v) for v in (float(slope), float(intercept), *ends)):
        raise UnreadableFileError(
            f"the rescale (slope {float(slope):g}, intercept {float(intercept):g}) of stored values "
            f"{low:g}..{high:g} gives values that are not finite", path,
            "the header's rescale fields are corrupt: fix or remove them, then convert again")
    return min(ends), max(ends)


def finite_range(stored: np.ndarray) -> tuple[float, float]:
    """``(min, max)`` of the finite values of ``stored`` (``(0, 0)`` when there are none)."""
    if not stored.size:
        return (0.0, 0.0)
    low, high = float(stored.min()), float(stored.max())
    if stored.dtype.kind == "f" and not (math.isfinite(low) and math.isfinite(high)):
        finite = stored[np.isfinite(stored)]  # a copy, only for images that hold NaN or inf
        return (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    return (low, high)


def rescaled_dtype(stored: np.dtype, stored_range: tuple[float, float], slope: float, intercept: float,
                   path: str | None = None) -> np.dtype:
    """The dtype for ``stored * slope + intercept`` over stored values in ``stored_range``.

    Integer when slope and intercept are integers and the stored type is integer
    (never narrower than the stored type, so one dataset keeps one dtype: 16-bit
    CT stays int16 even when a volume's values would fit 8 bits),
    float32 when float32 represents every result exactly enough (24-bit mantissa
    covers the stored range times the slope) and within its range, float64 otherwise.
    Raises (:func:`rescaled_range`) when the result is not finite.
    """
    stored = np.dtype(stored)
    low, high = stored_range
    out_low, out_high = rescaled_range(stored_range, slope, intercept, path)
    products = (abs(low * float(slope)), abs(high * float(slope)))  # the intermediate float32 would hold
    fits_float32 = max(abs(out_low), abs(out_high), *products) <= _FLOAT32_MAX and \
        (slope == 0 or abs(float(slope)) >= _FLOAT32_TINY)  # scl_slope 1e-300 would make every value 0
    integral = float(slope).is_integer() and float(intercept).is_integer()
    if stored.kind in "iub" and integral:
        dtype = smallest_integer_dtype(out_low, out_high, prefer_signed=out_low < 0 or stored.kind == "i",
                                       min_itemsize=stored.itemsize)
        if dtype is not None:
            return dtype
    if stored.kind in "iub" and max(abs(low), abs(high)) < 2**24 and fits_float32:
        return np.dtype(np.float32)
    if stored.kind == "f" and stored.itemsize <= 4 and fits_float32:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def apply_rescale(stored: np.ndarray, slope: float, intercept: float, out: np.ndarray | None = None,
                  path: str | None = None) -> np.ndarray:
    """``stored * slope + intercept`` in the dtype :func:`rescaled_dtype` chooses, with no float64 detour
    for integer results; raises :class:`UnreadableFileError` about ``path`` when it is not finite."""
    dtype = rescaled_dtype(stored.dtype, finite_range(stored), slope, intercept, path)
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


#: ITU-R BT.601 luma weights of R, G, B: the grey of ``ReadOptions.rgb_to_gray`` in every reader.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def luma(colour: np.ndarray) -> np.ndarray:
    """The BT.601 luma of an ``(..., c)`` colour array (``c`` >= 3; alpha ignored), in its own dtype.

    Integers are rounded half to even and kept in their range; floats stay float. Computed in
    float32 for 8-bit colour (exact enough to round right), float64 for wider types.
    """
    work = np.float32 if colour.dtype.itemsize == 1 else np.float64
    grey = np.tensordot(colour[..., :3].astype(work, copy=False), np.asarray(LUMA_WEIGHTS, work), axes=([-1], [0]))
    if colour.dtype.kind in "iu":
        info = np.iinfo(colour.dtype)
        return np.clip(np.rint(grey), info.min, info.max).astype(colour.dtype)
    return grey.astype(colour.dtype)
