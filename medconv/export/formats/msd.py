"""The Medical Segmentation Decathlon layout, which MONAI's ``load_decathlon_datalist`` reads.

::

    Task501_Lung/                (or Lung/ without --id)
      dataset.json   {"name", "description", "tensorImageSize": "3D" | "4D",
                      "modality": {"0": "FLAIR", ...}, "labels": {"0": "background", "1": ...},
                      "numTraining", "numTest",
                      "training": [{"image": "./imagesTr/x.nii.gz", "label": "./labelsTr/x.nii.gz"}, ...],
                      "test": ["./imagesTs/y.nii.gz", ...]}
      imagesTr/{case}.nii.gz     one file per case; several channels stacked along a 4th axis
      labelsTr/{case}.nii.gz
      imagesTs/{case}.nii.gz
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar

from ...layout import sanitize_component
from .base import CaseFiles, DatasetIndex, DatasetInfo, Layout, numbered_names, read_json, relative_entry

#: The keys every Decathlon dataset.json has.
REQUIRED_KEYS = ("modality", "labels", "numTraining", "training")


@dataclass(frozen=True)
class MsdLayout(Layout):
    """``Task{id:02d}_{name}/`` with one (3D or 4D) file per case."""

    format_name: ClassVar[str] = "msd"
    index_name: ClassVar[str] = "dataset.json"
    stacked: ClassVar[bool] = True

    def folder_name(self) -> str:
        name = sanitize_component(self.name)
        return f"Task{int(self.dataset_id):02d}_{name}" if self.dataset_id is not None else name

    def index_content(self, info: DatasetInfo) -> dict:
        return {
            "name": info.name,
            "description": info.description,
            "tensorImageSize": "4D" if len(info.channel_names) > 1 else "3D",
            "modality": {str(index): name for index, name in enumerate(info.channel_names)},
            "labels": {str(value): name for value, name in sorted(info.labels.items())},
            "numTraining": len(info.labelled),
            "numTest": len(info.test),
            "training": [{"image": f"./{case.images[0]}", "label": f"./{case.label}"} for case in info.labelled],
            "test": [f"./{case.images[0]}" for case in info.test],
        }

    @classmethod
    def read_index(cls, folder: str) -> DatasetIndex:
        content, problem = read_json(os.path.join(folder, cls.index_name))
        if content is None:
            return DatasetIndex(cls.format_name, folder, DatasetInfo("", "", (), {}), (problem,))
        problems = [f"dataset.json has no {key!r}" for key in REQUIRED_KEYS if key not in content]
        channel_names, labels, more = decathlon_tables(content)
        problems += more
        training, bad = entries(folder, content.get("training") or [], with_labels=True)
        test, bad_test = entries(folder, content.get("test") or [], with_labels=False)
        problems += bad + bad_test
        if isinstance(content.get("numTraining"), int) and content["numTraining"] != len(training):
            problems.append(f"dataset.json says numTraining {content['numTraining']}, its training list has "
                            f"{len(training)}")
        info = DatasetInfo(str(content.get("name") or ""), str(content.get("description") or ""), channel_names,
                           labels, tuple(training), tuple(test))
        return DatasetIndex(cls.format_name, folder, info, tuple(problems))


def decathlon_tables(content: dict) -> tuple[tuple[str, ...], dict[int, str], list[str]]:
    """``(channel names, {value: name}, problems)`` from a Decathlon-style index."""
    problems = []
    channel_names = numbered_names(content.get("modality"))
    if channel_names is None:
        channel_names = ()
        problems.append("modality must map '0', '1', ... to names")
    labels = {}
    for key, name in (content.get("labels") or {}).items():
        try:
            labels[int(key)] = str(name)
        except ValueError:
            problems.append(f"label key {key!r} is not an integer")
    return channel_names, labels, problems


def entries(folder: str, items, with_labels: bool) -> tuple[list[CaseFiles], list[str]]:
    """The cases of a Decathlon/MONAI list (dicts with ``image``/``label``, or bare image paths)."""
    cases, problems = [], []
    for position, item in enumerate(items):
        image = relative_entry(folder, item.get("image") if isinstance(item, dict) else item)
        label = relative_entry(folder, item.get("label")) if isinstance(item, dict) else None
        if image is None:
            problems.append(f"entry {position} of the list has no image path")
            continue
        case_id = os.path.basename(image)
        case_id = case_id[: -len(".nii.gz")] if case_id.endswith(".nii.gz") else os.path.splitext(case_id)[0]
        for path in (image, label):
            if path and not os.path.isfile(os.path.join(folder, path)):
                problems.append(f"case {case_id}: {path} is listed but does not exist")
        if with_labels and label is None:
            problems.append(f"case {case_id}: no label in the training list")
        cases.append(CaseFiles(case_id, (image,), label, stacked=True))
    return cases, problems
