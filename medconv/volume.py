"""The Volume: the one canonical in-memory image that every stage passes on.

Readers produce a Volume, transforms take one and return a new one, writers
consume it. Index order is NIfTI's ``(i, j, k[, t])``: ``i`` runs along image
columns, ``j`` along rows, ``k`` across slices. Geometry is in LPS+ millimetres.

The ``meta`` mapping uses one documented key set across formats
(:data:`META_KEYS`); readers fill what they know and leave the rest out.
"""

from __future__ import annotations

import dataclasses
import types
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

import numpy as np

from .errors import InvalidVolumeError
from .geometry import LPS_TO_RAS, ORTHONORMAL_TOLERANCE, affine_from_geometry, axis_codes, orthonormal_deviation

#: The meta keys readers use, each with its meaning. A reader fills the ones it
#: knows; none is required. Values are JSON-serialisable.
META_KEYS: dict[str, str] = {
    "source_format": "name of the reader that produced the volume (dicom, nifti, metaimage, tiff, ...)",
    "source_files": "list of the input files, as given (one for single-file formats)",
    "warnings": "list of one-line warnings about what a reader or transform had to decide",
    "modality": "DICOM Modality (CT, MR, PT ...) or a best guess for other formats; absent if unknown",
    "patient_id": "DICOM PatientID",
    "study_uid": "DICOM StudyInstanceUID",
    "series_uid": "DICOM SeriesInstanceUID",
    "series_number": "DICOM SeriesNumber",
    "series_description": "DICOM SeriesDescription",
    "study_date": "DICOM StudyDate (YYYYMMDD)",
    "manufacturer": "DICOM Manufacturer",
    "window": "[centre, width] the file recommends for display (DICOM WindowCenter/Width)",
    "units": "intensity units after rescale: 'HU' for CT, otherwise absent or as stored",
    "axis4": "meaning of the 4th array axis: 'time', 'echo', 'channel' or 'volume'",
    "repetition_time": "seconds between the time points of a 4D time series (DICOM RepetitionTime); NIfTI pixdim[4]",
    "diffusion": "diffusion-weighted images: {b_values: one per volume (s/mm2), gradients: one [x, y, z] per volume, "
                 "frame: 'LPS' (patient) or the vendor frame they are kept in}; NIfTI outputs get .bval/.bvec",
    "dicom": "dict of DICOM attributes for the sidecar (kernel, kVp, slice thickness, ...)",
    "header": "dict of format-specific header fields worth keeping (MetaImage, TIFF, NIfTI)",
    "labels": "label volumes: list of {value, name, color [r, g, b], codes, source} (background 0 is not listed)",
    "annotates": "label volumes made from an annotation: the unit id of the image they are drawn on",
    "resize": "2D resizing done: input and output size, per-axis scale and padding (x_out = x_in * scale + offset)",
    "job": "fingerprint of the files and options a batch made this output from (lets a rerun resume safely)",
}

VolumeKind = Literal["intensity", "label"]


