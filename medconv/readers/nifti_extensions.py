"""Bounding NIfTI header extensions before nibabel reads them.

nibabel reads every extension a header announces into memory, whatever size its
``esize`` field declares, and for a ``.nii.gz`` inflates the stream to get it: a
9 MB file announcing a 2 GiB extension took 49 s and 2.2 GB of RSS in ``nib.load``
(found while bounding everything else a header declares). :func:`check_extensions`
walks the extension chain the way nibabel does (``Nifti1Extensions.from_fileobj``:
from the end of the header to ``vox_offset`` for a ``.nii``, to the end of the
file for a ``.hdr``), reading only the 8-byte extension headers and skipping the
contents, and refuses a chain whose sizes add up past
:data:`~medconv.readers.limits.MAX_NIFTI_EXTENSION_BYTES` before nibabel is asked.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from ..errors import UnreadableFileError
from .limits import MAX_NIFTI_EXTENSION_BYTES

#: (header size, offset of vox_offset, its struct format, offset and length of the magic) of NIfTI-1 and -2.
_LAYOUTS = {348: (108, "f", 344), 540: (168, "q", 4)}
_SKIP_CHUNK = 1 << 20


def check_extensions(path: str) -> None:
    """Raise :class:`UnreadableFileError` when the extensions ``path``'s header announces are too large.

    Anything this walk cannot make sense of (not a NIfTI header, a short file) is
    left for nibabel to refuse; only sizes are judged here.
    """
    try:
        with _open(path) as handle:
            _walk(handle, path)
    except OSError:
        return  # nibabel says what is wrong with the file


def _open(path: str) -> BinaryIO:
    if path.lower().endswith(".gz"):
        from isal import igzip

        return igzip.open(path, "rb")
    return open(path, "rb")


def _walk(handle: BinaryIO, path: str) -> None:
    head = handle.read(540)
    if len(head) < 352:
        return
    for order in "<>":
        size = struct.unpack(order + "i", head[:4])[0]
        if size in _LAYOUTS:
            break
    else:
        return  # not NIfTI-1/2 (Analyze 7.5 has no extensions in nibabel)
    vox_place, vox_format, magic_place = _LAYOUTS[size]
    magic = head[magic_place:magic_place + 4]
    if magic not in (b"n+1\x00", b"ni1\x00", b"n+2\x00", b"ni2\x00") or len(head) < size + 4:
        return
    if head[size:size + 1] == b"\x00":
        return  # no extensions
    single = magic[1:2] == b"+"
    vox_offset = struct.unpack(order + vox_format, head[vox_place:vox_place + struct.calcsize(vox_format)])[0]
    remaining = (vox_offset - size - 4) if single else -1
    position = size + 4
    pending = head[position:]
    total = 0
    while remaining >= 16 or remaining < 0:
        while len(pending) < 8:
            more = handle.read(8 - len(pending))
            if not more:
                return  # nibabel: the end (a .hdr) or "failed to read extension header"
            pending += more
        esize = struct.unpack(order + "i", pending[:4])[0]
        if esize < 8:
            return  # nibabel refuses it
        total += esize
        if total > MAX_NIFTI_EXTENSION_BYTES:
            raise UnreadableFileError(
                f"the header's extensions declare {total} bytes, more than the {MAX_NIFTI_EXTENSION_BYTES} "
                "medconv lets nibabel read", path, "an extension's esize field is corrupt; download the file again")
        to_skip = esize - len(pending)
        pending = pending[esize:] if to_skip <= 0 else b""
        while to_skip > 0:
            skipped = len(handle.read(min(to_skip, _SKIP_CHUNK)))
            if not skipped:
                return  # a short extension: nibabel reports it
            to_skip -= skipped
        remaining -= esize
