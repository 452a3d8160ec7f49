"""DICOM pixel data to numpy arrays: stored values, bit masking, rescale, dtype.

One job: turn the pixel data of DICOM files into one C-ordered array of
rescaled values, fast and exactly.

* **Decoding** uses pydicom 3's decoder plugins (pylibjpeg, pylibjpeg-libjpeg,
  pylibjpeg-openjpeg, pylibjpeg-rle, pyjpegls, or GDCM) for every compressed
  transfer syntax; uncompressed little-endian pixel data is read straight from
  the file into the preallocated output (no pydicom array per file).
* **Stored values** are masked to ``BitsStored`` (garbage in the unused high
  bits is dropped, PS3.5 8.1.1) and sign-extended when ``PixelRepresentation``
  is 1.
* **MONOCHROME1** (low values bright) is inverted within the stored range so
  that, as for MONOCHROME2, higher values are brighter; a warning says so.
* **Rescale**: ``RescaleSlope``/``RescaleIntercept`` are applied per slice;
  the output dtype is the smallest one that holds every rescaled value exactly
  (:func:`medconv.pixels.rescaled_dtype`): int16 for CT Hounsfield units,
  float32 only when a slope or intercept is not integral.
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass, field
from typing import IO, Any, Sequence

import numpy as np

from medconv.errors import MissingDependencyError, UnreadableFileError, UnsupportedFormatError
from medconv.pixels import smallest_integer_dtype

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

    @property
    def stored_dtype(self) -> np.dtype:
        """Native-endian dtype of the stored values (before rescale)."""
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


@dataclass(frozen=True)
class PixelStack:
    """The rescaled pixel values of a stack of slices.

    Attributes
    ----------
    array:
        C-ordered ``(k, rows, columns)`` (or ``(k, rows, columns, 3)`` for RGB).
    warnings:
        One line per decision taken (MONOCHROME1 inverted, rescale varies ...).
    units:
        ``"HU"`` for rescaled CT, otherwise ``None``.
    """

    array: np.ndarray
    warnings: tuple[str, ...] = ()
    units: str | None = None
    headers: tuple[PixelHeader, ...] = field(default=(), repr=False)


def open_dicom(path: str) -> IO[bytes]:
    """Open a DICOM file for reading, transparently decompressing ``.gz``."""
    if str(path).lower().endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def _number(ds: Any, keyword: str, default: float) -> float:
    value = ds.get(keyword, None)
    if value is None or value == "":
        return default
    try:
        if hasattr(value, "__len__") and not isinstance(value, (str, bytes)):
            value = value[0]
        return float(value)
    except (TypeError, ValueError, IndexError):
        return default


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
    )


def read_header(path: str) -> tuple[PixelHeader, Any]:
    """Parse the header of one file (no pixel data): its :class:`PixelHeader` and dataset."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        with open_dicom(path) as fp:
            ds = pydicom.dcmread(fp, stop_before_pixels=True, force=True)
    except (InvalidDicomError, OSError, EOFError, ValueError, struct.error) as exc:
        raise UnreadableFileError(f"cannot parse the DICOM header ({exc})", path=path) from exc
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
            try:
                pydicom.dcmread(own, stop_before_pixels=True, force=True)
            except Exception as exc:  # pydicom raises many types on a corrupt header
                raise UnreadableFileError(f"cannot parse the DICOM header ({exc})", path=path) from exc
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

    try:
        array = pixel_array(dataset, as_rgb=True)
    except MemoryError:
        raise
    except Exception as exc:  # third-party decoders raise many types; all mean "cannot decode"
        raise _decode_error(header, exc) from exc
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


def invert_monochrome1(array: np.ndarray, header: PixelHeader) -> None:
    """In place: map stored value ``v`` to ``min + max - v`` over the stored range."""
    low, high = header.stored_range
    if array.dtype.kind == "i":
        np.invert(array, out=array)  # -1 - v, the same as low + high - v for two's complement
    else:
        np.subtract(array.dtype.type(high + low), array, out=array)


