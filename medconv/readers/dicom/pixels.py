"""DICOM pixel data to numpy arrays: stored values, bit masking, rescale, dtype.

One job: turn the pixel data of DICOM files into one C-ordered array of
rescaled values, fast and exactly.

* **Decoding** (:mod:`.decode`) uses pydicom 3's decoder plugins (pylibjpeg,
  pylibjpeg-libjpeg, pylibjpeg-openjpeg, pylibjpeg-rle, pyjpegls, or GDCM) for
  every compressed transfer syntax; uncompressed little-endian pixel data is
  read straight from the file into the preallocated output (no pydicom array
  per file).
* **Stored values** are masked to ``BitsStored`` (garbage in the unused high
  bits is dropped, PS3.5 8.1.1) and sign-extended when ``PixelRepresentation``
  is 1.
* **MONOCHROME1** (low values bright) is inverted within the stored range so
  that, as for MONOCHROME2, higher values are brighter; a warning says so.
* **Rescale**: ``RescaleSlope``/``RescaleIntercept`` are applied per slice;
  the output dtype is the smallest one that holds every rescaled value exactly
  and is no narrower than the stored type (:func:`combined_rescale_dtype`):
  int16 for CT Hounsfield units, float32 only when a slope or intercept is not
  integral.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from medconv.errors import UnreadableFileError, UnsupportedFormatError
from medconv.pixels import finite_range, rescaled_range, smallest_integer_dtype

from .decode import (  # noqa: F401  (re-exported: the decoding API lives in .decode)
    DECODER_PACKAGES,
    NATIVE_LITTLE_ENDIAN,
    PixelHeader,
    decode_into,
    mask_stored_bits,
    open_dicom,
    parse_header,
    pixel_header,
    read_datasets,
    read_header,
)
from .pixel_checks import check_pixel_header, check_pixel_length, expected_pixel_bytes, high_bit_note, padding_note


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
    headers:
        The pixel attributes of each slice, in order.
    """

    array: np.ndarray
    warnings: tuple[str, ...] = ()
    units: str | None = None
    headers: tuple[PixelHeader, ...] = field(default=(), repr=False)


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
    """The dtype holding ``stored * slope + intercept`` exactly for every frame's own range and rescale.

    An integer result is **never narrower than the stored type** (BitsAllocated):
    a 16-bit CT series stays int16 Hounsfield units even when its actual values
    would fit 8 bits (a constant phantom, an all-air slab), so every series of a
    dataset gets the same dtype; it is widened (int32, uint32) only when the
    values need it. It is signed whenever the stored type, a slope or an
    intercept is negative-capable, so CT comes out int16, not uint16.
    """
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
        dtype = _integer_dtype_at_least(low, high, signed, stored.itemsize)
        if dtype is not None:
            return dtype
    largest_stored = max((max(abs(lo), abs(hi)) for lo, hi in ranges), default=0)
    if stored.kind in "iub" and largest_stored < 2**24 or stored.kind == "f" and stored.itemsize <= 4:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def _integer_dtype_at_least(low: float, high: float, signed: bool, itemsize: int) -> np.dtype | None:
    """The smallest integer dtype of at least ``itemsize`` bytes holding ``[low, high]`` (signed preferred)."""
    dtype = smallest_integer_dtype(low, high, prefer_signed=signed)
    if dtype is None or dtype.itemsize >= itemsize:
        return dtype
    for bits in (8 * itemsize, 16 * itemsize):
        for kind in (("int", "uint") if signed or low < 0 else ("uint", "int")):
            candidate = np.dtype(f"{kind}{bits}")
            info = np.iinfo(candidate)
            if info.min <= low and high <= info.max:
                return candidate
    return smallest_integer_dtype(low, high, prefer_signed=signed)


def _wrapped(value: float, dtype: np.dtype):
    """``value`` as a scalar of integer ``dtype``, modulo 2**bits (so -1024 is a valid uint16 or int8 operand).

    Integer arithmetic in ``dtype`` is exact modulo 2**bits, and the output
    dtype is chosen to hold every result, so results are exact even when the
    slope or intercept alone does not fit ``dtype``.
    """
    return np.array(int(value), dtype=np.int64).astype(dtype)[()]


#: The largest magnitude a rescaled DICOM value may have: float32's. No modality's values come near it (CT
#: HU, MR intensities, PET Bq/ml, dose in Gy); a RescaleIntercept of 1e308 is a corrupt header, refused
#: rather than written as a float64 volume of 1e308 (or, in float32, of inf).
MAX_RESCALED_MAGNITUDE = float(np.finfo(np.float32).max)


