"""LIDC-IDRI XML -> per-reader nodule masks, consensus masks and characteristics rows.

**Masks.** A nodule ROI is drawn on the slice its ``imageSOP_UID`` names (by its
``imageZposition`` when the series lacks that instance): the pixels whose centre
lies inside the polygon through its edge points (even-odd rule of
:mod:`.raster`), *minus the edge points themselves*: the LIDC outline is the
first pixel outside the nodule (LIDC documentation; pylidc's
``include_contour_points=False``). Several inclusion ROIs on one slice are
united; exclusion ROIs (``inclusion`` FALSE) and their edge points are removed.
Nodules < 3 mm (one point) and non-nodules are listed as points, not drawn.

**Nodules.** The readers' annotations are clustered into nodules by the rule
pylidc established (``Scan.cluster_annotations``): two annotations belong to one
nodule when their outlines come within one slice step of each other (minimum
distance between edge points, here in mm; pylidc measures in voxel indices);
connected groups are nodules; while a group holds more annotations than there
are reading sessions, the distance shrinks by :data:`CLUSTER_SHRINK`. Nodules are
numbered 1, 2, ... along the slice normal (mean outline position), so ids are
deterministic.

**Consensus.** A voxel is in nodule n's consensus mask when at least
``consensus`` (default 0.5) of the annotations of nodule n include it: the
readers who marked *that* nodule, not all four (pylidc's
``consensus(anns, clevel=0.5)``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ...errors import InvalidAnnotationError
from ...image_reference import ImageReference
from .labelmap import RoiMask, label_outputs, object_suffix
from .lidc_xml import CHARACTERISTICS, LidcDocument, LidcReading, LidcRoi, ReadingKind, parse_lidc_xml
from .model import (AnnotationKind, AnnotationResult, ContourPlacement, ContourReport, LabelEntry, OutputRole,
                    RoiReport, RoiStatus)
from .options import AnnotationOptions
from .raster import fill_polygons

#: Clustering: the distance shrinks by this factor while a nodule has more annotations than sessions (pylidc's).
CLUSTER_SHRINK = 0.9

#: Clustering stops shrinking below this distance (mm); such a group is kept and warned about.
CLUSTER_MIN_DISTANCE_MM = 0.1

#: A ROI's imageZposition within this (mm) of an instance's position names that instance when its UID is unknown.
Z_MATCH_TOLERANCE_MM = 0.01


#: The columns of :meth:`LidcRow.as_row`, in order (the characteristics CSV).
ROW_COLUMNS = ("nodule", "session", "reader_id", "mark_id", "kind", "voxels", "x_lps", "y_lps", "z_lps") \
    + CHARACTERISTICS


@dataclass(frozen=True)
class LidcRow:
    """One row of the characteristics table: a reader's mark of a nodule (or a point mark)."""

    nodule: Optional[int]  #: nodule id (None for small nodules and non-nodules)
    session: int
    reader_id: str
    mark_id: str
    kind: ReadingKind
    voxels: int
    position_lps: tuple[float, float, float]  #: centre of its edge points (mm)
    characteristics: Optional[dict[str, Optional[int]]]

    def as_row(self) -> dict:
        """A flat dict for a CSV writer (characteristics as columns; empty when unrated)."""
        row = {"nodule": self.nodule if self.nodule is not None else "", "session": self.session,
               "reader_id": self.reader_id, "mark_id": self.mark_id, "kind": self.kind.value, "voxels": self.voxels,
               "x_lps": round(self.position_lps[0], 3), "y_lps": round(self.position_lps[1], 3),
               "z_lps": round(self.position_lps[2], 3)}
        for name in CHARACTERISTICS:
            value = (self.characteristics or {}).get(name)
            row[name] = "" if value is None else value
        return row


@dataclass(frozen=True)
class _Plane:
    """Where one ROI's slice is: its voxel-(0, 0) LPS position and its grid slice (None when off the grid)."""

    origin_lps: np.ndarray
    slice_index: Optional[int]
    plane_index: float


class _Placer:
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


