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

import gzip
import struct
from dataclasses import dataclass
from typing import IO, Any, Sequence

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


def _number(ds: Any, keyword: str, default: float) -> float:
    value = first_float(ds.get(keyword, None))
    return default if value is None else value


def pixel_header(ds: Any, path: str) -> PixelHeader:
    """Build a :class:`PixelHeader` from a parsed dataset (header only is enough)."""
    meta = getattr(ds, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if not syntax:
        syntax = "1.2.840.10008.1.2" if getattr(ds, "is_implicit_VR", True) else "1.2.840.10008.1.2.1"
    try:
        rows, columns = int(ds.Rows), int(ds.Columns)
        bits_allocated = int(ds.BitsAllocated)
    except (AttributeError, TypeError, ValueError) as exc:
        raise UnreadableFileError(f"no usable image pixel attributes ({exc})", path=path) from exc
    bits_stored = int(ds.get("BitsStored", bits_allocated) or bits_allocated)
    return PixelHeader(
        path=str(path),
        transfer_syntax=syntax,
        rows=rows,
        columns=columns,
        samples=int(ds.get("SamplesPerPixel", 1) or 1),
        frames=int(_number(ds, "NumberOfFrames", 1) or 1),
        bits_allocated=bits_allocated,
        bits_stored=bits_stored,
        high_bit=int(ds.get("HighBit", bits_stored - 1) if ds.get("HighBit", None) is not None else bits_stored - 1),
        pixel_representation=int(ds.get("PixelRepresentation", 0) or 0),
        photometric=str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper(),
        slope=_number(ds, "RescaleSlope", 1.0) or 1.0,
        intercept=_number(ds, "RescaleIntercept", 0.0),
        modality=str(ds.get("Modality", "")).upper(),
        rescale_type=str(ds.get("RescaleType", "") or "").upper(),
        planar_configuration=int(ds.get("PlanarConfiguration", 0) or 0),
        pet_units=str(ds.get("Units", "") or "").strip().upper(),
    )


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


def _read_native(fp: IO[bytes], header: PixelHeader, out: np.ndarray) -> bool:
    """Read uncompressed little-endian pixel data straight into ``out``; False if not possible here.

    ``fp`` is positioned (by ``dcmread(stop_before_pixels=True)``) at the start of
    the Pixel Data element.
    """
    implicit = header.transfer_syntax == "1.2.840.10008.1.2"
    head = fp.read(8)
    if len(head) < 8:
        return False
    group, element = struct.unpack("<HH", head[:4])
    if (group << 16 | element) != _PIXEL_DATA_TAG:
        return False
    if implicit:
        (length,) = struct.unpack("<I", head[4:8])
    else:
        if head[4:6] not in (b"OW", b"OB", b"UN"):
            return False
        extra = fp.read(4)
        if len(extra) < 4:
            return False
        (length,) = struct.unpack("<I", extra)
    needed = out.nbytes
    if length == 0xFFFFFFFF or length < needed:
        return False
    view = memoryview(out.reshape(-1).view(np.uint8))
    got = 0
    while got < needed:
        count = fp.readinto(view[got:])
        if not count:
            raise UnreadableFileError(
                f"pixel data is truncated ({got} of {needed} bytes)", path=header.path, hint="re-download the file"
            )
        got += count
    return True


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


def decode_into(path: str, header: PixelHeader, out: np.ndarray, fp: IO[bytes] | None = None) -> None:
    """Decode every frame of ``path`` into ``out`` as stored values, bits masked.

    ``out`` has shape ``(frames, rows, columns[, samples])`` and the header's
    :attr:`PixelHeader.stored_dtype`. ``fp``, if given, is the open file
    positioned at the Pixel Data element (right after
    ``dcmread(fp, stop_before_pixels=True)``); it saves a second header parse.
    """
    import pydicom

    if fp is None:
        with open_dicom(path) as own:
            parse_header(own, path)
            decode_into(path, header, out, own)
        return
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
        if done:
            mask_stored_bits(out, header)
            return
    try:
        fp.seek(0)
        dataset = pydicom.dcmread(fp, force=True)  # a full parse copes with deflate and odd encodings
    except Exception as exc:  # pydicom raises many types on a corrupt file
        raise UnreadableFileError(f"cannot parse the DICOM file ({exc})", path=path) from exc
    from pydicom.pixels import pixel_array

    if not any(keyword in dataset for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise UnreadableFileError(
            "the file has image attributes (Rows, Columns) but no Pixel Data element", path=path,
            hint="a header-only or stripped copy: get the complete file again",
        )
    try:
        array = pixel_array(dataset, as_rgb=True)
    except MemoryError:
        raise
    except Exception as exc:  # third-party decoders raise many types; all mean "cannot decode"
        raise _decode_error(header, exc) from exc
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
    mask_stored_bits(out, header)


def mask_stored_bits(array: np.ndarray, header: PixelHeader) -> None:
    """In place: keep only bits ``HighBit-BitsStored+1 .. HighBit``, sign-extended if signed.

    Unused high bits may hold anything (PS3.5 8.1.1, ``dcm_qa_12bit``); for a
    signed 12-bit value the sign is bit 11, not bit 15.
    """
    if array.dtype.kind not in "iu":
        return
    bits = array.dtype.itemsize * 8
    up = bits - 1 - header.high_bit
    down = bits - header.bits_stored
    if up <= 0 and down <= 0 or down >= bits:
        return
    if up > 0:
        np.left_shift(array, array.dtype.type(up), out=array)
    if down > 0:
        np.right_shift(array, array.dtype.type(down), out=array)  # arithmetic for signed dtypes
