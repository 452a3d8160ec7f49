"""The one place where a Volume becomes a SimpleITK image and back.

SimpleITK's NumPy functions use reversed index order: ``GetArrayFromImage``
returns ``(k, j, i)`` and ``GetImageFromArray`` expects it. A Volume holds
``(i, j, k)``, usually as the transposed view of a C-ordered ``(k, j, i)``
buffer, so the conversion is a transpose and nothing else. Both sides use LPS
world coordinates and the same direction convention (column ``n`` of the 3x3
direction is the unit vector of index axis ``n``; SimpleITK flattens it row by
row), so spacing, origin and direction pass unchanged.

Index ``(i, j, k)`` of the Volume is index ``(i, j, k)`` of the SimpleITK image:
``image.TransformIndexToPhysicalPoint((i, j, k))`` equals
``volume.affine_lps @ (i, j, k, 1)``.

SimpleITK is imported inside the functions: importing this module is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Mapping

import numpy as np

from .errors import MissingDependencyError, UsageError
from .volume import Volume, VolumeKind

if TYPE_CHECKING:  # pragma: no cover
    import SimpleITK

__all__ = ["to_sitk", "from_sitk", "import_sitk"]

#: dtypes SimpleITK cannot hold, and the exact dtype used instead.
_WIDENED = {np.dtype(bool): np.dtype(np.uint8), np.dtype(np.float16): np.dtype(np.float32)}


def import_sitk():
    """Import SimpleITK, or raise :class:`MissingDependencyError` naming the package to install."""
    try:
        import SimpleITK
    except ImportError as exc:  # pragma: no cover - SimpleITK is a core dependency
        raise MissingDependencyError(
            "SimpleITK is needed for this step", hint="pip install SimpleITK"
        ) from exc
    return SimpleITK


def to_sitk(volume: Volume, *, vector: bool = True) -> "SimpleITK.Image":
    """The Volume as a SimpleITK image with the same voxels and LPS geometry.

    Parameters
    ----------
    volume:
        A 2D, 3D or 4D Volume. A 2D volume becomes a 3D image of one slice (its
        geometry is three-dimensional). A 4D volume becomes a multi-component
        (vector) image whose components are the 4th axis.
    vector:
        Must be true for 4D volumes (kept as a parameter so that callers say so;
        resample 4D volumes one 3D volume at a time instead when components must
        be treated separately).

    Returns
    -------
    SimpleITK.Image
        Pixel ``(i, j, k)`` holds ``volume.array[i, j, k]``. The buffer is
        copied once by SimpleITK; no extra copy is made when the array is the
        transposed view of a C-ordered buffer (what readers produce). ``bool``
        becomes ``uint8`` and ``float16`` becomes ``float32`` (SimpleITK has
        neither).
    """
    sitk = import_sitk()
    array = volume.array
    if array.dtype in _WIDENED:
        array = array.astype(_WIDENED[array.dtype])
    if array.ndim == 2:
        array = array[:, :, np.newaxis]
    if array.ndim == 3:
        buffer = np.ascontiguousarray(array.T)  # (k, j, i); a no-op for transposed C buffers
        image = sitk.GetImageFromArray(buffer, isVector=False)
    else:
        if not vector:
            raise UsageError("a 4D volume becomes a multi-component image; pass vector=True or split it")
        buffer = np.ascontiguousarray(array.transpose(2, 1, 0, 3))  # (k, j, i, t)
        image = sitk.GetImageFromArray(buffer, isVector=True)
    image.SetSpacing(tuple(float(s) for s in volume.spacing))
    image.SetOrigin(tuple(float(o) for o in volume.origin))
    image.SetDirection(tuple(float(d) for d in np.asarray(volume.direction).ravel()))
    return image


def from_sitk(image: "SimpleITK.Image", *, kind: VolumeKind = "intensity", meta: Mapping[str, Any] | None = None,
              history: Iterable[str] = ()) -> Volume:
    """A Volume holding the voxels and LPS geometry of a SimpleITK image.

    Parameters
    ----------
    image:
        A 2D or 3D SimpleITK image, scalar or multi-component. A 2D image becomes
        a volume of one slice with unit spacing across it; components become the
        4th array axis.
    kind, meta, history:
        Passed to the Volume unchanged (SimpleITK images carry none of them).

    Returns
    -------
    Volume
        ``array`` is the transposed view of ``GetArrayFromImage`` (no copy
        beyond SimpleITK's own).
    """
    sitk = import_sitk()
    dimension = image.GetDimension()
    if dimension not in (2, 3):
        raise UsageError(f"only 2D and 3D SimpleITK images convert to a Volume, got {dimension}D")
    buffer = sitk.GetArrayFromImage(image)  # (k, j, i[, c]) or (j, i[, c])
    vector = image.GetNumberOfComponentsPerPixel() > 1
    spacing = list(image.GetSpacing())
    origin = list(image.GetOrigin())
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(dimension, dimension)
    if dimension == 2:
        buffer = buffer[np.newaxis]  # one slice: (1, j, i[, c])
        spacing.append(1.0)
        origin.append(0.0)
        direction3 = np.eye(3)
        direction3[:2, :2] = direction
        # the third axis completes a right-handed frame
        direction3[:, 2] = np.cross(direction3[:, 0], direction3[:, 1])
        direction = direction3
    array = buffer.transpose(2, 1, 0, 3) if vector else buffer.T
    return Volume(array=array, spacing=tuple(spacing), origin=tuple(origin), direction=direction,
                  kind=kind, meta=dict(meta or {}), history=tuple(history))