def check_rescaled_range(ranges: Sequence[tuple[float, float]], slopes: Sequence[float],
                         intercepts: Sequence[float], paths: Sequence[str | None]) -> None:
    """Refuse a rescale whose result is not finite (the shared rule, :func:`medconv.pixels.rescaled_range`)
    or beyond :data:`MAX_RESCALED_MAGNITUDE`, naming the file of the first frame that does it."""
    for (low, high), slope, intercept, path in zip(ranges, slopes, intercepts, paths):
        out_low, out_high = rescaled_range((low, high), slope, intercept, path)
        if max(abs(out_low), abs(out_high)) > MAX_RESCALED_MAGNITUDE:
            raise UnreadableFileError(
                f"the rescale (slope {float(slope):g}, intercept {float(intercept):g}) of stored values "
                f"{low:g}..{high:g} gives values up to {max(abs(out_low), abs(out_high)):g}, beyond what any "
                f"DICOM image holds (float32's {MAX_RESCALED_MAGNITUDE:.3g})", path,
                "the header's rescale fields are corrupt: fix or remove them, then convert again")


def rescale_frames(stored: np.ndarray, slopes: Sequence[float], intercepts: Sequence[float],
                   paths: Sequence[str | None] | None = None) -> np.ndarray:
    """``stored[f] * slopes[f] + intercepts[f]`` for every frame ``f``, in the smallest exact dtype.

    Works in place (same buffer reinterpreted) when the output dtype has the
    stored itemsize: integer arithmetic wraps modulo 2**bits, so the result is
    exact whenever it fits the output dtype, which is how that dtype was chosen.
    A result that is not finite, or beyond float32, fails (:func:`check_rescaled_range`,
    naming ``paths[f]``).
    """
    if all(s == 1 for s in slopes) and all(b == 0 for b in intercepts):
        return stored
    frames = stored.reshape(stored.shape[0], -1) if stored.ndim > 1 else stored.reshape(1, -1)
    ranges = [(int(f.min()), int(f.max())) if stored.dtype.kind in "iu" else finite_range(f) for f in frames]
    check_rescaled_range(ranges, slopes, intercepts, paths or [None] * len(ranges))
    dtype = combined_rescale_dtype(stored.dtype, ranges, slopes, intercepts)
    if dtype.kind in "iu":
        in_place = dtype.itemsize == stored.dtype.itemsize
        out = stored.view(dtype) if in_place else np.empty(stored.shape, dtype=dtype)
        for index, (slope, intercept) in enumerate(zip(slopes, intercepts)):
            frame = out[index]
            if not in_place:
                np.copyto(frame, stored[index], casting="unsafe")
            if slope != 1:
                np.multiply(frame, _wrapped(slope, dtype), out=frame, casting="unsafe")
            if intercept != 0:
                np.add(frame, _wrapped(intercept, dtype), out=frame, casting="unsafe")
        return out
    out = np.empty(stored.shape, dtype=dtype)
    for index, (slope, intercept) in enumerate(zip(slopes, intercepts)):
        np.multiply(stored[index], dtype.type(slope), out=out[index], dtype=dtype, casting="unsafe")
        if intercept != 0:
            np.add(out[index], dtype.type(intercept), out=out[index])
    return out


def units_for(headers: Sequence[PixelHeader]) -> str | None:
    """``"HU"`` for CT whose rescale gives Hounsfield units, PET ``Units`` (BQML, CNTS ...), else ``None``."""
    first = headers[0]
    if first.modality == "CT" and first.rescale_type in ("", "HU"):
        return "HU"
    if first.modality == "PT" and first.pet_units:
        return first.pet_units
    if first.modality == "RTDOSE" and first.rescale_type:
        return first.rescale_type  # DoseUnits: GY or RELATIVE
    return None


