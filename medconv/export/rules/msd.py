"""The Medical Segmentation Decathlon layout (and nnU-Net's raw layout, which grew out of it).

::

    Task01_BrainTumour/                   Dataset001_BrainTumour/
      dataset.json  (modality, labels)      dataset.json  (channel_names, labels)
      imagesTr/BRATS_001.nii.gz  (4D)       imagesTr/BRATS_001_0000.nii.gz ... _0003
      labelsTr/BRATS_001.nii.gz             labelsTr/BRATS_001.nii.gz
      imagesTs/BRATS_485.nii.gz             imagesTs/BRATS_485_0000.nii.gz ...

The dataset folder is SRC itself. A Decathlon image with several modalities is
one 4D file whose 4th axis holds the channels in the order of ``dataset.json``'s
``modality``; nnU-Net's layout has one file per channel, told apart by a
four-digit suffix. The case id is the file name (without the channel suffix);
the label map is the file of the same name in ``labelsTr``; ``imagesTs`` holds
test cases. ``dataset.json`` is optional: without it channels are counted from
the image headers and label values are surveyed.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Optional

from ...errors import UsageError
from ...source import InfoKey
from ..cases import Pairing, Unpaired, UnpairedReason
from .base import CT_CHANNEL, Claim, DatasetView, Role, assemble, channel_name_for

IMAGES_TR, LABELS_TR, IMAGES_TS = "imagestr", "labelstr", "imagests"
_CHANNEL_SUFFIX = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")


class MsdRule:
    """Medical Segmentation Decathlon / nnU-Net raw folders."""

    name = "msd"
    summary = "imagesTr/, labelsTr/, imagesTs/ (+ dataset.json): Decathlon 4D images split by 'modality', or nnU-Net _0000 files"

    def claims(self, dataset: DatasetView) -> bool:
        return any(_top(dataset, source) == IMAGES_TR for source in dataset.sources)

    def pair(self, dataset: DatasetView) -> Pairing:
        declared = read_dataset_json(dataset.root)
        images = [s for s in dataset.images() if _top(dataset, s) in (IMAGES_TR, IMAGES_TS)]
        labels = [s for s in dataset.images() if _top(dataset, s) == LABELS_TR]
        unpaired = dataset.set_apart()
        unpaired += [Unpaired(UnpairedReason.NOT_A_CHANNEL, "outside imagesTr/, labelsTr/ and imagesTs/; left out",
                              sources=(s,)) for s in dataset.images() if s not in images and s not in labels]
        split_files = bool(images) and all(_CHANNEL_SUFFIX.match(dataset.stem(s)) for s in images)
        names = declared.channel_names
        claims: list[Claim] = []
        if split_files:  # nnU-Net raw: one file per channel
            for source in images:
                match = _CHANNEL_SUFFIX.match(dataset.stem(source))
                index = int(match["channel"])
                name = names[index] if index < len(names) else f"channel_{index}"
                claims.append(Claim(source, match["case"], Role.IMAGE, name))
        else:
            count = len(names) if names else _usual_volume_count(images)
            if not names:
                names = (channel_name_for(images[0], "channel_0") if images else CT_CHANNEL,) if count == 1 else \
                    tuple(f"channel_{index}" for index in range(count))
            for source in images:
                problem = _channel_count_problem(source, count)
                if problem:
                    unpaired.append(Unpaired(UnpairedReason.BAD_CHANNELS, problem, dataset.stem(source), (source,)))
                    continue
                if count == 1:
                    claims.append(Claim(source, dataset.stem(source), Role.IMAGE, names[0]))
                else:
                    claims.extend(Claim(source, dataset.stem(source), Role.IMAGE, name, index)
                                  for index, name in enumerate(names))
        claims += [Claim(source, dataset.stem(source), Role.LABEL) for source in labels]
        test_ids = {_case_of(dataset, s) for s in images if _top(dataset, s) == IMAGES_TS}
        train_ids = {_case_of(dataset, s) for s in images if _top(dataset, s) == IMAGES_TR}
        for case_id in sorted(test_ids & train_ids):
            unpaired.append(Unpaired(UnpairedReason.DUPLICATE_CASE,
                                     f"case id {case_id!r} is in imagesTr/ and in imagesTs/ (rename one)", case_id))
        both = test_ids & train_ids
        claims = [claim for claim in claims if claim.case_id not in both]
        return assemble(self.name, claims, channel_names=names or None, label_names=declared.label_names,
                        labels_declared=True, unpaired=unpaired, what_to_do="rename one of the files")


def _top(dataset: DatasetView, source) -> str:
    parts = dataset.parts(source)
    return parts[0].lower() if len(parts) > 1 else ""


def _case_of(dataset: DatasetView, source) -> str:
    stem = dataset.stem(source)
    match = _CHANNEL_SUFFIX.match(stem)
    return match["case"] if match else stem


def _volume_count(source) -> Optional[int]:
    shape = source.info.get(InfoKey.SHAPE)
    if not isinstance(shape, (list, tuple)) or len(shape) < 3:
        return None
    return int(shape[3]) if len(shape) > 3 else 1


def _usual_volume_count(images) -> int:
    counts = [count for count in (_volume_count(source) for source in images) if count is not None]
    return max(set(counts), key=counts.count) if counts else 1


def _channel_count_problem(source, count: int) -> Optional[str]:
    found = _volume_count(source)
    if found is None or found == count:
        return None
    return (f"the image holds {found} volume(s) but the dataset has {count} channel(s) "
            "(dataset.json 'modality', or what most images hold); fix the file or dataset.json")


class DeclaredDataset:
    """What a ``dataset.json`` declares: channel names and label names."""

    def __init__(self, channel_names: tuple[str, ...] = (), label_names: dict[int, str] | None = None):
        self.channel_names = channel_names
        self.label_names = label_names or {}


def read_dataset_json(root: str) -> DeclaredDataset:
    """The channel and label names of ``root/dataset.json`` (Decathlon or nnU-Net v2 form); none if absent.

    Decathlon: ``"modality": {"0": "FLAIR", ...}``, ``"labels": {"0": "background", ...}``;
    nnU-Net v2: ``"channel_names": {"0": "CT"}``, ``"labels": {"background": 0, ...}``.
    """
    path = os.path.join(root, "dataset.json")
    if not os.path.isfile(path):
        return DeclaredDataset()
    try:
        with open(path, encoding="utf-8") as handle:
            content = json.load(handle)
    except (OSError, ValueError) as exc:
        raise UsageError(f"dataset.json cannot be read ({exc})", path, "fix or remove it") from None
    if not isinstance(content, dict):
        raise UsageError("dataset.json is not a JSON object", path, "fix or remove it")
    channels = content.get("channel_names") or content.get("modality") or {}
    try:
        channel_names = tuple(str(name) for _, name in sorted(channels.items(), key=lambda item: int(item[0])))
    except (AttributeError, ValueError):
        raise UsageError("dataset.json: 'modality'/'channel_names' must map channel numbers to names", path) from None
    return DeclaredDataset(channel_names, _label_names(content.get("labels") or {}, path))


def _label_names(labels: Any, path: str) -> dict[int, str]:
    if not isinstance(labels, dict):
        raise UsageError("dataset.json: 'labels' must be an object", path)
    names: dict[int, str] = {}
    for key, value in labels.items():
        if isinstance(value, str) and str(key).lstrip("-").isdigit():  # Decathlon: "1": "edema"
            names[int(key)] = value
        elif isinstance(value, int) and not isinstance(value, bool):  # nnU-Net v2: "edema": 1
            names[value] = str(key)
        else:
            raise UsageError(f"dataset.json: label {key!r}: {value!r} is not a single value (regions are not "
                             "supported)", path, "declare one integer per label")
    return names
