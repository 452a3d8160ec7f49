"""TCIA DICOM with annotation objects: each annotation unit paired with the image unit it references.

The DICOM reader's discovery makes one unit per annotation object (RTSTRUCT, DICOM SEG,
LIDC-IDRI XML; :mod:`medconv.readers.annotations.discovery`) and pairs it there, by its
UID references, with the image unit it is drawn on. Its ``Source.info`` carries

* ``annotates`` (``InfoKey.ANNOTATES``, :attr:`~medconv.source.Source.annotates`): the id of that image unit, or ``""``
  when it could not be paired (its series is absent, or several series fit), and then
* ``error`` (``InfoKey.ERROR``): why not, one line (reading the unit would raise it);
* ``labels`` (``InfoKey.LABELS``, optional, for readers that know it from the header): its label table,
  ``[{"value": 1, "name": "GTV", ...}, ...]``.

Pairing here is by that id alone, never by names: the image unit is the case's one
channel (named by its modality, ``CT`` for CT), the annotation its label map. The case id
is the patient id, or ``<patient>_<series number>`` when a patient has several annotated
series. Image units no annotation references are left out (listed); an annotation that
discovery could not pair, or whose image is not in the dataset, is a problem (the export
exits 1) naming its patient and why; the other cases export.

**Label names.** An RTSTRUCT's values (its drawn ROIs) and a SEG's (its segments) are
known only once the object is read onto its image, so their maps are named by their own
table (:attr:`~medconv.export.cases.LabelNaming.OWN_TABLE`): the export surveys them once
for the dataset's label table and each case maps its map by name, so two structure sets
that number "GTV" differently still agree. A LIDC-IDRI reading's consensus map numbers
the nodules of one patient 1, 2, ...: instances of one class, so every nodule is the
class :data:`LIDC_CLASS` (``nodule`` = 1 in ``dataset.json``); ``--consensus`` chooses
the agreement level of that map.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from ...layout import uid_fragment
from ...source import InfoKey, Source
from ..cases import LabelNaming, LabelSource, Pairing, Unpaired, UnpairedReason
from .base import Claim, DatasetView, Role, assemble, channel_name_for

#: The one class of every LIDC-IDRI nodule in an exported label map.
LIDC_CLASS = "nodule"


def is_annotation(source: Source) -> bool:
    """Whether the unit is an annotation object (paired or not): discovery gave it the ``annotates`` key."""
    return source.is_annotation


class AnnotationsRule:
    """Image units and the annotation units that reference them."""

    name = "annotations"
    summary = "DICOM series + the RTSTRUCT / SEG / LIDC XML annotation units that reference them"

    def claims(self, dataset: DatasetView) -> bool:
        return any(is_annotation(source) for source in dataset.sources)

    def pair(self, dataset: DatasetView) -> Pairing:
        annotations = [s for s in dataset.images() if is_annotation(s)]
        images = {s.id: s for s in dataset.images() if not is_annotation(s)}
        paired = [s for s in annotations if s.annotates in images]
        paired_ids = {s.id for s in paired}
        referenced = {s.annotates for s in paired}
        unpaired = list(dataset.set_apart())
        unpaired += [Unpaired(UnpairedReason.NO_ANNOTATION, "no annotation references this series",
                              sources=(source,)) for unit_id, source in images.items() if unit_id not in referenced]
        unpaired += [_unpaired_annotation(source, dataset) for source in annotations
                     if source.id not in paired_ids]
        case_ids = _case_ids([images[unit_id] for unit_id in sorted(referenced)])
        claims = [Claim(images[unit_id], case_ids[unit_id], Role.IMAGE, channel_name_for(images[unit_id], "image"))
                  for unit_id in sorted(referenced)]
        claims += [Claim(annotation, case_ids[annotation.annotates], Role.LABEL) for annotation in paired]
        channel = sorted({claim.channel for claim in claims})
        pairing = assemble(self.name, claims, channel_names=tuple(channel[:1]) if len(channel) == 1 else None,
                           unpaired=unpaired, what_to_do="pass --pairs CSV to choose")
        return with_annotation_naming(pairing)


def _unpaired_annotation(source: Source, dataset: DatasetView) -> Unpaired:
    """The problem of an annotation unit that has no image to be drawn on, naming its patient and why."""
    patient = str(source.info.get(InfoKey.PATIENT_ID) or "")
    target = source.annotates
    if target:
        why = f"the series it annotates ({target}) is not in the dataset (download that series too, or leave the " \
              "annotation out)"
    else:
        why = source.error or "it references no image series of the dataset"
    where = dataset.relative(source)
    return Unpaired(UnpairedReason.LABEL_WITHOUT_IMAGE,
                    f"{where}: annotation{f' of patient {patient}' if patient else ''} not exported: {why}",
                    sources=(source,))


def label_table_of(source: Source) -> dict[int, str]:
    """``{value: name}`` from an annotation unit's ``info[InfoKey.LABELS]`` (empty when it has none)."""
    table = {}
    for entry in source.info.get(InfoKey.LABELS) or ():
        try:
            table[int(entry["value"])] = str(entry.get("name") or f"label_{int(entry['value'])}")
        except (KeyError, TypeError, ValueError):
            continue
    return table


def label_source_of(source: Source) -> LabelSource:
    """How an annotation unit's map is named: its header's table, LIDC's one class, or its own table once read."""
    declared = label_table_of(source)
    if declared:
        return LabelSource(source, declared)
    from ...readers.annotations.discovery import LIDC_MODALITY  # the Modality discovery gives a LIDC XML unit

    if str(source.info.get(InfoKey.MODALITY) or "") == LIDC_MODALITY:
        return LabelSource(source, {1: LIDC_CLASS}, LabelNaming.OWN_TABLE, one_class=LIDC_CLASS)
    return LabelSource(source, {}, LabelNaming.OWN_TABLE)


def _case_ids(images) -> dict[str, str]:
    """The case id of each annotated image unit: its patient, with the series number (then a UID part) if needed."""
    patients = Counter(str(s.info.get(InfoKey.PATIENT_ID) or s.id) for s in images)
    ids: dict[str, str] = {}
    for source in images:
        patient = str(source.info.get(InfoKey.PATIENT_ID) or source.id)
        number = source.info.get(InfoKey.SERIES_NUMBER, "")
        ids[source.id] = patient if patients[patient] == 1 else f"{patient}_{number}"
    repeated = Counter(ids.values())
    return {unit: case if repeated[case] == 1 else f"{case}_{uid_fragment(source)}"
            for (unit, case), source in zip(ids.items(), images)}


def with_annotation_naming(pairing: Pairing) -> Pairing:
    """The pairing with each annotation unit's label map named as :func:`label_source_of` says.

    Used by this rule and by ``--pairs`` (a table may name an annotation file as a case's label).
    """
    if not any(is_annotation(label.source) for case in pairing.cases for label in case.labels):
        return pairing
    cases = tuple(replace(case, labels=tuple(label_source_of(label.source) if is_annotation(label.source) else label
                                             for label in case.labels)) for case in pairing.cases)
    labels = [label for case in cases for label in case.labels]
    declared = bool(labels) and all(label.naming is LabelNaming.GIVEN and label.names for label in labels)
    names: dict[int, str] = {}
    for label in labels:
        for value, name in label.names.items():
            names.setdefault(value, name)
    return replace(pairing, cases=cases, label_names=names if declared else {}, labels_declared=declared)