def _frozen_array(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.setflags(write=False)
    return view


@dataclass(frozen=True, eq=False)
class Volume:
    """An image with its LPS geometry.

    Parameters
    ----------
    array:
        Voxel values with axes ``(i, j, k)`` or ``(i, j, k, t)``; a 2D image is
        ``(i, j)``. The volume holds a read-only view: transforms make new arrays.
        Readers usually pass the transposed view of a C-ordered ``(k, j, i)``
        buffer, which is what NIfTI stores on disk.
    spacing:
        Millimetres between voxel centres along ``i``, ``j``, ``k``.
    origin:
        LPS position (mm) of the centre of voxel ``(0, 0, 0)``.
    direction:
        3x3 orthonormal matrix; column ``n`` is the LPS unit vector of axis ``n``.
        Orthonormal within :data:`medconv.geometry.ORTHONORMAL_TOLERANCE`.
    kind:
        ``"intensity"`` or ``"label"``. Labels are resampled with nearest
        neighbour and never windowed.
    meta:
        Metadata with the keys of :data:`META_KEYS`.
    history:
        The transforms applied so far, in order, each as one readable string.
    """

    array: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    kind: VolumeKind = "intensity"
    meta: Mapping[str, Any] = field(default_factory=dict)
    history: tuple[str, ...] = ()

    def __post_init__(self):
        array = np.asarray(self.array)
        if array.ndim not in (2, 3, 4):
            raise InvalidVolumeError(f"a volume has 2 to 4 dimensions, got shape {array.shape}")
        if array.size == 0:
            raise InvalidVolumeError(f"a volume cannot be empty, got shape {array.shape}")
        spacing = tuple(float(s) for s in self.spacing)
        origin = tuple(float(o) for o in self.origin)
        if len(spacing) != 3 or len(origin) != 3:
            raise InvalidVolumeError(f"spacing and origin need 3 values, got {self.spacing!r} and {self.origin!r}")
        if not all(np.isfinite(s) and s > 0 for s in spacing):
            raise InvalidVolumeError(f"spacing must be positive and finite, got {spacing}")
        if not all(np.isfinite(o) for o in origin):
            raise InvalidVolumeError(f"origin must be finite, got {origin}")
        direction = np.array(self.direction, dtype=float)
        if direction.shape != (3, 3) or not np.all(np.isfinite(direction)):
            raise InvalidVolumeError(f"direction must be a finite 3x3 matrix, got {direction!r}")
        deviation = orthonormal_deviation(direction)
        if deviation > ORTHONORMAL_TOLERANCE:
            raise InvalidVolumeError(
                f"direction is not orthonormal (deviation {deviation:.2g} > {ORTHONORMAL_TOLERANCE})",
                hint="orthonormalize the direction, or resample a sheared image first",
            )
        if self.kind not in ("intensity", "label"):
            raise InvalidVolumeError(f"kind must be 'intensity' or 'label', got {self.kind!r}")
        direction.setflags(write=False)
        set_ = object.__setattr__
        set_(self, "array", _frozen_array(array))
        set_(self, "spacing", spacing)
        set_(self, "origin", origin)
        set_(self, "direction", direction)
        set_(self, "meta", types.MappingProxyType(dict(self.meta)))
        set_(self, "history", tuple(self.history))

    def __reduce__(self):  # MappingProxyType does not pickle; workers receive and send Volumes
        return (Volume, (self.array, self.spacing, self.origin, self.direction, self.kind, dict(self.meta),
                         self.history))

    # -- geometry -------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """Array shape, ``(i, j, k[, t])``."""
        return self.array.shape

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        """The three spatial sizes; a 2D image has one slice."""
        shape = self.array.shape
        return (shape[0], shape[1], shape[2] if len(shape) > 2 else 1)

    @property
    def affine_lps(self) -> np.ndarray:
        """4x4 voxel-to-LPS affine (DICOM, ITK)."""
        return affine_from_geometry(self.spacing, self.origin, self.direction)

    @property
    def affine_ras(self) -> np.ndarray:
        """4x4 voxel-to-RAS affine (NIfTI, nibabel, MONAI, TorchIO)."""
        return LPS_TO_RAS @ self.affine_lps

    @property
    def axis_codes(self) -> str:
        """Where the axes point, e.g. ``"LPS"`` or ``"RAS"`` (nibabel's convention)."""
        return axis_codes(self.direction)

    @property
    def warnings(self) -> tuple[str, ...]:
        """The warnings readers and transforms recorded in ``meta["warnings"]``."""
        return tuple(self.meta.get("warnings", ()))

    # -- derivation -----------------------------------------------------------
    def replace(self, **changes) -> "Volume":
        """A new Volume with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def with_step(self, step: str, **changes) -> "Volume":
        """A new Volume with ``changes`` applied and ``step`` appended to the history."""
        return dataclasses.replace(self, history=self.history + (step,), **changes)

    def with_warning(self, warning: str) -> "Volume":
        """A new Volume with ``warning`` added to ``meta["warnings"]``."""
        meta = dict(self.meta)
        meta["warnings"] = list(meta.get("warnings", ())) + [warning]
        return dataclasses.replace(self, meta=meta)

    def __repr__(self) -> str:
        return (
            f"Volume(shape={self.shape}, dtype={self.array.dtype}, kind={self.kind!r}, "
            f"spacing={tuple(round(s, 4) for s in self.spacing)}, axes={self.axis_codes!r})"
        )
