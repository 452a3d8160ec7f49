"""Cheap header facts of annotation objects: what each references (for discovery and pairing).

:func:`read_header` reads an RTSTRUCT or SEG header (no pixel data; an RTSTRUCT's
contour points are read only for one point per contour plane) or a LIDC XML file
and returns an :class:`AnnotationHeader`; :func:`annotation_kind` recognises the
kind from the first bytes, never raising (DICOM discovery skips ``.xml`` today:
phase 2 asks :func:`~.lidc_xml.is_lidc_xml` for ``*.xml`` files).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

from ...errors import UnsupportedFormatError
from .dicom_io import SEG_SOP_CLASSES, RTSTRUCT_STORAGE, read_dataset, sequence, text
from .lidc_xml import is_lidc_xml, parse_lidc_xml
from .model import AnnotationKind

#: Contour plane positions are rounded to this (mm) and deduplicated for the header.
_PLANE_ROUNDING = 3


@dataclass(frozen=True)
class AnnotationHeader:
    """What an annotation object references, read cheaply.

    Attributes
    ----------
    referenced_series_uids:
        RTSTRUCT: RTReferencedSeries SeriesInstanceUIDs; SEG: ReferencedSeriesSequence;
        LIDC: the XML's SeriesInstanceUid.
    referenced_sop_uids:
        RTSTRUCT: ContourImageSequence SOP UIDs (study level and per contour); SEG:
        per-frame DerivationImage source instances (and ReferencedInstanceSequence);
        LIDC: every ROI's imageSOP_UID.
    frame_of_reference_uids:
        RTSTRUCT: ReferencedFrameOfReferenceSequence FoR UIDs; SEG: its FrameOfReferenceUID.
    plane_points:
        One LPS point (mm) per distinct contour plane / frame position (LIDC: none;
        its z positions are in ``z_positions``).
    """

    path: str
    kind: AnnotationKind
    patient_id: str = ""
    study_uid: str = ""
    series_uid: str = ""
    label: str = ""
    referenced_study_uids: frozenset[str] = frozenset()
    referenced_series_uids: frozenset[str] = frozenset()
    referenced_sop_uids: frozenset[str] = frozenset()
    frame_of_reference_uids: frozenset[str] = frozenset()
    plane_points: tuple[tuple[float, float, float], ...] = ()
    z_positions: tuple[float, ...] = ()
    roi_names: tuple[str, ...] = ()
    contours: int = 0


def annotation_kind(path: str | os.PathLike) -> Optional[AnnotationKind]:
    """RTSTRUCT, SEG or LIDC XML from the file's first bytes / header; ``None`` for anything else. Never raises."""
    path = os.fspath(path)
    if is_lidc_xml(path):
        return AnnotationKind.LIDC_XML
    try:
        import pydicom

        dataset = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID", "Modality"])
    except Exception:  # noqa: BLE001 - a sniffer never raises
        return None
    modality, sop_class = str(dataset.get("Modality", "")), str(dataset.get("SOPClassUID", ""))
    if modality == "RTSTRUCT" or sop_class == RTSTRUCT_STORAGE:
        return AnnotationKind.RTSTRUCT
    if modality == "SEG" or sop_class in SEG_SOP_CLASSES:
        return AnnotationKind.SEG
    return None


