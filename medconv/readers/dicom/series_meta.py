"""Volume meta (the keys of :data:`medconv.volume.META_KEYS`) from one parsed DICOM dataset.

Used by the mosaic and multi-frame readers, whose whole series (or time point)
is described by one file's header. Rescale attributes are left out on purpose:
they are applied to the pixels already.
"""

from __future__ import annotations

from typing import Any, Sequence


def _text(value: Any) -> str:
    if value is None:
        return ""
    return str(value).strip()


def _first_float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        if hasattr(value, "__len__") and not isinstance(value, (str, bytes)):
            value = value[0]
        return float(value)
    except (TypeError, ValueError, IndexError):
        return None


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
    centre, width = _first_float(ds.get("WindowCenter")), _first_float(ds.get("WindowWidth"))
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
