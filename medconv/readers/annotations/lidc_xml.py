"""Parsing LIDC-IDRI reading XML (``LidcReadMessage``, namespace ``http://www.nih.gov``) into typed records.

One file holds the reading sessions of up to four radiologists for one CT series
(``ResponseHeader/SeriesInstanceUid``). Each session lists

* ``unblindedReadNodule``: a nodule >= 3 mm has ``characteristics`` (the nine
  ratings) and one ``roi`` per slice: ``imageZposition``, ``imageSOP_UID``,
  ``inclusion`` (TRUE: the outline encloses nodule; FALSE: an excluded region) and
  ``edgeMap`` pixel points (``xCoord`` = column, ``yCoord`` = row, 0-based). The
  outline is the first pixel *outside* the nodule (LIDC documentation, pylidc).
  A nodule < 3 mm has a single ``edgeMap`` point per ROI (its centre), no outline;
* ``nonNodule``: one ``locus`` point on one slice.

Element names are matched without their namespace so that the few files written
without it parse too.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from enum import Enum
from typing import Optional

import numpy as np

from ...errors import NotAVolumeError, UnreadableFileError, UnsupportedFormatError
from ..files import check_dataset_file, is_regular_file

LIDC_NAMESPACE = "http://www.nih.gov"
ROOT_ELEMENT = "LidcReadMessage"
#: The root of LIDC-IDRI's chest-radiograph readings (recognised, not read: their marks are points on a 2D image).
IDRI_ROOT_ELEMENT = "IdriReadMessage"

#: The nine characteristics, in the order of the LIDC documentation (and pylidc).
CHARACTERISTICS = ("subtlety", "internalStructure", "calcification", "sphericity", "margin", "lobulation",
                   "spiculation", "texture", "malignancy")

#: Bytes read to recognise a LIDC XML file.
_SNIFF_BYTES = 4096

#: What a LIDC reading's outputs are named after (``<image>_lidc-consensus50``, ``<image>_lidc-reader1``).
LIDC_LABEL = "lidc"


class ReadingKind(str, Enum):
    """What one reader marked."""

    NODULE = "nodule"  #: >= 3 mm: outlined on each slice, rated
    SMALL_NODULE = "small-nodule"  #: < 3 mm: one centre point per slice
    NON_NODULE = "non-nodule"  #: a non-nodule lesion: one point


@dataclass(frozen=True)
class LidcRoi:
    """One slice of a reading: where it is and its edge points ``(n, 2)`` as (column x, row y)."""

    z: float
    sop_uid: str
    inclusion: bool
    points: np.ndarray


@dataclass(frozen=True)
class LidcReading:
    """One reader's mark: a nodule (with ROIs and characteristics), a small nodule or a non-nodule."""

    session: int  #: 1-based reading session in file order
    reader_id: str
    mark_id: str  #: noduleID / nonNoduleID as written
    kind: ReadingKind
    rois: tuple[LidcRoi, ...]
    characteristics: Optional[dict[str, Optional[int]]] = None


@dataclass(frozen=True)
class LidcDocument:
    """A parsed LIDC XML file."""

    path: str
    series_uid: str
    study_uid: str
    sessions: int
    readings: tuple[LidcReading, ...]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _namespace(tag: str) -> str:
    return tag[: tag.index("}") + 1] if tag.startswith("{") else ""


def _children(element, name: str) -> list:
    """The children called ``name`` in the element's own namespace (ElementTree's C search), else in any namespace."""
    found = element.findall(_namespace(element.tag) + name)
    return found or [child for child in element if _local(child.tag) == name]


def _child(element, name: str):
    found = _children(element, name)
    return found[0] if found else None


def _text(element, name: str) -> str:
    child = _child(element, name) if element is not None else None
    return (child.text or "").strip() if child is not None else ""


def _head(path: str | os.PathLike) -> bytes:
    """The first bytes of ``path`` to sniff; none for what must not be opened (a FIFO blocks, /dev/zero never ends)."""
    if not is_regular_file(path):
        return b""
    try:
        with open(path, "rb") as handle:
            return handle.read(_SNIFF_BYTES)
    except OSError:
        return b""


def is_lidc_xml(path: str | os.PathLike) -> bool:
    """Whether ``path`` looks like a LIDC-IDRI reading XML (its first bytes hold ``<LidcReadMessage``); never raises."""
    return b"<" + ROOT_ELEMENT.encode() in _head(path)


