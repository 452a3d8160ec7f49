"""Decoding DICOM pixel data into stored values (before rescale).

One job: put the stored values of a file's frames into a preallocated array.
Uncompressed little-endian data is read straight from the file (the header is
parsed up to the Pixel Data element, whose bytes then go into the array with
``readinto``); every other transfer syntax goes through pydicom 3's decoder
plugins (pylibjpeg, pylibjpeg-libjpeg/openjpeg/rle, pyjpegls, python-gdcm), for
compressed data in a guarded helper process (:mod:`.compressed`). Uncompressed
values are then masked to ``BitsStored`` and sign-extended (PS3.5 8.1.1);
whether the header describes its pixels is :mod:`.pixel_checks`'.
Rescale, MONOCHROME1 and dtype choice live in :mod:`.pixels`.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
from dataclasses import dataclass
from typing import IO, Any, Sequence

import numpy as np

from medconv.errors import UnreadableFileError, UnsupportedFormatError

from .pixel_checks import PIXEL_HINT, check_pixel_header, check_pixel_length

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


def decode_into(path: str, header: PixelHeader, out: np.ndarray, fp: IO[bytes] | None = None) -> PixelHeader:
    """Decode every frame of ``path`` into ``out`` as stored values, bits masked; ``header`` as the data
    confirmed it (with :attr:`PixelHeader.padding` when the Pixel Data has trailing zero bytes).

    ``out`` has shape ``(frames, rows, columns[, samples])`` and the header's
    :attr:`PixelHeader.stored_dtype`. ``fp``, if given, is the open file
    positioned at the Pixel Data element (right after
    ``dcmread(fp, stop_before_pixels=True)``); it saves a second header parse.

    Compressed transfer syntaxes (:func:`.compressed.is_guarded`) are decoded in a guarded helper
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
    from . import compressed

    if compressed.is_guarded(header.transfer_syntax):
        from medconv.guard import guarded

        compressed.check_decoder_available(header)  # here, at once: the helper has the same plugins
        compressed.check_compressed_size(
            header, None if isinstance(fp, gzip.GzipFile) else os.fstat(fp.fileno()).st_size - fp.tell())
        array, header = guarded(compressed.decode_with_pydicom, path, header,
                                limits=compressed.decode_limits(header, out.nbytes, path),
                                what=f"{compressed.transfer_syntax_name(header.transfer_syntax)} decoding", path=path)
    else:
        array, header = compressed.decode_with_pydicom(path, header, fp)
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
    if compressed.is_encapsulated(header.transfer_syntax):
        compressed.check_decoded_range(out, header)  # pydicom's plugins gave the values as the codestream holds them
    else:
        mask_stored_bits(out, header)
    return header


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
