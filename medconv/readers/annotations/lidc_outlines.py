"""LIDC-IDRI outlines on the image grid: where each ROI's slice is, and the pixels each reader outlined.

A nodule ROI is drawn on the slice its ``imageSOP_UID`` names (by its
``imageZposition`` when the series lacks that instance): the pixels whose centre
lies inside the polygon through its edge points (even-odd rule of
:mod:`.raster`), *minus the edge points themselves*: the LIDC outline is the
first pixel outside the nodule (LIDC documentation; pylidc's
``include_contour_points=False``). Several inclusion ROIs on one slice are
united; exclusion ROIs (``inclusion`` FALSE) and their edge points are removed.

:class:`Placer` computes each ROI's plane and LPS points once per file (the
clustering of :mod:`.lidc`, the masks and the rows all use them);
:func:`reading_masks` fills every outline of a file in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ...errors import InvalidAnnotationError
from ...image_reference import ImageReference
from .labelmap import RoiMask
from .lidc_xml import LidcReading, LidcRoi
from .model import ContourPlacement, ContourReport
from .raster import fill_polygons

#: A ROI's imageZposition within this (mm) of an instance's position names that instance when its UID is unknown.
Z_MATCH_TOLERANCE_MM = 0.01


@dataclass(frozen=True)
class _Plane:
    """Where one ROI's slice is: its voxel-(0, 0) LPS position and its grid slice (None when off the grid)."""

    origin_lps: np.ndarray
    slice_index: Optional[int]
    plane_index: float


class Placer:
    """The image grid as the LIDC reader uses it, with what every ROI needs computed once.

    The inverse affine, the grid's axes and the SOP-instance table are computed once per
    file, each ROI's plane and LPS points once per ROI (clustering, masks and the rows all
    use them): a 400 KB reading file has a hundred ROIs.
    """

    def __init__(self, reference: ImageReference):
        self.reference = reference
        self.shape = tuple(int(n) for n in reference.grid.shape)
        self.direction = reference.grid.direction_matrix
        self.spacing = np.asarray(reference.grid.spacing, dtype=np.float64)
        self.origin = np.asarray(reference.grid.origin, dtype=np.float64)
        inverse = np.linalg.inv(reference.affine_lps)
        self._rotation, self._shift = inverse[:3, :3].T, inverse[:3, 3]
        self._instances = {}
        for instance in reference.instances:  # as ImageReference.instance(uid): frame 0 of that instance
            if instance.frame == 0:
                self._instances.setdefault(instance.sop_instance_uid, instance)
        self._planes: dict[int, _Plane] = {}
        self._points: dict[int, np.ndarray] = {}

    def continuous_index(self, points_lps: np.ndarray) -> np.ndarray:
        return np.asarray(points_lps, dtype=np.float64) @ self._rotation + self._shift

    def plane(self, roi: LidcRoi) -> _Plane:
        """Where the ROI's slice is: the instance its ``imageSOP_UID`` names, else its ``imageZposition``."""
        if id(roi) in self._planes:
            return self._planes[id(roi)]
        instance = self._instances.get(roi.sop_uid) if roi.sop_uid else None
        if instance is not None:
            origin = np.asarray(instance.position, dtype=np.float64)
        else:
            normal = self.direction[:, 2]
            if abs(normal[2]) < 1e-6:
                raise InvalidAnnotationError("LIDC ROI names a slice the series lacks and the series is not axial",
                                             hint="its imageZposition cannot place it")
            origin = self.origin + (roi.z - self.origin[2]) / normal[2] * normal
            same_z = [inst for inst in self.reference.instances
                      if abs(inst.position[2] - roi.z) <= Z_MATCH_TOLERANCE_MM]
            if same_z:
                origin = np.asarray(same_z[0].position, dtype=np.float64)
        kc = float(self.continuous_index(origin)[2])
        k = int(np.floor(kc + 0.5))
        on_grid = 0 <= k < self.shape[2] and abs(kc - k) <= 0.5
        self._planes[id(roi)] = plane = _Plane(origin, k if on_grid else None, kc)
        return plane

    def world(self, roi: LidcRoi) -> np.ndarray:
        """LPS positions of the ROI's pixel points (column x, row y) on its slice: the grid's in-plane axes."""
        if id(roi) not in self._points:
            xy = roi.points
            self._points[id(roi)] = (self.plane(roi).origin_lps
                                     + np.outer(xy[:, 0] * self.spacing[0], self.direction[:, 0])
                                     + np.outer(xy[:, 1] * self.spacing[1], self.direction[:, 1]))
        return self._points[id(roi)]