def is_lidc_family_xml(path: str | os.PathLike) -> bool:
    """Whether ``path`` is XML of the LIDC-IDRI family: a ``LidcReadMessage``, an ``IdriReadMessage``
    (the collection's chest-radiograph readings) or any XML in the LIDC namespace ``http://www.nih.gov``.

    Discovery makes each an annotation unit, so that one that cannot be read is a
    manifest row with the reason rather than a file skipped in silence; other XML
    (notes, manifests) is skipped like any file that is not DICOM. Never raises.
    """
    head = _head(path)
    return head.lstrip().startswith(b"<") and any(
        marker in head for marker in (b"<" + ROOT_ELEMENT.encode(), b"<" + IDRI_ROOT_ELEMENT.encode(),
                                      b'"' + LIDC_NAMESPACE.encode() + b'"'))


def _refuse_other_roots(head: bytes, path: str) -> None:
    """Raise for LIDC-family XML that is not a ``LidcReadMessage`` (see :func:`is_lidc_family_xml`)."""
    if b"<" + ROOT_ELEMENT.encode() in head:
        return
    if b"<" + IDRI_ROOT_ELEMENT.encode() in head:
        raise NotAVolumeError(f"an {IDRI_ROOT_ELEMENT} (LIDC-IDRI chest-radiograph reading), not a CT nodule "
                              f"reading ({ROOT_ELEMENT}): not read", path=path,
                              hint="medconv reads the CT readings; the radiographs' marks are points, not outlines")
    raise UnsupportedFormatError(f"XML, but not a LIDC-IDRI reading (no {ROOT_ELEMENT!r} element)", path=path,
                                 hint=f"medconv reads {ROOT_ELEMENT} files as TCIA ships them")


@dataclass(frozen=True)
class LidcFacts:
    """What a LIDC XML file references, found without parsing it (:func:`scan_lidc_xml`)."""

    series_uid: str
    study_uid: str
    sop_uids: frozenset[str]
    z_positions: tuple[float, ...]
    marks: tuple[str, ...]  #: ``reader<session>:<noduleID or nonNoduleID>`` per mark, in file order
    rois: int  #: nodule ROIs plus non-nodule marks


def _element_text(name: str) -> "re.Pattern[bytes]":
    """A pattern for ``<name>text</name>``, capturing the text (LIDC files use the default namespace, no prefix)."""
    return re.compile(b"<" + name.encode() + rb">\s*([^<]*?)\s*</" + name.encode() + b">")


_SERIES_UID = _element_text("SeriesInstanceUid")
_STUDY_UID = _element_text("StudyInstanceUID")
_SOP_UID = _element_text("imageSOP_UID")
_Z_POSITION = _element_text("imageZposition")
_MARK_ID = re.compile(rb"<(noduleID|nonNoduleID)>\s*([^<]*?)\s*<")
_SESSION_START = re.compile(rb"<readingSession[\s>]")
#: The response header (series and study UIDs) is in the first few kilobytes.
_HEADER_BYTES = 16384


def scan_lidc_xml(path: str | os.PathLike) -> LidcFacts:
    """The UIDs and marks of a LIDC XML file from its text, without parsing the XML (for pairing).

    About 50 times faster than :func:`parse_lidc_xml` on a 400 KB file (a few passes of
    literal regular expressions over the bytes); discovery pairs thousands of these. The
    full parse (and its well-formedness check) happens when the file is read.
    Raises :class:`UnreadableFileError` when the file cannot be opened and
    :class:`UnsupportedFormatError` when it is not a ``LidcReadMessage``.
    """
    path = os.fspath(path)
    check_dataset_file(path, "", follow_outside=True)  # a folder, FIFO or device named *.xml: refused, never opened
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise UnreadableFileError(f"cannot open: {error.strerror or error}", path=path) from None
    _refuse_other_roots(data[:_SNIFF_BYTES], path)

    def first(pattern) -> str:
        found = pattern.search(data, 0, _HEADER_BYTES) or pattern.search(data)
        return found.group(1).decode("ascii", "replace") if found else ""

    zs = set()
    for match in _Z_POSITION.finditer(data):
        try:
            zs.add(float(match.group(1)))
        except ValueError:
            continue
    starts = [match.start() for match in _SESSION_START.finditer(data)]
    marks = []
    for session, start in enumerate(starts, start=1):
        stop = starts[session] if session < len(starts) else len(data)
        marks.extend(f"reader{session}:{match.group(2).decode('ascii', 'replace')}"
                     for match in _MARK_ID.finditer(data, start, stop))
    sops = frozenset(match.group(1).decode("ascii", "replace") for match in _SOP_UID.finditer(data))
    return LidcFacts(first(_SERIES_UID), first(_STUDY_UID), sops, tuple(sorted(zs)), tuple(marks),
                     data.count(b"<roi>") + data.count(b"<nonNodule>"))


