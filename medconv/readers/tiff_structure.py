"""What a TIFF file's structure must satisfy before tifffile is asked to decode it.

tifffile is tolerant: it repairs what it can and decodes the rest, which on a
corrupt file can mean a volume that is silently wrong. These checks refuse such
files with :class:`~medconv.errors.UnreadableFileError` naming the file:

* :func:`check_ifd_chain` walks the chain of image file directories (pages)
  itself, before tifffile does, with cycle detection and a hard limit
  (:data:`~medconv.readers.limits.MAX_TIFF_PAGES`): a last "next IFD" offset that
  points back into the file made tifffile loop forever (a cycle longer than 100
  pages) or silently drop pages (a shorter one: 19 of ``mri.tif``'s 27 slices);
* the same walk refuses a size tag (ImageWidth, ImageLength, RowsPerStrip ...)
  that is 0 or negative: a signed ImageWidth of -128 made tifffile's series
  detection count pages backwards forever;
* :func:`check_series_layout` checks, for every page of the series to be read,
  that tifffile parsed every tag that decides how its pixels decode (a Compression
  tag whose value it cannot read is dropped, and LZW bytes come out as pixels), that
  its strips or tiles cover the whole image (a PlanarConfiguration other
  than 1 or 2 made tifffile fill a third of an RGB image and leave the rest
  uninitialised memory, different on every read), that none is missing (tifffile
  fills a missing strip with zeros) and that no page of the series is missing.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

import numpy as np

from ..errors import UnreadableFileError
from .limits import MAX_TIFF_PAGES, voxel_count

#: The PlanarConfiguration values TIFF 6.0 defines: 1 chunky (RGBRGB...), 2 planar.
PLANAR_CONFIGURATIONS = (1, 2)

_CORRUPT_HINT = "the file is corrupt; download it again, or re-save it with another program"

#: Tags that decide how a page's pixels are decoded: one tifffile cannot parse must not be dropped silently.
DECODING_TAGS: dict[int, str] = {
    256: "ImageWidth", 257: "ImageLength", 258: "BitsPerSample", 259: "Compression", 262: "PhotometricInterpretation",
    266: "FillOrder", 273: "StripOffsets", 277: "SamplesPerPixel", 278: "RowsPerStrip", 279: "StripByteCounts",
    284: "PlanarConfiguration", 317: "Predictor", 322: "TileWidth", 323: "TileLength", 324: "TileOffsets",
    325: "TileByteCounts", 338: "ExtraSamples", 339: "SampleFormat", 347: "JPEGTables", 530: "YCbCrSubSampling",
    32997: "ImageDepth", 32998: "TileDepth"}
_DECODING_CODES = np.array(sorted(DECODING_TAGS), dtype=np.uint16)


@dataclass(frozen=True)
class IfdChain:
    """What :func:`check_ifd_chain` found: the pages, and the decoding tags each page's IFD holds."""

    pages: int = 0
    decoding_tags: dict = field(default_factory=dict)  # IFD offset -> frozenset of tag codes


