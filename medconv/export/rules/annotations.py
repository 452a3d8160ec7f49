"""TCIA DICOM with annotation objects: each annotation unit paired with the image unit it references.

Annotation readers (RTSTRUCT, DICOM SEG, LIDC-IDRI XML; see issue 11) make one
unit per annotation object whose ``Source.info`` carries

* ``annotates``: the id of the image unit it is drawn on (its mask is computed on
  that unit's output grid, so the two always share one affine), and
* ``labels`` (optional): its label table, ``[{"value": 1, "name": "GTV", ...}, ...]``.

Pairing is then by that id alone, never by names: the image unit is the case's
one channel (named by its modality, "CT" for CT), the annotation its label map.
The case id is the patient id, or ``<patient>_<series number>`` when a patient
has several annotated series. Image units no annotation references are left out
(listed); an annotation whose image is not in the dataset is an error. Label
maps that name their labels are mapped onto the dataset's label table by name,
so two structure sets that number "GTV" differently still agree.
"""

from __future__ import annotations

from collections import Counter

from ...layout import uid_fragment
from ...source import ANNOTATES
from ..cases import Pairing, Unpaired, UnpairedReason
from .base import Claim, DatasetView, Role, assemble, channel_name_for

#: ``Source.info`` key of an annotation unit: its label table (list of ``{value, name, ...}``).
LABELS = "labels"


class AnnotationsRule:
    """Image units and the annotation units that reference them."""

    name = "annotations"
    summary = "DICOM series + the RTSTRUCT / SEG / LIDC XML annotation units that reference them"

    def claims(self, dataset: DatasetView) -> bool:
        return any(source.info.get(ANNOTATES) for source in dataset.sources)

    def pair(self, dataset: DatasetView) -> Pairing:
        annotations = [s for s in dataset.sources if s.info.get(ANNOTATES)]
        images = {s.id: s for s in dataset.images() if not s.info.get(ANNOTATES)}
        referenced = {str(s.info[ANNOTATES]) for s in annotations}
        unpaired = [item for item in dataset.set_apart() if not item.sources[0].info.get(ANNOTATES)]
        unpaired += [Unpaired(UnpairedReason.NO_ANNOTATION, "no annotation references this series; left out",
                              sources=(source,)) for unit_id, source in images.items() if unit_id not in referenced]
        case_ids = _case_ids([images[unit_id] for unit_id in sorted(referenced) if unit_id in images])
        claims: list[Claim] = []
        for unit_id in sorted(referenced):
            if unit_id in images:
                image = images[unit_id]
                claims.append(Claim(image, case_ids[unit_id], Role.IMAGE, channel_name_for(image, "image")))
        for annotation in annotations:
            target = str(annotation.info[ANNOTATES])
            if target not in images:
                unpaired.append(Unpaired(UnpairedReason.LABEL_WITHOUT_IMAGE,
                                         f"the series it annotates ({target}) is not in the dataset (download that "
                                         "series too, or leave the annotation out)", sources=(annotation,)))
                continue
            claims.append(Claim(annotation, case_ids[target], Role.LABEL))
        channel = sorted({claim.channel for claim in claims if claim.role is Role.IMAGE})
        pairing = assemble(self.name, claims, channel_names=tuple(channel[:1]) if len(channel) == 1 else None,
                           unpaired=unpaired, what_to_do="pass --pairs CSV to choose")
        return _with_label_tables(pairing)


def label_table_of(source) -> dict[int, str]:
    """``{value: name}`` from an annotation unit's ``info["labels"]`` (empty when it has none)."""
    table = {}
    for entry in source.info.get(LABELS) or ():
        try:
            table[int(entry["value"])] = str(entry.get("name") or f"label_{int(entry['value'])}")
        except (KeyError, TypeError, ValueError):
            continue
    return table


def _case_ids(images) -> dict[str, str]:
    """The case id of each annotated image unit: its patient, with the series number (then a UID part) if needed."""
    patients = Counter(str(s.info.get("patient_id") or s.id) for s in images)
    ids: dict[str, str] = {}
    for source in images:
        patient = str(source.info.get("patient_id") or source.id)
        ids[source.id] = patient if patients[patient] == 1 else f"{patient}_{source.info.get('series_number', '')}"
    repeated = Counter(ids.values())
    return {unit: case if repeated[case] == 1 else f"{case}_{uid_fragment(source)}"
            for (unit, case), source in zip(ids.items(), images)}


def _with_label_tables(pairing: Pairing) -> Pairing:
    """The pairing with each label map carrying its annotation's own label table."""
    from dataclasses import replace

    from ..cases import LabelSource

    cases = tuple(replace(case, labels=tuple(LabelSource(label.source, label_table_of(label.source))
                                             for label in case.labels)) for case in pairing.cases)
    names = {}
    for case in cases:
        for label in case.labels:
            for value, name in label.names.items():
                names.setdefault(value, name)
    declared = bool(cases) and all(label.names for case in cases for label in case.labels)
    return replace(pairing, cases=cases, label_names=names if declared else {}, labels_declared=declared)