def combined_rescale_dtype(
    stored: np.dtype, ranges: Sequence[tuple[float, float]], slopes: Sequence[float], intercepts: Sequence[float]
) -> np.dtype:
    """The dtype holding ``stored * slope + intercept`` exactly for every frame's own range and rescale."""
    stored = np.dtype(stored)
    low = high = None
    integral = stored.kind in "iub"
    for (lo, hi), slope, intercept in zip(ranges, slopes, intercepts):
        ends = (lo * slope + intercept, hi * slope + intercept)
        low = min(ends) if low is None else min(low, *ends)
        high = max(ends) if high is None else max(high, *ends)
        integral = integral and float(slope).is_integer() and float(intercept).is_integer()
    if low is None:
        return stored
    if integral:
        # Signed when the rescale can make values negative (CT HU), even if these slices' values are not.
        signed = low < 0 or stored.kind == "i" or any(b < 0 for b in intercepts) or any(a < 0 for a in slopes)
        dtype = smallest_integer_dtype(low, high, prefer_signed=signed)
        if dtype is not None:
            return dtype
    largest_stored = max((max(abs(lo), abs(hi)) for lo, hi in ranges), default=0)
    if stored.kind in "iub" and largest_stored < 2**24 or stored.kind == "f" and stored.itemsize <= 4:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def rescale_frames(stored: np.ndarray, slopes: Sequence[float], intercepts: Sequence[float]) -> np.ndarray:
    """``stored[f] * slopes[f] + intercepts[f]`` for every frame ``f``, in the smallest exact dtype.

    Works in place (same buffer reinterpreted) when the output dtype has the
    stored itemsize: integer arithmetic wraps modulo 2**bits, so the result is
    exact whenever it fits the output dtype, which is how that dtype was chosen.
    """
    if all(s == 1 for s in slopes) and all(b == 0 for b in intercepts):
        return stored
    frames = stored.reshape(stored.shape[0], -1) if stored.ndim > 1 else stored.reshape(1, -1)
    ranges = [(int(f.min()), int(f.max())) if stored.dtype.kind in "iu" else (float(f.min()), float(f.max()))
              for f in frames]
    dtype = combined_rescale_dtype(stored.dtype, ranges, slopes, intercepts)
    if dtype.kind in "iu" and dtype.itemsize == stored.dtype.itemsize:
        out = stored.view(dtype)
        for index, (slope, intercept) in enumerate(zip(slopes, intercepts)):
            frame = out[index]
            if slope != 1:
                np.multiply(frame, np.array(int(slope)).astype(dtype), out=frame, casting="unsafe")
            if intercept != 0:
                np.add(frame, np.array(int(intercept)).astype(dtype), out=frame, casting="unsafe")
        return out
    out = np.empty(stored.shape, dtype=dtype)
    for index, (slope, intercept) in enumerate(zip(slopes, intercepts)):
        if dtype.kind in "iu":
            np.copyto(out[index], stored[index], casting="unsafe")
            if slope != 1:
                np.multiply(out[index], dtype.type(int(slope)), out=out[index])
            if intercept != 0:
                np.add(out[index], dtype.type(int(intercept)), out=out[index])
        else:
            np.multiply(stored[index], dtype.type(slope), out=out[index], dtype=dtype, casting="unsafe")
            if intercept != 0:
                np.add(out[index], dtype.type(intercept), out=out[index])
    return out


def units_for(headers: Sequence[PixelHeader]) -> str | None:
    """``"HU"`` for CT whose rescale gives Hounsfield units, else ``None``."""
    first = headers[0]
    if first.modality == "CT" and first.rescale_type in ("", "HU"):
        return "HU"
    return None