@dataclass
class _SliceCrop:
    """A boolean region of one grid slice: ``array`` placed at ``(i0, j0)``."""

    i0: int
    j0: int
    array: np.ndarray

    @staticmethod
    def _box(index: np.ndarray, shape: tuple[int, int]) -> tuple[int, int, int, int, bool]:
        """``(i0, j0, i1, j1, clipped)``: the polygon's box plus one voxel, within the slice."""
        low, high = np.floor(index[:, :2].min(axis=0)) - 1, np.ceil(index[:, :2].max(axis=0)) + 2
        i0, j0 = int(max(0, low[0])), int(max(0, low[1]))
        i1, j1 = int(min(shape[0], high[0])), int(min(shape[1], high[1]))
        return i0, j0, i1, j1, bool(low[0] < 0 or low[1] < 0 or high[0] > shape[0] or high[1] > shape[1])

    @classmethod
    def of_outlines(cls, indexes: list[np.ndarray], shape: tuple[int, int], outline: bool) -> list["_SliceCrop"]:
        """For each polygon (continuous ``(i, j)``): the pixels whose centre is inside it, within its box; the
        outline pixels themselves are added (``outline=True``) or removed (``False``).

        Polygons inside the slice are filled in **one** :func:`~.raster.fill_polygons` call: each is shifted by
        whole voxels into a band of rows of its own on one canvas (the pixel rule is shift-invariant and a
        polygon's edges cross only its own rows), so a file's hundred ROIs cost one fill, not a hundred.
        Polygons the slice's edge clips are filled alone (their edges leave their band).
        """
        boxes = [cls._box(index, shape) for index in indexes]
        crops: list[Optional[np.ndarray]] = [None] * len(indexes)
        banded = [n for n, (i0, j0, i1, j1, clipped) in enumerate(boxes) if not clipped and i1 > i0 and j1 > j0]
        if banded:
            starts = np.cumsum([0] + [boxes[n][3] - boxes[n][1] for n in banded])
            width = max(boxes[n][2] - boxes[n][0] for n in banded)
            shifted = [indexes[n][:, :2] - (boxes[n][0], boxes[n][1] - start) for n, start in zip(banded, starts)]
            canvas = fill_polygons(shifted, (width, int(starts[-1])))
            for n, start in zip(banded, starts):
                i0, j0, i1, j1, _ = boxes[n]
                crops[n] = canvas[:i1 - i0, start:start + j1 - j0].copy()
        result = []
        for n, index in enumerate(indexes):
            i0, j0, i1, j1, _ = boxes[n]
            if i1 <= i0 or j1 <= j0:
                result.append(cls(0, 0, np.zeros((0, 0), dtype=bool)))
                continue
            array = crops[n] if crops[n] is not None else fill_polygons([index[:, :2] - (i0, j0)], (i1 - i0, j1 - j0))
            ij = np.rint(index[:, :2]).astype(np.int64) - (i0, j0)
            inside = (ij[:, 0] >= 0) & (ij[:, 0] < i1 - i0) & (ij[:, 1] >= 0) & (ij[:, 1] < j1 - j0)
            array[ij[inside, 0], ij[inside, 1]] = outline
            result.append(cls(i0, j0, array))
        return result

    def combined(self, other: "_SliceCrop", keep_other: bool) -> "_SliceCrop":
        """``self | other`` (``keep_other``) or ``self & ~other``, in a box holding both."""
        if not other.array.size:
            return self
        if not self.array.size:
            return other if keep_other else self
        i0, j0 = min(self.i0, other.i0), min(self.j0, other.j0)
        i1 = max(self.i0 + self.array.shape[0], other.i0 + other.array.shape[0])
        j1 = max(self.j0 + self.array.shape[1], other.j0 + other.array.shape[1])
        out = np.zeros((i1 - i0, j1 - j0), dtype=bool)
        out[self.i0 - i0:self.i0 - i0 + self.array.shape[0], self.j0 - j0:self.j0 - j0 + self.array.shape[1]] = self.array
        region = (slice(other.i0 - i0, other.i0 - i0 + other.array.shape[0]),
                  slice(other.j0 - j0, other.j0 - j0 + other.array.shape[1]))
        if keep_other:
            out[region] |= other.array
        else:
            out[region] &= ~other.array
        return _SliceCrop(i0, j0, out)


