"""Reorientation: an exact permutation and flip of the voxel axes, never an interpolation.

Axis codes follow nibabel's "to" convention (see :func:`medconv.geometry.axis_codes`):
``"RAS"`` means index ``i`` increases towards the patient's Right, ``j`` towards
Anterior, ``k`` towards Superior. Any of the 48 codes made of one letter from each
of the pairs L/R, P/A, S/I in any order is allowed.

Every voxel keeps its world position: the array axes are permuted and flipped,
and spacing, origin and direction are updated to match. An oblique volume is
reoriented to the axis codes its axes are *closest* to; its direction stays
oblique (it is not resampled).
"""

from __future__ import annotations

import numpy as np

from ..errors import UsageError
from ..volume import Volume

__all__ = ["reorient", "orientation_transform", "validate_axis_codes"]

_WORLD_AXIS = {"L": 0, "R": 0, "P": 1, "A": 1, "S": 2, "I": 2}


def validate_axis_codes(codes: str) -> str:
    """``codes`` upper-cased, or a :class:`UsageError` saying what a valid code looks like."""
    text = str(codes).strip().upper()
    if len(text) != 3 or any(letter not in _WORLD_AXIS for letter in text) \
            or len({_WORLD_AXIS[letter] for letter in text}) != 3:
        raise UsageError(f"{codes!r} is not an orientation",
                         hint="use three letters, one of each pair L/R, P/A, S/I, e.g. RAS, LPS or LAS")
    return text


def orientation_transform(current: str, target: str) -> tuple[tuple[int, ...], tuple[bool, ...]]:
    """How to go from axis codes ``current`` to ``target``.

    Returns
    -------
    (permutation, flips)
        New axis ``n`` is old axis ``permutation[n]``, reversed when ``flips[n]``.
    """
    current, target = validate_axis_codes(current), validate_axis_codes(target)
    old_axis_of_world = {_WORLD_AXIS[letter]: axis for axis, letter in enumerate(current)}
    permutation = tuple(old_axis_of_world[_WORLD_AXIS[letter]] for letter in target)
    flips = tuple(current[old] != letter for old, letter in zip(permutation, target))
    return permutation, flips


def reorient(volume: Volume, codes: str) -> Volume:
    """The same image with its axes pointing as ``codes`` says (e.g. ``"RAS"``).

    Parameters
    ----------
    volume:
        Any Volume; a 4th axis (time, channels) stays last. A 2D volume is
        treated as one slice, so the result is 3D.
    codes:
        Target axis codes, nibabel's "to" convention.

    Returns
    -------
    Volume
        A view of the same voxels (no copy, no interpolation) with spacing,
        origin and direction updated; a history entry names the change. When
        the volume already has these axis codes it is returned unchanged.
    """
    target = validate_axis_codes(codes)
    current = volume.axis_codes
    if current == target:
        return volume
    permutation, flips = orientation_transform(current, target)
    array = volume.array if volume.array.ndim != 2 else volume.array[:, :, np.newaxis]
    spatial = array.shape[:3]
    new = np.transpose(array, permutation + tuple(range(3, array.ndim)))
    flipped_axes = tuple(axis for axis, flip in enumerate(flips) if flip)
    if flipped_axes:
        new = np.flip(new, axis=flipped_axes)
    # the old index of the voxel that becomes (0, 0, 0)
    first = np.zeros(3)
    for axis, (old, flip) in enumerate(zip(permutation, flips)):
        if flip:
            first[old] = spatial[old] - 1
    affine = volume.affine_lps
    origin = affine[:3, :3] @ first + affine[:3, 3]
    signs = np.where(flips, -1.0, 1.0)
    direction = np.asarray(volume.direction)[:, list(permutation)] * signs[np.newaxis, :] + 0.0  # no -0.0
    spacing = tuple(volume.spacing[old] for old in permutation)
    names = "ijk"
    moved = ", ".join(f"{'-' if flips[n] else ''}{names[old]}" for n, old in enumerate(permutation))
    step = f"reorient {current} -> {target}: axes (i, j, k) <- ({moved}), exact, no interpolation"
    return volume.with_step(step, array=new, spacing=spacing, origin=tuple(origin), direction=direction)