def _points(element, path: str) -> np.ndarray:
    """The ``edgeMap`` / ``locus`` points of a ROI as ``(n, 2)`` (x, y), in file order.

    Every ``xCoord`` / ``yCoord`` below the ROI (they occur only inside its edgeMap or
    locus elements) found by ElementTree's C search rather than child by child: the
    corpus files hold some 7,000 points each.
    """
    namespace = element.tag[: element.tag.index("}") + 1] if element.tag.startswith("{") else ""
    xs = [edge.text for edge in element.iter(namespace + "xCoord")]
    ys = [edge.text for edge in element.iter(namespace + "yCoord")]
    try:
        if len(xs) != len(ys):
            raise ValueError
        return np.asarray([[float(x) for x in xs], [float(y) for y in ys]], dtype=np.float64).T.reshape(-1, 2)
    except (TypeError, ValueError):
        raise UnreadableFileError("an edgeMap/locus point has no numeric xCoord / yCoord", path=path) from None


def _z(element, path: str) -> float:
    try:
        return float(_text(element, "imageZposition"))
    except ValueError:
        raise UnreadableFileError("a ROI has no numeric imageZposition", path=path) from None


def _characteristics(element) -> Optional[dict[str, Optional[int]]]:
    block = _child(element, "characteristics")
    if block is None:
        return None
    values = {}
    for name in CHARACTERISTICS:
        raw = _text(block, name)
        values[name] = int(raw) if raw.lstrip("-").isdigit() else None
    return values


def parse_lidc_xml(path: str | os.PathLike) -> LidcDocument:
    """Every reading of the LIDC XML at ``path``.

    Raises :class:`UnreadableFileError` for a truncated or malformed XML file and
    :class:`UnsupportedFormatError` for XML that is not a ``LidcReadMessage``.
    """
    path = os.fspath(path)
    check_dataset_file(path, "", follow_outside=True)  # a folder, FIFO or device named *.xml: refused, never opened
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as error:
        raise UnreadableFileError(f"not well-formed XML ({error})", path=path,
                                  hint="the file is truncated or corrupt: download it again") from None
    except OSError as error:
        raise UnreadableFileError(f"cannot open: {error.strerror or error}", path=path) from None
    if _local(root.tag) == IDRI_ROOT_ELEMENT:
        _refuse_other_roots(b"<" + IDRI_ROOT_ELEMENT.encode(), path)
    if _local(root.tag) != ROOT_ELEMENT:
        raise UnsupportedFormatError(f"XML, but not a LIDC-IDRI reading ({_local(root.tag)!r}, expected "
                                     f"{ROOT_ELEMENT!r})", path=path)
    header = _child(root, "ResponseHeader")
    readings = []
    sessions = _children(root, "readingSession")
    for number, session in enumerate(sessions, start=1):
        reader = _text(session, "servicingRadiologistID")
        for nodule in _children(session, "unblindedReadNodule"):
            rois = tuple(LidcRoi(_z(roi, path), _text(roi, "imageSOP_UID"),
                                 _text(roi, "inclusion").upper() != "FALSE", _points(roi, path))
                         for roi in _children(nodule, "roi"))
            small = all(len(roi.points) <= 1 for roi in rois)
            readings.append(LidcReading(number, reader, _text(nodule, "noduleID"),
                                        ReadingKind.SMALL_NODULE if small else ReadingKind.NODULE, rois,
                                        _characteristics(nodule)))
        for mark in _children(session, "nonNodule"):
            roi = LidcRoi(_z(mark, path), _text(mark, "imageSOP_UID"), True, _points(mark, path))
            readings.append(LidcReading(number, reader, _text(mark, "nonNoduleID"), ReadingKind.NON_NODULE, (roi,)))
    return LidcDocument(path, _text(header, "SeriesInstanceUid"), _text(header, "StudyInstanceUID"), len(sessions),
                        tuple(readings))
