"""The one Volume meta builder of the DICOM reader (every layout goes through :func:`volume_meta`).

Keys of ``meta`` follow :data:`medconv.volume.META_KEYS`. ``meta["dicom"]`` holds
the DICOM attributes worth keeping in the sidecar, under their **DICOM
keywords** (the names dcm2niix's BIDS sidecars and pydicom use), whatever the
layout: :data:`DICOM_SIDECAR_KEYWORDS` lists them with the header field each
comes from. Layout-specific facts are added by the assembly under keywords too
(``NumberOfImagesInMosaic``, ``FrameGroup``, ``DiffusionBValues`` ...;
docs/dicom.md lists them). Rescale attributes are left out on purpose: they are
applied to the pixels already.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from .headers import DicomHeader

#: ``(sidecar keyword, DicomHeader attribute)`` of the attributes every layout writes when present.
DICOM_SIDECAR_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("SOPClassUID", "sop_class_uid"), ("StudyInstanceUID", "study_uid"), ("SeriesInstanceUID", "series_uid"),
    ("FrameOfReferenceUID", "frame_of_reference_uid"), ("Modality", "modality"), ("Manufacturer", "manufacturer"),
    ("ProtocolName", "protocol_name"), ("SequenceName", "sequence_name"), ("ImageType", "image_type"),
    ("ConvolutionKernel", "kernel"), ("KVP", "kvp"), ("SliceThickness", "slice_thickness"),
    ("SpacingBetweenSlices", "spacing_between_slices"), ("GantryDetectorTilt", "gantry_tilt"),
    ("MagneticFieldStrength", "field_strength"), ("RepetitionTime", "repetition_time"),
    ("EchoTime", "echo_time"), ("EchoNumbers", "echo_number"), ("FlipAngle", "flip_angle"),
    ("PatientPosition", "patient_position"), ("BodyPartExamined", "body_part"),
    ("SpecificCharacterSet", "charset"), ("TransferSyntaxUID", "transfer_syntax"),
)


def display_window(first: "DicomHeader") -> list[float]:
    """The header's WindowCenter/Width in the values medconv writes.

    The window applies to rescaled values before the MONOCHROME1 inversion
    (PS3.3 C.11.2.1.2); medconv inverts stored values ``v -> low + high - v``, so
    the centre moves to ``slope * (low + high) + 2 * intercept - centre``.
    """
    centre, width = (float(v) for v in first.window[:2])
    if first.photometric == "MONOCHROME1" and first.bits_stored:
        if first.pixel_representation:
            low, high = -(1 << (first.bits_stored - 1)), (1 << (first.bits_stored - 1)) - 1
        else:
            low, high = 0, (1 << first.bits_stored) - 1
        slope = first.slope if first.slope is not None else 1.0
        intercept = first.intercept if first.intercept is not None else 0.0
        centre = slope * (low + high) + 2 * intercept - centre
    return [centre, width]


def volume_meta(first: "DicomHeader", paths: Sequence[str], units: str | None, warnings: Sequence[str],
                extra: dict[str, Any] | None = None) -> dict:
    """Volume meta of a unit described by its first header and made of ``paths`` (in output order).

    ``extra`` adds layout-specific entries to ``meta["dicom"]`` (DICOM keywords).
    """
    meta: dict[str, Any] = {"source_format": "dicom", "source_files": [str(p) for p in paths],
                            "warnings": list(warnings) + [w for w in first.text_warnings if w not in warnings]}
    for key, value in (("modality", first.modality), ("patient_id", first.patient_id),
                       ("study_uid", first.study_uid), ("series_uid", first.series_uid),
                       ("series_number", first.series_number), ("series_description", first.series_description),
                       ("study_date", first.study_date), ("manufacturer", first.manufacturer), ("units", units)):
        if value not in (None, ""):
            meta[key] = value
    if first.window:
        meta["window"] = display_window(first)
    dicom: dict[str, Any] = {}
    for keyword, attribute in DICOM_SIDECAR_KEYWORDS:
        value = getattr(first, attribute)
        if value in (None, "", (), []):
            continue
        dicom[keyword] = list(value) if isinstance(value, tuple) else value
    if first.window:
        dicom["WindowCenter"], dicom["WindowWidth"] = first.window[0], first.window[1]
    dicom.update(extra or {})
    meta["dicom"] = dicom
    return meta
