"""A DICOM header parser without pydicom, for the common case: Part 10 files in little-endian encoding.

Why: a TCIA series is hundreds of files, and medconv needs a few dozen
top-level elements of each plus where its pixel bytes start. pydicom builds a
whole Dataset per file and its import alone (with the pixel-decoder plugins it
registers: GDCM, pylibjpeg ...) costs 0.1-0.3 s per process. This module walks
the element headers with :mod:`struct`, keeps the raw bytes of the wanted tags,
skips everything else (sequences included) and stops at the Pixel Data element,
noting its file offset and length so the pixel bytes can be read straight into
the output array. An enhanced file's per-frame functional groups of undefined
length are jumped over when native pixel data end the file
(:meth:`_Parser.native_pixels_at_end`): the functional-group walker parses them.

It handles only what it can parse unambiguously: a 128-byte preamble and
``DICM``, an explicit-VR little-endian file meta group with a Transfer Syntax
UID, and a data set in implicit or explicit VR little endian (every compressed
transfer syntax is explicit VR little endian). Anything else -- no preamble,
big endian, deflate, ``.gz``, an unknown VR, a data set encoded other than its
transfer syntax says (checked at the first element and at the pixel data), a
top-level element out of ascending tag order (where a corrupt length leads: the
next "element" starts inside a value; items of sequences are skipped unchecked,
real files hold items out of order), a file cut inside an element -- returns
``None`` and the caller uses pydicom, which copes with those or says what is
wrong.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import AbstractSet

IMPLICIT_LITTLE = "1.2.840.10008.1.2"
EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"
#: Transfer syntaxes whose data set is not little endian as written (left to pydicom).
PYDICOM_ONLY_SYNTAXES = frozenset({"1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"})  # big endian, deflated

#: VRs with a 2-byte reserved field and a 4-byte length in explicit VR (PS3.5 7.1.2).
LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})
SHORT_VRS = frozenset({b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT", b"PN",
                        b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"})
PIXEL_DATA = 0x7FE00010
#: VRs a pixel data element may have (Pixel Data OB/OW, UN when copied blindly, Float / Double Float OF/OD).
_PIXEL_VRS = frozenset({b"OB", b"OW", b"UN", b"OF", b"OD"})
#: pydicom's ``stop_before_pixels`` stops at any of these.
PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, PIXEL_DATA})
UNDEFINED_LENGTH = 0xFFFFFFFF
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_TRANSFER_SYNTAX, _MEDIA_SOP_CLASS, _GROUP_LENGTH = 0x00020010, 0x00020002, 0x00020000
#: PerFrameFunctionalGroupsSequence: an enhanced file's largest sequence, written just before its pixel data.
PER_FRAME_GROUPS = 0x52009230
#: What the size of native pixel data follows from: Rows, Columns, NumberOfFrames, SamplesPerPixel, BitsAllocated.
_ROWS, _COLUMNS, _FRAMES, _SAMPLES, _BITS = 0x00280010, 0x00280011, 0x00280008, 0x00280002, 0x00280100
#: The tags :meth:`_Parser.native_pixels_at_end` reads (the caller's ``wanted`` tags are kept as asked).
PIXEL_SIZE_TAGS = frozenset({_ROWS, _COLUMNS, _FRAMES, _SAMPLES, _BITS})
_CHUNK = 16384
#: Where a skip stopped: the explicit-VR flag of each open sequence, and whether it is inside an item.
SkipState = tuple[list[bool], bool]

_TAG_LENGTH = struct.Struct("<HHI")
_TAG_VR_SHORT = struct.Struct("<HH2sH")
_LONG = struct.Struct("<I")
_US = struct.Struct("<H")
#: (7FE0,0010) as its first four bytes read little endian (group, then element).
_PIXEL_DATA_LE = 0x00107FE0
_PIXEL_HEAD_EXPLICIT = struct.Struct("<I2sHI")
_PIXEL_HEAD_IMPLICIT = struct.Struct("<II")


@dataclass(slots=True)
class RawHeader:
    """The wanted top-level elements of one file, and where its pixel data is.

    Attributes
    ----------
    transfer_syntax:
        From the file meta group (``0002,0010``).
    media_sop_class:
        MediaStorageSOPClassUID (``0002,0002``), the fallback SOP class.
    values:
        ``{tag: (VR, value bytes)}`` of the wanted top-level elements (VR ``b""`` in implicit VR).
    pixel_tag, pixel_offset, pixel_length, pixel_vr:
        The pixel data element (``0`` / ``-1`` when the file has none): the file
        offset of its first value byte, its length (``0xFFFFFFFF`` when
        encapsulated) and its VR.
    """

    transfer_syntax: str
    media_sop_class: str = ""
    values: dict[int, tuple[bytes, bytes]] = field(default_factory=dict)
    pixel_tag: int = 0
    pixel_offset: int = -1
    pixel_length: int = 0
    pixel_vr: bytes = b""
    #: ``(size, mtime_ns)`` of the file when parsed (tells a later reader whether it changed since).
    stamp: tuple[int, int] = (0, 0)

    @property
    def explicit(self) -> bool:
        return self.transfer_syntax != IMPLICIT_LITTLE


class Unsupported(Exception):
    """The file needs pydicom (an encoding or a defect this parser does not handle)."""


class OutOfData(Unsupported):
    """The bytes given end inside a sequence being skipped.

    ``pos``: the index where the skip stopped (an element's start, or past the end after
    a value's length); ``resume``: the skip's state, to go on from there with more bytes.
    """

    def __init__(self, pos: int, resume: "SkipState"):
        super().__init__("the data end inside a sequence")
        self.pos = pos
        self.resume = resume


class _Ended(Exception):
    """The file ended; ``at_boundary`` when no byte of a next element was there."""

    def __init__(self, at_boundary: bool):
        super().__init__()
        self.at_boundary = at_boundary


def parse_file(path: str, wanted: AbstractSet[int]) -> RawHeader | None:
    """The header of ``path`` up to its pixel data, or ``None`` when pydicom must parse it.

    Raises
    ------
    OSError
        The file cannot be opened or read (as pydicom would).
    """
    with open(path, "rb", buffering=0) as fp:
        try:
            return _Parser(fp, wanted).run()
        except (Unsupported, _Ended, struct.error, UnicodeDecodeError, RecursionError):
            return None


class _Parser:
    """Walks element headers through a sliding window of the file (invariant: file position = end of window)."""

    def __init__(self, fp, wanted: AbstractSet[int]):
        self.fp = fp
        self.wanted = wanted
        self.data = b""
        self.base = 0  # file offset of data[0]
        status = os.fstat(fp.fileno())
        self.size = status.st_size
        self.stamp = (status.st_size, status.st_mtime_ns)

    def fill(self, pos: int, count: int) -> int:
        """Make file bytes ``[pos, pos + count)`` available; their index in :attr:`data`."""
        start = pos - self.base
        if start >= 0 and start + count <= len(self.data):
            return start
        if pos + count > self.size:
            raise _Ended(at_boundary=pos == self.size)
        if start < 0 or start > len(self.data):  # a jump (a skipped long value): restart the window there
            self.fp.seek(pos)
            self.data = b""
        else:
            self.data = self.data[start:]
        self.base = pos
        more = self.fp.read(max(count - len(self.data), _CHUNK))
        if more:
            self.data += more
        if len(self.data) < count:  # the file shrank while being read
            raise _Ended(at_boundary=False)
        return 0

    def element(self, pos: int, explicit: bool) -> tuple[int, bytes, int, int]:
        """``(tag, VR, value length, header length)`` of the element at ``pos``."""
        i = self.fill(pos, 8)
        if explicit:
            group, number, vr, length = _TAG_VR_SHORT.unpack_from(self.data, i)
            if group == 0xFFFE:  # item and delimiters: no VR
                return (group << 16 | number, b"", _LONG.unpack_from(self.data, i + 4)[0], 8)
            if vr in SHORT_VRS:
                return (group << 16 | number, vr, length, 8)
            if vr not in LONG_VRS:
                raise Unsupported(f"VR {vr!r}")
            i = self.fill(pos, 12)
            return (group << 16 | number, vr, _LONG.unpack_from(self.data, i + 8)[0], 12)
        group, number, length = _TAG_LENGTH.unpack_from(self.data, i)
        return (group << 16 | number, b"", length, 8)

    def run(self) -> RawHeader:
        i = self.fill(0, 132)
        if self.data[128:132] != b"DICM":
            raise Unsupported("no preamble")
        pos = 132
        meta: dict[int, bytes] = {}
        group_end = None
        previous = -1
        while True:
            try:
                i = self.fill(pos, 8)
            except _Ended:
                raise Unsupported("nothing after the file meta group") from None
            if self.data[i:i + 2] != b"\x02\x00":  # the data set starts (in its own encoding)
                break
            tag, vr, length, head = self.element(pos, explicit=True)
            if length == UNDEFINED_LENGTH:
                raise Unsupported("undefined length in the file meta group")
            if tag <= previous:
                raise Unsupported("file meta elements out of order")
            previous = tag
            if tag in (_TRANSFER_SYNTAX, _MEDIA_SOP_CLASS, _GROUP_LENGTH):
                i = self.fill(pos + head, length)
                meta[tag] = self.data[i:i + length]
                if tag == _GROUP_LENGTH and length == 4:
                    group_end = pos + head + length + _LONG.unpack_from(meta[tag])[0]
            pos += head + length
        if group_end is not None and pos != group_end:  # a length inside the group is corrupt
            raise Unsupported("the file meta group does not end where its group length says")
        syntax = meta.get(_TRANSFER_SYNTAX, b"").decode("ascii").strip("\x00 ")
        if not syntax or syntax in PYDICOM_ONLY_SYNTAXES:
            raise Unsupported(f"transfer syntax {syntax!r}")
        header = RawHeader(syntax, meta.get(_MEDIA_SOP_CLASS, b"").decode("ascii").strip("\x00 "), stamp=self.stamp)
        explicit = header.explicit
        i = self.fill(pos, 8)
        vr_like = self.data[i + 4:i + 6]
        if (vr_like in SHORT_VRS or vr_like in LONG_VRS) != explicit:
            raise Unsupported("the data set is not encoded as its transfer syntax says")
        values = header.values
        wanted = self.wanted
        sizes: dict[int, bytes] = {}
        previous = 0
        while True:
            try:
                tag, vr, length, head = self.element(pos, explicit)
            except _Ended as ended:
                if ended.at_boundary:
                    return header  # no pixel data: pydicom's stop_before_pixels ends here too
                raise Unsupported("cut inside an element") from None
            if tag <= previous:  # elements ascend (PS3.5 7.1): a length that missed a boundary lands here
                raise Unsupported(f"element ({tag >> 16:04X},{tag & 0xFFFF:04X}) out of order")
            previous = tag
            if tag in PIXEL_TAGS:
                if not explicit:
                    i = self.fill(pos + 4, 4)
                    if self.data[i:i + 2] in _PIXEL_VRS and self.data[i + 2:i + 4] == b"\x00\x00":
                        raise Unsupported("explicit VR pixel data in an implicit VR data set")
                elif vr not in _PIXEL_VRS:
                    raise Unsupported(f"pixel data of VR {vr!r}")
                header.pixel_tag, header.pixel_offset = tag, pos + head
                header.pixel_length, header.pixel_vr = length, vr
                return header
            if length == UNDEFINED_LENGTH:
                ahead = self.native_pixels_at_end(sizes, explicit) if tag == PER_FRAME_GROUPS else None
                pos = ahead if ahead is not None and ahead > pos + head else self.skip_undefined(pos + head, explicit, vr)
                continue
            if tag in PIXEL_SIZE_TAGS and length <= 16:
                i = self.fill(pos + head, length)
                sizes[tag] = self.data[i:i + length]
            if tag in wanted:
                i = self.fill(pos + head, length)
                values[tag] = (vr, self.data[i:i + length])
            pos += head + length

    def native_pixels_at_end(self, sizes: dict[int, bytes], explicit: bool) -> int | None:
        """The file offset of the Pixel Data element when it is native and the last element, else ``None``.

        Real enhanced files (Siemens XA, Philips) write the per-frame functional groups
        -- hundreds of kB for a few hundred frames -- with undefined lengths, which only
        a walk of every element inside can skip; the functional-group walker parses them
        anyway. Their pixel data follow at the end of the file, and native pixel data
        have a known size (Rows x Columns x NumberOfFrames x SamplesPerPixel x
        BitsAllocated / 8, padded to even). When the file's last bytes are exactly
        that element -- tag (7FE0,0010), OB or OW, that length, ending the file -- the
        skip jumps there in one read. Anything else (compressed, trailing elements or
        padding, an attribute missing or odd) returns ``None`` and the walk decides.
        """
        try:
            rows, columns, samples, bits = (_US.unpack(sizes[tag])[0] if len(sizes.get(tag, b"")) == 2 else None
                                            for tag in (_ROWS, _COLUMNS, _SAMPLES, _BITS))
            frames = int(sizes[_FRAMES].decode("ascii").strip("\x00 "))
        except (KeyError, ValueError, UnicodeDecodeError):
            return None
        if None in (rows, columns, samples, bits) or frames < 1 or bits not in (1, 8, 16, 32, 64):
            return None
        count = rows * columns * frames * samples
        length = (count + 7) // 8 if bits == 1 else count * bits // 8
        length += length & 1
        head = 12 if explicit else 8
        start = self.size - length - head
        if length == 0 or start < 0:
            return None
        i = self.fill(start, head)
        if explicit:
            tag, vr, reserved, found = _PIXEL_HEAD_EXPLICIT.unpack_from(self.data, i)
            ok = vr in (b"OB", b"OW") and reserved == 0
        else:
            tag, found = _PIXEL_HEAD_IMPLICIT.unpack_from(self.data, i)
            ok = True
        return start if ok and tag == _PIXEL_DATA_LE and found == length else None

    def skip_undefined(self, pos: int, explicit: bool, vr: bytes) -> int:
        """Past the undefined-length element whose value starts at file offset ``pos``: the offset after it.

        The skip goes on window by window where the last one stopped (a per-frame
        functional-group sequence is a few hundred kB); a file that ends first is cut.
        """
        resume: SkipState | None = None
        while True:
            if pos + 8 > self.size:
                raise _Ended(at_boundary=False)
            i = self.fill(pos, min(_CHUNK, self.size - pos))
            try:
                if resume is None:
                    return pos + skip_undefined(self.data, i, explicit, vr) - i
                return pos + skip_sequence(self.data, i, explicit, resume) - i
            except OutOfData as short:
                if short.pos - i <= 0 and self.base + len(self.data) >= self.size:
                    raise _Ended(at_boundary=False) from None
                pos, resume = pos + short.pos - i, short.resume


def skip_undefined(data: bytes, pos: int, explicit: bool, vr: bytes) -> int:
    """Past an element of undefined length and VR ``vr`` whose value starts at ``data[pos]``: its end's index.

    Only a sequence may have one: SQ, or UN holding an implicit VR sequence (PS3.5 6.2.2).
    """
    if explicit and vr not in (b"SQ", b"UN"):
        raise Unsupported(f"undefined length with VR {vr!r}")
    return skip_sequence(data, pos, explicit and vr == b"SQ")


def skip_sequence(data: bytes, pos: int, explicit: bool, resume: SkipState | None = None) -> int:
    """Past the delimiter of the undefined-length sequence whose first item starts at ``data[pos]``: its index.

    The one skip of both parsers: this module's header scan (over its window of the
    file, :meth:`_Parser.skip_undefined`) and the functional-group walker (the
    file's bytes, :mod:`.functional_groups`). Items and what they hold are skipped by
    their lengths, or walked to their delimiters when undefined; nested sequences of
    undefined length too (an undefined-length UN holds implicit VR, :func:`skip_undefined`).
    One loop over a stack of the open sequences (their explicit-VR flag), with the
    element header read inline: real enhanced files (Siemens XA, Philips) write every
    sequence and item with undefined length, so this runs over every element of their
    private per-frame blocks.

    ``resume``: the state an :class:`OutOfData` carried, to go on with the next bytes.

    Raises
    ------
    OutOfData
        ``data`` ends inside the sequence (where, and the state to resume with).
    Unsupported
        Something other than items in a sequence, an unknown VR, an undefined length
        on a VR that cannot have one.
    """
    size = len(data)
    open_sequences, in_item = resume if resume is not None else ([explicit], False)
    unpack_head, unpack_long = _TAG_LENGTH.unpack_from, _LONG.unpack_from
    while True:
        if pos + 8 > size:
            raise OutOfData(pos, (open_sequences, in_item))
        group, number, length = unpack_head(data, pos)
        if not in_item:  # an item, or the sequence's delimiter
            tag = group << 16 | number
            if tag == SEQUENCE_END:
                pos += 8
                open_sequences.pop()
                if not open_sequences:
                    return pos
                in_item = True  # back in the item holding that sequence
            elif tag != ITEM:
                raise Unsupported("a sequence holds something other than items")
            elif length == UNDEFINED_LENGTH:
                pos += 8
                in_item = True
            else:
                pos += 8 + length
            continue
        item_explicit = open_sequences[-1]
        vr, head = b"", 8
        if group == 0xFFFE:
            if number == 0xE00D:  # the item's delimiter
                pos += 8
                in_item = False
                continue
        elif item_explicit:
            vr = data[pos + 4:pos + 6]
            if vr in SHORT_VRS:
                length >>= 16
            elif vr in LONG_VRS:
                if pos + 12 > size:
                    raise OutOfData(pos, (open_sequences, in_item))
                length, head = unpack_long(data, pos + 8)[0], 12
            else:
                raise Unsupported(f"VR {vr!r}")
        if length == UNDEFINED_LENGTH:
            if item_explicit and vr not in (b"SQ", b"UN"):
                raise Unsupported(f"undefined length with VR {vr!r}")
            open_sequences.append(item_explicit and vr == b"SQ")
            in_item = False
            pos += head
            continue
        pos += head + length
