"""RTSTRUCT -> label volumes on the referenced image's grid.

Every CLOSED_PLANAR contour is put on the grid by its world coordinates
(:mod:`.planes`: nearest slice within half a step, reported otherwise) and
filled by the pixel-centre rule of :mod:`.raster`; the contours of one ROI on one
slice are combined by the even-odd rule, so inner contours are holes (XOR).
POINT and OPEN_PLANAR / OPEN_NONPLANAR ROIs are listed, not drawn. A ROI with a
non-finite or absurd coordinate (beyond :data:`MAX_ABS_COORDINATE_MM`) fails
alone with that reason; the other ROIs are still drawn.

Label values are consecutive (1, 2, ...) over the drawable ROIs (those with at
least one CLOSED_PLANAR contour) in StructureSetROISequence order; each label
keeps its ROINumber in the table.
"""

from __future__ import annotations

import os
import warnings as python_warnings
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ...image_reference import ImageReference
from .dicom_io import coded_concepts, read_dataset, rgb, sequence, text
from .headers import rtstruct_label
from .labelmap import RoiMask, label_outputs, object_suffix
from .model import (AnnotationKind, AnnotationResult, ContourPlacement, ContourReport, LabelEntry, RoiReport,
                    RoiStatus)
from .options import AnnotationOptions
from .planes import PlanarContour, place_contours, rasterise_slices

#: A contour coordinate farther than this from the origin (mm) is absurd (a scanner is a few metres across).
MAX_ABS_COORDINATE_MM = 1.0e4

CLOSED_PLANAR = "CLOSED_PLANAR"
POINT = "POINT"
OPEN_TYPES = frozenset({"OPEN_PLANAR", "OPEN_NONPLANAR"})


@dataclass(frozen=True)
class RtContour:
    """One contour as stored: geometric type, LPS points ``(n, 3)``, the SOP instance it names."""

    geometric_type: str
    points: np.ndarray
    referenced_sop_uid: str = ""


@dataclass(frozen=True)
class RtRoi:
    """One ROI of a structure set, as stored."""

    number: int
    name: str
    color: Optional[tuple[int, int, int]]
    interpreted_type: str
    codes: tuple[dict, ...]
    contours: tuple[RtContour, ...]
    problem: str = ""  #: why its coordinates cannot be used ('' when fine)


def _contour_points(item) -> tuple[np.ndarray, str]:
    """The contour's points as ``(n, 3)`` floats and a problem ('' when fine)."""
    raw = item.get("ContourData", None)
    try:
        values = np.asarray([float(v) for v in (raw if raw is not None else [])], dtype=np.float64)
    except (TypeError, ValueError):
        return np.zeros((0, 3)), "ContourData holds values that are not numbers"
    if values.size % 3:
        return np.zeros((0, 3)), f"ContourData has {values.size} values, not a multiple of 3"
    points = values.reshape(-1, 3)
    if not np.all(np.isfinite(points)):
        return points, "ContourData holds NaN or infinite coordinates"
    if points.size and float(np.abs(points).max()) > MAX_ABS_COORDINATE_MM:
        return points, (f"ContourData holds absurd coordinates (|x| up to {np.abs(points).max():.3g} mm "
                        f"> {MAX_ABS_COORDINATE_MM:g} mm)")
    return points, ""


def parse_rois(dataset) -> tuple[RtRoi, ...]:
    """The ROIs of an RTSTRUCT dataset in StructureSetROISequence order (then any contour-only ROI)."""
    declared = {}
    for item in sequence(dataset, "StructureSetROISequence"):
        number = int(item.get("ROINumber", 0) or 0)
        declared[number] = text(item, "ROIName") or f"ROI-{number}"
    observations = {}
    for item in sequence(dataset, "RTROIObservationsSequence"):
        number = int(item.get("ReferencedROINumber", 0) or 0)
        observations[number] = (text(item, "RTROIInterpretedType"),
                                coded_concepts(sequence(item, "RTROIIdentificationCodeSequence")))
    contour_sets = {}
    for item in sequence(dataset, "ROIContourSequence"):
        number = int(item.get("ReferencedROINumber", 0) or 0)
        contours, problem = [], ""
        for contour in sequence(item, "ContourSequence"):
            points, issue = _contour_points(contour)
            problem = problem or issue
            images = sequence(contour, "ContourImageSequence")
            contours.append(RtContour(text(contour, "ContourGeometricType").upper(), points,
                                      text(images[0], "ReferencedSOPInstanceUID") if images else ""))
        contour_sets[number] = (rgb(item.get("ROIDisplayColor", None)), tuple(contours), problem)
    rois = []
    for number in list(declared) + [n for n in contour_sets if n not in declared]:
        color, contours, problem = contour_sets.get(number, (None, (), ""))
        interpreted, codes = observations.get(number, ("", ()))
        rois.append(RtRoi(number, declared.get(number, f"ROI-{number}"), color, interpreted, codes, contours,
                          problem))
    return tuple(rois)


def _status_without_closed(roi: RtRoi) -> RoiStatus:
    types = {contour.geometric_type for contour in roi.contours}
    if not roi.contours:
        return RoiStatus.NO_CONTOURS
    if types & OPEN_TYPES:
        return RoiStatus.OPEN
    return RoiStatus.POINTS