def read_pixel_stack(paths: Sequence[str]) -> PixelStack:
    """Decode single-frame slices, in the given order, into one rescaled ``(k, rows, columns)`` array.

    Each file is opened once: its header is parsed up to the pixel data, which
    is then read straight into the preallocated array (uncompressed little
    endian) or decoded by pydicom's plugins (everything else).

    Parameters
    ----------
    paths:
        One file per slice, already in slice order. ``.dcm.gz`` is read too.

    Returns
    -------
    PixelStack
        The C-ordered array (RGB data: ``(k, rows, columns, 3)``, never
        rescaled), the warnings, and the units.

    Raises
    ------
    UnreadableFileError
        A file cannot be parsed or decoded (names the file and transfer syntax).
    MissingDependencyError
        No installed plugin decodes a file's transfer syntax (names what to install).
    UnsupportedFormatError
        The slices disagree on size or sample layout, or a file holds several frames.
    """
    import pydicom

    if not paths:
        raise UnsupportedFormatError("no files to read")
    headers: list[PixelHeader] = []
    stored: np.ndarray | None = None
    for index, path in enumerate(os.fspath(p) for p in paths):
        try:
            with open_dicom(path) as fp:
                try:
                    ds = pydicom.dcmread(fp, stop_before_pixels=True, force=True)
                except Exception as exc:  # pydicom raises many types on a corrupt header
                    raise UnreadableFileError(f"cannot parse the DICOM header ({exc})", path=path) from exc
                header = pixel_header(ds, path)
                _check_same(header, headers[0] if headers else header)
                if stored is None:
                    stored = np.empty((len(paths),) + header.frame_shape, dtype=header.stored_dtype)
                if header.stored_dtype == stored.dtype:
                    decode_into(path, header, stored[index : index + 1], fp)
                else:  # mixed signedness or bit depth (rare): decode in its own dtype, then widen
                    frame = np.empty((1,) + header.frame_shape, dtype=header.stored_dtype)
                    decode_into(path, header, frame, fp)
                    wider = np.promote_types(stored.dtype, frame.dtype)
                    if wider != stored.dtype:
                        stored = stored.astype(wider)
                    stored[index] = frame[0]
        except OSError as exc:
            raise UnreadableFileError(f"cannot read the file ({exc})", path=path) from exc
        headers.append(header)
    assert stored is not None
    return finish_stack(stored, headers)


def _check_same(header: PixelHeader, first: PixelHeader) -> None:
    if header.frames != 1:
        raise UnsupportedFormatError(
            f"a slice of a single-frame stack holds {header.frames} frames", path=header.path,
            hint="multi-frame files are read by medconv.readers.dicom.multiframe",
        )
    if (header.rows, header.columns, header.samples) != (first.rows, first.columns, first.samples):
        raise UnsupportedFormatError(
            f"slice size {header.rows}x{header.columns}x{header.samples} differs from "
            f"{first.rows}x{first.columns}x{first.samples} in {first.path}", path=header.path,
        )


def finish_stack(stored: np.ndarray, headers: Sequence[PixelHeader]) -> PixelStack:
    """MONOCHROME1 inversion and per-frame rescale of decoded stored values (one header per frame)."""
    warnings: list[str] = []
    first = headers[0]
    if first.samples > 1:
        return PixelStack(stored, tuple(warnings), None, tuple(headers))
    if any(h.photometric == "MONOCHROME1" for h in headers):
        for index, header in enumerate(headers):
            if header.photometric == "MONOCHROME1":
                invert_monochrome1(stored[index], header)
        warnings.append("MONOCHROME1 pixel data inverted within the stored range so that higher values are brighter")
    slopes = [h.slope for h in headers]
    intercepts = [h.intercept for h in headers]
    pairs = set(zip(slopes, intercepts))
    if len(pairs) > 1:
        warnings.append(f"rescale slope/intercept vary between slices ({len(pairs)} different pairs); applied per slice")
    array = rescale_frames(stored, slopes, intercepts)
    return PixelStack(array, tuple(warnings), units_for(headers), tuple(headers))


def rgb_to_gray(array: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of an ``(..., 3)`` RGB array, as float32."""
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.tensordot(array.astype(np.float32, copy=False), weights, axes=([-1], [0])).astype(np.float32)
