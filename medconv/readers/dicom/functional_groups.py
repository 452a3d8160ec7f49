"""The functional groups of an enhanced multi-frame file, parsed without pydicom (the common encodings).

An enhanced object describes every frame in a PerFrameFunctionalGroupsSequence
item (a Siemens XA BOLD file: 60 frames × a dozen nested sequences, and private
blocks beside them). pydicom builds a Dataset for every nested item it is asked
about; for a 20-file series that was 1-2 s of CPU before a pixel was read, more
than the whole of dcm2niix's conversion. This module walks the bytes of the file
once with :mod:`struct`, descends only into the functional-group sequences the
enhanced layout reads (:data:`MACROS`), keeps the raw bytes of their leaf
elements, and skips everything else by its length.

:func:`read_functional_groups` returns a :class:`RawDataset` that answers the
``.get(keyword)`` / attribute questions :mod:`.layouts.enhanced` asks of a
pydicom Dataset, with the same value types (numbers for DS/IS/FD/..., strings
for text, lists for several values, lists of items for sequences), or ``None``
when the file needs pydicom (big endian, deflate, no preamble, a defect): the
layout then parses it with pydicom, as before.
"""

from __future__ import annotations

import struct
from typing import Any

from .rawheader import (IMPLICIT_LITTLE, ITEM, ITEM_END, LONG_VRS, PIXEL_TAGS, PYDICOM_ONLY_SYNTAXES, SEQUENCE_END,
                        SHORT_VRS, UNDEFINED_LENGTH, Unsupported, skip_undefined)

#: Keyword -> (tag, VR) of every element the enhanced layout reads (the VR decodes implicit-VR files too).
ELEMENTS: dict[str, tuple[int, str]] = {
    "NumberOfFrames": (0x00280008, "IS"), "Rows": (0x00280010, "US"), "Columns": (0x00280011, "US"),
    "RescaleIntercept": (0x00281052, "DS"), "RescaleSlope": (0x00281053, "DS"), "RescaleType": (0x00281054, "LO"),
    "SharedFunctionalGroupsSequence": (0x52009229, "SQ"), "PerFrameFunctionalGroupsSequence": (0x52009230, "SQ"),
    "PlanePositionSequence": (0x00209113, "SQ"), "ImagePositionPatient": (0x00200032, "DS"),
    "PlaneOrientationSequence": (0x00209116, "SQ"), "ImageOrientationPatient": (0x00200037, "DS"),
    "PixelMeasuresSequence": (0x00289110, "SQ"), "PixelSpacing": (0x00280030, "DS"),
    "SliceThickness": (0x00180050, "DS"), "SpacingBetweenSlices": (0x00180088, "DS"),
    "PixelValueTransformationSequence": (0x00289145, "SQ"),
    "FrameContentSequence": (0x00209111, "SQ"), "TemporalPositionIndex": (0x00209128, "UL"),
    "FrameAcquisitionNumber": (0x00209156, "US"), "DimensionIndexValues": (0x00209157, "UL"),
    "MREchoSequence": (0x00189114, "SQ"), "EffectiveEchoTime": (0x00189082, "FD"),
    "MRImageFrameTypeSequence": (0x00189226, "SQ"), "CTImageFrameTypeSequence": (0x00189329, "SQ"),
    "PETFrameTypeSequence": (0x00189751, "SQ"), "FrameType": (0x00089007, "CS"),
    "ComplexImageComponent": (0x00089208, "CS"),
    "MRDiffusionSequence": (0x00189117, "SQ"), "DiffusionBValue": (0x00189087, "FD"),
    "DiffusionDirectionality": (0x00189075, "CS"), "DiffusionGradientDirectionSequence": (0x00189076, "SQ"),
    "DiffusionGradientOrientation": (0x00189089, "FD"),
    "MRTimingAndRelatedParametersSequence": (0x00189112, "SQ"), "RepetitionTime": (0x00180080, "DS"),
    "FlipAngle": (0x00181314, "DS"),
}
#: tag -> (keyword, VR)
_TAGS = {tag: (keyword, vr) for keyword, (tag, vr) in ELEMENTS.items()}
#: The sequences walked into (every other sequence is skipped by its length or its delimiters).
MACROS = frozenset(tag for tag, vr in ELEMENTS.values() if vr == "SQ")
#: Top-level elements kept.
_TOP = frozenset(ELEMENTS[k][0] for k in ("NumberOfFrames", "Rows", "Columns", "RescaleIntercept", "RescaleSlope",
                                          "RescaleType", "SharedFunctionalGroupsSequence",
                                          "PerFrameFunctionalGroupsSequence"))