def _reading_masks(readings: list[LidcReading], placer: _Placer
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


def _outline_points_lps(reading: LidcReading, placer: _Placer) -> np.ndarray:
    return np.concatenate([placer.world(roi) for roi in reading.rois])


def cluster_readings(readings: list[LidcReading], reference: ImageReference | _Placer, sessions: int
                     ) -> tuple[list[list[int]], list[str]]:
    """Group nodule readings into nodules (indices into ``readings``), numbered along the slice normal."""
    if not readings:
        return [], []
    placer = reference if isinstance(reference, _Placer) else _Placer(reference)
    by_roi = [[placer.world(roi) for roi in r.rois] for r in readings]
    points = [np.concatenate(rois) for rois in by_roi]
    tolerance = float(placer.spacing[2])
    near = _Nearness(by_roi)
    warnings = []
    while True:
        groups = _components(near.adjacent(tolerance))
        if all(len(g) <= max(sessions, 1) for g in groups):
            break
        if tolerance * CLUSTER_SHRINK < CLUSTER_MIN_DISTANCE_MM:
            warnings.append(f"a nodule groups {max(len(g) for g in groups)} annotations, more than the "
                            f"{sessions} reading sessions; kept together (outlines too close to separate)")
            break
        tolerance *= CLUSTER_SHRINK
    normal = placer.direction[:, 2]

    def position(group: list[int]) -> tuple:
        centre = np.mean([points[m].mean(axis=0) for m in group], axis=0)
        return (round(float(centre @ normal), 6), round(float(centre[0]), 6), round(float(centre[1]), 6))

    return sorted(groups, key=position), warnings


class _Nearness:
    """Which readings' outlines come within a distance of each other (pylidc's clustering test), quickly.

    Each reading's edge points are kept per ROI (slice) with their bounding boxes; two
    readings are near at ``tolerance`` when some pair of their ROIs, whose boxes come
    that close, has two points that close. The search stops at the first such pair, so
    outlines of one nodule (the usual case) cost one small distance matrix each.
    """

    def __init__(self, readings: list[list[np.ndarray]]):
        self.readings = readings
        #: per reading, its ROIs' boxes as ``(rois, 2, 3)``: low and high LPS corners
        self.boxes = [np.stack([np.stack([p.min(axis=0), p.max(axis=0)]) for p in rois]) for rois in readings]
        self.spans = np.stack([np.stack([b[:, 0].min(axis=0), b[:, 1].max(axis=0)]) for b in self.boxes])

    @staticmethod
    def _gaps(first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """Distances between every box of ``first`` ``(m, 2, 3)`` and of ``second`` ``(n, 2, 3)``: ``(m, n)``."""
        low_a, high_a = first[:, None, 0], first[:, None, 1]
        low_b, high_b = second[None, :, 0], second[None, :, 1]
        return np.linalg.norm(np.maximum(0.0, np.maximum(low_a - high_b, low_b - high_a)), axis=-1)

    def near(self, a: int, b: int, tolerance: float) -> bool:
        if float(self._gaps(self.spans[a:a + 1], self.spans[b:b + 1])[0, 0]) > tolerance:
            return False
        gaps = self._gaps(self.boxes[a], self.boxes[b])
        order = np.argsort(gaps, axis=None)  # the closest boxes first: the answer is usually found at once
        for flat in order:
            m, n = divmod(int(flat), gaps.shape[1])
            if gaps[m, n] > tolerance:
                return False
            points_a, points_b = self.readings[a][m], self.readings[b][n]
            if float(((points_a[:, None, :] - points_b[None, :, :]) ** 2).sum(axis=-1).min()) <= tolerance ** 2:
                return True
        return False

    def adjacent(self, tolerance: float) -> np.ndarray:
        count = len(self.readings)
        matrix = np.eye(count, dtype=bool)
        for a in range(count):
            for b in range(a + 1, count):
                matrix[a, b] = matrix[b, a] = self.near(a, b, tolerance)
        return matrix


def _components(adjacent: np.ndarray) -> list[list[int]]:
    unvisited, groups = set(range(len(adjacent))), []
    while unvisited:
        stack, group = [min(unvisited)], []
        unvisited.discard(stack[0])
        while stack:
            node = stack.pop()
            group.append(node)
            for other in np.nonzero(adjacent[node])[0].tolist():
                if other in unvisited:
                    unvisited.discard(other)
                    stack.append(other)
        groups.append(sorted(group))
    return groups


def consensus_mask(masks: list[RoiMask], level: float, shape: tuple[int, int, int]) -> RoiMask:
    """Voxels included by at least ``level`` of ``masks`` (pylidc: ``mean(masks) >= clevel``)."""
    boxes = [m for m in masks if m.array.size]
    if not boxes:
        return RoiMask.empty()
    low = np.min([m.offset for m in boxes], axis=0)
    high = np.max([np.add(m.offset, m.array.shape) for m in boxes], axis=0)
    votes = np.zeros(tuple(high - low), dtype=np.int32)
    for mask in boxes:
        box = tuple(slice(o - l, o - l + n) for o, l, n in zip(mask.offset, low, mask.array.shape))
        votes[box] += mask.array
    agreed = votes >= level * len(masks) - 1e-9
    return RoiMask.from_dense(agreed).shifted(tuple(low))  # cropped within the readers' union box


def read_lidc_xml(path: str | os.PathLike, reference: ImageReference,
                  options: AnnotationOptions = AnnotationOptions(), document: LidcDocument | None = None
                  ) -> AnnotationResult:
    """Per-reader nodule masks, consensus masks and characteristics rows of the LIDC XML at ``path``."""
    path = os.fspath(path)
    document = document or parse_lidc_xml(path)
    shape = tuple(int(n) for n in reference.grid.shape)
    source = os.path.basename(path)
    placer = _Placer(reference)
    try:
        nodules = [r for r in document.readings if r.kind is ReadingKind.NODULE]
        groups, warnings = cluster_readings(nodules, placer, document.sessions)
        drawn = _reading_masks(nodules, placer)
    except InvalidAnnotationError as error:
        raise InvalidAnnotationError(error.message, path=path, hint=error.hint) from None
    nodule_of = {member: number for number, group in enumerate(groups, start=1) for member in group}
    entries = [LabelEntry(n, f"nodule-{n:02d}", None, (), source, n) for n in range(1, len(groups) + 1)]
    reports, rows = [], []
    for index, reading in enumerate(nodules):
        mask, contours = drawn[index]
        number = nodule_of[index]
        status = RoiStatus.RASTERISED if mask.voxels else RoiStatus.EMPTY
        reports.append(RoiReport(number, f"reader{reading.session}:{reading.mark_id}", status, number, mask.voxels,
                                 contours))
        centre = _outline_points_lps(reading, placer).mean(axis=0)
        rows.append(LidcRow(number, reading.session, reading.reader_id, reading.mark_id, reading.kind, mask.voxels,
                            tuple(float(c) for c in centre), reading.characteristics))
    for reading in document.readings:
        if reading.kind is ReadingKind.NODULE:
            continue
        centre = _outline_points_lps(reading, placer).mean(axis=0)
        reports.append(RoiReport(0, f"reader{reading.session}:{reading.mark_id}", RoiStatus.POINTS))
        rows.append(LidcRow(None, reading.session, reading.reader_id, reading.mark_id, reading.kind, 0,
                            tuple(float(c) for c in centre), reading.characteristics))
    off_grid = sum(report.count(ContourPlacement.OFF_GRID) for report in reports)
    if off_grid:
        warnings.append(f"{off_grid} nodule outline(s) lie on slices this image does not have; not drawn")
    meta = {"source_format": AnnotationKind.LIDC_XML.value, "source_files": [path], "modality": "LIDC-XML",
            "series_uid": document.series_uid, "study_uid": document.study_uid, "warnings": list(warnings)}
    outputs = []
    name_suffix = object_suffix(AnnotationKind.LIDC_XML, "")
    level = options.consensus
    consensus = [consensus_mask([drawn[m][0] for m in group], level, shape) for group in groups]
    made, _ = label_outputs(consensus, entries, reference, options.masks, role=OutputRole.CONSENSUS,
                            suffix=f"{name_suffix}-consensus{round(level * 100)}",
                            meta={**meta, "header": {"consensus": level}})
    outputs.extend(made)
    for session in range(1, document.sessions + 1):
        members = [i for i, r in enumerate(nodules) if r.session == session]
        masks = [drawn[i][0] for i in members]
        labels = [entries[nodule_of[i] - 1] for i in members]
        made, overlap = label_outputs(masks, labels, reference, options.masks, role=OutputRole.READER,
                                      suffix=f"{name_suffix}-reader{session}", meta={**meta, "header": {"session": session}})
        outputs.extend(made)
        warnings.extend(overlap)
    return AnnotationResult(path, AnnotationKind.LIDC_XML, reference.unit_id, tuple(entries), tuple(reports),
                            tuple(outputs), tuple(warnings), tuple(rows), name_suffix)
