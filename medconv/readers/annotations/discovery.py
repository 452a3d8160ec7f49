"""Annotation units in discovery: every RTSTRUCT, DICOM SEG and LIDC-IDRI XML tied to the image unit it annotates.

The DICOM reader's discovery hands its Sources (image units, set-aside objects) and the
files it skipped as not DICOM to :func:`with_annotation_units`, which

1. takes each RTSTRUCT / SEG object unit apart into one annotation unit per file, and
   finds LIDC XML among the skipped files by content (:func:`~.lidc_xml.is_lidc_family_xml`);
2. reads each object's references cheaply (:func:`~.headers.read_header`) and pairs it
   (:func:`~.pairing.pair`) with the image units, whose
   :class:`~medconv.image_reference.ImageReference` the image's own reader gives
   (``readers.get(source.reader).image_reference(source)``, headers only; computed only
   for the units an object could reference, each at most once);
3. returns the Sources with one annotation Source per object (reader
   :data:`ANNOTATION_READER`), placed right after the image unit it annotates. Its
   ``info[InfoKey.ANNOTATES]`` is that unit's id, ``info[InfoKey.NAME_SUFFIX]`` what its outputs add
   to the image's output name, and its ``plan`` an :class:`AnnotationPlan` carrying the
   image Source itself (with the image reader's own plan), so that a worker computes the
   grid the image is written on without discovering anything again.

An object that cannot be paired (its series is absent, several units fit, its header is
unreadable) is still a unit: its plan holds the reason, ``info[InfoKey.ERROR]`` says it for
``medconv scan``, and reading it raises that error, so it fails alone (one manifest row)
and its image converts. Nothing here is DICOM-specific except which object units to take
apart (by their Modality, a fact every DICOM unit's ``info`` carries).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

from ...errors import AnnotationReferenceError, MedconvError, NotAVolumeError
from ...image_reference import ImageReference
from ...source import InfoKey, Source
from .headers import AnnotationHeader, read_header
from .labelmap import object_suffix
from .lidc_xml import is_lidc_family_xml
from .model import AnnotationKind
from .pairing import Pairing, PairingStatus, pair
from .reader import ANNOTATION_READER, reader_image_reference

log = logging.getLogger(__name__)


#: Modality of the set-aside DICOM objects that are annotations, and their kind.
ANNOTATION_MODALITIES = {"RTSTRUCT": AnnotationKind.RTSTRUCT, "SEG": AnnotationKind.SEG}

#: ``info[InfoKey.MODALITY]`` of a LIDC XML unit (the XML has no DICOM Modality).
LIDC_MODALITY = "LIDC-XML"

_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class AnnotationPlan:
    """What reading one annotation unit needs: the object, and the image unit it is drawn on (or why none).

    Attributes
    ----------
    kind:
        RTSTRUCT, SEG or LIDC XML.
    path:
        The annotation file.
    image:
        The image unit's Source, with its own reader's plan (``None`` when unpaired).
    pairing:
        How it was paired (``None`` when its header could not be read).
    failure:
        Why it cannot be read (``None`` when paired): the typed error its unit fails with
        (:class:`~medconv.errors.AnnotationReferenceError` for a missing or ambiguous series,
        the header's own error for an unreadable or unsupported file).
    """

    kind: AnnotationKind
    path: str
    image: Optional[Source] = None
    pairing: Optional[Pairing] = None
    failure: Optional[MedconvError] = None

    def raise_failure(self) -> None:
        """Raise the failure found at discovery, if any (a fresh instance of the same error)."""
        error = self.failure
        if error is not None:
            raise type(error)(error.message, path=error.path, hint=error.hint)


def _slug(text: str, limit: int = 60) -> str:
    return _SLUG.sub("-", text.strip()).strip("-.")[:limit] or "x"


class _References:
    """Image units that annotations can be paired with, their ImageReferences computed on demand (once each)."""

    def __init__(self, sources: Sequence[Source]):
        self.images = [s for s in sources if s.reader != ANNOTATION_READER and s.plan is not None]
        self.by_series: dict[str, list[Source]] = {}
        for source in self.images:
            self.by_series.setdefault(str(source.info.get(InfoKey.SERIES_UID) or ""), []).append(source)
        self.all_by_series: dict[str, list[Source]] = {}
        for source in sources:
            if source.reader != ANNOTATION_READER:
                self.all_by_series.setdefault(str(source.info.get(InfoKey.SERIES_UID) or ""), []).append(source)
        self._cache: dict[str, Optional[ImageReference]] = {}
        self.problems: dict[str, str] = {}  #: unit id -> why it has no ImageReference (excluded, bad geometry)

    def reference(self, source: Source) -> Optional[ImageReference]:
        if source.id not in self._cache:
            reference = None
            try:
                reference = reader_image_reference(source)
            except MedconvError as error:
                self.problems[source.id] = error.message
            self._cache[source.id] = reference
        return self._cache[source.id]

    def candidates(self, header: AnnotationHeader) -> list[ImageReference]:
        """The references :func:`pair` decides among: the units of the series ``header`` names, if any, else all.

        :func:`pair`'s first rule finds exactly the units of the named series, and its
        later rules only narrow those, so pairing among them decides as pairing among every
        unit would, while only their references are computed.
        """
        named = [s for uid in sorted(header.referenced_series_uids) for s in self.by_series.get(uid, ())]
        references = [self.reference(source) for source in (named or self.images)]
        return [reference for reference in references if reference is not None]

    def why_not(self, header: AnnotationHeader) -> str:
        """Why the units of the series ``header`` names cannot take it ('' when no unit has that series)."""
        reasons = []
        for uid in sorted(header.referenced_series_uids):
            for source in self.all_by_series.get(uid, ()):
                why = (self.problems.get(source.id) or source.excluded or source.unreadable
                       or source.info.get(InfoKey.GEOMETRY_ERROR))
                if why:
                    reasons.append(f"{source.id} is not converted ({why})")
        return "; ".join(reasons)


def _annotation_files(sources: Sequence[Source], skipped: Iterable[tuple[str, str]]
                      ) -> list[tuple[Optional[Source], str, AnnotationKind]]:
    """(object unit or None, file, kind) of every annotation object: DICOM objects by Modality, XML by content."""
    found = []
    for source in sources:
        kind = ANNOTATION_MODALITIES.get(str(source.info.get(InfoKey.MODALITY) or "").upper())
        if kind is not None and source.info.get(InfoKey.LAYOUT) == "object":
            found.extend((source, path, kind) for path in sorted(source.paths))
    for path, _ in skipped:
        if is_lidc_family_xml(path):
            found.append((None, path, AnnotationKind.LIDC_XML))
    return found


def _info(kind: AnnotationKind, path: str, base: str, header: Optional[AnnotationHeader],
          image: Optional[Source], pairing: Optional[Pairing], error: str, origin: Optional[Source]) -> dict:
    label = header.label if header is not None else ""
    image_info = image.info if image is not None else {}
    origin_info = origin.info if origin is not None else {}
    folder = os.path.relpath(os.path.dirname(path), base).replace(os.sep, "/") if base else os.path.dirname(path)
    info = {
        InfoKey.ANNOTATES: image.id if image is not None else "",
        InfoKey.ANNOTATION_KIND: kind.value,
        InfoKey.NAME_SUFFIX: object_suffix(kind, label),
        InfoKey.PATIENT_ID: (header.patient_id if header is not None else "") or image_info.get(InfoKey.PATIENT_ID)
        or origin_info.get(InfoKey.PATIENT_ID) or "",
        InfoKey.STUDY_UID: (header.study_uid if header is not None else "") or image_info.get(InfoKey.STUDY_UID) or "",
        InfoKey.STUDY_DATE: image_info.get(InfoKey.STUDY_DATE) or origin_info.get(InfoKey.STUDY_DATE) or "",
        InfoKey.SERIES_UID: (header.series_uid if header is not None else "") or origin_info.get(InfoKey.SERIES_UID)
        or "",
        InfoKey.SERIES_NUMBER: origin_info.get(InfoKey.SERIES_NUMBER),
        InfoKey.MODALITY: LIDC_MODALITY if kind is AnnotationKind.LIDC_XML else kind.name,
        InfoKey.SERIES_DESCRIPTION: label,
        "n_files": 1,
        "folder": folder,
        "flags": [],
    }
    if header is not None:
        info.update({"referenced_series": sorted(header.referenced_series_uids),
                     InfoKey.ROI_NAMES: list(header.roi_names), InfoKey.CONTOURS: header.contours})
    if pairing is not None and pairing.status is PairingStatus.PAIRED:
        info[InfoKey.PAIRING] = pairing.rule.value
    if error:
        info[InfoKey.ERROR] = error
    return info


def _unit_id(kind: AnnotationKind, path: str, base: str, image: Optional[Source], origin: Optional[Source],
             suffix: str, used: set[str]) -> str:
    if image is not None:
        ident = f"{image.id}{suffix}"
    elif origin is not None and len(origin.paths) == 1:
        ident = origin.id
    elif origin is not None:
        ident = f"{origin.id}_{_slug(os.path.splitext(os.path.basename(path))[0], 30)}"
    else:
        relative = os.path.relpath(path, base) if base else os.path.basename(path)
        parts = relative.replace(os.sep, "/").split("/")
        ident = f"{_slug(parts[0], 40)}_{kind.value}-{_slug(os.path.splitext(parts[-1])[0], 30)}"
    candidate, number = ident, 2
    while candidate in used:
        candidate, number = f"{ident}_{number}", number + 1
    used.add(candidate)
    return candidate


def _pair_one(path: str, references: _References
              ) -> tuple[Optional[AnnotationHeader], Optional[Pairing], Optional[Source], Optional[MedconvError]]:
    """(header, pairing, image Source, failure) of one annotation file."""
    try:
        header = read_header(path)
    except MedconvError as error:
        return None, None, None, error
    pairing = pair(header, references.candidates(header))
    if pairing.status is PairingStatus.PAIRED:
        image = next(s for s in references.images if s.id == pairing.unit_id)
        return header, pairing, image, None
    elsewhere = references.why_not(header)
    if elsewhere and pairing.status is PairingStatus.NO_SUCH_SERIES:  # its series is here, but not converted
        failure = AnnotationReferenceError(f"the series it references cannot take it: {elsewhere}", path=path,
                                           hint="fix that image series, then rerun; the other units still convert")
        return header, pairing, None, failure
    return header, pairing, None, pairing.error(path)


def with_annotation_units(sources: Sequence[Source], skipped: Iterable[tuple[str, str]], base: str) -> list[Source]:
    """``sources`` with every annotation object as a unit of its own, paired with its image unit.

    Parameters
    ----------
    sources:
        A reader's Sources, in order (image units, set-aside objects, unreadable files).
    skipped:
        ``(path, reason)`` of the files that reader skipped (LIDC XML is found among them).
    base:
        The dataset folder ('' when a single file was discovered), for ids and folders.
    """
    sources = list(sources)
    found = _annotation_files(sources, skipped)
    if not found:
        return sources
    taken = {id(origin) for origin, _, _ in found if origin is not None}
    kept = [s for s in sources if id(s) not in taken]
    references = _References(kept)
    used = {s.id for s in kept}
    after: dict[str, list[Source]] = {}
    unpaired: list[Source] = []
    for origin, path, kind in found:
        header, pairing, image, failure = _pair_one(path, references)
        suffix = object_suffix(kind, header.label if header is not None else "")
        set_aside = isinstance(failure, NotAVolumeError)  # recognised, not read (an IdriReadMessage): excluded
        info = _info(kind, path, base, header, image, pairing, failure.message if failure and not set_aside else "",
                     origin)
        if set_aside:
            info[InfoKey.EXCLUDED] = failure.message
        ident = _unit_id(kind, path, base, image, origin, suffix, used)
        plan = AnnotationPlan(kind, path, image, pairing, failure)
        unit = Source(ident, ANNOTATION_READER, (path,), base, info, plan=plan)
        if image is not None:
            after.setdefault(image.id, []).append(unit)
        else:
            unpaired.append(unit)
        log.debug("%s: %s", path, f"annotates {image.id} ({pairing.rule.value})" if image is not None
                  else failure.message)
    result: list[Source] = []
    for source in kept:
        result.append(source)
        result.extend(after.get(source.id, ()))
    return result + unpaired