def read_pixel_stack(paths: Sequence[str], headers: Sequence[Any] | None = None) -> PixelStack:
    """Decode single-frame slices, in the given order, into one rescaled ``(k, rows, columns)`` array.

    Uncompressed little-endian files whose header scan (:func:`.headers.read_header`)
    found the Pixel Data offset are not parsed again: their pixel bytes are read
    straight from that offset into the preallocated array, without pydicom. Every
    other file is opened once: its header is parsed up to the pixel data, which is
    then read into the array or decoded by pydicom's plugins.

    Parameters
    ----------
    paths:
        One file per slice, already in slice order. ``.dcm.gz`` is read too.
    headers:
        The :class:`~.headers.DicomHeader` of each path, in the same order (from
        discovery or the reader's own scan); ``None`` scans them here.

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
    if not paths:
        raise UnsupportedFormatError("no files to read")
    paths = [os.fspath(p) for p in paths]
    if headers is None:
        headers = [_scan_header(path) for path in paths]
    elif len(headers) != len(paths):
        raise ValueError("one header per path is needed")
    pixel_headers: list[PixelHeader] = []
    stored: np.ndarray | None = None
    for index, path in enumerate(paths):
        direct = direct_pixel_header(headers[index]) if headers[index] is not None else None
        try:
            if direct is not None:
                _check_same(direct, pixel_headers[0] if pixel_headers else direct)
                if stored is None:
                    stored = np.empty((len(paths),) + direct.frame_shape, dtype=direct.stored_dtype)
                if direct.stored_dtype == stored.dtype:
                    read_pixel_bytes(path, headers[index].pixel_offset, stored[index : index + 1])
                    mask_stored_bits(stored[index : index + 1], direct)
                    pixel_headers.append(direct)
                    continue
            with open_dicom(path) as fp:
                ds = parse_header(fp, path)
                header = pixel_header(ds, path)
                _check_same(header, pixel_headers[0] if pixel_headers else header)
                if stored is None:
                    stored = np.empty((len(paths),) + header.frame_shape, dtype=header.stored_dtype)
                if header.stored_dtype == stored.dtype:
                    header = decode_into(path, header, stored[index : index + 1], fp)
                else:  # mixed signedness or bit depth (rare): decode in its own dtype, then widen
                    frame = np.empty((1,) + header.frame_shape, dtype=header.stored_dtype)
                    header = decode_into(path, header, frame, fp)
                    wider = np.promote_types(stored.dtype, frame.dtype)
                    if wider != stored.dtype:
                        stored = stored.astype(wider)
                    stored[index] = frame[0]
        except OSError as exc:
            raise UnreadableFileError(f"cannot read the file ({exc})", path=path) from exc
        pixel_headers.append(header)
    assert stored is not None
    return finish_stack(stored, pixel_headers)


def decode_file(header: Any) -> tuple[np.ndarray, PixelHeader]:
    """Every frame of one file as stored values ``(frames, rows, columns[, samples])``, and its pixel header.

    ``header`` is the file's scanned :class:`~.headers.DicomHeader`: uncompressed
    little-endian pixel data at a known offset is read straight from the file
    (no parse); anything else is parsed and decoded by pydicom's plugins.
    """
    direct = direct_pixel_header(header)
    if direct is not None:  # its Pixel Data length is checked: exactly these frames
        stored = np.empty((direct.frames,) + direct.frame_shape, dtype=direct.stored_dtype)
        read_pixel_bytes(header.path, header.pixel_offset, stored)
        mask_stored_bits(stored, direct)
        return stored, direct
    try:
        with open_dicom(header.path) as fp:
            ds = parse_header(fp, header.path)
            pixel = pixel_header(ds, header.path)
            stored = np.empty((pixel.frames,) + pixel.frame_shape, dtype=pixel.stored_dtype)
            pixel = decode_into(header.path, pixel, stored, fp)
    except OSError as exc:
        raise UnreadableFileError(f"cannot read the file ({exc})", path=header.path) from exc
    return stored, pixel


def check_unit_voxels(plan: Any, options: Any) -> int:
    """Refuse a unit whose files declare more voxels than the limit, before anything is allocated.

    Counts every frame of every file the unit decodes (a multi-frame file or a mosaic
    is decoded whole), Rows x Columns x NumberOfFrames x SamplesPerPixel, from the
    headers discovery scanned; :func:`medconv.readers.limits.check_voxel_count` applies
    ``ReadOptions.max_voxels`` (default: the memory available). Returns the count.
    """
    from ..limits import check_voxel_count

    files = {header.path: header for header in plan.headers}.values()
    first = plan.first
    per_frame = max(1, first.rows) * max(1, first.columns) * max(1, first.samples_per_pixel or 1)
    voxels = sum(max(1, h.rows) * max(1, h.columns) * max(1, h.samples_per_pixel or 1) * max(1, h.number_of_frames or 1)
                 for h in files)
    frames = -(-voxels // per_frame)
    shape = (max(1, first.columns), max(1, first.rows), frames) + \
        ((first.samples_per_pixel,) if (first.samples_per_pixel or 1) > 1 else ())
    return check_voxel_count(shape, first.path, options)


def _scan_header(path: str):
    """The raw-parsed header of ``path``, or ``None`` (pydicom will parse it) when that fails."""
    from .headers import read_header_raw

    try:
        return read_header_raw(path)
    except Exception:  # the general path below reports the file's problem with its own words
        return None


def direct_pixel_header(header: Any) -> PixelHeader | None:
    """The :class:`PixelHeader` of a scanned header whose pixel bytes can be read straight from the file.

    That is: the raw parser found the Pixel Data element (or Float / Double Float
    Pixel Data, read as float32 / float64) at a known offset, the transfer syntax
    is uncompressed little endian, the value is not encapsulated, of 8, 16 or
    32-bit samples (interleaved when colour). ``None`` otherwise (the file is
    decoded by the general path). Defaults are those of :func:`.decode.pixel_header`.

    Raises
    ------
    UnreadableFileError
        A pixel attribute is unreadable or invalid (:func:`.pixel_checks.check_pixel_header`),
        or the Pixel Data's length is not what they describe (:func:`.pixel_checks.check_pixel_length`).
    """
    float_bits = getattr(header, "float_pixel_bits", 0)
    if float_bits and header.bits_allocated != float_bits:
        return None  # a float element whose BitsAllocated disagrees: let pydicom say what is wrong
    if (header.pixel_offset < 0 or header.transfer_syntax not in NATIVE_LITTLE_ENDIAN
            or header.bits_allocated not in (8, 16, 32, float_bits or 32) or header.rows <= 0 or header.columns <= 0):
        return None
    samples = header.samples_per_pixel or 1
    if samples != 1 and header.planar_configuration != 0:
        return None
    if header.transfer_syntax != NATIVE_LITTLE_ENDIAN[0] and header.pixel_vr not in ("OW", "OB", "UN", "OF", "OD"):
        return None
    if header.pixel_length == 0xFFFFFFFF:
        return None
    from .headers import header_problem

    problem = header_problem(header)  # its pixel description too (pixel_checks.check_pixel_header)
    if problem is not None:
        raise problem
    pixel = pixel_header_of(header)
    return check_pixel_length(pixel, header.pixel_length, lambda count: _read_at(
        header.path, header.pixel_offset + expected_pixel_bytes(pixel) + expected_pixel_bytes(pixel) % 2, count))


def pixel_header_of(header: Any) -> PixelHeader:
    """The :class:`PixelHeader` a scanned :class:`~.headers.DicomHeader` describes (not checked), with the
    defaults of :func:`.decode.pixel_header` for absent elements."""
    bits_stored = header.bits_stored if header.bits_stored is not None else header.bits_allocated
    return PixelHeader(
        path=header.path,
        transfer_syntax=header.transfer_syntax,
        rows=header.rows,
        columns=header.columns,
        samples=header.samples_per_pixel if header.samples_per_pixel is not None else 1,
        frames=header.number_of_frames or 1,
        bits_allocated=header.bits_allocated,
        bits_stored=bits_stored,
        high_bit=header.high_bit if header.high_bit is not None else bits_stored - 1,
        pixel_representation=header.pixel_representation or 0,
        photometric=header.photometric or "MONOCHROME2",
        slope=header.slope if header.slope is not None else 1.0,
        intercept=header.intercept if header.intercept is not None else 0.0,
        modality=header.modality,
        rescale_type=header.rescale_type,
        planar_configuration=header.planar_configuration or 0,
        pet_units=header.pet_units,
        float_bits=getattr(header, "float_pixel_bits", 0),
    )


def _read_at(path: str, offset: int, count: int) -> bytes:
    with open(path, "rb", buffering=0) as handle:
        handle.seek(offset)
        return handle.read(count)


def read_pixel_bytes(path: str, offset: int, out: np.ndarray) -> None:
    """Fill ``out`` with the bytes of ``path`` from ``offset`` on (one ``readinto``, no copy).

    Raises
    ------
    UnreadableFileError
        The file ends before ``out`` is full.
    """
    view = memoryview(out.reshape(-1).view(np.uint8))
    needed = len(view)
    got = 0
    with open(path, "rb", buffering=0) as fp:
        fp.seek(offset)
        while got < needed:
            count = fp.readinto(view[got:])
            if not count:
                raise UnreadableFileError(f"pixel data is truncated ({got} of {needed} bytes)", path=path,
                                          hint="re-download the file")
            got += count


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
    notes = list(dict.fromkeys(filter(None, map(high_bit_note, headers))))
    if notes:
        warnings.append(notes[0] if len(notes) == 1 else f"{notes[0]} (and {len(notes) - 1} other HighBit values)")
    padding = padding_note(headers)
    if padding:
        warnings.append(padding)
    slopes = [h.slope for h in headers]
    intercepts = [h.intercept for h in headers]
    pairs = set(zip(slopes, intercepts))
    if len(pairs) > 1:
        warnings.append(f"rescale slope/intercept vary between slices ({len(pairs)} different pairs); applied per slice")
    array = rescale_frames(stored, slopes, intercepts, [h.path for h in headers])
    return PixelStack(array, tuple(warnings), units_for(headers), tuple(headers))
