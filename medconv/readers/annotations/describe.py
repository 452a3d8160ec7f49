"""What an annotation object holds, for ``medconv info``: its ROIs / segments / readings and what it references.

:func:`describe_annotation` reads the whole object (not only the header): each RTSTRUCT
ROI with its contour count and geometric types, each SEG segment with its frames, each
LIDC reading session with its nodules and marks, plus the references pairing uses. It
never draws anything (no image is needed); :func:`paired_image` says which image unit
beside the file it would be drawn on.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any, Optional

from .headers import read_header
from .model import AnnotationKind


def _rtstruct_rois(path: str) -> list[dict[str, Any]]:
    import warnings

    from .dicom_io import read_dataset
    from .rtstruct import parse_rois

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        rois = parse_rois(read_dataset(path, expect="RTSTRUCT"))
    return [{"number": roi.number, "name": roi.name, "type": roi.interpreted_type, "contours": len(roi.contours),
             "geometry": dict(Counter(c.geometric_type for c in roi.contours)), "color": roi.color,
             **({"problem": roi.problem} if roi.problem else {})} for roi in rois]


def _seg_segments(path: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from .dicom_io import read_dataset, sequence, text

    from .seg import functional_group

    dataset = read_dataset(path, expect="SEG", stop_before_pixels=True)
    shared = (sequence(dataset, "SharedFunctionalGroupsSequence") or [None])[0]
    frames: Counter = Counter()
    for group in sequence(dataset, "PerFrameFunctionalGroupsSequence"):
        item = functional_group(group, shared, "SegmentIdentificationSequence")
        if item is not None:
            frames[int(item.get("ReferencedSegmentNumber", 0) or 0)] += 1
    segments = [{"number": int(item.SegmentNumber), "name": text(item, "SegmentLabel"),
                 "frames": frames.get(int(item.SegmentNumber), 0)} for item in sequence(dataset, "SegmentSequence")]
    facts = {"segmentation_type": text(dataset, "SegmentationType"),
             "frames": len(sequence(dataset, "PerFrameFunctionalGroupsSequence")),
             "rows": int(dataset.get("Rows", 0) or 0), "columns": int(dataset.get("Columns", 0) or 0)}
    return segments, facts


def _lidc_sessions(path: str) -> list[dict[str, Any]]:
    from .lidc_xml import ReadingKind, parse_lidc_xml

    document = parse_lidc_xml(path)
    sessions = []
    for number in range(1, document.sessions + 1):
        readings = [r for r in document.readings if r.session == number]
        count = Counter(r.kind for r in readings)
        sessions.append({"session": number, "reader": readings[0].reader_id if readings else "",
                         "nodules": count.get(ReadingKind.NODULE, 0),
                         "small_nodules": count.get(ReadingKind.SMALL_NODULE, 0),
                         "non_nodules": count.get(ReadingKind.NON_NODULE, 0),
                         "rois": sum(len(r.rois) for r in readings if r.kind is ReadingKind.NODULE)})
    return sessions


def describe_annotation(path: str | os.PathLike) -> dict[str, Any]:
    """Every fact ``medconv info`` shows about an annotation object (raises typed errors for bad files)."""
    path = os.fspath(path)
    header = read_header(path)
    description: dict[str, Any] = {
        "file": path, "kind": header.kind.value, "patient_id": header.patient_id, "label": header.label,
        "series_uid": header.series_uid, "study_uid": header.study_uid,
        "referenced_series": sorted(header.referenced_series_uids),
        "referenced_instances": len(header.referenced_sop_uids),
        "frame_of_reference": sorted(header.frame_of_reference_uids), "contours": header.contours,
    }
    if header.kind is AnnotationKind.RTSTRUCT:
        description["rois"] = _rtstruct_rois(path)
    elif header.kind is AnnotationKind.SEG:
        description["segments"], facts = _seg_segments(path)
        description.update(facts)
        del description["contours"]  # a SEG has frames (``frames``), not contours
    else:
        description["sessions"] = _lidc_sessions(path)
    return description


def paired_image(path: str | os.PathLike) -> tuple[Optional[str], str]:
    """``(image unit id, the rule that paired it)`` of the image beside ``path`` it would be drawn on,
    or ``(None, why not)``: the units in its folder, else in the folder above, are tried."""
    from ...errors import MedconvError
    from .reader import paired_plan

    try:
        plan = paired_plan(os.fspath(path))
    except MedconvError as error:
        return None, error.message
    return plan.image.id, plan.pairing.rule.value
