"""Fast header-only scan of DICOM files: one small picklable record per file.

Discovery of a TCIA download parses tens of thousands of headers, so each file is
read with ``stop_before_pixels`` and only the tags in :data:`SCAN_TAGS` are
decoded (pydicom skips the values of every other element). A large scan runs in
a process pool (:func:`scan_files`).

Which files are DICOM: ``DICM`` at byte 128 (Part 10), or a file without preamble
whose first element is in group 0002 or 0008 (old or stripped files, as found
without suffix in some archives), or ``.dcm.gz``. A DICOMDIR is skipped, and so is
every other file, each with the reason in :attr:`ScanResult.skipped`.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, field
from typing import Iterable, Sequence

#: File names and suffixes that are never DICOM (skipped without opening them).
NOT_DICOM_SUFFIXES = (
    ".txt", ".xml", ".json", ".csv", ".md", ".html", ".pdf", ".py", ".zip", ".tar", ".tgz", ".nii", ".nii.gz",
    ".mhd", ".mha", ".raw", ".zraw", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".npz", ".npy",
    ".sh", ".log", ".ini", ".yaml", ".yml", ".hdr", ".img",
)
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
ENHANCED_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR
    "1.2.840.10008.5.1.4.1.1.4.3",  # Enhanced MR Color
    "1.2.840.10008.5.1.4.1.1.128.1",  # Legacy Converted Enhanced PET
    "1.2.840.10008.5.1.4.1.1.2.2",  # Legacy Converted Enhanced CT
    "1.2.840.10008.5.1.4.1.1.4.4",  # Legacy Converted Enhanced MR
    "1.2.840.10008.5.1.4.1.1.130",  # Enhanced PET
}

#: The only tags decoded during a scan (keywords; private Siemens mosaic tag by number).
SCAN_KEYWORDS = (
    "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID",
    "PatientID", "StudyDate", "StudyDescription", "SeriesDescription", "SeriesNumber", "Modality",
    "Manufacturer", "ImageType", "ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing", "Rows",
    "Columns", "NumberOfFrames", "SamplesPerPixel", "PhotometricInterpretation", "BitsAllocated",
    "EchoNumbers", "EchoTime", "TemporalPositionIdentifier", "AcquisitionNumber", "InstanceNumber",
    "TriggerTime", "GantryDetectorTilt", "SliceThickness", "ConvolutionKernel", "KVP", "WindowCenter",
    "WindowWidth", "PatientPosition", "BodyPartExamined", "AccessionNumber", "StudyTime", "SeriesTime",
    "SeriesDate", "ImagesInAcquisition", "ProtocolName", "DiffusionBValue",
)
MOSAIC_IMAGES_TAG = 0x0019100A  # Siemens NumberOfImagesInMosaic (private)


@dataclass(slots=True)
class DicomHeader:
    """What grouping, geometry and naming need from one DICOM file (picklable, no pixels)."""

    path: str
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    study_uid: str = ""
    series_uid: str = ""
    frame_of_reference_uid: str = ""
    patient_id: str = ""
    study_date: str = ""
    study_description: str = ""
    series_description: str = ""
    series_number: int | None = None
    modality: str = ""
    manufacturer: str = ""
    image_type: tuple[str, ...] = ()
    iop: tuple[float, ...] | None = None
    ipp: tuple[float, float, float] | None = None
    pixel_spacing: tuple[float, float] | None = None
    rows: int = 0
    columns: int = 0
    number_of_frames: int = 1
    samples_per_pixel: int = 1
    photometric: str = ""
    bits_allocated: int = 0
    echo_number: int | None = None
    echo_time: float | None = None
    temporal_position: int | None = None
    acquisition_number: int | None = None
    instance_number: int | None = None
    trigger_time: float | None = None
    gantry_tilt: float | None = None
    slice_thickness: float | None = None
    kernel: str = ""
    kvp: float | None = None
    window: tuple[float, float] | None = None
    patient_position: str = ""
    body_part: str = ""
    protocol_name: str = ""
    transfer_syntax: str = ""
    mosaic_images: int | None = None
    has_pixels: bool = False

    @property
    def is_enhanced(self) -> bool:
        """An enhanced (or legacy-converted) multi-frame object: geometry per frame."""
        return self.sop_class_uid in ENHANCED_SOP_CLASSES

    @property
    def is_multiframe(self) -> bool:
        return self.number_of_frames > 1 or self.is_enhanced

    @property
    def is_mosaic(self) -> bool:
        """A Siemens mosaic: several slices tiled in one image."""
        return "MOSAIC" in self.image_type


@dataclass
class ScanResult:
    """The headers found, and the files that were not DICOM images (with why)."""

    headers: list[DicomHeader] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)


def looks_like_dicom(path: str) -> bool:
    """Cheap test: Part-10 preamble, ``.dcm.gz``, or a preamble-less file starting with group 0002/0008."""
    try:
        if path.lower().endswith(".gz"):
            return path.lower().endswith((".dcm.gz", ".ima.gz"))
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    if len(head) >= 132 and head[128:132] == b"DICM":
        return True
    return len(head) >= 8 and head[:2] in (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08")


def _text(value) -> str:
    if value is None:
        return ""
    return str(value).strip().replace("\x00", "")


def _int(value) -> int | None:
    try:
        if value is None or value == "":
            return None
        if isinstance(value, (list, tuple)) or hasattr(value, "__len__") and not isinstance(value, str):
            value = value[0]
        return int(float(value))
    except (TypeError, ValueError, IndexError):
        return None


def _float(value) -> float | None:
    try:
        if value is None or value == "":
            return None
        if not isinstance(value, str) and hasattr(value, "__len__"):
            value = value[0]
        return float(value)
    except (TypeError, ValueError, IndexError):
        return None


def _floats(value, count: int) -> tuple[float, ...] | None:
    try:
        values = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return values if len(values) == count else None


def read_header(path: str) -> DicomHeader:
    """Parse one file's header (no pixel data); raises on non-DICOM or unreadable files.

    Raises
    ------
    pydicom.errors.InvalidDicomError, OSError, EOFError, ValueError
        Callers (:func:`scan_files`) turn these into skip notes.
    """
    import pydicom
    from pydicom.tag import Tag

    tags = [Tag(keyword) for keyword in SCAN_KEYWORDS] + [Tag(MOSAIC_IMAGES_TAG), Tag("PixelData"),
                                                           Tag("FloatPixelData"), Tag("DoubleFloatPixelData")]
    preamble = path.lower().endswith(".gz") or _has_preamble(path)
    if path.lower().endswith(".gz"):
        with gzip.open(path, "rb") as handle:
            ds = pydicom.dcmread(handle, stop_before_pixels=True, specific_tags=tags)
    else:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=tags, force=not preamble)
    get = ds.get
    header = DicomHeader(path=path)
    header.sop_class_uid = _text(get("SOPClassUID"))
    meta = getattr(ds, "file_meta", None)
    if not header.sop_class_uid and meta is not None:
        header.sop_class_uid = _text(meta.get("MediaStorageSOPClassUID"))
    header.transfer_syntax = _text(meta.get("TransferSyntaxUID")) if meta is not None else ""
    header.sop_instance_uid = _text(get("SOPInstanceUID"))
    header.study_uid = _text(get("StudyInstanceUID"))
    header.series_uid = _text(get("SeriesInstanceUID"))
    header.frame_of_reference_uid = _text(get("FrameOfReferenceUID"))
    header.patient_id = _text(get("PatientID"))
    header.study_date = _text(get("StudyDate"))
    header.study_description = _text(get("StudyDescription"))
    header.series_description = _text(get("SeriesDescription"))
    header.series_number = _int(get("SeriesNumber"))
    header.modality = _text(get("Modality")).upper()
    header.manufacturer = _text(get("Manufacturer"))
    image_type = get("ImageType")
    if image_type is not None:
        values = [image_type] if isinstance(image_type, str) else list(image_type)
        header.image_type = tuple(_text(v).upper() for v in values)
    header.iop = _floats(get("ImageOrientationPatient") or (), 6)
    header.ipp = _floats(get("ImagePositionPatient") or (), 3)
    header.pixel_spacing = _floats(get("PixelSpacing") or (), 2)
    header.rows = _int(get("Rows")) or 0
    header.columns = _int(get("Columns")) or 0
    header.number_of_frames = _int(get("NumberOfFrames")) or 1
    header.samples_per_pixel = _int(get("SamplesPerPixel")) or 1
    header.photometric = _text(get("PhotometricInterpretation")).upper()
    header.bits_allocated = _int(get("BitsAllocated")) or 0
    header.echo_number = _int(get("EchoNumbers"))
    header.echo_time = _float(get("EchoTime"))
    header.temporal_position = _int(get("TemporalPositionIdentifier"))
    header.acquisition_number = _int(get("AcquisitionNumber"))
    header.instance_number = _int(get("InstanceNumber"))
    header.trigger_time = _float(get("TriggerTime"))
    header.gantry_tilt = _float(get("GantryDetectorTilt"))
    header.slice_thickness = _float(get("SliceThickness"))
    header.kernel = "\\".join(_text(v) for v in (get("ConvolutionKernel") or ())) if not isinstance(
        get("ConvolutionKernel"), str) else _text(get("ConvolutionKernel"))
    header.kvp = _float(get("KVP"))
    centre, width = _float(get("WindowCenter")), _float(get("WindowWidth"))
    header.window = (centre, width) if centre is not None and width is not None else None
    header.patient_position = _text(get("PatientPosition"))
    header.body_part = _text(get("BodyPartExamined"))
    header.protocol_name = _text(get("ProtocolName"))
    element = ds.get(MOSAIC_IMAGES_TAG)
    if element is not None:
        header.mosaic_images = _mosaic_count(element.value)
    header.has_pixels = header.rows > 0 and header.columns > 0 and header.bits_allocated > 0
    return header


def _mosaic_count(value) -> int | None:
    if isinstance(value, (bytes, bytearray)):
        if len(value) in (2, 4):
            return int.from_bytes(value, "little") or None
        try:
            return int(value.decode("ascii").strip("\x00 "))
        except ValueError:
            return None
    return _int(value)


def _has_preamble(path: str) -> bool:
    with open(path, "rb") as handle:
        handle.seek(128)
        return handle.read(4) == b"DICM"


def classify_path(path: str) -> str | None:
    """Why a file is skipped without parsing it, or ``None`` if it may be DICOM."""
    name = os.path.basename(path)
    lower = name.lower()
    if name.upper() == "DICOMDIR":
        return "DICOMDIR (a media index, not an image)"
    if lower.endswith(NOT_DICOM_SUFFIXES) and not lower.endswith((".dcm.gz", ".ima.gz")):
        return "not DICOM (file suffix)"
    if not looks_like_dicom(path):
        return "not DICOM (no DICM marker)"
    return None


def scan_one(path: str) -> tuple[str, DicomHeader | str, str]:
    """``("ok", header, "")``, ``("skip", path, reason)`` or ``("bad", path, reason)`` for one file."""
    reason = classify_path(path)
    if reason:
        return ("skip", path, reason)
    try:
        header = read_header(path)
    except Exception as exc:  # a third-party parse error on a bad file: recorded, not raised
        return ("bad", path, f"unreadable DICOM header ({type(exc).__name__}: {exc})")
    if header.sop_class_uid == DICOMDIR_SOP_CLASS:
        return ("skip", path, "DICOMDIR (a media index, not an image)")
    if not header.series_uid:
        return ("bad", path, "DICOM file without SeriesInstanceUID (truncated, or not a usable object)")
    return ("ok", header, "")


def _scan_chunk(paths: Sequence[str]) -> list[tuple[str, DicomHeader | str, str]]:
    return [scan_one(path) for path in paths]


#: Below this many files a scan stays in the calling process (pool start-up costs ~0.2 s).
PARALLEL_THRESHOLD = 400


def scan_files(paths: Iterable[str], jobs: int | None = None) -> ScanResult:
    """Scan many files' headers; in a process pool when there are many and ``jobs`` allows.

    Parameters
    ----------
    paths:
        Candidate files (any suffix).
    jobs:
        Worker processes; ``None`` uses every core, 1 scans in this process.
    """
    paths = list(paths)
    jobs = (os.cpu_count() or 1) if jobs is None else max(1, jobs)
    if jobs > 1 and len(paths) >= PARALLEL_THRESHOLD:
        from concurrent.futures import ProcessPoolExecutor

        chunk = max(64, len(paths) // (jobs * 8))
        chunks = [paths[start:start + chunk] for start in range(0, len(paths), chunk)]
        try:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                outcomes = [item for part in pool.map(_scan_chunk, chunks) for item in part]
        except (OSError, RuntimeError):  # no process support here (sandbox, frozen app): scan serially
            outcomes = _scan_chunk(paths)
    else:
        outcomes = _scan_chunk(paths)
    result = ScanResult()
    for status, value, reason in outcomes:
        if status == "ok":
            result.headers.append(value)
        elif status == "skip":
            result.skipped.append((value, reason))
        else:
            result.unreadable.append((value, reason))
    return result
