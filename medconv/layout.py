"""Output naming: where each unit of a dataset is written, with names safe to use as paths.

Two policies, chosen per unit:

* **DICOM series** (a Source whose ``info`` carries a ``series_uid``) are named by
  :data:`DICOM_TEMPLATE`, ``{patient_id}/{study_date}_{series_number}_{modality}_{series_description}``:
  readable, grouped by patient. When two series of a plan would get the same name,
  the planner appends a fragment of the SeriesInstanceUID (see :func:`uid_fragment`).
* **Files** (NIfTI, MetaImage, TIFF ...) keep their relative folder and their stem,
  ``{id}``: ``subset0/1.3.6.1.4.1.14519....mhd`` becomes
  ``subset0/1.3.6.1.4.1.14519....nii.gz`` (LUNA16 names are SeriesInstanceUIDs and
  are kept as they are).

A ``--name`` template replaces both. It is a Python format string whose fields are
the keys of ``Source.info`` plus:

=============  ===============================================================
``{id}``       the unit id (for files: the relative path without suffix)
``{stem}``     the last part of the id
``{parent}``   the folder part of the id ('' at the top)
``{reader}``   the reader name (dicom, nifti, metaimage, tiff, ...)
``{ext}``      the input file's extension(s) after the stem (``nii.gz``, ``hdr.gz``, ``mhd``;
               '' for DICOM series)
=============  ===============================================================

Header values are sanitised before they reach a path. First every name is made
ASCII by :func:`ascii_name` (DICOM text decoded with its character set, e.g. a
GB18030 SeriesDescription, reaches here as Unicode): what Unicode's compatibility
decomposition (NFKD) turns into ASCII letters is transliterated (``Müller`` ->
``Muller``, full-width ``ＣＴ`` -> ``CT``), every other letter or digit is escaped
as ``u`` and its four lowercase hex digits (``中`` -> ``u4e2d``; beyond U+FFFF as
its UTF-16 pair), so that :func:`restore_name` gives the escaped characters back;
ASCII text is never changed by this step, so it can run twice. Then path separators, ``..``, control characters
and anything outside ASCII letters, digits, ``._+-`` become ``_``; runs of ``_``
collapse; each path component is cut to :data:`MAX_COMPONENT`
characters; an empty or missing field is left out together with the ``_`` beside
it (``20000101_3_CT`` when the description is empty), and a path component left
empty becomes :data:`MISSING`. Only the template's
own ``/`` (and the ``/`` inside ``{id}`` and ``{parent}``) separate folders.
"""

from __future__ import annotations

import hashlib
import os
import re
import string
import unicodedata
from typing import Any, Iterable

from .errors import UsageError
from .source import InfoKey, Source

#: The default name of a DICOM series' output (without suffix).
DICOM_TEMPLATE = "{patient_id}/{study_date}_{series_number}_{modality}_{series_description}"
#: The default name of a file unit's output: its relative path without the format suffix.
FILE_TEMPLATE = "{id}"
#: What a missing or empty field becomes.
MISSING = "unknown"
#: Longest path component written (bytes are limited to 255 by most file systems; a suffix follows).
MAX_COMPONENT = 120

_UNSAFE = re.compile(r"[^A-Za-z0-9_.+\-]+")
#: An escaped character in a name: ``u`` and its UTF-16 code unit as four lowercase hex digits.
ESCAPE = re.compile(r"u([0-9a-f]{4})")


def ascii_name(text: str) -> str:
    """``text`` (in NFC) with every non-ASCII character made ASCII by the one naming rule.

    Per character: its NFKD decomposition without combining marks if that is ASCII
    and not empty (``ü`` -> ``u``, ``ﬁ`` -> ``fi``, ``Ｍ`` -> ``M``); else a letter or digit
    becomes :data:`ESCAPE` (``中`` -> ``u4e2d``, ``だ`` -> ``u3060``, ``ß`` -> ``u00df``;
    characters beyond U+FFFF as two escapes, their UTF-16 surrogates); a lone combining
    mark is dropped; anything else (punctuation, symbols, spaces) becomes ``_``. ASCII
    text is left as it is (so names of ASCII headers never change, and applying the
    rule twice changes nothing).

    Why escapes rather than dropping or punycode: names stay distinct (two Chinese
    descriptions never both become ``unknown``), every character keeps its place
    and can be looked up by its code point (U+4E2D), and the escapes are reversible
    (:func:`restore_name`; ambiguous only where the original text itself holds an
    ASCII ``u`` and four lowercase hex digits: the sidecar keeps the original).
    """
    if text.isascii():
        return text
    return "".join(char if char.isascii() else _ascii_char(char) for char in unicodedata.normalize("NFC", text))


def _ascii_char(char: str) -> str:
    """One non-ASCII character by the rule of :func:`ascii_name`."""
    ascii_form = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
    if ascii_form and ascii_form.isascii():
        return ascii_form
    if unicodedata.category(char)[0] in "LN":
        units = char.encode("utf-16-be")
        return "".join(f"u{units[i]:02x}{units[i + 1]:02x}" for i in range(0, len(units), 2))
    return "" if unicodedata.combining(char) else "_"


def restore_name(name: str) -> str:
    """The text an :func:`ascii_name` came from (the inverse of its escapes; transliterations stay ASCII)."""
    return _ESCAPES.sub(lambda run: bytes.fromhex(run.group().replace("u", "")).decode("utf-16-be", "surrogatepass"),
                        name)


_ESCAPES = re.compile(f"(?:{ESCAPE.pattern})+")
_UNDERSCORES = re.compile(r"_{2,}")
_PATH_FIELDS = ("id", "parent", "file")  # file: a 2D DICOM image's path under SRC without suffix


