"""Casting a volume to another dtype without silently losing values.

* To an integer dtype: values are rounded to the nearest integer (halves away
  from zero). A value outside the dtype's range, or NaN/inf, is an error unless
  ``clip=True`` (then values are clipped into the range; NaN is still an error).
* To a float dtype: values beyond the float's range are an error; integers that
  float32 cannot hold exactly (beyond 2**24) add a warning.
* Labels: a cast to a float dtype is skipped with a warning (label values are
  identifiers; a dataset of images and masks shares one ``--dtype``); integer
  casts follow the rules above.
"""

from __future__ import annotations

import numpy as np

from ..errors import UsageError
from ..preprocessing_names import DTYPES
from ..volume import Volume

__all__ = ["DTYPES", "cast", "validate_dtype"]


def validate_dtype(name: str) -> np.dtype:
    """The NumPy dtype named ``name`` if it is one of :data:`DTYPES`."""
    text = str(name).strip().lower()
    if text not in DTYPES:
        raise UsageError(f"unsupported dtype {name!r}", hint=f"use one of {', '.join(DTYPES)}")
    return np.dtype(text)


def cast(volume: Volume, dtype: str | np.dtype, *, clip: bool = False) -> Volume:
    """``volume`` with its voxels cast to ``dtype`` (see the module docstring for the rules).

    Raises
    ------
    UsageError
        When values do not fit and ``clip`` is false, naming the value range and
        what to do (``--clip MIN,MAX`` or a wider dtype).
    """
    target = validate_dtype(np.dtype(dtype).name if isinstance(dtype, np.dtype) else dtype)
    array = volume.array
    if array.dtype == target:
        return volume
    source = (volume.meta.get("source_files") or [None])[0]
    if volume.kind == "label" and target.kind == "f":
        # label values are identifiers: keep them integer (a dataset of images and masks shares one --dtype)
        return volume.with_warning(f"cast to {target} skipped: label maps keep their integer dtype") \
            .with_step(f"cast {array.dtype} -> {target}: skipped (label)")
    floating = array.dtype.kind == "f"
    if floating and not np.all(np.isfinite(array)):
        if target.kind != "f":
            raise UsageError(f"the volume holds NaN or infinite values; they have no {target} value", source)
    notes = []
    if target.kind in "iu":
        info = np.iinfo(target)
        data = array
        if floating:
            data = np.trunc(array + np.copysign(0.5, array))
            if not np.array_equal(data, array):
                notes.append("rounded to nearest")
        lo, hi = data.min(), data.max()
        if lo < info.min or hi > info.max:
            if not clip:
                raise UsageError(f"values {lo:g}..{hi:g} do not fit {target} ({info.min}..{info.max})", source,
                                 hint="add --clip MIN,MAX inside that range, a --window, or choose a wider --dtype")
            data = np.clip(data, info.min, info.max)
            notes.append(f"clipped to {info.min}..{info.max}")
        result = data.astype(target)
    else:
        info = np.finfo(target)
        if floating and array.size and np.nanmax(np.abs(array)) > info.max:
            raise UsageError(f"values beyond {target}'s range", source, hint="pass --dtype float64 (or leave --dtype out)")
        result = array.astype(target)
        limit = 2 ** (info.nmant + 1)  # every integer up to this is exact in the float
        if array.dtype.kind in "iu" and np.iinfo(array.dtype).max > limit:
            # the float cannot represent every integer of the source dtype; check the data itself
            if array.size and (int(array.max()) > limit or int(array.min()) < -limit):
                volume = volume.with_warning(f"cast to {target}: integers beyond {limit} are not exact")
    step = f"cast {array.dtype} -> {target}" + (f" ({', '.join(notes)})" if notes else "")
    return volume.with_step(step, array=result)
