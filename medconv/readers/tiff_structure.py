"""What a TIFF file's structure must satisfy before tifffile is asked to decode it.

tifffile is tolerant: it repairs what it can and decodes the rest, which on a
corrupt file can mean a volume that is silently wrong. These checks refuse such
files with :class:`~medconv.errors.UnreadableFileError` naming the file:

* :func:`check_ifd_chain` walks the chain of image file directories (pages)
  itself, before tifffile does, with cycle detection and a hard limit
  (:data:`~medconv.readers.limits.MAX_TIFF_PAGES`): a last "next IFD" offset that
  points back into the file made tifffile loop forever (a cycle longer than 100
  pages) or silently drop pages (a shorter one: 19 of ``mri.tif``'s 27 slices);
* :func:`check_series_layout` checks, for every page of the series to be read,
  that its strips or tiles cover the whole image (a PlanarConfiguration other
  than 1 or 2 made tifffile fill a third of an RGB image and leave the rest
  uninitialised memory, different on every read), that none is missing (tifffile
  fills a missing strip with zeros) and that no page of the series is missing.
"""

from __future__ import annotations

import os
import struct

from ..errors import UnreadableFileError
from .limits import MAX_TIFF_PAGES, voxel_count

#: The PlanarConfiguration values TIFF 6.0 defines: 1 chunky (RGBRGB...), 2 planar.
PLANAR_CONFIGURATIONS = (1, 2)

_CORRUPT_HINT = "the file is corrupt; download it again, or re-save it with another program"


def check_ifd_chain(path: str) -> int:
    """The number of pages in ``path``'s main IFD chain; raises for a chain that loops or is too long.

    Classic TIFF and BigTIFF, either byte order. The walk reads two small fields
    per page (entry count and next offset) and stops at offset 0 or at an offset
    past the file's end (tifffile reports that one itself); it never reads more
    than ``file size / 6`` pages, since distinct pages need distinct offsets.
    A file that is not TIFF is left to tifffile to refuse.
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            head = handle.read(16)
            if len(head) < 8 or head[:2] not in (b"II", b"MM"):
                return 0
            order = "<" if head[:2] == b"II" else ">"
            magic = struct.unpack(order + "H", head[2:4])[0]
            if magic == 42:
                count_format, entry_size, offset_format = "H", 12, "I"
                offset = struct.unpack(order + "I", head[4:8])[0]
            elif magic == 43 and len(head) == 16:
                count_format, entry_size, offset_format = "Q", 20, "Q"
                offset = struct.unpack(order + "Q", head[8:16])[0]
            else:
                return 0
            count_size = struct.calcsize(count_format)
            offset_size = struct.calcsize(offset_format)
            seen: dict[int, int] = {}
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
                handle.seek(offset + count_size + entries * entry_size)
                field = handle.read(offset_size)
                if len(field) < offset_size:
                    break  # a truncated last page: tifffile reports it
                offset = struct.unpack(order + offset_format, field)[0]
            return len(seen)
    except OSError as exc:
        raise UnreadableFileError(f"cannot read the file ({exc.strerror or exc})", path) from exc
    except struct.error:
        return 0  # a header field cut short: tifffile reports the file


def check_series_layout(series, path: str) -> None:
    """Refuse a series whose pages tifffile could not fill completely (see the module notes).

    ``series`` is a ``tifffile.TiffPageSeries``; nothing is decoded.
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
            _check_keyframe(keyframe, path)
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


def _check_keyframe(page, path: str) -> None:
    tag = page.tags.get(284)  # PlanarConfiguration
    if tag is not None and int(tag.value) not in PLANAR_CONFIGURATIONS:
        raise UnreadableFileError(f"PlanarConfiguration = {tag.value}: TIFF defines only 1 (chunky) and 2 (planar)",
                                  path, _CORRUPT_HINT)
    covered = voxel_count(page.chunked) * voxel_count(page.chunks)
    needed = voxel_count(page.shaped)
    if covered < needed:
        raise UnreadableFileError(f"the strips or tiles cover {covered} of the {needed} values of the image "
                                  f"{tuple(page.shaped)}", path, _CORRUPT_HINT)