#: Elements kept inside the functional-group items (the rest, private blocks included, are skipped).
_LEAVES = frozenset(tag for tag, vr in ELEMENTS.values() if vr != "SQ")
#: The sequences whose items are looked up among the items already parsed (see :meth:`_Walker.sequence`):
#: every walked sequence but the two functional-group containers, whose items (one per frame) always differ.
_REPEATING = MACROS - {ELEMENTS["SharedFunctionalGroupsSequence"][0], ELEMENTS["PerFrameFunctionalGroupsSequence"][0]}
#: Items of a sequence tag parsed in a file with none found in the memo, after which that tag's items are no
#: longer looked up in that file (a frame's content, times and indices, differs in every frame and file).
NEVER_REPEATING_AFTER = 8
_EXPLICIT_HEAD = struct.Struct("<HH2sH")  # tag, VR, 2-byte length (explicit VR)
_IMPLICIT_HEAD = struct.Struct("<HHI")  # tag, 4-byte length (implicit VR; items and delimiters)
_LONG_LENGTH = struct.Struct("<I")
_BINARY = {"FD": "<d", "FL": "<f", "UL": "<I", "US": "<H", "SL": "<i", "SS": "<h"}


def _value(raw: bytes, vr: str) -> Any:
    """One element's value as pydicom gives it: a number or string for one value, a list for several."""
    if vr in _BINARY:
        code = _BINARY[vr]
        count = len(raw) // struct.calcsize(code)
        values = list(struct.unpack_from("<" + code[1] * count, raw)) if count else []
    else:
        text = raw.decode("latin-1").strip("\x00 ")
        if not text:
            return ""
        values = [part.strip() for part in text.split("\\")]
        if vr in ("DS", "IS"):
            try:
                values = [float(v) if vr == "DS" else int(float(v)) for v in values if v != ""]
            except ValueError:
                return None
    if not values:
        return None
    return values[0] if len(values) == 1 else values


_UNCONVERTED = object()


class RawItem:
    """A parsed dataset or sequence item: ``.get(keyword)`` and attribute access like a pydicom Dataset."""

    __slots__ = ("_raw", "_values")

    def __init__(self, raw: dict[str, tuple[str, bytes]], sequences: dict[str, list["RawItem"]]):
        #: ``{keyword: (VR as written, value bytes)}`` of the leaf elements, converted on first use.
        self._raw = raw
        #: ``{keyword: value}``: the sequences (lists of items), and each leaf once converted (a shared
        #: group is asked once per frame); ``None`` for what is absent.
        self._values: dict[str, Any] = sequences

    def get(self, keyword: str, default: Any = None) -> Any:
        value = self._values.get(keyword, _UNCONVERTED)
        if value is _UNCONVERTED:
            value = self._values[keyword] = self._convert(keyword)
        return default if value is None else value

    def _convert(self, keyword: str) -> Any:
        found = self._raw.get(keyword)
        vr = ELEMENTS.get(keyword, (None, ""))[1]
        if found is None or vr == "SQ":  # a sequence not written as one is not walked (a container as OB ...)
            return None
        written_vr, raw = found
        return _value(raw, written_vr if written_vr and written_vr != "UN" else vr)

    def __getattr__(self, keyword: str) -> Any:
        value = self.get(keyword)
        if value is None:
            raise AttributeError(keyword)
        return value

    def __contains__(self, keyword: str) -> bool:
        return keyword in self._raw or (self._values.get(keyword) is not None and keyword in _SEQUENCE_KEYWORDS)


_SEQUENCE_KEYWORDS = frozenset(keyword for keyword, (_, vr) in ELEMENTS.items() if vr == "SQ")

RawDataset = RawItem


