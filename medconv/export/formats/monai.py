"""A MONAI datalist: the Decathlon files plus ``datalist.json`` with training, validation and test lists.

::

    Lung/
      datalist.json  {"name", "description", "modality": {...}, "labels": {"0": "background", ...},
                      "training":   [{"image": "imagesTr/a.nii.gz", "label": "labelsTr/a.nii.gz", "fold": 0}, ...],
                      "validation": [{"image": ..., "label": ...}, ...],
                      "test":       [{"image": "imagesTs/y.nii.gz"}, ...]}
      imagesTr/ labelsTr/ imagesTs/   as the Decathlon layout (channels stacked along a 4th axis)

``monai.data.load_decathlon_datalist("datalist.json", data_list_key="training")``
(or ``"validation"``, ``"test"``) reads it. The validation cases are a fixed
share of the labelled cases chosen with a seeded shuffle; with ``folds`` every
training case gets a ``fold`` number for cross-validation (MONAI's
``datafold_read`` convention: fold ``k`` is validation in round ``k``).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import ClassVar, Sequence

from ...errors import UsageError
from .base import CaseFiles, DatasetIndex, DatasetInfo, read_json
from .msd import MsdLayout, decathlon_tables, entries


@dataclass(frozen=True)
class MonaiLayout(MsdLayout):
    """The Decathlon files with a ``datalist.json`` of training / validation / test lists.

    Attributes
    ----------
    validation_fraction:
        Share of the labelled cases listed under ``validation`` instead of ``training``.
    folds:
        Number of cross-validation folds given to the training cases (0: none).
    seed:
        Seed of the shuffle that chooses validation cases and folds.
    """

    validation_fraction: float = 0.2
    folds: int = 0
    seed: int = 0

    format_name: ClassVar[str] = "monai"
    index_name: ClassVar[str] = "datalist.json"

    def __post_init__(self):
        if not 0 <= self.validation_fraction < 1:
            raise UsageError(f"the validation fraction must be in [0, 1), got {self.validation_fraction:g}")
        if self.folds < 0 or self.folds == 1:
            raise UsageError(f"folds must be 0 (none) or at least 2, got {self.folds}")

    def describe(self) -> dict:
        return {**super().describe(), "validation_fraction": self.validation_fraction, "folds": self.folds,
                "seed": self.seed}

    def split(self, labelled: Sequence[CaseFiles]) -> tuple[list[CaseFiles], list[CaseFiles], dict[str, int]]:
        """``(training, validation, {case: fold})``: a seeded shuffle of the sorted case ids."""
        order = sorted(labelled, key=lambda case: case.case_id)
        random.Random(self.seed).shuffle(order)
        count = int(round(len(order) * self.validation_fraction))
        if self.validation_fraction > 0 and len(order) > 1:
            count = min(max(count, 1), len(order) - 1)
        validation, training = sorted(order[:count], key=lambda c: c.case_id), order[count:]
        folds = {case.case_id: index % self.folds for index, case in enumerate(training)} if self.folds else {}
        return sorted(training, key=lambda c: c.case_id), validation, folds

    def index_content(self, info: DatasetInfo) -> dict:
        training, validation, folds = self.split(info.labelled)

        def item(case: CaseFiles) -> dict:
            entry = {"image": case.images[0], "label": case.label}
            if case.case_id in folds:
                entry["fold"] = folds[case.case_id]
            return entry

        return {
            "name": info.name,
            "description": info.description,
            "modality": {str(index): name for index, name in enumerate(info.channel_names)},
            "labels": {str(value): name for value, name in sorted(info.labels.items())},
            "numTraining": len(training),
            "numValidation": len(validation),
            "numTest": len(info.test),
            "training": [item(case) for case in training],
            "validation": [item(case) for case in validation],
            "test": [{"image": case.images[0]} for case in info.test],
        }

    @classmethod
    def read_index(cls, folder: str) -> DatasetIndex:
        content, problem = read_json(os.path.join(folder, cls.index_name))
        if content is None:
            return DatasetIndex(cls.format_name, folder, DatasetInfo("", "", (), {}), (problem,))
        problems = [f"datalist.json has no {key!r} list" for key in ("training",) if key not in content]
        channel_names, labels, more = decathlon_tables(content)
        problems += more
        training, bad = entries(folder, content.get("training") or [], with_labels=True)
        validation, bad_validation = entries(folder, content.get("validation") or [], with_labels=True)
        test, bad_test = entries(folder, content.get("test") or [], with_labels=False)
        problems += bad + bad_validation + bad_test
        folds = {}
        for item, case in zip(content.get("training") or [], training):
            if isinstance(item, dict) and "fold" in item:
                folds[case.case_id] = item["fold"]
        ids = [case.case_id for case in training + validation + test]
        problems += [f"case {case_id}: listed more than once" for case_id in sorted({i for i in ids if ids.count(i) > 1})]
        info = DatasetInfo(str(content.get("name") or ""), str(content.get("description") or ""), channel_names,
                           labels, tuple(training), tuple(test), tuple(validation), folds)
        return DatasetIndex(cls.format_name, folder, info, tuple(problems))
