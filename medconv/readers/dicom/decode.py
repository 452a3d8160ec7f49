"""Decoding DICOM pixel data into stored values (before rescale).

One job: put the stored values of a file's frames into a preallocated array.
Uncompressed little-endian data is read straight from the file (the header is
parsed up to the Pixel Data element, whose bytes then go into the array with
``readinto``); every other transfer syntax goes through pydicom 3's decoder
plugins (pylibjpeg, pylibjpeg-libjpeg/openjpeg/rle, pyjpegls, python-gdcm).
Values are then masked to ``BitsStored`` and sign-extended (PS3.5 8.1.1).
Rescale, MONOCHROME1 and dtype choice live in :mod:`.pixels`.
"""

from __future__ import annotations

import dataclasses
import gzip
import math
import os
import struct
from dataclasses import dataclass
from typing import IO, Any, Callable, Sequence

import numpy as np

from medconv.errors import MissingDependencyError, UnreadableFileError, UnsupportedFormatError

#: Transfer syntaxes whose pixel data this module reads directly from the file.
NATIVE_LITTLE_ENDIAN = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1")

#: Which installed package decodes which transfer syntax (for error messages and docs).
DECODER_PACKAGES: dict[str, str] = {
    "1.2.840.10008.1.2.5": "pylibjpeg-rle (or python-gdcm)",
    "1.2.840.10008.1.2.4.50": "pylibjpeg-libjpeg (or python-gdcm, pillow)",
    "1.2.840.10008.1.2.4.51": "pylibjpeg-libjpeg (or python-gdcm, pillow)",
    "1.2.840.10008.1.2.4.57": "pylibjpeg-libjpeg (or python-gdcm)",
    "1.2.840.10008.1.2.4.70": "pylibjpeg-libjpeg (or python-gdcm)",
    "1.2.840.10008.1.2.4.80": "pyjpegls (or pylibjpeg-libjpeg, python-gdcm)",
    "1.2.840.10008.1.2.4.81": "pyjpegls (or pylibjpeg-libjpeg, python-gdcm)",
    "1.2.840.10008.1.2.4.90": "pylibjpeg-openjpeg (or python-gdcm, pillow)",
    "1.2.840.10008.1.2.4.91": "pylibjpeg-openjpeg (or python-gdcm, pillow)",
    "1.2.840.10008.1.2.4.201": "pylibjpeg-openjpeg >= 2.4",
    "1.2.840.10008.1.2.4.202": "pylibjpeg-openjpeg >= 2.4",
    "1.2.840.10008.1.2.4.203": "pylibjpeg-openjpeg >= 2.4",
}

_PIXEL_DATA_TAG = 0x7FE00010


@dataclass(frozen=True)
class PixelHeader:
    """The attributes of one file that decide how its pixel data becomes values."""

    path: str
    transfer_syntax: str
    rows: int
    columns: int
    samples: int
    frames: int
    bits_allocated: int
    bits_stored: int
    high_bit: int
    pixel_representation: int
    photometric: str
    slope: float
    intercept: float
    modality: str
    rescale_type: str
    planar_configuration: int = 0
    pet_units: str = ""
    #: 32 or 64 for Float / Double Float Pixel Data (values are IEEE floats), 0 for integer Pixel Data.
    float_bits: int = 0
    #: Zero bytes after the Pixel Data the header describes, ignored (:func:`check_pixel_length`).
    padding: int = 0

    @property
    def stored_dtype(self) -> np.dtype:
        """Native-endian dtype of the stored values (before rescale)."""
        if self.float_bits:
            return np.dtype(f"f{self.float_bits // 8}")
        if self.bits_allocated == 1:  # bit-packed (binary SEG, overlays): pydicom unpacks to uint8
            return np.dtype(np.uint8)
        if self.bits_allocated not in (8, 16, 32):
            raise UnsupportedFormatError(
                f"BitsAllocated {self.bits_allocated} is not supported (1, 8, 16 or 32 are)", path=self.path
            )
        kind = "i" if self.pixel_representation == 1 else "u"
        return np.dtype(f"{kind}{self.bits_allocated // 8}")

    @property
    def stored_range(self) -> tuple[int, int]:
        """The values ``BitsStored`` bits can hold with this ``PixelRepresentation``."""
        bits = self.bits_stored
        if self.pixel_representation == 1:
            return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        return 0, 2**bits - 1

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """``(rows, columns)`` or ``(rows, columns, samples)``."""
        if self.samples == 1:
            return (self.rows, self.columns)
        return (self.rows, self.columns, self.samples)


