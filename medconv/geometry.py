"""Coordinate conventions and the geometry helpers every module shares.

World space inside medconv is **LPS+** (DICOM, ITK and MetaImage need no
conversion). NIfTI stores **RAS+**; the one constant :data:`LPS_TO_RAS` converts
between them and is used at the NIfTI boundary only.

An affine here is a 4x4 matrix mapping voxel indices ``(i, j, k, 1)`` to world
millimetres. Its columns are ``direction[:, n] * spacing[n]`` and its last column
is the origin (the centre of voxel ``(0, 0, 0)``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .errors import InvalidVolumeError

#: LPS+ world coordinates to RAS+ (and back: the matrix is its own inverse).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
LPS_TO_RAS.setflags(write=False)

#: Largest allowed deviation of ``direction.T @ direction`` from the identity.
#: DICOM stores ImageOrientationPatient with about six decimals, so real
#: directions are orthonormal only to ~1e-6; 1e-4 accepts those and rejects any
#: real shear (1e-4 is a 0.006 degree skew).
ORTHONORMAL_TOLERANCE = 1e-4

_LPS_LABELS = (("L", "R"), ("P", "A"), ("S", "I"))  # positive, negative end of each LPS axis


def affine_from_geometry(spacing: Sequence[float], origin: Sequence[float], direction: np.ndarray) -> np.ndarray:
    """The 4x4 voxel-to-world affine for this spacing, origin and direction."""
    affine = np.eye(4)
    affine[:3, :3] = np.asarray(direction, dtype=float) * np.asarray(spacing, dtype=float)[np.newaxis, :]
    affine[:3, 3] = origin
    return affine


def geometry_from_affine(affine: np.ndarray, *, tolerance: float = ORTHONORMAL_TOLERANCE):
    """Split an affine into ``(spacing, origin, direction)``.

    Raises :class:`InvalidVolumeError` when the affine has shear or a zero axis,
    which spacing/origin/direction cannot express (resample such an image first).
    """
    affine = np.asarray(affine, dtype=float)
    if affine.shape != (4, 4):
        raise InvalidVolumeError(f"an affine must be 4x4, got shape {affine.shape}")
    linear = affine[:3, :3]
    spacing = np.linalg.norm(linear, axis=0)
    if not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
        raise InvalidVolumeError(f"the affine has a zero or non-finite axis: {affine.tolist()}")
    direction = linear / spacing[np.newaxis, :]
    deviation = orthonormal_deviation(direction)
    if deviation > tolerance:
        raise InvalidVolumeError(
            f"the affine has shear (axes deviate from orthogonal by {deviation:.2g})",
            hint="spacing/origin/direction cannot express shear; resample the image onto an orthogonal grid",
        )
    return tuple(float(s) for s in spacing), tuple(float(o) for o in affine[:3, 3]), direction


def orthonormal_deviation(direction: np.ndarray) -> float:
    """Largest absolute entry of ``direction.T @ direction - I``."""
    direction = np.asarray(direction, dtype=float)
    return float(np.max(np.abs(direction.T @ direction - np.eye(direction.shape[1]))))


def orthonormalize(direction: np.ndarray) -> np.ndarray:
    """The nearest orthonormal matrix (polar decomposition), keeping handedness.

    Used by readers to remove the rounding noise of header values such as
    DICOM's ImageOrientationPatient before building a Volume.
    """
    u, _, vt = np.linalg.svd(np.asarray(direction, dtype=float))
    return u @ vt


def axis_codes(direction: np.ndarray) -> str:
    """Three letters naming where each voxel axis points, e.g. ``"LPS"`` or ``"RAS"``.

    The letters follow nibabel's "to" convention: ``"R"`` for the first axis means
    index ``i`` increases towards the patient's right. ``direction`` is the LPS
    direction matrix of a Volume. Oblique axes get the letter of the world axis
    they are closest to; two axes never get the same world axis.
    """
    direction = np.asarray(direction, dtype=float)
    used: set[int] = set()
    # assign greedily by the largest component, so two axes never share a world axis
    order = np.argsort(-np.max(np.abs(direction), axis=0), kind="stable")
    chosen = {}
    for axis in order:
        column = np.abs(direction[:, axis]).copy()
        for world in used:
            column[world] = -1.0
        world = int(np.argmax(column))
        used.add(world)
        positive = direction[world, axis] > 0
        chosen[axis] = _LPS_LABELS[world][0 if positive else 1]
    return "".join(chosen[axis] for axis in range(direction.shape[1]))


def direction_from_axis_codes(codes: str) -> np.ndarray:
    """The LPS direction matrix whose axes point as ``codes`` says (e.g. ``"RAS"``)."""
    codes = codes.upper()
    if len(codes) != 3:
        raise InvalidVolumeError(f"axis codes need three letters, got {codes!r}")
    direction = np.zeros((3, 3))
    seen = set()
    for axis, letter in enumerate(codes):
        for world, (pos, neg) in enumerate(_LPS_LABELS):
            if letter in (pos, neg):
                if world in seen:
                    raise InvalidVolumeError(f"axis codes {codes!r} name one direction twice")
                seen.add(world)
                direction[world, axis] = 1.0 if letter == pos else -1.0
                break
        else:
            raise InvalidVolumeError(f"axis codes {codes!r}: {letter!r} is not one of L R P A S I")
    return direction


def world_to_index(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Continuous voxel indices ``(..., 3)`` of world points ``(..., 3)`` (same space as ``affine``)."""
    points = np.asarray(points, dtype=float)
    inverse = np.linalg.inv(np.asarray(affine, dtype=float))
    return points @ inverse[:3, :3].T + inverse[:3, 3]


def index_to_world(affine: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """World points ``(..., 3)`` of voxel indices ``(..., 3)``."""
    indices = np.asarray(indices, dtype=float)
    affine = np.asarray(affine, dtype=float)
    return indices @ affine[:3, :3].T + affine[:3, 3]
