"""Volume meta (the keys of :data:`medconv.volume.META_KEYS`) from one parsed DICOM dataset.

``meta_from_header`` serves single-frame series (from the scanned header of
their first slice); ``meta_from_dataset`` the mosaic and multi-frame readers,
whose whole series (or time point) is described by one parsed file. Rescale attributes are left out on purpose:
they are applied to the pixels already.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from .decode import first_float

if TYPE_CHECKING:  # pragma: no cover
    from .headers import DicomHeader


def _text(value: Any) -> str:
    if value is None:
        return ""
    return str(value).strip()


def meta_from_dataset(ds: Any, paths: Sequence[str], units: str | None, warnings: Sequence[str]) -> dict:
    """The Volume meta of a series described by ``ds`` and made of ``paths``."""
    meta: dict[str, Any] = {
        "source_format": "dicom",
        "source_files": [str(p) for p in paths],
        "warnings": list(warnings),
    }
    for key, keyword in (
        ("modality", "Modality"),
        ("patient_id", "PatientID"),
        ("study_uid", "StudyInstanceUID"),
        ("series_uid", "SeriesInstanceUID"),
        ("series_description", "SeriesDescription"),
        ("study_date", "StudyDate"),
        ("manufacturer", "Manufacturer"),
    ):
        value = _text(ds.get(keyword))
        if value:
            meta[key] = value
    number = ds.get("SeriesNumber")
    if number not in (None, ""):
        try:
            meta["series_number"] = int(number)
        except (TypeError, ValueError):
            pass
    centre, width = first_float(ds.get("WindowCenter")), first_float(ds.get("WindowWidth"))
    if centre is not None and width is not None:
        meta["window"] = [centre, width]
    if units:
        meta["units"] = units
    dicom: dict[str, Any] = {}
    for keyword in ("SOPClassUID", "ProtocolName", "SequenceName", "MagneticFieldStrength", "RepetitionTime",
                    "EchoTime", "EchoNumbers", "FlipAngle", "SliceThickness", "SpacingBetweenSlices",
                    "PatientPosition", "ImageType"):
        value = ds.get(keyword)
        if value in (None, ""):
            continue
        if keyword == "ImageType":
            value = [str(v) for v in value] if not isinstance(value, str) else [value]
        elif isinstance(value, str):
            value = str(value)
        elif isinstance(value, (int, float)):
            value = float(value)
        else:
            text = str(value)
            try:
                value = float(text)
            except ValueError:
                value = text
        dicom[keyword] = value
    if dicom:
        meta["dicom"] = dicom
    return meta


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


def meta_from_header(first: "DicomHeader", paths: list[str], units: str | None, warnings: list[str]) -> dict:
    """Volume meta (:data:`medconv.volume.META_KEYS`) of a series from its first header."""
    meta: dict = {"source_format": "dicom", "source_files": list(paths), "warnings": list(warnings)}
    for key, value in (("modality", first.modality), ("patient_id", first.patient_id),
                       ("study_uid", first.study_uid), ("series_uid", first.series_uid),
                       ("series_number", first.series_number), ("series_description", first.series_description),
                       ("study_date", first.study_date), ("manufacturer", first.manufacturer), ("units", units)):
        if value not in (None, ""):
            meta[key] = value
    if first.window:
        meta["window"] = display_window(first)
    dicom = {
        "sop_class_uid": first.sop_class_uid,
        "study_instance_uid": first.study_uid,
        "series_instance_uid": first.series_uid,
        "frame_of_reference_uid": first.frame_of_reference_uid,
        "modality": first.modality,
        "manufacturer": first.manufacturer,
        "convolution_kernel": first.kernel,
        "kvp": first.kvp,
        "slice_thickness": first.slice_thickness,
        "window_center": first.window[0] if first.window else None,
        "window_width": first.window[1] if first.window else None,
        "patient_position": first.patient_position,
        "body_part_examined": first.body_part,
        "protocol_name": first.protocol_name,
        "image_type": list(first.image_type),
        "gantry_detector_tilt": first.gantry_tilt,
        "echo_number": first.echo_number,
        "echo_time": first.echo_time,
        "transfer_syntax_uid": first.transfer_syntax,
        "source_file_count": len(paths),
    }
    meta["dicom"] = {key: value for key, value in dicom.items() if value not in (None, "", [])}
    return meta