class ItemMemo:
    """Items already parsed, by their bytes, for the files of one series (see :meth:`_Walker.sequence`).

    Siemens XA writes one file per time point, each repeating every slice's position,
    orientation, pixel measures ... : an item seen in one file is not parsed again in the
    next. Items are looked up by ``(explicit VR, sequence tag)`` and by the byte lengths
    items of that tag had (:data:`LENGTHS_PER_TAG` of them at most), so one lookup is a
    slice and a dict probe per known length.
    """

    __slots__ = ("items", "lengths")

    def __init__(self):
        #: ``(explicit, tag) -> {bytes from the item tag to its end: the item}``
        self.items: dict[tuple[bool, int], dict[bytes, RawItem]] = {}
        #: ``(explicit, tag) -> the distinct byte lengths of those items``
        self.lengths: dict[tuple[bool, int], list[int]] = {}


#: Distinct byte lengths remembered per sequence tag (positions written as text vary in length a little).
LENGTHS_PER_TAG = 8
#: Items remembered per sequence tag and series (a frame's position: one per slice).
ITEMS_PER_TAG = 4096


class _Walker:
    """Element headers of an in-memory file, explicit or implicit VR little endian."""

    def __init__(self, data: bytes, explicit: bool, memo: ItemMemo | None = None):
        self.data = data
        self.explicit = explicit
        self.memo = memo if memo is not None else ItemMemo()
        #: sequence tag -> ``[items parsed, items found in the memo]`` in this file; ``None``: no longer looked up
        self._counts: dict[int, list[int] | None] = {}

    def element(self, pos: int, explicit: bool) -> tuple[int, bytes, int, int]:
        """``(tag, VR, value length, header length)`` at ``pos``."""
        data = self.data
        if pos + 8 > len(data):
            raise Unsupported("cut inside an element")
        if not explicit:
            group, number, length = _IMPLICIT_HEAD.unpack_from(data, pos)
            return group << 16 | number, b"", length, 8
        group, number, vr, length = _EXPLICIT_HEAD.unpack_from(data, pos)
        if group == 0xFFFE:
            return group << 16 | number, b"", _LONG_LENGTH.unpack_from(data, pos + 4)[0], 8
        if vr in SHORT_VRS:
            return group << 16 | number, vr, length, 8
        if vr not in LONG_VRS:
            raise Unsupported(f"VR {vr!r}")
        return group << 16 | number, vr, _LONG_LENGTH.unpack_from(data, pos + 8)[0], 12

    def dataset(self, pos: int, end: int | None, keep: frozenset) -> tuple[RawItem, int]:
        """The item from ``pos`` to ``end`` (``None``: to the item delimiter), the leaves in ``keep`` kept."""
        raw: dict[str, tuple[str, bytes]] = {}
        sequences: dict[str, list[RawItem]] = {}
        data, explicit, size = self.data, self.explicit, len(self.data)
        unpack_explicit, unpack_implicit, unpack_long = (_EXPLICIT_HEAD.unpack_from, _IMPLICIT_HEAD.unpack_from,
                                                         _LONG_LENGTH.unpack_from)
        while end is None or pos < end:
            # the element header, inline (this loop runs ~25 times per frame)
            if pos + 8 > size:
                raise Unsupported("cut inside an element")
            if explicit:
                group, number, vr, length = unpack_explicit(data, pos)
                if group == 0xFFFE:
                    vr, length, head = b"", unpack_long(data, pos + 4)[0], 8
                elif vr in SHORT_VRS:
                    head = 8
                elif vr in LONG_VRS:
                    length, head = unpack_long(data, pos + 8)[0], 12
                else:
                    raise Unsupported(f"VR {vr!r}")
            else:
                group, number, length = unpack_implicit(data, pos)
                vr, head = b"", 8
            tag = group << 16 | number
            if end is None and tag == ITEM_END:
                return RawItem(raw, sequences), pos + head
            if end is not None and tag in PIXEL_TAGS:
                return RawItem(raw, sequences), pos
            start = pos + head
            if tag in MACROS:
                if vr == b"UN":
                    raise Unsupported("a functional-group sequence written as UN")
                if vr == b"SQ" or length == UNDEFINED_LENGTH or not explicit:
                    items, pos = self.sequence(start, None if length == UNDEFINED_LENGTH else start + length, tag)
                    sequences[_TAGS[tag][0]] = items
                    continue
            if length == UNDEFINED_LENGTH:
                pos = skip_undefined(data, start, explicit, vr)
                continue
            if start + length > size:
                raise Unsupported("cut inside a value")
            if tag in keep and vr != b"SQ":
                raw[_TAGS[tag][0]] = (vr.decode("ascii") if vr else "", data[start:start + length])
            pos = start + length
        return RawItem(raw, sequences), pos

    def sequence(self, pos: int, end: int | None, tag: int) -> tuple[list[RawItem], int]:
        """The items of sequence ``tag`` starting at ``pos`` (defined length to ``end``, else to its delimiter).

        Most per-frame items repeat byte for byte from frame to frame and from file to
        file (60 frames with one echo time, orientation, pixel measures, rescale; the
        same 60 positions in every file of a time series). An item whose bytes, from
        its item tag to its end, equal those of an item already parsed in a sequence of
        the same tag and encoding is that item (:class:`ItemMemo`): the parsed
        :class:`RawItem` is reused, its values converted once. A tag whose first
        :data:`NEVER_REPEATING_AFTER` items in a file all were new (frame content: times
        and indices) is no longer looked up in that file; its items are parsed as they
        come, to the same values.
        """
        data = self.data
        known = lengths = counts = None
        if tag in _REPEATING:
            counts = self._counts.get(tag, _UNCONVERTED)
            if counts is _UNCONVERTED:
                counts = self._counts[tag] = [0, 0]
            if counts is not None:
                key = (self.explicit, tag)
                known = self.memo.items.setdefault(key, {})
                lengths = self.memo.lengths.setdefault(key, [])
        items = []
        while end is None or pos < end:
            if counts is not None:
                for size in lengths:
                    item = known.get(data[pos:pos + size])
                    if item is not None and (end is None or pos + size <= end):
                        items.append(item)
                        pos += size
                        counts[1] += 1
                        break
                else:
                    item = None
                if item is not None:
                    continue
            item_tag, _, length, head = self.element(pos, self.explicit)
            if item_tag == SEQUENCE_END and end is None:
                return items, pos + head
            if item_tag != ITEM:
                raise Unsupported("a sequence holds something other than items")
            first, start = pos, pos + head
            item, pos = self.dataset(start, None if length == UNDEFINED_LENGTH else start + length, _LEAVES)
            items.append(item)
            if counts is not None:
                counts[0] += 1
                if not counts[1] and counts[0] >= NEVER_REPEATING_AFTER:
                    counts = self._counts[tag] = None
                elif len(known) < ITEMS_PER_TAG:
                    size = pos - first
                    if size not in lengths:
                        if len(lengths) >= LENGTHS_PER_TAG:
                            continue
                        lengths.append(size)
                    known[data[first:pos]] = item
        return items, pos


