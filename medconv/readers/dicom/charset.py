"""Text values of a DICOM header decoded with the file's declared character set.

DICOM text in the VRs SH, LO, ST, LT, PN, UC and UT is written in the repertoire
that SpecificCharacterSet (0008,0005) declares (PS3.5 6.1): ``ISO_IR 100``
(latin-1), ``ISO_IR 192`` (UTF-8), ``GB18030``, or ISO 2022 code extensions
(``\\ISO 2022 IR 87``: JIS X 0208 switched in by escape sequences, with the
encoding reset at the ``^`` and ``=`` of a person name ...). Every other VR
(UI, CS, DA, DS, IS ...) is in the default repertoire, ASCII, whatever is declared.

**The rule** (one place, used by both header paths, :mod:`.headers` for the raw
fast parser and for pydicom's):

1. A value whose bytes are ASCII without an escape (ESC, 0x1B) is the same text in
   every DICOM character set: it is taken as it is, without looking at the
   declared set (the common case costs nothing and needs no pydicom).
2. Otherwise the declared terms are mapped to Python codecs by pydicom's table
   (:data:`pydicom.charset.python_encoding`); a value with escape sequences is
   decoded by :func:`pydicom.charset.decode_bytes`, the others with the first
   term's codec, strictly. The default repertoire (no term, ``ISO_IR 6``) is ASCII.
   An unknown first term leaves the known code extensions after it in use for values
   with escape sequences (as pydicom does); a value with escape sequences and no code
   extension declared is not text of the declared set (step 3).
3. When that fails -- an unknown term (``ISO_IR 999``, a misspelling), bytes
   that are not valid in the declared set, non-ASCII bytes with no set declared
   -- the value is decoded with :data:`FALLBACK_CODECS` (strict UTF-8, else
   latin-1, which takes any byte) and a warning says so. A file is never
   failed for its text.

Decoding equals pydicom's own (``str(ds.PatientName)``) wherever the declared
set is valid (tests/test_dicom_charset.py checks pydicom's charset test files).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping

#: (0008,0005) SpecificCharacterSet.
SPECIFIC_CHARACTER_SET = 0x00080005

#: The VR of each header keyword medconv reads whose value is in the declared character set
#: (PS3.5 6.1.2.3: SH, LO, ST, LT, PN, UC, UT). Every other field is ASCII by definition.
CHARSET_KEYWORDS: Mapping[str, str] = {
    "PatientName": "PN", "PatientID": "LO", "StudyDescription": "LO", "SeriesDescription": "LO",
    "ProtocolName": "LO", "Manufacturer": "LO", "ConvolutionKernel": "SH", "SequenceName": "SH",
}

#: Tried in order, strictly, when the declared character set cannot decode a value; latin-1 takes any byte.
FALLBACK_CODECS = ("utf_8", "latin_1")
#: How warnings name the fallback codecs (by the DICOM term of the same repertoire).
CODEC_NAMES = {"utf_8": "UTF-8 (ISO_IR 192)", "latin_1": "latin-1 (ISO_IR 100)"}

#: Terms that mean the default repertoire (ASCII).
_DEFAULT_TERMS = frozenset({"", "ISO_IR 6", "ISO 2022 IR 6"})
_ESC = b"\x1b"


@dataclass(frozen=True)
class CharacterSet:
    """A declared SpecificCharacterSet turned into Python codecs.

    Attributes
    ----------
    declared:
        The terms as written (``("", "ISO 2022 IR 87")``); ``()`` when none is declared.
    codecs:
        Python codec names from pydicom's table, in the terms' order (for
        :func:`pydicom.charset.decode_bytes`). When the first term is unknown: the
        default repertoire's and the known code extensions' (escape sequences name
        their code set), empty when there are none.
    first:
        The codec of values without escape sequences (``"ascii"`` for the default
        repertoire), ``""`` when the first term is unknown.
    problem:
        Why some declared terms are not used (unknown, not allowed with others); ``""`` when all are.
    """

    declared: tuple[str, ...]
    codecs: tuple[str, ...]
    first: str
    problem: str = ""


@lru_cache(maxsize=64)
def character_set(declared: tuple[str, ...]) -> CharacterSet:
    """The codecs of the SpecificCharacterSet terms ``declared`` (pydicom's table; never raises)."""
    from pydicom.charset import STAND_ALONE_ENCODINGS, python_encoding

    terms = tuple(term.strip() for term in declared)
    unknown = [term for term in terms if term not in python_encoding]
    problems = [f"SpecificCharacterSet {term!r} is no character set DICOM defines" for term in unknown]
    usable = [term for term in terms if term in python_encoding]
    if usable and usable[0] in STAND_ALONE_ENCODINGS and len(usable) > 1:
        problems.append(f"{usable[0]!r} allows no code extensions: {', '.join(map(repr, usable[1:]))} ignored")
        usable = usable[:1]
    elif any(term in STAND_ALONE_ENCODINGS for term in usable[1:]):
        problems.append("a stand-alone character set (ISO_IR 192, GB18030, GBK) is no code extension: ignored")
        usable = usable[:1] + [term for term in usable[1:] if term not in STAND_ALONE_ENCODINGS]
    first_term = terms[0] if terms else ""
    if first_term in unknown:
        first = ""
    else:
        first = "ascii" if first_term in _DEFAULT_TERMS else python_encoding[first_term]
    if first:
        codecs = tuple(python_encoding[term] for term in usable)
    else:  # escapes name their code sets: an unknown first term reads as the default, extensions kept (as pydicom)
        extensions = [python_encoding[term] for term in usable if term not in STAND_ALONE_ENCODINGS]
        codecs = (python_encoding[""], *extensions) if extensions else ()
    return CharacterSet(terms, codecs, first, "; ".join(problems))


@dataclass(frozen=True)
class DecodedTexts:
    """The text values of one header that needed their character set, and what went wrong doing it.

    Attributes
    ----------
    values:
        ``{keyword: text}`` of the :data:`CHARSET_KEYWORDS` present whose bytes are
        not plain ASCII (plain ASCII is the same text in every set); stripped of
        NULs and spaces at both ends like every other header value.
    warnings:
        One line per problem, naming the file (for the unit's warnings).
    """

    values: Mapping[str, str]
    warnings: tuple[str, ...] = ()


_NOTHING = DecodedTexts({})


def decode_texts(raw_values: Mapping[int, tuple[Any, Any]], tags: Mapping[str, int], path: str) -> DecodedTexts:
    """Decode the :data:`CHARSET_KEYWORDS` elements of one header with its declared character set.

    Parameters
    ----------
    raw_values:
        ``{tag: (raw little-endian value bytes or None, value pydicom converted or None)}``
        of the header's top-level elements (values pydicom converted are decoded already).
    tags:
        The tag of each keyword.
    path:
        The file, for warnings.
    """
    pending, values = {}, {}
    for keyword, vr in CHARSET_KEYWORDS.items():
        raw = raw_values.get(tags[keyword], (None, None))[0]
        if not raw:
            continue
        if not raw.isascii() or _ESC in raw:
            pending[keyword] = raw
        elif vr == "PN" and raw.rstrip(b"\x00 ").endswith(b"="):
            values[keyword] = _person_name(raw.decode("ascii"))
    if not pending:
        return DecodedTexts(values) if values else _NOTHING
    charset = character_set(_declared_terms(raw_values.get(SPECIFIC_CHARACTER_SET)))
    failed: dict[str, list[str]] = {}
    for keyword, raw in pending.items():
        vr = CHARSET_KEYWORDS[keyword]
        text, fallback = decode_value(raw, vr, charset)
        values[keyword] = _person_name(text) if vr == "PN" else text.strip("\x00 ")
        if fallback:
            failed.setdefault(fallback, []).append(keyword)
    name = os.path.basename(path)
    shown = "\\".join(charset.declared) if charset.declared else "none, i.e. ASCII"
    why = charset.problem if not charset.first else f"not text in the declared SpecificCharacterSet ({shown})"
    notes = [f"{', '.join(keywords)}: {why}; decoded with {fallback}, which may be wrong ({name})"
             for fallback, keywords in failed.items()]
    if charset.problem and (charset.first or not failed):  # terms ignored (the fallback notes name them otherwise)
        notes.insert(0, f"{charset.problem} ({name})")
    return DecodedTexts(values, tuple(notes))


def decode_value(raw: bytes, vr: str, charset: CharacterSet) -> tuple[str, str]:
    """One element's value bytes as text, and ``""`` or, when ``charset`` could not decode them, what did.

    Multiple values stay separated by ``\\`` as in the raw value (pydicom decodes
    the whole value and splits after; so does this).
    """
    if _ESC in raw and charset.codecs:
        from pydicom.charset import decode_bytes
        from pydicom.valuerep import TEXT_VR_DELIMS

        with warnings.catch_warnings(record=True) as caught:  # pydicom warns where it had to replace bytes
            warnings.simplefilter("always")
            text = decode_bytes(raw.rstrip(b"\x00 ") if vr == "PN" else raw, list(charset.codecs), TEXT_VR_DELIMS)
        return text, "replacement characters for the undecodable bytes" if caught else ""
    if charset.first and _ESC not in raw:  # an escape without a declared code extension is no text of the set
        try:
            return raw.decode(charset.first), ""
        except UnicodeDecodeError:
            pass
    for codec in FALLBACK_CODECS:
        try:
            return raw.decode(codec), CODEC_NAMES.get(codec, codec)
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes every byte")  # pragma: no cover


def _person_name(text: str) -> str:
    """A PN value as pydicom shows it: each name without padding and without empty trailing ``=`` groups."""
    return "\\".join(name.strip("\x00 ").rstrip("=") for name in text.split("\\")).strip("\x00 ")


def _declared_terms(found: tuple[Any, Any] | None) -> tuple[str, ...]:
    """The SpecificCharacterSet terms of an element as ``raw_values`` holds it (``()`` when absent)."""
    if found is None:
        return ()
    raw, value = found
    if raw is not None:
        text = raw.decode("latin-1")
    elif isinstance(value, str):
        text = value
    elif value is None:
        return ()
    elif isinstance(value, (bytes, bytearray)):  # a value pydicom left as bytes (an OB or UN element)
        text = bytes(value).decode("latin-1")
    elif isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        text = "\\".join(str(v) for v in value)
    else:  # a number, or a value pydicom could not convert: a term no table knows, never an exception
        text = str(getattr(value, "reason", value))
    text = text.strip("\x00 ")
    return tuple(term.strip("\x00 ") for term in text.split("\\")) if text else ()