def check_ifd_chain(path: str) -> IfdChain:
    """The main IFD chain of ``path``; raises for a chain that loops or is too long.

    Classic TIFF and BigTIFF, either byte order. The walk reads each page's entry
    count, the tag codes of its entries and its next offset, and stops at offset 0
    or at an offset past the file's end (tifffile reports that one itself); it never
    reads more than ``file size / 6`` pages, since distinct pages need distinct
    offsets. A file that is not TIFF is left to tifffile to refuse.
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            head = handle.read(16)
            if len(head) < 8 or head[:2] not in (b"II", b"MM"):
                return IfdChain()
            order = "<" if head[:2] == b"II" else ">"
            magic = struct.unpack(order + "H", head[2:4])[0]
            if magic == 42:
                count_format, entry_size, offset_format = "H", 12, "I"
                offset = struct.unpack(order + "I", head[4:8])[0]
            elif magic == 43 and len(head) == 16:
                count_format, entry_size, offset_format = "Q", 20, "Q"
                offset = struct.unpack(order + "Q", head[8:16])[0]
            else:
                return IfdChain()
            count_size = struct.calcsize(count_format)
            offset_size = struct.calcsize(offset_format)
            seen: dict[int, int] = {}
            tags: dict[int, frozenset] = {}
            while offset and offset + count_size <= size:
                if offset in seen:
                    raise UnreadableFileError(
                        f"the chain of pages loops back: the page after page {len(seen)} is page "
                        f"{seen[offset] + 1} again (next-IFD offset {offset})", path, _CORRUPT_HINT)
                if len(seen) >= MAX_TIFF_PAGES:
                    raise UnreadableFileError(f"the file has more than {MAX_TIFF_PAGES} pages", path,
                                              "split the stack into several files")
                seen[offset] = len(seen)
                handle.seek(offset)
                entries = struct.unpack(order + count_format, handle.read(count_size))[0]
                if offset + count_size + entries * entry_size + offset_size > size:
                    break  # a truncated last page: tifffile reports it
                blob = handle.read(entries * entry_size)
                codes = np.frombuffer(blob, dtype=order + "u2")[::entry_size // 2]
                tags[offset] = frozenset(int(c) for c in codes[np.isin(codes, _DECODING_CODES)])
                _check_sizes(blob, codes, order, entry_size, len(seen), path)
                offset = struct.unpack(order + offset_format, handle.read(offset_size))[0]
            return IfdChain(len(seen), tags)
    except OSError as exc:
        raise UnreadableFileError(f"cannot read the file ({exc.strerror or exc})", path) from exc
    except struct.error:
        return IfdChain()  # a header field cut short: tifffile reports the file


#: Tags holding a size or count, which must be positive: tifffile reads a signed type as it is, and a
#: negative ImageWidth (an SSHORT -128) made its series detection loop forever (a 72x-128 page).
SIZE_TAGS = {256: "ImageWidth", 257: "ImageLength", 277: "SamplesPerPixel", 278: "RowsPerStrip", 322: "TileWidth",
             323: "TileLength", 32997: "ImageDepth", 32998: "TileDepth"}
_SIGNED = {6: "b", 8: "h", 9: "i", 17: "q"}  # SBYTE, SSHORT, SLONG, SLONG8
_UNSIGNED = {1: "B", 3: "H", 4: "I", 16: "Q"}  # BYTE, SHORT, LONG, LONG8


def _check_sizes(blob: bytes, codes, order: str, entry_size: int, page: int, path: str) -> None:
    """Refuse a size tag (:data:`SIZE_TAGS`) whose single inline value is 0 or negative."""
    value_at = 8 if entry_size == 12 else 12  # after code, type and count (4- or 8-byte count)
    for index in np.flatnonzero(np.isin(codes, list(SIZE_TAGS))):
        entry = blob[index * entry_size:(index + 1) * entry_size]
        kind = struct.unpack(order + "H", entry[2:4])[0]
        fmt = _SIGNED.get(kind) or _UNSIGNED.get(kind)
        if fmt is None or struct.calcsize(fmt) > entry_size - value_at:
            continue  # another type: tifffile judges it
        value = struct.unpack(order + fmt, entry[value_at:value_at + struct.calcsize(fmt)])[0]
        if value <= 0:
            raise UnreadableFileError(f"page {page}'s {SIZE_TAGS[int(codes[index])]} is {value}", path, _CORRUPT_HINT)


def check_series_layout(series, path: str, chain: IfdChain | None = None) -> None:
    """Refuse a series whose pages tifffile could not decode as the file says, or fill completely.

    ``series`` is a ``tifffile.TiffPageSeries``; ``chain`` what :func:`check_ifd_chain`
    found in the same file (for the tags tifffile dropped); nothing is decoded.
    """
    pages = series.pages
    missing = sum(page is None for page in pages)
    if missing:
        raise UnreadableFileError(f"{missing} of the {len(pages)} pages of the image are missing", path,
                                  _CORRUPT_HINT)
    keyframes_checked: set[int] = set()
    for index, page in enumerate(pages):
        keyframe = page.keyframe
        if id(keyframe) not in keyframes_checked:
            _check_keyframe(keyframe, path, chain)
            keyframes_checked.add(id(keyframe))
        if keyframe.is_contiguous and len(page.dataoffsets) <= 1:
            continue  # read as one block, whose length tifffile checks
        expected = voxel_count(keyframe.chunked)
        offsets, counts = page.dataoffsets, page.databytecounts
        present = sum(1 for n in range(min(expected, len(offsets), len(counts))) if offsets[n] > 0 and counts[n] > 0)
        if present < expected:
            raise UnreadableFileError(
                f"page {index + 1} has {present} of the {expected} strips or tiles its image needs", path,
                _CORRUPT_HINT)


def _check_keyframe(page, path: str, chain: IfdChain | None) -> None:
    written = chain.decoding_tags.get(page.offset, frozenset()) if chain is not None else frozenset()
    dropped = sorted(code for code in written if code not in page.tags)
    if dropped:
        names = ", ".join(DECODING_TAGS[code] for code in dropped)
        raise UnreadableFileError(f"page {page.index + 1}'s {names} cannot be read (tifffile drops such a tag "
                                  "and decodes the pixels as if it were absent)", path, _CORRUPT_HINT)
    tag = page.tags.get(284)  # PlanarConfiguration
    if tag is not None and int(tag.value) not in PLANAR_CONFIGURATIONS:
        raise UnreadableFileError(f"PlanarConfiguration = {tag.value}: TIFF defines only 1 (chunky) and 2 (planar)",
                                  path, _CORRUPT_HINT)
    covered = voxel_count(page.chunked) * voxel_count(page.chunks)
    needed = voxel_count(page.shaped)
    if covered < needed:
        raise UnreadableFileError(f"the strips or tiles cover {covered} of the {needed} values of the image "
                                  f"{tuple(page.shaped)}", path, _CORRUPT_HINT)
