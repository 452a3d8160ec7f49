"""Reading voxel bytes whose amount a header declares, never more: raw reads and bounded inflation.

* :func:`check_data_size` compares the bytes a header needs with the bytes an
  uncompressed file holds, before anything is allocated;
* :func:`read_into` reads exactly that many bytes into a preallocated buffer;
* :func:`inflate` inflates a zlib or gzip stream and **stops at the declared size**:
  a 3 MB ``.zraw`` that would inflate to 3 GiB fails after the first byte past the
  declared size; no more input is read than a stream of the declared size can take
  (:func:`deflate_bound`), so a huge file costs no more memory than a small one.

The buffer is allocated with ``numpy.empty``, whose pages the system provides only
when they are written: a header that declares far more than its file holds costs
the memory of the bytes actually there, not of the declaration.
"""

from __future__ import annotations

import io
import os
from typing import BinaryIO

from ..errors import UnreadableFileError

_GZIP_MAGIC = b"\x1f\x8b"
#: Deflate inflates at most 1032 bytes per compressed byte (a 258-byte match per 2 bits).
_MAX_DEFLATE_RATIO = 1032

TRUNCATED_HINT = "the download is probably truncated, or the header's sizes are wrong; download it again"


def check_data_size(data_file: str, offset: int, needed: int, header: str, *, what: str = "the data file",
                    hint: str = TRUNCATED_HINT) -> int:
    """Check that ``data_file`` holds ``needed`` bytes from ``offset``; returns its size.

    Raises :class:`UnreadableFileError` about ``header`` (the file that declares the
    size), saying how many bytes there are and how many the header needs.
    """
    try:
        size = os.path.getsize(data_file)
    except OSError as exc:
        raise UnreadableFileError(f"cannot read {what} {os.path.basename(data_file)!r} ({exc.strerror or exc})",
                                  header) from exc
    have = max(0, size - offset)
    if have < needed:
        raise UnreadableFileError(
            f"{what} {os.path.basename(data_file)!r} is too short: {have} bytes, the header needs {needed}",
            header, hint)
    return size


def read_into(handle: BinaryIO, out: memoryview, header: str, what: str) -> None:
    """Fill ``out`` (a flat byte view) from ``handle``'s position; a short read is an error about ``header``."""
    got = 0
    while got < len(out):
        count = handle.readinto(out[got:])
        if not count:
            raise UnreadableFileError(f"{what} ended after {got} of {len(out)} bytes (it changed while read?)",
                                      header, TRUNCATED_HINT)
        got += count


def _remaining(handle: BinaryIO) -> int:
    """The bytes left in ``handle`` from its position (a real file's size, or what a stream holds)."""
    try:
        return max(0, os.fstat(handle.fileno()).st_size - handle.tell())
    except (AttributeError, OSError, io.UnsupportedOperation):
        position = handle.tell()
        end = handle.seek(0, io.SEEK_END)
        handle.seek(position)
        return max(0, end - position)


def deflate_bound(size: int) -> int:
    """The most bytes a zlib or gzip stream of ``size`` inflated bytes can take (zlib's ``compressBound``,
    plus room for a gzip header with a file name and comment)."""
    return size + (size >> 12) + (size >> 14) + (size >> 25) + 13 + (64 << 10)


def inflate(handle: BinaryIO, size: int, header: str, *, what: str = "the compressed data", skip: int = 0,
            exact: bool = True, limit: int | None = None) -> memoryview:
    """``size`` bytes inflated from the zlib or gzip stream read from ``handle``, after its first ``skip``.

    Parameters
    ----------
    handle:
        Positioned at the start of the stream (zlib, or gzip: detected by its magic;
        several gzip members are read as one stream, as ``gzip`` does).
    size:
        The bytes the header declares.
    header:
        The file the error is about (the header that declared the size).
    what:
        The stream, for messages (``"the data file 'x.zraw'"``).
    skip:
        Inflated bytes to drop first (a ``.nii.gz``'s header before its voxels).
    exact:
        The stream must end exactly at ``skip + size`` bytes (MetaImage); with
        ``False`` inflation simply stops there (NIfTI ignores trailing bytes).
    limit:
        Compressed bytes to read at most (MetaImage ``CompressedDataSize`` of LOCAL
        data); ``None``: as many as a stream of that size can take (:func:`deflate_bound`).

    Returns a read-only view of the bytes (no copy is made for a single stream).
    Memory: the compressed input (at most :func:`deflate_bound` of the declared
    size, whatever the file's size) and the declared output, never more.

    Raises
    ------
    UnreadableFileError
        The stream is corrupt, ends before ``size`` bytes, or (``exact``) goes on past them.
    """
    try:
        from isal import isal_zlib as zlib_module
    except ImportError:  # pragma: no cover - isal is a dependency; zlib is the fallback
        import zlib as zlib_module

    need = skip + size
    budget = deflate_bound(need) if limit is None else min(limit, deflate_bound(need))
    data = handle.read(min(budget, _remaining(handle)))  # a header's vox_offset 1e38 must not size a read
    pieces: list[bytes] = []
    produced = 0
    complete = False  # the last stream ended (its checksum verified)
    try:
        while data:
            decompressor = zlib_module.decompressobj(31 if data[:2] == _GZIP_MAGIC else 15)
            most = len(data) * _MAX_DEFLATE_RATIO + 1024  # what these bytes can inflate to at all
            piece = decompressor.decompress(data, min(need - produced + (1 if exact else 0), most))
            pieces.append(piece)
            produced += len(piece)
            complete = decompressor.eof
            if produced > need:
                raise UnreadableFileError(
                    f"{what} inflates to more than the {need} bytes the header declares", header,
                    "the data does not match the sizes its header declares; inflating stopped there")
            if produced == need and (not exact or not complete):
                if exact and decompressor.decompress(decompressor.unconsumed_tail, 1):
                    raise UnreadableFileError(
                        f"{what} inflates to more than the {need} bytes the header declares", header,
                        "the data does not match the sizes its header declares; inflating stopped there")
                complete = decompressor.eof  # the probe may have read the stream's end
                if not exact or not complete:
                    break
            if not complete:
                break  # the input ended inside the stream
            data = decompressor.unused_data
            if not data.startswith(_GZIP_MAGIC):
                break  # bytes after the (last) stream: ignored, as zlib and gzip do
    except UnreadableFileError:
        raise
    except Exception as exc:  # zlib.error / isal error: corrupt data
        raise UnreadableFileError(f"{what} cannot be inflated ({exc})", header,
                                  "the file is probably truncated or corrupt; download it again") from exc
    if produced < need and not complete:
        raise UnreadableFileError(f"{what} cannot be inflated completely: the file ends inside its compressed "
                                  f"stream, after {max(0, produced - skip)} of the {size} bytes the header needs",
                                  header, TRUNCATED_HINT)
    if produced < need:
        raise UnreadableFileError(f"{what} inflates to {max(0, produced - skip)} bytes, the header needs {size}",
                                  header, "the file is truncated, or its header's sizes are wrong")
    if exact and not complete:
        raise UnreadableFileError(f"{what} cannot be inflated completely: the file ends inside its compressed "
                                  f"stream, after all {size} bytes the header needs but before its end",
                                  header, TRUNCATED_HINT)
    joined = pieces[0] if len(pieces) == 1 else b"".join(pieces)
    return memoryview(joined)[skip:need]