def _rasterise(roi: RtRoi, reference: ImageReference) -> tuple[RoiMask, tuple[ContourReport, ...], int]:
    closed = [c for c in roi.contours if c.geometric_type == CLOSED_PLANAR]
    planar = [PlanarContour(reference.continuous_index(c.points), c.referenced_sop_uid) for c in closed]
    by_slice, reports = place_contours(planar, reference)
    ni, nj, nk = reference.grid.shape
    slices = rasterise_slices(planar, by_slice, (ni, nj))
    gaps = (max(by_slice) - min(by_slice) + 1 - len(by_slice)) if by_slice else 0
    return RoiMask.from_slices(slices, (ni, nj, nk)), tuple(reports), gaps


def _warnings_for(report: RoiReport) -> list[str]:
    name = f"ROI {report.name!r} (#{report.number})"
    warnings = []
    if report.status is RoiStatus.FAILED:
        warnings.append(f"{name} left out: {report.reason}")
    elif report.status is RoiStatus.EMPTY:
        warnings.append(f"{name} covers no voxel centre of the image grid (sub-pixel, degenerate or off the grid)")
    elif report.status in (RoiStatus.POINTS, RoiStatus.OPEN):
        warnings.append(f"{name} is {report.status.value} (not a closed outline): listed, not drawn")
    for placement, what in ((ContourPlacement.OFF_GRID, "lie beyond the image's first or last slice"),
                            (ContourPlacement.NOT_PARALLEL, "are not parallel to the image's slices"),
                            (ContourPlacement.DEGENERATE, "have fewer than 3 points"),
                            (ContourPlacement.SUPERSEDED, "share a slice with a nearer contour plane")):
        count = report.count(placement)
        if count:
            warnings.append(f"{name}: {count} contour(s) {what}; not drawn")
    if report.gap_slices:
        warnings.append(f"{name}: {report.gap_slices} image slice(s) between its contours have no contour (the image "
                        "grid is finer than the contour planes); left empty, not interpolated")
    if report.clipped_contours:
        warnings.append(f"{name}: {report.clipped_contours} contour(s) leave the field of view; drawn clipped")
    return warnings


def _reference_warnings(report: RoiReport, reference: ImageReference) -> list[str]:
    """Contours naming an instance the series lacks, or one on another slice than their plane's."""
    known = reference.sop_instance_uids
    unknown = [c for c in report.contours if c.referenced_sop_uid and c.referenced_sop_uid not in known]
    elsewhere = 0
    for contour in report.contours:
        if contour.placement is not ContourPlacement.PLACED or contour.referenced_sop_uid not in known:
            continue
        instance = reference.instance(contour.referenced_sop_uid)
        k = float(reference.continuous_index(np.asarray(instance.position))[2])
        elsewhere += abs(k - contour.slice_index) > 0.5
    name = f"ROI {report.name!r} (#{report.number})"
    warnings = []
    if unknown:
        warnings.append(f"{name}: {len(unknown)} contour(s) name image instances that are not in the image series; "
                        "placed by their coordinates")
    if elsewhere:
        warnings.append(f"{name}: {elsewhere} contour(s) name an image slice other than the one their coordinates "
                        "lie on; placed by their coordinates")
    return warnings


def read_rtstruct(path: str | os.PathLike, reference: ImageReference,
                  options: AnnotationOptions = AnnotationOptions()) -> AnnotationResult:
    """Rasterise every ROI of the RTSTRUCT at ``path`` on ``reference.grid``.

    Raises :class:`~medconv.errors.UnreadableFileError` for a truncated or non-DICOM
    file and :class:`~medconv.errors.UnsupportedFormatError` for another DICOM object;
    problems of single ROIs and contours are reported in the result instead.
    """
    path = os.fspath(path)
    dataset = read_dataset(path, expect="RTSTRUCT")
    with python_warnings.catch_warnings():  # pydicom warns on NaN / malformed DS values: each ROI reports its own
        python_warnings.simplefilter("ignore", UserWarning)
        rois = parse_rois(dataset)
    source = os.path.basename(path)
    masks, entries, reports, warnings = [], [], [], []
    for roi in rois:
        drawable = any(c.geometric_type == CLOSED_PLANAR for c in roi.contours)
        if roi.problem:
            report = RoiReport(roi.number, roi.name, RoiStatus.FAILED, reason=roi.problem)
        elif not drawable:
            report = RoiReport(roi.number, roi.name, _status_without_closed(roi))
        else:
            mask, contour_reports, gaps = _rasterise(roi, reference)
            value = len(entries) + 1
            entries.append(LabelEntry(value, roi.name, roi.color, roi.codes, source, roi.number))
            masks.append(mask)
            status = RoiStatus.RASTERISED if mask.voxels else RoiStatus.EMPTY
            report = RoiReport(roi.number, roi.name, status, value, mask.voxels, contour_reports, gap_slices=gaps)
        reports.append(report)
        warnings.extend(_warnings_for(report) + _reference_warnings(report, reference))
    label = rtstruct_label(dataset)
    name_suffix = object_suffix(AnnotationKind.RTSTRUCT, label)
    meta = {"source_format": AnnotationKind.RTSTRUCT.value, "source_files": [path], "modality": "RTSTRUCT",
            "series_uid": text(dataset, "SeriesInstanceUID"), "study_uid": text(dataset, "StudyInstanceUID"),
            "patient_id": text(dataset, "PatientID"), "series_description": label, "warnings": warnings}
    outputs, overlap_warnings = label_outputs(masks, entries, reference, options.masks,
                                              suffix=name_suffix, meta=meta)
    return AnnotationResult(path, AnnotationKind.RTSTRUCT, reference.unit_id, tuple(entries), tuple(reports),
                            tuple(outputs), tuple(warnings + overlap_warnings), name_suffix=name_suffix)