def _rtstruct_header(path: str) -> AnnotationHeader:
    dataset = read_dataset(path, expect="RTSTRUCT")
    studies, series, sops, frames = set(), set(), set(), set()
    for frame in sequence(dataset, "ReferencedFrameOfReferenceSequence"):
        frames.add(text(frame, "FrameOfReferenceUID"))
        for study in sequence(frame, "RTReferencedStudySequence"):
            studies.add(text(study, "ReferencedSOPInstanceUID"))
            for item in sequence(study, "RTReferencedSeriesSequence"):
                series.add(text(item, "SeriesInstanceUID"))
                sops.update(text(image, "ReferencedSOPInstanceUID") for image in sequence(item, "ContourImageSequence"))
    planes, count = set(), 0
    for roi in sequence(dataset, "ROIContourSequence"):
        for contour in sequence(roi, "ContourSequence"):
            count += 1
            sops.update(text(image, "ReferencedSOPInstanceUID") for image in sequence(contour, "ContourImageSequence"))
            data = contour.get("ContourData", None)
            try:
                planes.add(tuple(round(float(v), _PLANE_ROUNDING) for v in list(data)[:3]))
            except (TypeError, ValueError):
                continue
    names = tuple(text(item, "ROIName") for item in sequence(dataset, "StructureSetROISequence"))
    return AnnotationHeader(path, AnnotationKind.RTSTRUCT, text(dataset, "PatientID"), text(dataset, "StudyInstanceUID"),
                            text(dataset, "SeriesInstanceUID"), text(dataset, "StructureSetLabel"),
                            frozenset(studies - {""}), frozenset(series - {""}), frozenset(sops - {""}),
                            frozenset(frames - {""}), tuple(sorted(p for p in planes if len(p) == 3)), (), names,
                            count)


def _seg_header(path: str) -> AnnotationHeader:
    dataset = read_dataset(path, expect="SEG", stop_before_pixels=True)
    series, sops = set(), set()
    for item in sequence(dataset, "ReferencedSeriesSequence"):
        series.add(text(item, "SeriesInstanceUID"))
        sops.update(text(i, "ReferencedSOPInstanceUID") for i in sequence(item, "ReferencedInstanceSequence"))
    planes = set()
    for group in sequence(dataset, "PerFrameFunctionalGroupsSequence"):
        for derivation in sequence(group, "DerivationImageSequence"):
            sops.update(text(s, "ReferencedSOPInstanceUID") for s in sequence(derivation, "SourceImageSequence"))
        for plane in sequence(group, "PlanePositionSequence"):
            try:
                planes.add(tuple(round(float(v), _PLANE_ROUNDING) for v in plane.ImagePositionPatient))
            except (AttributeError, TypeError, ValueError):
                continue
    names = tuple(text(item, "SegmentLabel") for item in sequence(dataset, "SegmentSequence"))
    frames = {text(dataset, "FrameOfReferenceUID")} - {""}
    return AnnotationHeader(path, AnnotationKind.SEG, text(dataset, "PatientID"), text(dataset, "StudyInstanceUID"),
                            text(dataset, "SeriesInstanceUID"), text(dataset, "SeriesDescription"),
                            frozenset({text(dataset, "StudyInstanceUID")} - {""}), frozenset(series - {""}),
                            frozenset(sops - {""}), frozenset(frames), tuple(sorted(planes)), (), names,
                            len(sequence(dataset, "PerFrameFunctionalGroupsSequence")))


def _lidc_header(path: str) -> AnnotationHeader:
    document = parse_lidc_xml(path)
    sops = {roi.sop_uid for reading in document.readings for roi in reading.rois} - {""}
    zs = tuple(sorted({roi.z for reading in document.readings for roi in reading.rois}))
    names = tuple(f"reader{r.session}:{r.mark_id}" for r in document.readings)
    return AnnotationHeader(path, AnnotationKind.LIDC_XML, "", document.study_uid, "", "LIDC reading",
                            frozenset({document.study_uid} - {""}), frozenset({document.series_uid} - {""}),
                            frozenset(sops), frozenset(), (), zs, names,
                            sum(len(r.rois) for r in document.readings))


def read_header(path: str | os.PathLike) -> AnnotationHeader:
    """The references of the annotation object at ``path`` (raises typed errors for unreadable files)."""
    path = os.fspath(path)
    kind = annotation_kind(path)
    if kind is AnnotationKind.RTSTRUCT:
        return _rtstruct_header(path)
    if kind is AnnotationKind.SEG:
        return _seg_header(path)
    if kind is AnnotationKind.LIDC_XML:
        return _lidc_header(path)
    raise UnsupportedFormatError("not an annotation object (RTSTRUCT, DICOM SEG or LIDC-IDRI XML)", path=path)
