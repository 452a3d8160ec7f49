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

_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
UNDEFINED_LENGTH = 0xFFFFFFFF
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})
_SHORT_VRS = frozenset({b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT", b"PN",
                        b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"})
_PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})
_IMPLICIT = "1.2.840.10008.1.2"
_LITTLE_ENDIAN_SYNTAXES_WITH_PYDICOM_ONLY = frozenset({"1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"})

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
    "FrameVOILUTSequence": (0x00289132, "SQ"), "WindowCenter": (0x00281050, "DS"), "WindowWidth": (0x00281051, "DS"),
    "FrameContentSequence": (0x00209111, "SQ"), "TemporalPositionIndex": (0x00209128, "UL"),
    "FrameAcquisitionNumber": (0x00209156, "US"), "DimensionIndexValues": (0x00209157, "UL"),
    "InStackPositionNumber": (0x00209057, "UL"), "StackID": (0x00209056, "SH"),
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
#: Distinct items remembered per sequence tag (a handful repeat: the same echo, orientation, rescale ...).
REMEMBERED_ITEMS = 4
_TAG = struct.Struct("<HH")
_SHORT_LENGTH = struct.Struct("<H")
_LONG_LENGTH = struct.Struct("<I")
_BINARY = {"FD": "<d", "FL": "<f", "UL": "<I", "US": "<H", "SL": "<i", "SS": "<h"}


class _Unsupported(Exception):
    """The file needs pydicom."""


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

    __slots__ = ("_elements", "_values")

    def __init__(self, elements: dict[int, Any]):
        #: ``{tag: list of RawItem}`` for sequences, ``{tag: (VR, raw bytes)}`` for other elements.
        self._elements = elements
        self._values: dict[str, Any] = {}  # converted once (a shared group is asked once per frame)

    def get(self, keyword: str, default: Any = None) -> Any:
        value = self._values.get(keyword, _UNCONVERTED)
        if value is not _UNCONVERTED:
            return default if value is None else value
        tag, vr = ELEMENTS.get(keyword, (None, ""))
        found = self._elements.get(tag)
        if found is None or (vr == "SQ" and not isinstance(found, list)):
            value = None
        elif isinstance(found, list):
            value = found
        else:
            written_vr, raw = found
            value = _value(raw, written_vr if written_vr and written_vr != "UN" else vr)
        self._values[keyword] = value
        return default if value is None else value

    def __getattr__(self, keyword: str) -> Any:
        value = self.get(keyword)
        if value is None:
            raise AttributeError(keyword)
        return value

    def __contains__(self, keyword: str) -> bool:
        return ELEMENTS.get(keyword, (None,))[0] in self._elements


RawDataset = RawItem


