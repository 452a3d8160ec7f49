"""Compressed DICOM pixel data: decoded by pydicom's plugins in a guarded helper process (issue 16 items 2-3).

Which transfer syntaxes are guarded (every encapsulated one, and Deflated), what a
guarded decode may use (memory and time, :func:`decode_limits`), the size checks
made before it (:func:`check_compressed_size`: compressed data too small for its
header) and after it (:func:`check_decoded_range`: values that do not fit
BitsStored), and :func:`decode_with_pydicom`, the module-level function
:func:`medconv.guard.guarded` runs in its helper. :func:`.decode.decode_into` is
the caller.
"""

from __future__ import annotations

import os
from typing import IO

import numpy as np

from medconv.errors import MissingDependencyError, UnreadableFileError, UnsupportedFormatError

from .decode import DECODER_PACKAGES, PixelHeader, open_dicom
from .pixel_checks import check_pixel_length, expected_pixel_bytes

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
