"""nnU-Net v2's raw dataset layout (its documentation/dataset_format.md).

::

    Dataset501_Lung/
      dataset.json        {"channel_names": {"0": "CT"}, "labels": {"background": 0, "lung": 1},
                           "numTraining": 32, "file_ending": ".nii.gz", "name": ..., "description": ...}
      imagesTr/{case}_0000.nii.gz   (one file per channel: _0000, _0001, ...)
      labelsTr/{case}.nii.gz
      imagesTs/{case}_0000.nii.gz

The dataset id is three digits (nnU-Net asks custom datasets to use 500-999).
Reading the folder back follows nnU-Net: the cases are what ``imagesTr`` holds
(a file name minus ``_XXXX.nii.gz``), and each needs every channel and a label map.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import ClassVar

from ...errors import UsageError
from .base import CaseFiles, DatasetIndex, DatasetInfo, Layout, numbered_names, read_json

#: The keys nnU-Net's verify_dataset_integrity requires in dataset.json.
REQUIRED_KEYS = ("labels", "channel_names", "numTraining", "file_ending")
#: nnU-Net dataset ids have three digits.
ID_RANGE = (1, 999)
_CHANNEL_FILE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")


@dataclass(frozen=True)
class NnunetLayout(Layout):
    """``Dataset{id:03d}_{name}/`` with one file per channel."""

    format_name: ClassVar[str] = "nnunet"
    index_name: ClassVar[str] = "dataset.json"
    stacked: ClassVar[bool] = False

    def __post_init__(self):
        if self.dataset_id is None:
            raise UsageError("nnU-Net datasets need an id", hint="pass --id 501 (custom datasets use 500-999)")
        if not ID_RANGE[0] <= int(self.dataset_id) <= ID_RANGE[1]:
            raise UsageError(f"nnU-Net dataset ids have three digits, got {self.dataset_id}",
                             hint="pass --id between 1 and 999 (custom datasets use 500-999)")

    def folder_name(self) -> str:
        return f"Dataset{int(self.dataset_id):03d}_{super().folder_name()}"

    def index_content(self, info: DatasetInfo) -> dict:
        return {
            "channel_names": {str(index): name for index, name in enumerate(info.channel_names)},
            "labels": {name: value for value, name in sorted(info.labels.items())},
            "numTraining": len(info.training),
            "file_ending": self.file_ending,
            "name": info.name,
            "description": info.description,
        }

    @classmethod
    def read_index(cls, folder: str) -> DatasetIndex:
        content, problem = read_json(os.path.join(folder, cls.index_name))
        if content is None:
            return DatasetIndex(cls.format_name, folder, DatasetInfo("", "", (), {}), (problem,))
        problems = [f"dataset.json has no {key!r}" for key in REQUIRED_KEYS if key not in content]
        ending = str(content.get("file_ending") or ".nii.gz")
        channel_names = numbered_names(content.get("channel_names"))
        if channel_names is None:
            channel_names = ()
            problems.append("dataset.json: channel_names must map '0', '1', ... to names")
        labels = {}
        for name, value in (content.get("labels") or {}).items():
            if isinstance(value, int) and not isinstance(value, bool):
                labels[value] = str(name)
            else:
                problems.append(f"dataset.json: label {name!r} is {value!r}, not one integer")
        training, extra = _cases(folder, "imagesTr", ending, len(channel_names), with_labels=True)
        test, extra_test = _cases(folder, "imagesTs", ending, len(channel_names), with_labels=False)
        problems += extra + extra_test
        number = content.get("numTraining")
        if isinstance(number, int) and number != len(training):
            problems.append(f"dataset.json says numTraining {number}, imagesTr holds {len(training)} case(s)")
        info = DatasetInfo(str(content.get("name") or ""), str(content.get("description") or ""), channel_names,
                           labels, tuple(training), tuple(test))
        return DatasetIndex(cls.format_name, folder, info, tuple(problems))


def _cases(folder: str, images_dir: str, ending: str, channels: int, with_labels: bool):
    """The cases of one images folder, as nnU-Net finds them, and what is wrong with them."""
    problems: list[str] = []
    found: dict[str, set[int]] = defaultdict(set)
    path = os.path.join(folder, images_dir)
    names = sorted(os.listdir(path)) if os.path.isdir(path) else []
    if with_labels and not os.path.isdir(path):
        problems.append(f"{images_dir}/ is missing")
    for name in names:
        if not name.endswith(ending) or name.startswith("."):
            continue
        match = _CHANNEL_FILE.match(name[: -len(ending)])
        if not match:
            problems.append(f"{images_dir}/{name}: not named CASE_XXXX{ending} (XXXX: the channel number)")
            continue
        found[match["case"]].add(int(match["channel"]))
    label_names = set()
    labels_path = os.path.join(folder, "labelsTr")
    if with_labels:
        if os.path.isdir(labels_path):
            label_names = {n[: -len(ending)] for n in os.listdir(labels_path) if n.endswith(ending) and not n.startswith(".")}
        else:
            problems.append("labelsTr/ is missing")
    cases = []
    for case_id in sorted(found):
        present = found[case_id]
        missing = [c for c in range(channels) if c not in present]
        extra = sorted(c for c in present if c >= channels)
        if missing:
            problems.append(f"case {case_id}: {images_dir}/ lacks channel file(s) "
                            + ", ".join(f"{case_id}_{c:04d}{ending}" for c in missing))
        if extra:
            problems.append(f"case {case_id}: {images_dir}/ has channel file(s) "
                            + ", ".join(f"_{c:04d}" for c in extra) + f" beyond the {channels} in dataset.json")
        label = f"labelsTr/{case_id}{ending}" if with_labels else None
        if with_labels and case_id not in label_names:
            problems.append(f"case {case_id}: no label map labelsTr/{case_id}{ending}")
            label = None
        cases.append(CaseFiles(case_id, tuple(f"{images_dir}/{case_id}_{c:04d}{ending}" for c in sorted(present)
                                              if c < channels), label))
    for orphan in sorted(label_names - set(found)):
        problems.append(f"case {orphan}: labelsTr/{orphan}{ending} has no images in imagesTr/")
    return cases, problems
