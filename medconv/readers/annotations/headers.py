"""Cheap header facts of annotation objects: what each references (for discovery and pairing).

:func:`read_header` reads an RTSTRUCT or SEG header with every long value deferred
(no pixel data, no contour points: an RTSTRUCT's points are read only when it names
no series and no instance, one point per contour, for the frame-of-reference rule),
or scans a LIDC XML file for its UIDs without parsing it (:func:`~.lidc_xml.scan_lidc_xml`),
and returns an :class:`AnnotationHeader`. The readers parse the whole object later, in
the worker; a file cut after its references pairs here and fails there, with the reason.
:func:`annotation_kind` recognises the kind from the first bytes, never raising.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

from ...errors import UnreadableFileError, UnsupportedFormatError
from ..files import is_regular_file
from .dicom_io import REQUIRED_SEQUENCES, SEG_SOP_CLASSES, RTSTRUCT_STORAGE, sequence, text
from .lidc_xml import LIDC_LABEL, is_lidc_family_xml, scan_lidc_xml
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
    roi_names:
        RTSTRUCT: its ROIName values; SEG: its SegmentLabel values; LIDC: one entry per
        mark (nodule, small nodule, non-nodule) of every reader.
    contours:
        RTSTRUCT: its contours; SEG: its frames; LIDC: its per-slice outlines (``roi``
        elements). :data:`~.model.COUNT_NOUNS` names both counts per kind.
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
    """RTSTRUCT, SEG or LIDC XML from the file's first bytes / header; ``None`` for anything else. Never raises.

    LIDC XML means the LIDC-IDRI family (:func:`~.lidc_xml.is_lidc_family_xml`): reading one that is
    not a ``LidcReadMessage`` raises the reason.
    """
    path = os.fspath(path)
    if not is_regular_file(path):  # a FIFO or device is never opened (it would block, or never end)
        return None
    if is_lidc_family_xml(path):
        return AnnotationKind.LIDC_XML
    try:
        import pydicom

        from ..dicom.headers import is_bare_dataset

        dataset = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID", "Modality"],
                                  force=is_bare_dataset(path))
    except Exception:  # noqa: BLE001 - a sniffer never raises
        return None
    modality, sop_class = str(dataset.get("Modality", "")), str(dataset.get("SOPClassUID", ""))
    if modality == "RTSTRUCT" or sop_class == RTSTRUCT_STORAGE:
        return AnnotationKind.RTSTRUCT
    if modality == "SEG" or sop_class in SEG_SOP_CLASSES:
        return AnnotationKind.SEG
    return None


#: Header reads defer element values longer than this (bytes): contour points and frame pixels stay on disk.
_DEFER_BYTES = 256


def _header_dataset(path: str, expect: str):
    """The dataset of an RTSTRUCT / SEG with long values (contour data) deferred: a cheap read for pairing."""
    import pydicom

    from ..dicom.headers import is_bare_dataset

    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=True, defer_size=_DEFER_BYTES, force=is_bare_dataset(path))
    except Exception as error:  # noqa: BLE001 - pydicom raises many kinds on a cut or corrupt file
        if isinstance(error, OSError) and not isinstance(error, EOFError):
            raise UnreadableFileError(f"cannot open: {getattr(error, 'strerror', None) or error}", path=path,
                                      hint="check the path and its permissions") from None
        raise UnreadableFileError(f"not a readable {expect} DICOM file ({type(error).__name__}: {error})",
                                  path=path, hint="the file is truncated or corrupt: download it again") from None
    missing = [keyword for keyword in REQUIRED_SEQUENCES[expect] if keyword not in dataset]
    if missing:
        raise UnreadableFileError(f"incomplete {expect} file: it lacks {', '.join(missing)}", path=path,
                                  hint="the file is truncated or corrupt: download it again")
    return dataset


def _first_point(contour) -> Optional[tuple[float, float, float]]:
    """The first point of a contour (reading its deferred ContourData), or ``None``."""
    try:
        values = contour.get("ContourData", None)
        point = tuple(round(float(v), _PLANE_ROUNDING) for v in list(values)[:3])
    except (TypeError, ValueError, OSError):
        return None
    return point if len(point) == 3 else None


def rtstruct_label(dataset) -> str:
    """The name an RTSTRUCT's outputs are named after: StructureSetLabel, else SeriesDescription, else 'rtstruct'."""
    return text(dataset, "StructureSetLabel") or text(dataset, "SeriesDescription") or "rtstruct"


def seg_label(dataset) -> str:
    """The name a SEG's outputs are named after: SeriesDescription, else ContentLabel, else 'seg'."""
    return text(dataset, "SeriesDescription") or text(dataset, "ContentLabel") or "seg"


def _rtstruct_header(path: str) -> AnnotationHeader:
    dataset = _header_dataset(path, "RTSTRUCT")
    studies, series, sops, frames = set(), set(), set(), set()
    for frame in sequence(dataset, "ReferencedFrameOfReferenceSequence"):
        frames.add(text(frame, "FrameOfReferenceUID"))
        for study in sequence(frame, "RTReferencedStudySequence"):
            studies.add(text(study, "ReferencedSOPInstanceUID"))
            for item in sequence(study, "RTReferencedSeriesSequence"):
                series.add(text(item, "SeriesInstanceUID"))
                sops.update(text(image, "ReferencedSOPInstanceUID") for image in sequence(item, "ContourImageSequence"))
    contours = [contour for roi in sequence(dataset, "ROIContourSequence") for contour in sequence(roi, "ContourSequence")]
    for contour in contours:
        sops.update(text(image, "ReferencedSOPInstanceUID") for image in sequence(contour, "ContourImageSequence"))
    series, sops = series - {""}, sops - {""}
    planes: set = set()
    if not series and not sops:  # only the frame-of-reference rule needs where the contours lie
        planes = {point for point in map(_first_point, contours) if point is not None}
    names = tuple(text(item, "ROIName") for item in sequence(dataset, "StructureSetROISequence"))
    return AnnotationHeader(path, AnnotationKind.RTSTRUCT, text(dataset, "PatientID"), text(dataset, "StudyInstanceUID"),
                            text(dataset, "SeriesInstanceUID"), rtstruct_label(dataset),
                            frozenset(studies - {""}), frozenset(series), frozenset(sops),
                            frozenset(frames - {""}), tuple(sorted(planes)), (), names, len(contours))


def _seg_header(path: str) -> AnnotationHeader:
    dataset = _header_dataset(path, "SEG")
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
                            text(dataset, "SeriesInstanceUID"), seg_label(dataset),
                            frozenset({text(dataset, "StudyInstanceUID")} - {""}), frozenset(series - {""}),
                            frozenset(sops - {""}), frozenset(frames), tuple(sorted(planes)), (), names,
                            len(sequence(dataset, "PerFrameFunctionalGroupsSequence")))


def _lidc_header(path: str) -> AnnotationHeader:
    facts = scan_lidc_xml(path)
    return AnnotationHeader(path, AnnotationKind.LIDC_XML, "", facts.study_uid, "", LIDC_LABEL,
                            frozenset({facts.study_uid} - {""}), frozenset({facts.series_uid} - {""}),
                            frozenset(facts.sop_uids - {""}), frozenset(), (), facts.z_positions, facts.marks,
                            facts.rois)


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
