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
import math
import os
import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from .charset import decode_texts
from .diffusion import DIFFUSION_TAGS, Diffusion, diffusion_from_elements
from .rawheader import PIXEL_DATA, RawHeader, parse_file
from .sop_classes import uses_functional_groups

#: Suffixes of other formats: such a file is DICOM only with the Part-10 ``DICM`` marker.
NOT_DICOM_SUFFIXES = (
    ".txt", ".xml", ".json", ".csv", ".md", ".html", ".pdf", ".py", ".zip", ".tar", ".tgz", ".nii", ".nii.gz",
    ".mhd", ".mha", ".raw", ".zraw", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".npz", ".npy",
    ".sh", ".log", ".ini", ".yaml", ".yml", ".hdr", ".img",
)
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"

MOSAIC_IMAGES_TAG = 0x0019100A  # Siemens NumberOfImagesInMosaic (private)
#: Float Pixel Data and Double Float Pixel Data, and the bits of their values.
FLOAT_PIXEL_BITS = {0x7FE00008: 32, 0x7FE00009: 64}


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
    sequence_name: str = ""
    repetition_time: float | None = None
    flip_angle: float | None = None
    field_strength: float | None = None
    spacing_between_slices: float | None = None
    temporal_positions: int | None = None
    acquisition_time: str = ""
    #: SpecificCharacterSet (0008,0005) as written (``""``: the default repertoire).
    charset: str = ""
    #: PatientName (PN) as pydicom shows it (``Yamada^Tarou=山田^太郎``); text fields are decoded by :mod:`.charset`.
    patient_name: str = ""
    #: What went wrong decoding the text fields with the declared character set (:func:`.charset.decode_texts`).
    text_warnings: tuple[str, ...] = ()
    transfer_syntax: str = ""
    mosaic_images: int | None = None
    #: b-value and gradient (standard or vendor tags, :mod:`.diffusion`); ``None`` when the file states none.
    diffusion: Diffusion | None = None
    has_pixels: bool = False
    # pixel attributes (the pixel stage reads the voxels from these, without parsing the file again)
    bits_stored: int | None = None
    high_bit: int | None = None
    pixel_representation: int = 0
    planar_configuration: int = 0
    slope: float | None = None
    intercept: float | None = None
    rescale_type: str = ""
    pet_units: str = ""
    #: File offset of the first Pixel Data value byte (-1: not known, e.g. parsed by pydicom).
    pixel_offset: int = -1
    #: Length of the Pixel Data value (0xFFFFFFFF: encapsulated).
    pixel_length: int = 0
    #: VR of the Pixel Data element as written ("" in implicit VR).
    pixel_vr: str = ""
    #: 32 or 64 when the pixels are Float / Double Float Pixel Data (Parametric Maps), 0 for Pixel Data.
    float_pixel_bits: int = 0
    #: ``(size, mtime_ns)`` of the file when its header was parsed (``None``: not known).
    file_stamp: tuple[int, int] | None = None
    #: ``(keyword, what is wrong)`` of each element of :data:`FIELDS` that is present but cannot be read
    #: (``PixelSpacing`` with 3 values, ``RescaleIntercept = x``, ``Rows`` of 4 bytes, ``nan``): its field is
    #: left unset, and :func:`header_problem` / :func:`header_notes` say what that means for the unit.
    malformed: tuple[tuple[str, str], ...] = ()

    @property
    def is_enhanced(self) -> bool:
        """An enhanced (or legacy-converted) multi-frame object or Parametric Map: geometry per frame, in
        functional groups (:func:`.sop_classes.uses_functional_groups`, the one table)."""
        return uses_functional_groups(self.sop_class_uid)

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