def sanitize_component(value: Any) -> str:
    """``value`` as one safe path component (no separators, no leading dots, bounded length)."""
    text = "" if value is None else str(value)
    text = "".join(ch if ch.isprintable() else "_" for ch in text)
    text = _UNSAFE.sub("_", ascii_name(text))
    text = re.sub(r"\.{2,}", "_", text)  # no '..' anywhere
    text = _UNDERSCORES.sub("_", text).strip("_. ")  # no hidden names
    if len(text) > MAX_COMPONENT:
        digest = hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()[:8]
        text = text[: MAX_COMPONENT - 9].rstrip("._") + "_" + digest
    return text or MISSING


def sanitize_relative_path(value: Any) -> str:
    """``value`` (with ``/`` or ``\\`` separators) as a safe relative path: every component sanitised."""
    parts = [part for part in re.split(r"[/\\]+", "" if value is None else str(value)) if part not in ("", ".")]
    return "/".join(sanitize_component(part) for part in parts)


def template_fields(source: Source) -> dict[str, Any]:
    """The values a naming template can use for ``source``."""
    fields: dict[str, Any] = {key: value for key, value in source.info.items() if isinstance(key, str)}
    identifier = source.id.replace("\\", "/")
    stem = identifier.rsplit("/", 1)[-1]
    first = os.path.basename(source.paths[0]) if source.paths else ""
    fields.update(id=identifier, stem=stem, parent=identifier.rsplit("/", 1)[0] if "/" in identifier else "",
                  reader=source.reader, ext=first[len(stem) + 1:] if first.startswith(stem + ".") else "")
    return fields


def default_template(source: Source) -> str:
    """:data:`DICOM_TEMPLATE` for a DICOM-like unit (one with a ``series_uid``), else :data:`FILE_TEMPLATE`."""
    return DICOM_TEMPLATE if source.info.get(InfoKey.SERIES_UID) else FILE_TEMPLATE


class _SafeFields(dict):
    """Format mapping that sanitises every value and fills missing keys."""

    def __missing__(self, key):
        return ""


def check_template(template: str) -> None:
    """Raise :class:`UsageError` if ``template`` is not a usable naming template."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise UsageError(f"bad --name template {template!r}: {exc}") from None
    if not any(field for _, field, _, _ in parsed):
        raise UsageError(f"the --name template {template!r} has no {{field}}",
                         hint="every output would get the same name; use e.g. '{id}' or '{patient_id}/{series_uid}'")
    for position, (literal, field, spec, conversion) in enumerate(parsed):
        if field and not re.fullmatch(r"\w+", field):
            raise UsageError(f"bad field {{{field}}} in the --name template", hint="fields are plain names such as {patient_id}")
        if ".." in literal.split("/") or (position == 0 and literal.startswith("/")):
            raise UsageError(f"the --name template {template!r} may not contain '..' or start with '/'")


def check_template_fields(template: str, sources: Iterable[Source]) -> None:
    """Raise :class:`UsageError` for a template field that no unit has (a misspelt ``{patient_idd}``)."""
    wanted = {field for _, field, _, _ in string.Formatter().parse(template) if field}
    known: set[str] = set()
    for source in sources:
        known |= set(template_fields(source))
        if wanted <= known:
            return
    unknown = ", ".join(sorted(wanted - known))
    raise UsageError(f"the --name template uses {{{unknown}}}, which no unit has",
                     hint="known fields: " + ", ".join(sorted(known)))


def output_stem(source: Source, template: str | None = None) -> str:
    """The relative output path of ``source`` without suffix, with ``/`` between folders.

    Parameters
    ----------
    source:
        The unit to name.
    template:
        A naming template (see the module docstring); ``None`` for the default policy.
    """
    template = template or default_template(source)
    fields = template_fields(source)
    safe = _SafeFields()
    for key, value in fields.items():
        if key in _PATH_FIELDS:
            safe[key] = sanitize_relative_path(value) or MISSING
        elif value is None or value == "":
            safe[key] = ""  # dropped, with its separator, when the path is cleaned up
        else:
            safe[key] = sanitize_component(value)
    parts = []
    for segment in template.split("/"):  # the template's own folders
        try:
            formatted = segment.format_map(safe)
        except (ValueError, IndexError, KeyError, AttributeError) as exc:
            raise UsageError(f"bad --name template {template!r}: {exc}") from None
        cleaned = sanitize_relative_path(formatted)
        fields = {field for _, field, _, _ in string.Formatter().parse(segment) if field}
        if cleaned:
            parts.append(cleaned)
        elif segment and not fields <= set(_PATH_FIELDS):  # a folder named by a missing header value
            parts.append(MISSING)
    return "/".join(parts) or sanitize_component(source.id)


def uid_fragment(source: Source, length: int = 8) -> str:
    """A short piece that tells this unit apart from others with the same name.

    The last ``length`` digits of the SeriesInstanceUID (its most specific part),
    else a hash of the unit id.
    """
    uid = str(source.info.get(InfoKey.SERIES_UID) or "")
    digits = re.sub(r"[^0-9A-Za-z]", "", uid)
    if digits:
        return digits[-length:]
    return hashlib.sha1(source.id.encode("utf-8", "replace")).hexdigest()[:length]


def id_fragment(source: Source, length: int = 8) -> str:
    """A hash of the unit id: unique per unit even when two units share a series UID."""
    return hashlib.sha1(source.id.encode("utf-8", "replace")).hexdigest()[:length]