def open_dicom(path: str) -> IO[bytes]:
    """Open a DICOM file for reading, transparently decompressing ``.gz``."""
    if str(path).lower().endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def first_float(value: Any) -> float | None:
    """A DICOM value (or the first of a multi-value) as a float; ``None`` when absent or not a number."""
    if value is None or value == "":
        return None
    try:
        if hasattr(value, "__len__") and not isinstance(value, (str, bytes)):
            value = value[0]
        return float(value)
    except (TypeError, ValueError, IndexError):
        return None


#: What a corrupt pixel description is told to do.
PIXEL_HINT = "the file's pixel description is corrupt; fix the element or leave the file out"

#: PhotometricInterpretation values pydicom decodes (PS3.3 C.7.6.3.1.2), as pydicom checks them.
PHOTOMETRIC_VALUES = frozenset({"MONOCHROME1", "MONOCHROME2", "PALETTE COLOR", "RGB", "YBR_FULL", "YBR_FULL_422",
                                "YBR_PARTIAL_420", "YBR_PARTIAL_422", "YBR_ICT", "YBR_RCT", "HSV", "ARGB", "CMYK",
                                "XYB"})


def _value(ds: Any, keyword: str, path: str) -> Any:
    """The value of ``keyword`` in ``ds``; ``None`` when absent or empty; a typed error when pydicom cannot
    convert it (a US element of 1 or 3 bytes raises ``BytesLengthException`` there)."""
    if keyword not in ds:
        return None
    try:
        value = ds[keyword].value
    except Exception as exc:  # pydicom raises many types for a value whose length does not fit its VR
        raise UnreadableFileError(f"{keyword} cannot be read ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})",
                                  path, PIXEL_HINT) from None
    return None if value is None or value == "" or value == b"" else value


def _single(ds: Any, keyword: str, path: str, default, convert=int):
    """One number from ``ds`` (``default`` when absent); a typed error for several values or a non-number."""
    value = _value(ds, keyword, path)
    if value is None:
        return default
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        raise UnreadableFileError(f"{keyword} holds {len(value)} values where one is allowed", path, PIXEL_HINT)
    try:
        number = convert(float(value)) if convert is int and isinstance(value, str) else convert(value)
    except (TypeError, ValueError, OverflowError):
        raise UnreadableFileError(f"{keyword} {str(value)[:40]!r} is not a number", path, PIXEL_HINT) from None
    if isinstance(number, float) and not math.isfinite(number):
        raise UnreadableFileError(f"{keyword} {value!r} is not a finite number", path, PIXEL_HINT)
    return number


def _text(ds: Any, keyword: str, path: str, default: str = "") -> str:
    value = _value(ds, keyword, path)
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        value = "\\".join(str(v) for v in value)
    return default if value is None else str(value).strip().upper()