#: How a DICOM data set stored without the Part-10 preamble starts: a group 0002 or 0008 tag, either byte order.
_BARE_STARTS = (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08")


def _first_bytes(path: str) -> bytes | None:
    """The first 132 bytes of a file (the preamble and "DICM" of a Part-10 file), ``None`` if it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read(132)
    except OSError:
        return None


def _is_part10(head: bytes) -> bool:
    return len(head) >= 132 and head[128:132] == b"DICM"


def _is_bare(head: bytes) -> bool:
    return len(head) >= 8 and head[:2] in _BARE_STARTS


def looks_like_dicom(path: str) -> bool:
    """Cheap test: Part-10 preamble, ``.dcm.gz``, or a preamble-less file starting with group 0002/0008."""
    if path.lower().endswith(".gz"):
        return path.lower().endswith((".dcm.gz", ".ima.gz"))
    head = _first_bytes(path)
    return head is not None and (_is_part10(head) or _is_bare(head))


def is_bare_dataset(path: str) -> bool:
    """A DICOM data set stored without the Part-10 preamble (old exports, pydicom's ``rtstruct.dcm``).

    :func:`looks_like_dicom` accepts such files, so every reader of DICOM objects opens
    them too: pydicom reads them only with ``force=True``, which is passed exactly when
    this is true (a Part-10 file is read without force, so that a corrupt one is refused).
    """
    if path.lower().endswith(".gz"):
        return False
    head = _first_bytes(path)
    return head is not None and not _is_part10(head) and _is_bare(head)


#: (keyword, DicomHeader attribute, how to parse). Parsers work on the element's text
#: (DICOM string VRs, multiple values separated by backslashes); "us" is a binary unsigned short.
FIELDS: tuple[tuple[str, str, str], ...] = (
    ("SOPClassUID", "sop_class_uid", "text"), ("SOPInstanceUID", "sop_instance_uid", "text"),
    ("StudyInstanceUID", "study_uid", "text"), ("SeriesInstanceUID", "series_uid", "text"),
    ("FrameOfReferenceUID", "frame_of_reference_uid", "text"), ("PatientID", "patient_id", "text"),
    ("StudyDate", "study_date", "text"), ("StudyDescription", "study_description", "text"),
    ("SeriesDescription", "series_description", "text"), ("SeriesNumber", "series_number", "int"),
    ("Modality", "modality", "upper"), ("Manufacturer", "manufacturer", "text"),
    ("ImageType", "image_type", "multi"), ("ImageOrientationPatient", "iop", "floats6"),
    ("ImagePositionPatient", "ipp", "floats3"), ("PixelSpacing", "pixel_spacing", "floats2"),
    ("Rows", "rows", "us"), ("Columns", "columns", "us"), ("NumberOfFrames", "number_of_frames", "int"),
    ("SamplesPerPixel", "samples_per_pixel", "us"), ("PhotometricInterpretation", "photometric", "upper"),
    ("BitsAllocated", "bits_allocated", "us"), ("EchoNumbers", "echo_number", "int"),
    ("EchoTime", "echo_time", "float"), ("TemporalPositionIdentifier", "temporal_position", "int"),
    ("AcquisitionNumber", "acquisition_number", "int"), ("InstanceNumber", "instance_number", "int"),
    ("TriggerTime", "trigger_time", "float"), ("GantryDetectorTilt", "gantry_tilt", "float"),
    ("SliceThickness", "slice_thickness", "float"), ("ConvolutionKernel", "kernel", "text"),
    ("KVP", "kvp", "float"), ("WindowCenter", "window_center", "float"), ("WindowWidth", "window_width", "float"),
    ("PatientPosition", "patient_position", "text"), ("BodyPartExamined", "body_part", "text"),
    ("ProtocolName", "protocol_name", "text"), ("SequenceName", "sequence_name", "text"),
    ("RepetitionTime", "repetition_time", "float"), ("FlipAngle", "flip_angle", "float"),
    ("MagneticFieldStrength", "field_strength", "float"),
    ("SpacingBetweenSlices", "spacing_between_slices", "float"),
    ("NumberOfTemporalPositions", "temporal_positions", "int"), ("AcquisitionTime", "acquisition_time", "text"),
    ("SpecificCharacterSet", "charset", "text"),
    ("PatientName", "patient_name", "text"),
    ("BitsStored", "bits_stored", "us"), ("HighBit", "high_bit", "us"),
    ("PixelRepresentation", "pixel_representation", "us"), ("PlanarConfiguration", "planar_configuration", "us"),
    ("RescaleSlope", "slope", "float"), ("RescaleIntercept", "intercept", "float"),
    ("RescaleType", "rescale_type", "upper"), ("Units", "pet_units", "upper"),
)

#: The tag of each keyword in :data:`FIELDS` (fixed by the DICOM standard; no pydicom import needed).
FIELD_TAGS: dict[str, int] = {
    "SOPClassUID": 0x00080016, "SOPInstanceUID": 0x00080018, "StudyInstanceUID": 0x0020000D,
    "SeriesInstanceUID": 0x0020000E, "FrameOfReferenceUID": 0x00200052, "PatientID": 0x00100020,
    "StudyDate": 0x00080020, "StudyDescription": 0x00081030, "SeriesDescription": 0x0008103E,
    "SeriesNumber": 0x00200011, "Modality": 0x00080060, "Manufacturer": 0x00080070, "ImageType": 0x00080008,
    "ImageOrientationPatient": 0x00200037, "ImagePositionPatient": 0x00200032, "PixelSpacing": 0x00280030,
    "Rows": 0x00280010, "Columns": 0x00280011, "NumberOfFrames": 0x00280008, "SamplesPerPixel": 0x00280002,
    "PhotometricInterpretation": 0x00280004, "BitsAllocated": 0x00280100, "EchoNumbers": 0x00180086,
    "EchoTime": 0x00180081, "TemporalPositionIdentifier": 0x00200100, "AcquisitionNumber": 0x00200012,
    "InstanceNumber": 0x00200013, "TriggerTime": 0x00181060, "GantryDetectorTilt": 0x00181120,
    "SliceThickness": 0x00180050, "ConvolutionKernel": 0x00181210, "KVP": 0x00180060, "WindowCenter": 0x00281050,
    "WindowWidth": 0x00281051, "PatientPosition": 0x00185100, "BodyPartExamined": 0x00180015,
    "ProtocolName": 0x00181030, "BitsStored": 0x00280101, "HighBit": 0x00280102, "PixelRepresentation": 0x00280103,
    "PlanarConfiguration": 0x00280006, "RescaleSlope": 0x00281053, "RescaleIntercept": 0x00281052,
    "RescaleType": 0x00281054, "Units": 0x00541001, "SequenceName": 0x00180024, "RepetitionTime": 0x00180080,
    "FlipAngle": 0x00181314, "MagneticFieldStrength": 0x00180087, "SpacingBetweenSlices": 0x00180088,
    "NumberOfTemporalPositions": 0x00200105, "AcquisitionTime": 0x00080032, "SpecificCharacterSet": 0x00080005,
    "PatientName": 0x00100010,
}
#: The header attribute of each keyword in :data:`FIELDS`.
FIELD_ATTRIBUTES: dict[str, str] = {keyword: attribute for keyword, attribute, _ in FIELDS}


#: Numeric :data:`FIELDS` that must hold exactly one value (others of kind ``int`` / ``float`` use their first).
SINGLE_VALUED = frozenset({"NumberOfFrames", "RescaleSlope", "RescaleIntercept"})
_NUMBER_KINDS = frozenset({"int", "float", "us"})


def _parse(text: str, kind: str, single: bool = False):
    """One element's value from its text form; ``None`` when empty.

    Kinds: ``text`` / ``upper`` / ``multi`` (strings), ``int`` / ``float`` (the first
    value; the only one when ``single``), ``floatsN`` (exactly N values), ``us`` (one
    unsigned short, given as text by pydicom's conversion). Numbers must be finite.

    Raises
    ------
    ValueError
        The value is present but cannot be read: its message says why (it goes into
        :attr:`DicomHeader.malformed`).
    """
    text = text.strip("\x00 ")
    if kind == "text":
        return text
    if kind == "upper":
        return text.upper()
    if not text:
        return None
    if kind in _NUMBER_KINDS and "\\" not in text:  # one number: the common case, kept fast (the header scan)
        try:
            number = float(text) if kind == "float" else int(text) if kind == "us" else int(float(text))
        except (ValueError, OverflowError):  # int(float("inf")) overflows: not a number either
            raise ValueError("not a number") from None
        if kind == "float" and not math.isfinite(number):
            raise ValueError("not a finite number")
        return number
    parts = text.split("\\")
    if kind == "multi":
        return tuple(part.strip().upper() for part in parts)
    count = int(kind[6:]) if kind.startswith("floats") else 1 if single or kind == "us" else None
    if count is not None and len(parts) != count:
        raise ValueError(f"{len(parts)} value(s) where {count} {'is' if count == 1 else 'are'} allowed")
    if kind in _NUMBER_KINDS:  # several values where the first is used
        return _parse(parts[0], kind)
    try:
        numbers = tuple(map(float, parts))
    except (ValueError, OverflowError):
        raise ValueError("not a number") from None
    if not all(map(math.isfinite, numbers)):
        raise ValueError("not a finite number")
    return numbers


def _shown(raw: bytes | None, value) -> str:
    """A malformed element's value, short, for messages."""
    text = raw.decode("latin-1") if raw is not None else str(value)
    text = " ".join(text.strip("\x00 ").split())
    return repr(text if len(text) <= 40 else text[:37] + "...")


class Unconvertible:
    """A value pydicom could not convert (a wrong length for its VR ...): why, for :attr:`DicomHeader.malformed`."""

    __slots__ = ("reason",)

    def __init__(self, reason: str):
        self.reason = reason


def _element_values(ds) -> dict:
    """``{tag: (raw bytes or None, converted value or None)}`` of the top-level elements, unconverted when possible.

    A value pydicom cannot convert is an :class:`Unconvertible`, never an exception.
    """
    values = {}
    for element in ds.elements():
        if getattr(element, "is_raw", False) and element.is_little_endian:
            values[int(element.tag)] = (element.value or b"", None)
            continue
        try:
            values[int(element.tag)] = (None, ds[element.tag].value)
        except Exception as exc:  # pydicom raises many types for a value of the wrong length
            values[int(element.tag)] = (None, Unconvertible(f"{type(exc).__name__}: {str(exc)[:120]}"))
    return values


#: Present but unreadable, these fail the unit: a default in their place would be a silently wrong volume.
GEOMETRY_FIELDS = ("ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing")
PIXEL_FIELDS = ("Rows", "Columns", "BitsAllocated", "BitsStored", "PixelRepresentation", "SamplesPerPixel",
                "PlanarConfiguration", "NumberOfFrames", "RescaleSlope", "RescaleIntercept")


def header_problem(header: DicomHeader):
    """The typed error of a header whose geometry or pixel attributes cannot be read, or ``None``.

    A value that is present but unreadable (:attr:`DicomHeader.malformed`) in
    :data:`GEOMETRY_FIELDS` is a :class:`~medconv.errors.GeometryError`, in
    :data:`PIXEL_FIELDS` an :class:`~medconv.errors.UnreadableFileError`; both name the
    file, the element and what is wrong with it. (Absent elements are not malformed:
    the stack and pixel stages say what their absence means.)
    """
    from ...errors import GeometryError, UnreadableFileError

    for keyword, problem in header.malformed:
        if keyword in GEOMETRY_FIELDS:
            return GeometryError(f"{keyword} {problem}", header.path,
                                 "the file's geometry is corrupt; fix or remove the element, or leave the file out")
        if keyword in PIXEL_FIELDS:
            return UnreadableFileError(f"{keyword} {problem}", header.path,
                                       "the file's pixel description is corrupt; fix the element or leave the file out")
    if header.has_pixels:  # what pydicom refuses to decode (one rule: pixel_checks.check_pixel_header)
        from .pixel_checks import check_pixel_header
        from .pixels import pixel_header_of

        try:
            check_pixel_header(pixel_header_of(header))
        except UnreadableFileError as exc:
            return exc
    return None


def header_notes(header: DicomHeader) -> list[str]:
    """Warnings for the malformed elements that do not fail the unit (ignored, as if absent)."""
    notes = []
    for keyword, problem in header.malformed:
        if keyword in GEOMETRY_FIELDS or keyword in PIXEL_FIELDS:
            continue
        notes.append(f"{keyword} {problem}: ignored ({os.path.basename(header.path)})")
    return notes


def read_header(path: str) -> DicomHeader:
    """Parse one file's header (no pixel data); raises on non-DICOM or unreadable files.

    Little-endian Part 10 files (nearly all) are parsed by :mod:`.rawheader`
    without pydicom, which also notes where the pixel bytes start; the rest
    (no preamble, big endian, deflate, ``.gz``, defects) go through pydicom.
    Either way the values are decoded from the raw bytes of the few tags in
    :data:`FIELDS` the same way (pydicom's per-element conversion dominated
    the scan time); big-endian values go through pydicom's conversion.

    Raises
    ------
    pydicom.errors.InvalidDicomError, OSError, EOFError, ValueError
        Callers (:func:`scan_files`) turn these into notes.
    """
    header = read_header_raw(path)
    return header if header is not None else read_header_pydicom(path)


def read_header_raw(path: str) -> DicomHeader | None:
    """:func:`read_header` without pydicom (with the pixel data offset), or ``None`` when pydicom is needed."""
    if path.lower().endswith(".gz"):
        return None
    raw = parse_file(path, _WANTED)
    return _header_from_raw(path, raw) if raw is not None else None


def _header_from_raw(path: str, raw: RawHeader) -> DicomHeader:
    values = {tag: (value, None) for tag, (_, value) in raw.values.items()}
    mosaic = raw.values.get(MOSAIC_IMAGES_TAG)
    header = _header_from_values(path, values, raw.transfer_syntax, raw.media_sop_class,
                                 _raw_mosaic_value(*mosaic) if mosaic is not None else None)
    header.file_stamp = raw.stamp
    if raw.pixel_tag in (PIXEL_DATA, *FLOAT_PIXEL_BITS):
        header.pixel_offset, header.pixel_length = raw.pixel_offset, raw.pixel_length
        header.pixel_vr = raw.pixel_vr.decode("ascii", "replace")
        header.float_pixel_bits = FLOAT_PIXEL_BITS.get(raw.pixel_tag, 0)
    return header


def _raw_mosaic_value(vr: bytes, value: bytes):
    """The mosaic count as pydicom would convert it (binary for US/UL, text for IS/DS, bytes when unknown)."""
    if vr == b"US" and len(value) >= 2:
        return int.from_bytes(value[:2], "little")
    if vr == b"UL" and len(value) >= 4:
        return int.from_bytes(value[:4], "little")
    if vr in (b"IS", b"DS"):
        try:
            return int(float(value.decode("latin-1").strip("\x00 ").split("\\")[0]))
        except ValueError:
            return None
    return value


def reuse_or_read(path: str, known: DicomHeader | None) -> DicomHeader:
    """``known`` (a header from an earlier scan of ``path``) if the file is unchanged since, else a new parse.

    Unchanged means the same size and modification time as when the header was
    parsed; a header without a stamp (built by hand) is parsed again.
    """
    if known is not None and known.file_stamp is not None:
        try:
            status = os.stat(path)
        except OSError:
            return read_header(path)  # raises as a parse would
        if (status.st_size, status.st_mtime_ns) == known.file_stamp:
            return known
    return read_header(path)


def read_header_pydicom(path: str) -> DicomHeader:
    """:func:`read_header` through pydicom (every encoding pydicom reads; no pixel offset)."""
    import pydicom

    tags = _scan_tags()
    if path.lower().endswith(".gz"):
        with gzip.open(path, "rb") as handle:
            ds = pydicom.dcmread(handle, stop_before_pixels=True, specific_tags=tags)
    else:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=tags, force=not has_dicm_marker(path))
    raw_values = _element_values(ds)
    meta = getattr(ds, "file_meta", None)
    syntax = media_sop = ""
    if meta is not None:
        syntax = str(meta.get("TransferSyntaxUID", "") or "")
        media_sop = str(meta.get("MediaStorageSOPClassUID", "") or "")
    mosaic = None
    if MOSAIC_IMAGES_TAG in raw_values:
        try:
            mosaic = ds[MOSAIC_IMAGES_TAG].value
        except Exception:  # a private value of the wrong length: no mosaic count
            mosaic = None
    header = _header_from_values(path, raw_values, syntax, media_sop, mosaic)
    status = os.stat(path)
    header.file_stamp = (status.st_size, status.st_mtime_ns)
    return header


def _header_from_values(path: str, raw_values: dict, syntax: str, media_sop: str, mosaic) -> DicomHeader:
    """A :class:`DicomHeader` from ``{tag: (raw little-endian bytes or None, converted value or None)}``.

    A value that is present but cannot be read leaves its field unset and is listed in :attr:`DicomHeader.malformed`.
    """
    parsed = {}
    malformed: list[tuple[str, str]] = []
    for keyword, attribute, kind in FIELDS:
        found = raw_values.get(FIELD_TAGS[keyword])
        if found is None:
            continue
        raw, value = found
        if isinstance(value, Unconvertible):
            malformed.append((keyword, f"cannot be read ({value.reason})"))
            continue
        if raw is not None:
            if kind == "us":
                if len(raw) == 2:
                    parsed[attribute] = int.from_bytes(raw, "little")
                elif raw:
                    malformed.append((keyword, f"holds {len(raw)} bytes where one unsigned short (2 bytes) is allowed"))
                continue
            text = raw.decode("latin-1")
        elif value is None:
            continue
        elif isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            text = "\\".join(str(v) for v in value)
        else:
            text = str(value)
        try:
            parsed[attribute] = _parse(text, kind, keyword in SINGLE_VALUED)
        except ValueError as exc:
            malformed.append((keyword, f"{_shown(raw, text)}: {exc}"))
    centre, width = parsed.pop("window_center", None), parsed.pop("window_width", None)
    header = DicomHeader(path=path, **{k: v for k, v in parsed.items() if v is not None})
    header.window = (centre, width) if centre is not None and width is not None else None
    header.number_of_frames = header.number_of_frames or 1
    header.transfer_syntax = syntax
    if not header.sop_class_uid:
        header.sop_class_uid = media_sop
    texts = decode_texts(raw_values, FIELD_TAGS, path)  # text VRs in the declared SpecificCharacterSet
    for keyword, text in texts.values.items():
        setattr(header, FIELD_ATTRIBUTES[keyword], text)
    header.text_warnings = texts.warnings
    if mosaic is not None:  # private: pydicom's private dictionary picks its VR
        header.mosaic_images = _mosaic_count(mosaic)
    if not DIFFUSION_TAGS.isdisjoint(raw_values):
        header.diffusion = diffusion_from_elements(header.manufacturer, raw_values.get)
    header.has_pixels = header.rows > 0 and header.columns > 0 and header.bits_allocated > 0
    if malformed:
        header.malformed = tuple(dict.fromkeys(malformed))  # one note per (keyword, problem)
    return header


#: What the raw parser keeps of each file.
_WANTED = frozenset(FIELD_TAGS.values()) | {MOSAIC_IMAGES_TAG} | DIFFUSION_TAGS


def _scan_tags() -> list[int]:
    """The tags a pydicom scan decodes (the :data:`FIELDS`, the Siemens mosaic count, the diffusion tags, and
    the pixel data tags)."""
    return list(FIELD_TAGS.values()) + [MOSAIC_IMAGES_TAG, *sorted(DIFFUSION_TAGS), 0x7FE00010, 0x7FE00008,
                                        0x7FE00009]


def _mosaic_count(value) -> int | None:
    if isinstance(value, (bytes, bytearray)):  # VR UN: an unsigned short or long
        return (int.from_bytes(value, "little") or None) if len(value) in (2, 4) else None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def classify_path(path: str) -> str | None:
    """Why a file is skipped without parsing it, or ``None`` if it may be DICOM."""
    name = os.path.basename(path)
    lower = name.lower()
    if name.upper() == "DICOMDIR":
        return "DICOMDIR (a media index, not an image)"
    if lower.endswith(NOT_DICOM_SUFFIXES) and not lower.endswith((".dcm.gz", ".ima.gz")):
        # the suffix alone never decides (Agfa writes Part-10 files as *.img): only the DICM marker,
        # the one start a non-DICOM file does not have by chance, makes such a file DICOM
        return None if has_dicm_marker(path) else "not DICOM (file suffix, no DICM marker)"
    if not looks_like_dicom(path):
        return "not DICOM (no DICM marker)"
    return None


def has_dicm_marker(path: str) -> bool:
    """``DICM`` at byte 128 (a Part-10 file); never raises."""
    head = _first_bytes(path)
    return head is not None and _is_part10(head)


#: A file cut inside the 128-byte preamble (or empty) never reached its header; below this size it is checked.
PREAMBLE_END = 132
_DICOM_NAME = re.compile(r"^([0-9.]+|[^.]*|.*\.(dcm|ima|dicom|dic))$", re.IGNORECASE)


def dicom_like_name(path: str) -> bool:
    """Whether a file is named like a DICOM file (no suffix, ``.dcm``, ``.ima``, ``.dicom``, a UID-like name)."""
    return bool(_DICOM_NAME.match(os.path.basename(path)))


def interrupted_download(path: str) -> str | None:
    """Why a file named like a DICOM file holds no header at all (empty, or cut inside its preamble), or ``None``.

    Such a file beside a series is a slice that never arrived: it must be named in
    the manifest, not skipped as "not DICOM" (files named otherwise, ``notes.txt``, are skipped).
    """
    if not dicom_like_name(path):
        return None
    try:
        size = os.path.getsize(path)
        if size >= PREAMBLE_END:
            return None
        with open(path, "rb") as handle:
            head = handle.read(PREAMBLE_END)
    except OSError:
        return None
    if size == 0:
        return "empty file (0 bytes): an interrupted download or copy; re-download the series"
    if not any(head):
        return (f"file cut inside the DICOM preamble ({size} bytes, all zero): an interrupted download; "
                "re-download the series")
    return None


def scan_one(path: str) -> tuple[str, DicomHeader | str, str]:
    """``("ok", header, "")``, ``("skip", path, reason)`` or ``("bad", path, reason)`` for one file; never raises.

    Whatever a parse raises (pydicom's ``BytesLengthException`` or ``NotImplementedError``
    for a corrupt length, an ``OSError``, an exception nobody foresaw) makes the file one
    unreadable row with the reason: one bad file never stops a discovery.
    """
    try:
        return _scan_one(path)
    except Exception as exc:  # the per-file net of discovery
        return ("bad", path, f"unreadable DICOM header ({type(exc).__name__}: {' '.join(str(exc).split())[:300]})")


def _scan_one(path: str) -> tuple[str, DicomHeader | str, str]:
    damage = interrupted_download(path)
    if damage:
        return ("bad", path, damage)
    reason = classify_path(path)
    if reason:
        return ("skip", path, reason)
    header = read_header(path)
    if header.sop_class_uid == DICOMDIR_SOP_CLASS:
        return ("skip", path, "DICOMDIR (a media index, not an image)")
    problem = None if header.series_uid else _unparsable_dataset(path)
    if problem:
        return ("bad", path, problem)
    # a file without SeriesInstanceUID that holds data (pydicom's test fragments, stripped
    # exports) is not corrupt: grouping makes it a unit of its own and classifies it
    return ("ok", header, "")


def _unparsable_dataset(path: str) -> str | None:
    """Why a file without SeriesInstanceUID holds no usable data set, or ``None`` when it does.

    Such a file is either a fragment that is DICOM all the same (pydicom's test files)
    or a file whose header is corrupt: a wrong length in the file meta group makes
    the data set start inside a value, where pydicom finds one element of garbage.
    So every element is converted here (only for these rare files): one that cannot
    be, or a data set without a single standard (even-group) element, is corrupt.
    """
    import pydicom

    try:
        if path.lower().endswith(".gz"):
            with gzip.open(path, "rb") as handle:
                ds = pydicom.dcmread(handle, stop_before_pixels=True, force=True)
        else:
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        standard = [element for element in ds if element.tag.group != 0x0002 and element.tag.group % 2 == 0]
    except Exception as exc:  # whatever pydicom raises on a corrupt header
        return f"unreadable DICOM header ({type(exc).__name__}: {' '.join(str(exc).split())[:300]})"
    if not standard:
        return "DICOM file with no standard data element after its file meta header (none at all, or only private ones)"
    return None


def _scan_chunk(paths: Sequence[str]) -> list[tuple[str, DicomHeader | str, str]]:
    return [scan_one(path) for path in paths]


#: Below this many files a scan stays in the calling process. The raw parser reads a header in
#: ~0.08 ms, so a pool (start-up ~0.2 s, and every DicomHeader pickled back) pays off only for
#: tens of thousands of files (30,000 warm: 2.6 s serial, 2.2 s on 2 processes; 4,200: 0.37 s
#: serial, 0.45-0.99 s with the pool).
PARALLEL_THRESHOLD = 10000


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
