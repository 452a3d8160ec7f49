"""LIDC-IDRI XML -> per-reader nodule masks, consensus masks and characteristics rows.

**Masks.** Each reader's outlines on the image grid (:mod:`.lidc_outlines`: the
pixels inside an outline minus the outline itself, exclusions removed). Nodules
< 3 mm (one point) and non-nodules are listed as points, not drawn.

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
from .lidc_outlines import Placer, outline_points_lps, reading_masks
from .lidc_xml import CHARACTERISTICS, LidcDocument, LidcReading, ReadingKind, parse_lidc_xml
from .model import (AnnotationKind, AnnotationResult, ContourPlacement, LabelEntry, OutputRole,
                    RoiReport, RoiStatus)
from .options import AnnotationOptions

#: Clustering: the distance shrinks by this factor while a nodule has more annotations than sessions (pylidc's).
CLUSTER_SHRINK = 0.9

#: Clustering stops shrinking below this distance (mm); such a group is kept and warned about.
CLUSTER_MIN_DISTANCE_MM = 0.1


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


def cluster_readings(readings: list[LidcReading], reference: ImageReference | Placer, sessions: int
                     ) -> tuple[list[list[int]], list[str]]:
    """Group nodule readings into nodules (indices into ``readings``), numbered along the slice normal."""
    if not readings:
        return [], []
    placer = reference if isinstance(reference, Placer) else Placer(reference)
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
    placer = Placer(reference)
    try:
        nodules = [r for r in document.readings if r.kind is ReadingKind.NODULE]
        groups, warnings = cluster_readings(nodules, placer, document.sessions)
        drawn = reading_masks(nodules, placer)
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
        centre = outline_points_lps(reading, placer).mean(axis=0)
        rows.append(LidcRow(number, reading.session, reading.reader_id, reading.mark_id, reading.kind, mask.voxels,
                            tuple(float(c) for c in centre), reading.characteristics))
    for reading in document.readings:
        if reading.kind is ReadingKind.NODULE:
            continue
        centre = outline_points_lps(reading, placer).mean(axis=0)
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