class _Walker:
    """Element headers of an in-memory file, explicit or implicit VR little endian."""

    def __init__(self, data: bytes, explicit: bool):
        self.data = data
        self.explicit = explicit
        #: sequence tag -> the last distinct items parsed in it: (their bytes, header to delimiter, the item)
        self._parsed: dict[int, list[tuple[bytes, RawItem]]] = {}

    def element(self, pos: int) -> tuple[int, bytes, int, int]:
        """``(tag, VR, value length, header length)`` at ``pos``."""
        data = self.data
        if pos + 8 > len(data):
            raise _Unsupported("cut inside an element")
        group, number = _TAG.unpack_from(data, pos)
        tag = group << 16 | number
        if group == 0xFFFE or not self.explicit:
            return tag, b"", _LONG_LENGTH.unpack_from(data, pos + 4)[0], 8
        vr = data[pos + 4:pos + 6]
        if vr in _SHORT_VRS:
            return tag, vr, _SHORT_LENGTH.unpack_from(data, pos + 6)[0], 8
        if vr not in _LONG_VRS:
            raise _Unsupported(f"VR {vr!r}")
        return tag, vr, _LONG_LENGTH.unpack_from(data, pos + 8)[0], 12

    def dataset(self, pos: int, end: int | None, keep: frozenset) -> tuple[dict, int]:
        """Elements from ``pos`` to ``end`` (``None``: to the item delimiter), the leaves in ``keep`` kept."""
        elements: dict[int, Any] = {}
        data, explicit, size = self.data, self.explicit, len(self.data)
        unpack_tag, unpack_short, unpack_long = _TAG.unpack_from, _SHORT_LENGTH.unpack_from, _LONG_LENGTH.unpack_from
        while end is None or pos < end:
            # the element header, inline (this loop runs ~50 times per frame)
            if pos + 8 > size:
                raise _Unsupported("cut inside an element")
            group, number = unpack_tag(data, pos)
            tag = group << 16 | number
            if group == 0xFFFE or not explicit:
                vr, length, head = b"", unpack_long(data, pos + 4)[0], 8
            else:
                vr = data[pos + 4:pos + 6]
                if vr in _SHORT_VRS:
                    length, head = unpack_short(data, pos + 6)[0], 8
                elif vr in _LONG_VRS:
                    length, head = unpack_long(data, pos + 8)[0], 12
                else:
                    raise _Unsupported(f"VR {vr!r}")
            if end is None and tag == _ITEM_END:
                return elements, pos + head
            if end is not None and tag in _PIXEL_TAGS:
                return elements, pos
            start = pos + head
            if tag in MACROS:
                if vr == b"UN":
                    raise _Unsupported("a functional-group sequence written as UN")
                if vr == b"SQ" or length == UNDEFINED_LENGTH or not explicit:
                    items, pos = self.sequence(start, None if length == UNDEFINED_LENGTH else start + length, tag)
                    elements[tag] = items
                    continue
            if length == UNDEFINED_LENGTH:
                if explicit and vr not in (b"SQ", b"UN"):
                    raise _Unsupported(f"undefined length with VR {vr!r}")
                pos = self.skip(start, implicit_inside=vr == b"UN")
                continue
            if start + length > size:
                raise _Unsupported("cut inside a value")
            if tag in keep and vr != b"SQ":
                elements[tag] = (vr.decode("ascii") if vr else "", data[start:start + length])
            pos = start + length
        return elements, pos

    def sequence(self, pos: int, end: int | None, tag: int = 0) -> tuple[list[RawItem], int]:
        """The items of sequence ``tag`` starting at ``pos`` (defined length to ``end``, else to its delimiter).

        Most per-frame items repeat byte for byte from frame to frame (60 frames with one
        echo time, orientation, pixel measures, rescale ...). An item whose bytes, from its
        item tag to its end, equal those of an item already parsed in a sequence of the
        same tag is that item: the parsed :class:`RawItem` is reused (values converted
        once), and an item of defined length is not walked again.
        """
        data = self.data
        parsed = self._parsed.setdefault(tag, []) if tag in _REPEATING else None
        items = []
        while end is None or pos < end:
            if parsed:
                item = _known_item(data, pos, end, parsed)
                if item is not None:
                    items.append(item[1])
                    pos += len(item[0])
                    continue
            item_tag, _, length, head = self.element(pos)
            if item_tag == _SEQUENCE_END and end is None:
                return items, pos + head
            if item_tag != _ITEM:
                raise _Unsupported("a sequence holds something other than items")
            first, start = pos, pos + head
            elements, pos = self.dataset(start, None if length == UNDEFINED_LENGTH else start + length, _LEAVES)
            items.append(RawItem(elements))
            if parsed is not None:
                parsed.insert(0, (data[first:pos], items[-1]))
                del parsed[REMEMBERED_ITEMS:]
        return items, pos

    def skip(self, pos: int, implicit_inside: bool = False) -> int:
        """Past the delimiter of an undefined-length sequence that is not walked into."""
        walker = _Walker(self.data, False) if implicit_inside else self
        while True:
            tag, _, length, head = walker.element(pos)
            if tag == _SEQUENCE_END:
                return pos + head
            if tag != _ITEM:
                raise _Unsupported("a sequence holds something other than items")
            if length != UNDEFINED_LENGTH:
                pos += head + length
                continue
            pos += head
            while True:  # an undefined-length item: to its delimiter
                tag, vr, length, head = walker.element(pos)
                if tag == _ITEM_END:
                    pos += head
                    break
                if length == UNDEFINED_LENGTH:
                    pos = walker.skip(pos + head, implicit_inside=vr == b"UN")
                else:
                    pos += head + length


def _known_item(data: bytes, pos: int, end: int | None,
                parsed: list[tuple[bytes, RawItem]]) -> tuple[bytes, RawItem] | None:
    """The parsed item whose bytes are those at ``pos`` (and inside ``end``), if any."""
    for known in parsed:
        if data.startswith(known[0], pos) and (end is None or pos + len(known[0]) <= end):
            return known
    return None


def read_functional_groups(path: str, header_bytes: int = -1) -> RawDataset | None:
    """The top-level image attributes and functional groups of ``path``, or ``None`` when pydicom must parse it.

    ``header_bytes``: where the pixel data starts (from the header scan), so that only the
    header is read; ``-1`` reads the whole file.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read(header_bytes + 16 if header_bytes > 0 else -1)
    except OSError:
        return None
    try:
        if data[128:132] != b"DICM":
            raise _Unsupported("no preamble")
        meta = _Walker(data, explicit=True)
        pos, syntax = 132, ""
        while data[pos:pos + 2] == b"\x02\x00":
            tag, _, length, head = meta.element(pos)
            if length == UNDEFINED_LENGTH:
                raise _Unsupported("undefined length in the file meta group")
            if tag == 0x00020010:
                syntax = data[pos + head:pos + head + length].decode("ascii").strip("\x00 ")
            pos += head + length
        if not syntax or syntax in _LITTLE_ENDIAN_SYNTAXES_WITH_PYDICOM_ONLY:
            raise _Unsupported(f"transfer syntax {syntax!r}")
        elements, _ = _Walker(data, explicit=syntax != _IMPLICIT).dataset(pos, len(data), _TOP)
    except (_Unsupported, struct.error, UnicodeDecodeError, RecursionError, IndexError):
        return None
    return RawDataset(elements)
