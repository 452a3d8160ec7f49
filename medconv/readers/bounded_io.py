"""Reading voxel bytes whose amount a header declares, never more: raw reads and bounded inflation.

* :func:`check_data_size` compares the bytes a header needs with the bytes an
  uncompressed file holds, before anything is allocated;
* :func:`read_into` reads exactly that many bytes into a preallocated buffer;
* :func:`inflate_into` inflates a zlib or gzip stream into a preallocated buffer and
  **stops at the declared size**: a 3 MB ``.zraw`` that would inflate to 3 GiB fails
  after the first bytes past the declared size, with the memory of the buffer only.
  Input is read in chunks, so a huge file costs no more memory than a small one.

The buffer is allocated with ``numpy.empty``, whose pages the system provides only
when they are written: a header that declares far more than its file holds costs
the memory of the bytes actually there, not of the declaration.
"""

from __future__ import annotations

import os
from typing import BinaryIO

from ..errors import UnreadableFileError

#: Compressed bytes read per step, and the most output one inflate step may make.
INPUT_CHUNK = 4 << 20
OUTPUT_CHUNK = 16 << 20
_GZIP_MAGIC = b"\x1f\x8b"

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


def inflate_into(handle: BinaryIO, out: memoryview, header: str, *, what: str = "the compressed data",
                 skip: int = 0, exact: bool = True, limit: int | None = None) -> None:
    """Inflate the zlib or gzip stream read from ``handle`` into ``out``, skipping its first ``skip`` bytes.

    Parameters
    ----------
    handle:
        Positioned at the start of the stream (zlib, or gzip: detected by its magic;
        several gzip members are read as one stream, as ``gzip`` does).
    out:
        A flat byte view of the buffer to fill completely.
    header:
        The file the error is about (the header that declared the size).
    what:
        The stream, for messages (``"the data file 'x.zraw'"``).
    skip:
        Inflated bytes to drop first (a ``.nii.gz``'s header before its voxels).
    exact:
        The stream must end exactly at ``skip + len(out)`` bytes (MetaImage); with
        ``False`` inflation simply stops there (NIfTI ignores trailing bytes).
    limit:
        Compressed bytes to read at most (MetaImage ``CompressedDataSize`` of LOCAL
        data); ``None``: up to the end of the file.

    Raises
    ------
    UnreadableFileError
        The stream is corrupt, ends before ``out`` is full, or (``exact``) goes on past it.
    """
    try:
        from isal import isal_zlib as zlib_module
    except ImportError:  # pragma: no cover - isal is a dependency; zlib is the fallback
        import zlib as zlib_module

    need = skip + len(out)
    produced = 0  # inflated bytes so far, skipped ones included
    remaining_input = limit
    pending = b""
    decompressor = None
    started = False

    def read_input() -> bytes:
        nonlocal remaining_input
        size = INPUT_CHUNK if remaining_input is None else min(INPUT_CHUNK, remaining_input)
        if size <= 0:
            return b""
        data = handle.read(size)
        if remaining_input is not None:
            remaining_input -= len(data)
        return data

    input_done = False
    try:
        while True:
            if not pending and not input_done:
                pending = read_input()
                input_done = not pending
            if decompressor is None:
                if not pending or (started and not pending.startswith(_GZIP_MAGIC)):
                    break  # the end, or bytes after the (last) stream: ignored, as zlib and gzip do
                decompressor = zlib_module.decompressobj(31 if pending.startswith(_GZIP_MAGIC) else 15)
                started = True
            room = need - produced
            piece = decompressor.decompress(pending, min(room + 1, OUTPUT_CHUNK))
            pending = decompressor.unconsumed_tail
            if piece:
                if len(piece) > room:
                    if exact:
                        raise UnreadableFileError(
                            f"{what} inflates to more than the {need} bytes the header declares", header,
                            "the data does not match the sizes its header declares; inflating stopped there")
                    piece = piece[:room]
                start = max(produced, skip)
                if produced + len(piece) > skip:
                    out[start - skip:produced + len(piece) - skip] = piece[start - produced:]
                produced += len(piece)
                if produced == need and not exact:
                    return
            if decompressor.eof:
                pending = decompressor.unused_data  # a following gzip member, or trailing bytes
                decompressor = None
            elif input_done and not pending and not piece:
                break  # the input ended inside the stream
    except UnreadableFileError:
        raise
    except Exception as exc:  # zlib.error / isal error: corrupt data
        raise UnreadableFileError(f"{what} cannot be inflated ({exc})", header,
                                  "the file is probably truncated or corrupt; download it again") from exc
    if decompressor is not None:
        raise UnreadableFileError(f"{what} cannot be inflated completely: the file ends inside its compressed "
                                  f"stream, after {max(0, produced - skip)} of the {len(out)} bytes the header needs",
                                  header, TRUNCATED_HINT)
    if produced < need:
        raise UnreadableFileError(f"{what} inflates to {max(0, produced - skip)} bytes, the header needs {len(out)}",
                                  header, "the file is truncated, or its header's sizes are wrong")
