"""What an annotation needs to know about the image series it is drawn on.

An annotation object (RTSTRUCT contours, a DICOM SEG, LIDC-IDRI XML outlines)
references an image series by UIDs and draws in that series' world frame. To
put its mask on the image's exact grid, an annotation reader needs

* the **grid medconv writes that image on** (shape, spacing, origin, direction
  in LPS, after any tilt or uneven-spacing repair): the mask is computed on it,
  so image and mask share one affine;
* the **acquired instances** the annotation may reference: each SOP Instance
  UID (and frame, for multi-frame objects) with the LPS position of its first
  voxel, so that "the outline on slice 1.2.3..." can be placed.

The DICOM reader produces an :class:`ImageReference` for an image unit from
headers only (no pixels); annotation readers consume it. Neither side imports
the other: this module is the contract between them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the resampling module is imported by a run that resamples, not by every DICOM run
    from .transforms.resample import Grid


@dataclass(frozen=True)
class ReferencedInstance:
    """One acquired slice (or frame) of the image series.

    Attributes
    ----------
    sop_instance_uid:
        The SOPInstanceUID of the file holding it.
    position:
        Its ImagePositionPatient: LPS mm of the centre of its first voxel.
    frame:
        0-based frame number within a multi-frame file (0 for single-frame files).
    """

    sop_instance_uid: str
    position: tuple[float, float, float]
    frame: int = 0


@dataclass(frozen=True)
class ImageReference:
    """An image unit as annotations see it: identifiers, output grid, acquired instances.

    Attributes
    ----------
    unit_id:
        The image unit's :attr:`medconv.source.Source.id`.
    series_uid, study_uid, frame_of_reference_uid:
        The series' UIDs ('' when the files carry none).
    modality:
        DICOM Modality of the image series.
    grid:
        The grid medconv writes the image on: equal to ``Grid.of(read(image_source))``.
    instances:
        Every acquired instance (slice or frame), in acquisition-independent order
        (sorted along the slice normal).
    """

    unit_id: str
    series_uid: str
    study_uid: str
    frame_of_reference_uid: str
    modality: str
    grid: Grid
    instances: tuple[ReferencedInstance, ...] = ()

    @property
    def affine_lps(self) -> np.ndarray:
        """4x4 voxel-index-to-LPS affine of :attr:`grid`."""
        affine = np.eye(4)
        affine[:3, :3] = self.grid.direction_matrix * np.asarray(self.grid.spacing, dtype=float)
        affine[:3, 3] = self.grid.origin
        return affine

    def continuous_index(self, points_lps: np.ndarray) -> np.ndarray:
        """``(..., 3)`` LPS points as continuous ``(i, j, k)`` indices of :attr:`grid` (voxel centres are integers)."""
        points = np.asarray(points_lps, dtype=np.float64)
        inverse = np.linalg.inv(self.affine_lps)
        return points @ inverse[:3, :3].T + inverse[:3, 3]

    def instance(self, sop_instance_uid: str, frame: int = 0) -> ReferencedInstance | None:
        """The acquired instance with this UID (and frame), or ``None`` when the series has none."""
        for candidate in self.instances:
            if candidate.sop_instance_uid == sop_instance_uid and candidate.frame == frame:
                return candidate
        return None

    @property
    def sop_instance_uids(self) -> frozenset[str]:
        """Every SOP Instance UID of the series (to match an annotation's references)."""
        return frozenset(instance.sop_instance_uid for instance in self.instances)