def _mask_of_crops(crops: dict[int, _SliceCrop]) -> RoiMask:
    """One RoiMask from per-slice crops (cropped to what is set)."""
    filled = {k: crop for k, crop in crops.items() if crop.array.any()}
    if not filled:
        return RoiMask.empty()
    i0 = min(c.i0 for c in filled.values())
    j0 = min(c.j0 for c in filled.values())
    i1 = max(c.i0 + c.array.shape[0] for c in filled.values())
    j1 = max(c.j0 + c.array.shape[1] for c in filled.values())
    k0, k1 = min(filled), max(filled) + 1
    array = np.zeros((i1 - i0, j1 - j0, k1 - k0), dtype=bool)
    for k, crop in filled.items():
        array[crop.i0 - i0:crop.i0 - i0 + crop.array.shape[0], crop.j0 - j0:crop.j0 - j0 + crop.array.shape[1],
              k - k0] = crop.array
    return RoiMask.from_dense(array).shifted((i0, j0, k0))


def reading_masks(readings: list[LidcReading], placer: Placer
                   ) -> list[tuple[RoiMask, tuple[ContourReport, ...]]]:
    """Each reading's nodule mask and contour reports; every outline of the file filled in one pass."""
    ni, nj, nk = placer.shape
    reports: list[list[ContourReport]] = [[] for _ in readings]
    inclusions: list[tuple[int, int, np.ndarray]] = []  # (reading, slice, continuous index)
    exclusions: list[tuple[int, int, np.ndarray]] = []
    for number, reading in enumerate(readings):
        for roi in reading.rois:
            plane = placer.plane(roi)
            index = placer.continuous_index(placer.world(roi))
            if plane.slice_index is None:
                reports[number].append(ContourReport(ContourPlacement.OFF_GRID, plane.plane_index, None,
                                                     len(roi.points), referenced_sop_uid=roi.sop_uid))
                continue
            k = plane.slice_index
            clipped = bool(np.any(index[:, 0] < -0.5) or np.any(index[:, 0] > ni - 0.5)
                           or np.any(index[:, 1] < -0.5) or np.any(index[:, 1] > nj - 0.5))
            reports[number].append(ContourReport(ContourPlacement.PLACED, plane.plane_index, k, len(roi.points),
                                                 clipped, roi.sop_uid))
            (inclusions if roi.inclusion else exclusions).append((number, k, index))
    included: list[dict[int, _SliceCrop]] = [{} for _ in readings]
    # the outline is the first pixel outside the nodule
    for (number, k, _), filled in zip(inclusions, _SliceCrop.of_outlines([i for *_, i in inclusions], (ni, nj), False)):
        slices = included[number]
        slices[k] = slices[k].combined(filled, keep_other=True) if k in slices else filled
    exclusions = [(number, k, index) for number, k, index in exclusions if k in included[number]]
    for (number, k, _), region in zip(exclusions, _SliceCrop.of_outlines([i for *_, i in exclusions], (ni, nj), True)):
        included[number][k] = included[number][k].combined(region, keep_other=False)  # it takes its outline with it
    return [(_mask_of_crops(slices), tuple(report)) for slices, report in zip(included, reports)]


def outline_points_lps(reading: LidcReading, placer: Placer) -> np.ndarray:
    return np.concatenate([placer.world(roi) for roi in reading.rois])