def pixel_header(ds: Any, path: str) -> PixelHeader:
    """Build a :class:`PixelHeader` from a parsed dataset (header only is enough); checked (:func:`check_pixel_header`).

    Raises
    ------
    UnreadableFileError
        Rows, Columns or BitsAllocated is absent, or a pixel attribute cannot be read
        (several values, not a number, a length that does not fit its VR), or breaks a rule of
        :func:`check_pixel_header`.
    """
    meta = getattr(ds, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if not syntax:
        syntax = "1.2.840.10008.1.2" if getattr(ds, "is_implicit_VR", True) else "1.2.840.10008.1.2.1"
    rows, columns = _single(ds, "Rows", path, None), _single(ds, "Columns", path, None)
    bits_allocated = _single(ds, "BitsAllocated", path, None)
    missing = [name for name, value in (("Rows", rows), ("Columns", columns), ("BitsAllocated", bits_allocated))
               if value is None]
    if missing:
        raise UnreadableFileError(f"no usable image pixel attributes (no {', '.join(missing)})", path=path,
                                  hint="the file is truncated or not an image")
    bits_stored = _single(ds, "BitsStored", path, bits_allocated)
    header = PixelHeader(
        path=str(path),
        transfer_syntax=syntax,
        rows=rows,
        columns=columns,
        samples=_single(ds, "SamplesPerPixel", path, 1),
        frames=_single(ds, "NumberOfFrames", path, 1),
        bits_allocated=bits_allocated,
        bits_stored=bits_stored,
        high_bit=_high_bit(ds, path, bits_stored),
        pixel_representation=_single(ds, "PixelRepresentation", path, 0),
        photometric=_text(ds, "PhotometricInterpretation", path, "MONOCHROME2"),
        slope=_single(ds, "RescaleSlope", path, 1.0, float),
        intercept=_single(ds, "RescaleIntercept", path, 0.0, float),
        modality=_text(ds, "Modality", path),
        rescale_type=_text(ds, "RescaleType", path),
        planar_configuration=_single(ds, "PlanarConfiguration", path, 0),
        pet_units=_text(ds, "Units", path),
    )
    return check_pixel_header(header)


def _high_bit(ds: Any, path: str, bits_stored: int) -> int:
    """HighBit as written, or BitsStored - 1 when absent or unreadable (pydicom never uses it either)."""
    try:
        return _single(ds, "HighBit", path, bits_stored - 1)
    except UnreadableFileError:
        return bits_stored - 1


def check_pixel_header(header: PixelHeader) -> PixelHeader:
    """``header``, if its pixel description is one pydicom decodes; else a typed error saying what is wrong.

    The rules are pydicom's (``RunnerBase._validate_options``): BitsAllocated 1 or a
    multiple of 8 up to 64, 1 <= BitsStored <= BitsAllocated, Rows and Columns 1 to
    65535, NumberOfFrames >= 1, PixelRepresentation 0 or 1, SamplesPerPixel 1 or 3
    (PlanarConfiguration 0 or 1 with 3), a PhotometricInterpretation pydicom knows; and
    a RescaleSlope that is not 0 (every value would be the intercept). HighBit is not
    checked: like pydicom, medconv uses the low BitsStored bits whatever HighBit says
    (:func:`mask_stored_bits`; :func:`high_bit_note` warns).
    """
    problems = []
    allocated, stored = header.bits_allocated, header.bits_stored
    if not 1 <= allocated <= 64 or (allocated != 1 and allocated % 8):
        problems.append(f"BitsAllocated {allocated} (1 or a multiple of 8 up to 64)")
    elif not 1 <= stored <= allocated:
        problems.append(f"BitsStored {stored} (1 to BitsAllocated {allocated})")
    for keyword, value in (("Rows", header.rows), ("Columns", header.columns)):
        if not 0 < value <= 65535:
            problems.append(f"{keyword} {value} (1 to 65535)")
    if header.frames < 1:
        problems.append(f"NumberOfFrames {header.frames} (1 or more)")
    if header.pixel_representation not in (0, 1):
        problems.append(f"PixelRepresentation {header.pixel_representation} (0 or 1)")
    if header.samples not in (1, 3):
        problems.append(f"SamplesPerPixel {header.samples} (1 or 3)")
    elif header.samples == 3 and header.planar_configuration not in (0, 1):
        problems.append(f"PlanarConfiguration {header.planar_configuration} (0 or 1)")
    if header.photometric not in PHOTOMETRIC_VALUES:
        problems.append(f"PhotometricInterpretation {header.photometric!r} (not one DICOM defines)")
    if header.slope == 0:
        problems.append("RescaleSlope 0 (every value would be the intercept)")
    if problems:
        raise UnreadableFileError("invalid pixel description: " + "; ".join(problems), header.path, PIXEL_HINT)
    return header


def high_bit_note(header: PixelHeader) -> str | None:
    """The warning for a HighBit that is not BitsStored - 1 (PS3.3 C.7.6.3.1 requires it), or ``None``."""
    if header.high_bit == header.bits_stored - 1:
        return None
    return (f"HighBit {header.high_bit} does not match BitsStored {header.bits_stored} (it must be BitsStored - 1): "
            f"the low {header.bits_stored} bits of each value are used, as pydicom reads them")


def expected_pixel_bytes(header: PixelHeader) -> int:
    """Bytes of uncompressed Pixel Data that Rows x Columns x Samples x BitsAllocated x Frames describe.

    Bit-packed data (BitsAllocated 1) takes ``ceil(bits / 8)`` bytes for all frames
    together; YBR_FULL_422 two samples' worth per pixel (PS3.3 C.7.6.3.1.2), as pydicom
    counts them. The element itself is that, padded to an even length (PS3.5 8.1.1).
    """
    pixels = header.rows * header.columns * header.frames
    if header.bits_allocated == 1:
        return (pixels * header.samples + 7) // 8
    samples = 2 if header.photometric == "YBR_FULL_422" and header.samples == 3 else header.samples
    return pixels * samples * (header.bits_allocated // 8)


def check_pixel_length(header: PixelHeader, length: int, excess: Callable[[int], bytes]) -> PixelHeader:
    """``header``, if uncompressed Pixel Data of ``length`` bytes is what it describes; else a typed error.

    The element must hold the bytes :func:`expected_pixel_bytes` counts, padded to an
    even length (PS3.5 8.1.1). Longer is accepted only as trailing zero bytes fewer than
    the data itself (pydicom's ``MR_small_padded.dcm``: 128 zero bytes after 8,192),
    recorded in :attr:`PixelHeader.padding` (a warning); anything else longer is a header
    that does not describe its data (Rows 256 over the data of 512 rows would give half
    of each slice: pydicom drops the excess with a warning). Shorter fails too.
    ``excess(n)`` returns the ``n`` bytes after the described data.
    """
    expected = expected_pixel_bytes(header)
    padded = expected + expected % 2
    if length in (expected, padded):
        return header
    if expected < length < 2 * expected:
        tail = excess(length - padded)
        if len(tail) == length - padded and not any(tail):
            return dataclasses.replace(header, padding=length - padded)
    what = "x".join(str(v) for v in (header.rows, header.columns)) + \
        (f"x{header.samples} samples" if header.samples > 1 else "") + \
        (f"x{header.frames} frames" if header.frames > 1 else "") + f" of {header.bits_allocated} bits"
    raise UnreadableFileError(
        f"the Pixel Data holds {length} bytes, but Rows x Columns x SamplesPerPixel x BitsAllocated x "
        f"NumberOfFrames ({what}) need {padded}", header.path,
        "the header does not describe these pixels (a corrupt Rows, Columns or BitsAllocated, or a cut file); "
        "the file cannot be read as it is")


def padding_note(headers: Sequence[PixelHeader]) -> str | None:
    """The warning for Pixel Data with trailing zero bytes (:attr:`PixelHeader.padding`), or ``None``."""
    padded = [header for header in headers if header.padding]
    if not padded:
        return None
    return (f"the Pixel Data of {len(padded)} file(s) ends in {padded[0].padding} zero byte(s) more than the "
            f"header describes (e.g. {os.path.basename(padded[0].path)}): ignored, as pydicom does")


def parse_header(fp: IO[bytes], path: str) -> Any:
    """``dcmread(fp, stop_before_pixels=True)``, leaving ``fp`` at the Pixel Data element; typed errors."""
    import pydicom

    try:
        return pydicom.dcmread(fp, stop_before_pixels=True, force=True)
    except Exception as exc:  # pydicom raises many types on a corrupt header
        raise UnreadableFileError(f"cannot parse the DICOM header ({type(exc).__name__}: {exc})", path=path,
                                  hint="the file is truncated or corrupt") from exc


def read_datasets(paths: Sequence[str]) -> list[Any]:
    """The header datasets (no pixel data) of ``paths``, in order; ``.gz`` files are read too."""
    datasets = []
    for path in paths:
        try:
            with open_dicom(path) as fp:
                datasets.append(parse_header(fp, path))
        except OSError as exc:
            raise UnreadableFileError(f"cannot read the file ({exc})", path=path) from exc
    return datasets


def read_header(path: str) -> tuple[PixelHeader, Any]:
    """Parse the header of one file (no pixel data): its :class:`PixelHeader` and dataset."""
    (ds,) = read_datasets([path])
    return pixel_header(ds, path), ds


#: VRs of an explicit-VR Pixel Data element (UN when copied blindly).
_PIXEL_VRS = (b"OW", b"OB", b"UN")


def _read_native(fp: IO[bytes], header: PixelHeader, out: np.ndarray) -> PixelHeader | None:
    """Read uncompressed little-endian pixel data straight into ``out``; its header (with
    :attr:`PixelHeader.padding`), or ``None`` if not possible here.

    ``fp`` is positioned (by ``dcmread(stop_before_pixels=True)``) at the start of
    the Pixel Data element. An element encoded other than the transfer syntax says
    (explicit VR in a file declared implicit VR, a real-world defect pydicom
    tolerates) is left to pydicom: read as implicit, its VR and reserved bytes would
    be taken for the length, and the pixels would start 4 bytes early.

    Raises
    ------
    UnreadableFileError
        The element's length is not what the header describes (:func:`check_pixel_length`),
        or the file ends before it.
    """
    implicit = header.transfer_syntax == "1.2.840.10008.1.2"
    head = fp.read(8)
    if len(head) < 8:
        return None
    group, element = struct.unpack("<HH", head[:4])
    if (group << 16 | element) != _PIXEL_DATA_TAG:
        return None
    looks_explicit = head[4:6] in _PIXEL_VRS and head[6:8] == b"\x00\x00"
    if implicit:
        if looks_explicit:
            return None
        (length,) = struct.unpack("<I", head[4:8])
    else:
        if not looks_explicit:
            return None
        extra = fp.read(4)
        if len(extra) < 4:
            return None
        (length,) = struct.unpack("<I", extra)
    if length == 0xFFFFFFFF:
        return None
    start = fp.tell()

    def excess(count: int) -> bytes:
        fp.seek(start + out.nbytes + (out.nbytes % 2))
        tail = fp.read(count)
        fp.seek(start)
        return tail

    header = check_pixel_length(header, length, excess)
    needed = out.nbytes
    view = memoryview(out.reshape(-1).view(np.uint8))
    got = 0
    while got < needed:
        count = fp.readinto(view[got:])
        if not count:
            raise UnreadableFileError(
                f"pixel data is truncated ({got} of {needed} bytes)", path=header.path, hint="re-download the file"
            )
        got += count
    return header


def _decode_error(header: PixelHeader, exc: Exception) -> Exception:
    from pydicom.uid import UID

    name = UID(header.transfer_syntax).name
    package = DECODER_PACKAGES.get(header.transfer_syntax)
    text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
    text = text.replace(":; ", ": ")
    if "missing" in str(exc).lower() and "dependenc" in str(exc).lower() or "no pixel data decoders" in str(exc).lower():
        return MissingDependencyError(
            f"cannot decode transfer syntax {name} ({header.transfer_syntax}): {text}",
            path=header.path,
            hint=f"install {package}" if package else "install pylibjpeg and its plugins, or python-gdcm",
        )
    return UnreadableFileError(
        f"cannot decode the pixel data (transfer syntax {name}, {header.transfer_syntax}): {text}",
        path=header.path,
        hint=f"decoded with {package}; the file may be corrupt" if package else "the file may be corrupt",
    )


def decode_into(path: str, header: PixelHeader, out: np.ndarray, fp: IO[bytes] | None = None) -> PixelHeader:
    """Decode every frame of ``path`` into ``out`` as stored values, bits masked; ``header`` as the data
    confirmed it (with :attr:`PixelHeader.padding` when the Pixel Data has trailing zero bytes).

    ``out`` has shape ``(frames, rows, columns[, samples])`` and the header's
    :attr:`PixelHeader.stored_dtype`. ``fp``, if given, is the open file
    positioned at the Pixel Data element (right after
    ``dcmread(fp, stop_before_pixels=True)``); it saves a second header parse.

    Compressed transfer syntaxes (:func:`is_guarded`) are decoded in a guarded helper
    process (:func:`medconv.guard.guarded`): a decoder that aborts (GDCM on a
    corrupt JPEG-LS slice), panics (pylibjpeg-rle) or runs out of its memory limit
    fails this file with :class:`~medconv.errors.DecoderCrashedError` /
    :class:`~medconv.errors.MemoryLimitError`, and the process goes on.
    """
    if fp is None:
        with open_dicom(path) as own:
            parse_header(own, path)
            return decode_into(path, header, out, own)
    direct = (
        header.transfer_syntax in NATIVE_LITTLE_ENDIAN
        and header.bits_allocated in (8, 16, 32)
        and (header.samples == 1 or header.planar_configuration == 0)
    )
    if direct:
        try:
            done = _read_native(fp, header, out)
        except (OSError, EOFError, ValueError, struct.error) as exc:
            raise UnreadableFileError(f"cannot read the pixel data ({exc})", path=path) from exc
        if done is not None:
            mask_stored_bits(out, done)
            return done
    if is_guarded(header.transfer_syntax):
        from medconv.guard import guarded

        check_decoder_available(header)  # here, at once: the helper has the same plugins
        check_compressed_size(header, None if isinstance(fp, gzip.GzipFile) else os.fstat(fp.fileno()).st_size - fp.tell())
        array, header = guarded(decode_with_pydicom, path, header, limits=decode_limits(header, out.nbytes, path),
                                what=f"{transfer_syntax_name(header.transfer_syntax)} decoding", path=path)
    else:
        array, header = decode_with_pydicom(path, header, fp)
    if array.dtype.kind == "f" and out.dtype.kind != "f":  # Float Pixel Data the header scan did not see
        raise UnsupportedFormatError("the file holds float pixel data (Float / Double Float Pixel Data) that this "
                                     "encoding is not read for", path=path,
                                     hint="re-export it in explicit or implicit VR little endian")
    try:
        out[...] = array.reshape(out.shape)
    except ValueError as exc:
        raise UnreadableFileError(
            f"decoded pixel data has shape {array.shape}, expected {out.shape}", path=path
        ) from exc
    if is_encapsulated(header.transfer_syntax):
        check_decoded_range(out, header)  # pydicom's plugins gave the values as the codestream holds them
    else:
        mask_stored_bits(out, header)
    return header


def check_decoded_range(array: np.ndarray, header: PixelHeader) -> None:
    """Refuse decoded compressed values that do not fit BitsStored (and PixelRepresentation).

    A codec decodes at most the precision its codestream declares, which for a valid
    file is BitsStored; pydicom masks RLE and JPEG output to BitsStored, corrects the
    sign of JPEG-LS and JPEG 2000 output from the codestream's own precision, and
    leaves the rest as decoded. Values beyond BitsStored therefore mean a corrupt
    stream that a lenient decoder went on decoding (a JPEG-LS stream with flipped bits:
    CharLS refuses it, libjpeg gives values up to 65535 over BitsStored 12), or a header
    whose BitsStored is not the stream's. Masking them would give other garbage, so
    the file fails.
    """
    if array.dtype.kind not in "iu" or array.size == 0:
        return
    bits = header.bits_stored
    if bits >= array.dtype.itemsize * 8:
        return
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if header.pixel_representation else (0, (1 << bits) - 1)
    found_low, found_high = int(array.min()), int(array.max())
    if found_low < low or found_high > high:
        raise UnreadableFileError(
            f"the decoded {transfer_syntax_name(header.transfer_syntax)} values ({found_low}..{found_high}) do not fit "
            f"BitsStored {bits} ({'signed' if header.pixel_representation else 'unsigned'}: {low}..{high})",
            header.path, "the compressed pixel data is corrupt, or the header's BitsStored is not the codestream's "
                         "precision: re-export the file")


def check_decoder_available(header: PixelHeader) -> None:
    """Raise :class:`~medconv.errors.MissingDependencyError` when no installed plugin decodes the file's transfer
    syntax (pydicom's own message, with the package to install); unknown syntaxes are left to the decode."""
    try:
        from pydicom.pixels import get_decoder

        decoder = get_decoder(header.transfer_syntax)
    except Exception:  # a transfer syntax pydicom has no decoder for at all: the decode says so
        return
    if not decoder.is_available:
        raise _decode_error(header, RuntimeError(
            f"no pixel data decoders are available (missing dependencies: {decoder.missing_dependencies})"))


#: The most samples one byte of compressed data can decode to, where the codec bounds it: RLE (PackBits: a
#: run of 128 bytes in 2, one byte-segment per byte of a sample), JPEG lossless (a Huffman code of at least
#: one bit per sample), JPEG baseline / extended (at least a DC code and an end of block, 2 bits, per 8x8
#: block). JPEG-LS and JPEG 2000 code long runs and empty tiles in a few bits: not bounded here (the guard's
#: memory and time limits apply).
MAX_SAMPLES_PER_BYTE = {
    "1.2.840.10008.1.2.5": 64.0,
    "1.2.840.10008.1.2.4.57": 8.0, "1.2.840.10008.1.2.4.70": 8.0,
    "1.2.840.10008.1.2.4.50": 256.0, "1.2.840.10008.1.2.4.51": 256.0,
}


def check_compressed_size(header: PixelHeader, compressed_bytes: int | None) -> None:
    """Refuse compressed data too small to decode to what the header describes, before decoding.

    A 65535x65535 header over 4 kB of RLE data took pydicom 30 s to reject;
    :data:`MAX_SAMPLES_PER_BYTE` bounds what each byte can give. ``compressed_bytes``
    is what the file holds from the pixel data on (``None``: not known, nothing checked).
    """
    ratio = MAX_SAMPLES_PER_BYTE.get(header.transfer_syntax)
    if ratio is None or compressed_bytes is None:
        return
    samples = header.rows * header.columns * header.frames * header.samples
    if header.transfer_syntax == "1.2.840.10008.1.2.5":  # RLE codes each byte of a sample separately
        samples *= max(1, header.bits_allocated // 8)
    if samples > ratio * max(compressed_bytes, 0):
        raise UnreadableFileError(
            f"the compressed pixel data ({compressed_bytes} bytes of {transfer_syntax_name(header.transfer_syntax)}) "
            f"cannot hold {header.rows}x{header.columns}x{header.frames} frame(s): it decodes to at most "
            f"{int(ratio * compressed_bytes)} values", header.path,
            "the header's Rows, Columns or NumberOfFrames is corrupt, or the file is cut")


def is_guarded(transfer_syntax: str) -> bool:
    """Whether pixel data of this transfer syntax is decoded in a guarded helper process.

    Every encapsulated (compressed: RLE, JPEG, JPEG-LS, JPEG 2000, HTJ2K ...) syntax,
    whose decoders are native code, and Deflated Explicit VR Little Endian, which pydicom
    inflates whole into memory (a small file may inflate to gigabytes). Uncompressed
    data is read by medconv or byte-swapped by numpy: no native decoder runs.
    """
    return transfer_syntax == DEFLATED or is_encapsulated(transfer_syntax)


def is_encapsulated(transfer_syntax: str) -> bool:
    """Whether the Pixel Data of this transfer syntax is encapsulated (compressed frames in items).

    A UID that is not a transfer syntax pydicom knows (``1.2.3.4``) counts as
    encapsulated: nothing says how its pixels are encoded, so no medconv code reads
    them and the decode that says so runs guarded.
    """
    from pydicom.uid import UID

    try:
        return UID(transfer_syntax).is_encapsulated
    except ValueError:  # "UID is not a transfer syntax"
        return True


def transfer_syntax_name(transfer_syntax: str) -> str:
    """pydicom's name of a transfer syntax UID (``JPEG-LS Lossless Image Compression``), or the UID."""
    from pydicom.uid import UID

    name = UID(transfer_syntax).name
    return name if name and name != transfer_syntax else f"transfer syntax {transfer_syntax}"


def decode_limits(header: PixelHeader, output_bytes: int, path: str):
    """What one guarded decode may use: room for the decoded array three times over (a colour
    conversion copies it) and the file twice, plus :data:`DECODE_MEMORY_MARGIN`; time at
    :data:`DECODE_BYTES_PER_SECOND` plus :data:`DECODE_SECONDS_MARGIN`."""
    from medconv.guard import Limits

    try:
        size = os.path.getsize(path)
    except OSError:
        size = 0
    return Limits(memory_bytes=3 * output_bytes + 2 * size + DECODE_MEMORY_MARGIN,
                  seconds=DECODE_SECONDS_MARGIN + output_bytes / DECODE_BYTES_PER_SECOND)


#: Deflated Explicit VR Little Endian (pydicom inflates it in memory, whole).
DEFLATED = "1.2.840.10008.1.2.1.99"
#: Memory a guarded decode may use besides its output (the decoder's own buffers: GDCM copies the file).
DECODE_MEMORY_MARGIN = 512 << 20
#: Output bytes per second a guarded decode is allowed (the slowest decoder here, OpenJPEG on one
#: core under load, makes ~20 MB/s), and seconds on top: a decode that takes longer is stopped.
DECODE_BYTES_PER_SECOND = 5 << 20
DECODE_SECONDS_MARGIN = 30.0


def decode_with_pydicom(path: str, header: PixelHeader, fp: IO[bytes] | None = None) -> tuple[np.ndarray, PixelHeader]:
    """Every frame of ``path`` decoded by pydicom's plugins (stored values, bits not yet masked), and ``header``
    as the data confirmed it (:func:`check_pixel_length`).

    Module-level so that :func:`medconv.guard.guarded` can run it in its helper:
    there ``fp`` is ``None`` and the file is opened again. Uncompressed Pixel Data
    (big endian, deflated) must have the length the header describes
    (:func:`check_pixel_length`: pydicom would drop extra bytes with a warning).

    Raises
    ------
    UnreadableFileError, MissingDependencyError
        The file cannot be parsed, has no Pixel Data, or no plugin decodes it.
    """
    import pydicom
    from pydicom.pixels import pixel_array

    try:
        if fp is None:
            with open_dicom(path) as own:
                dataset = pydicom.dcmread(own, force=True)
        else:
            fp.seek(0)
            dataset = pydicom.dcmread(fp, force=True)  # a full parse copes with deflate and odd encodings
    except MemoryError:
        raise
    except Exception as exc:  # pydicom raises many types on a corrupt file
        raise UnreadableFileError(f"cannot parse the DICOM file ({exc})", path=path) from exc
    if not any(keyword in dataset for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise UnreadableFileError(
            "the file has image attributes (Rows, Columns) but no Pixel Data element", path=path,
            hint="a header-only or stripped copy: get the complete file again",
        )
    if "PixelData" in dataset and not is_encapsulated(header.transfer_syntax):
        try:
            length = len(dataset.PixelData)
        except Exception as exc:  # a value pydicom cannot convert
            raise UnreadableFileError(f"the Pixel Data cannot be read ({type(exc).__name__}: {exc})", path) from exc
        expected = expected_pixel_bytes(header)
        header = check_pixel_length(header, length, lambda count: dataset.PixelData[expected + expected % 2:][:count])
    try:
        return pixel_array(dataset, as_rgb=True), header
    except MemoryError:
        raise
    except Exception as exc:  # third-party decoders raise many types; all mean "cannot decode"
        raise _decode_error(header, exc) from exc


def mask_stored_bits(array: np.ndarray, header: PixelHeader) -> None:
    """In place: keep only the low ``BitsStored`` bits, sign-extended if signed.

    Unused high bits may hold anything (PS3.5 8.1.1, ``dcm_qa_12bit``); for a
    signed 12-bit value the sign is bit 11, not bit 15. HighBit is taken to be
    ``BitsStored - 1``, as PS3.3 C.7.6.3.1 requires and pydicom reads every file: a
    header whose HighBit says otherwise gets a warning (:func:`high_bit_note`), not
    shifted values (HighBit 7 on 16-bit CT had shifted every value by 8 bits).
    """
    if array.dtype.kind not in "iu":
        return
    bits = array.dtype.itemsize * 8
    shift = bits - header.bits_stored
    if shift <= 0 or shift >= bits:
        return
    np.left_shift(array, array.dtype.type(shift), out=array)
    np.right_shift(array, array.dtype.type(shift), out=array)  # arithmetic for signed dtypes