def read_functional_groups(path: str, header_bytes: int = -1, memo: ItemMemo | None = None) -> RawDataset | None:
    """The top-level image attributes and functional groups of ``path``, or ``None`` when pydicom must parse it.

    ``header_bytes``: where the pixel data starts (from the header scan), so that only the
    header is read; ``-1`` reads the whole file. ``memo``: the items parsed in the other
    files of its series (one :class:`ItemMemo` for them all), reused where the bytes repeat.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read(header_bytes + 16 if header_bytes > 0 else -1)
    except OSError:
        return None
    try:
        if data[128:132] != b"DICM":
            raise Unsupported("no preamble")
        meta = _Walker(data, explicit=True)
        pos, syntax = 132, ""
        while data[pos:pos + 2] == b"\x02\x00":
            tag, _, length, head = meta.element(pos, True)
            if length == UNDEFINED_LENGTH:
                raise Unsupported("undefined length in the file meta group")
            if tag == 0x00020010:
                syntax = data[pos + head:pos + head + length].decode("ascii").strip("\x00 ")
            pos += head + length
        if not syntax or syntax in PYDICOM_ONLY_SYNTAXES:
            raise Unsupported(f"transfer syntax {syntax!r}")
        dataset, _ = _Walker(data, syntax != IMPLICIT_LITTLE, memo).dataset(pos, len(data), _TOP)
    except (Unsupported, struct.error, UnicodeDecodeError, RecursionError, IndexError):
        return None
    return dataset
