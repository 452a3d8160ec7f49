"""Does a DICOM file's header describe pixels that can be decoded, and its Pixel Data exactly? (issue 16)

The rules are pydicom's (what its decoders refuse) and the standard's (PS3.5 8.1.1:
the Pixel Data holds Rows x Columns x SamplesPerPixel x BitsAllocated x
NumberOfFrames bits, padded to an even length). A header that breaks them fails
its file with a typed error naming the element, before anything is allocated;
what the standard forbids but pydicom reads (a HighBit other than BitsStored - 1,
trailing zero padding) gives a warning instead. Used by :mod:`.decode` (pydicom's
header) and :mod:`.pixels` / :mod:`.headers` (the raw-parsed header).
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Callable, Sequence

from medconv.errors import UnreadableFileError

if TYPE_CHECKING:
    from .decode import PixelHeader

#: What a corrupt pixel description is told to do.
PIXEL_HINT = "the file's pixel description is corrupt; fix the element or leave the file out"

#: PhotometricInterpretation values pydicom decodes (PS3.3 C.7.6.3.1.2), as pydicom checks them.
PHOTOMETRIC_VALUES = frozenset({"MONOCHROME1", "MONOCHROME2", "PALETTE COLOR", "RGB", "YBR_FULL", "YBR_FULL_422",
                                "YBR_PARTIAL_420", "YBR_PARTIAL_422", "YBR_ICT", "YBR_RCT", "HSV", "ARGB", "CMYK",
                                "XYB"})


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
