"""nnU-Net v2's dataset integrity rules, re-implemented for the tests from its documentation, with SimpleITK.

Independent of medconv (it imports only SimpleITK, numpy and json): it reads an
exported folder the way nnU-Net's ``SimpleITKIO`` and ``verify_dataset_integrity``
do (documentation/dataset_format.md, ignore_label.md; the checks of
``nnunetv2/experiment_planning/verify_dataset_integrity.py``):

* ``dataset.json`` has ``labels``, ``channel_names``, ``numTraining``, ``file_ending``;
* the training cases are the names in ``imagesTr`` minus ``_XXXX`` + file ending; their
  number is ``numTraining``; each has every channel and a ``labelsTr`` file;
* labels: background 0, consecutive, an ``ignore`` label last;
* per case: label values within the declared ones, no NaN, images and label map with
  the same shape, and spacing, origin and direction ``numpy.allclose``.

:func:`nnunet_problems` returns one string per problem (empty: nnU-Net would accept it).
"""

from __future__ import annotations

import json
import os

import numpy as np
import SimpleITK as sitk


def _read(path: str):
    image = sitk.ReadImage(path)
    return sitk.GetArrayFromImage(image), image.GetSpacing(), image.GetOrigin(), image.GetDirection()


def nnunet_problems(folder: str) -> list[str]:
    problems: list[str] = []
    with open(os.path.join(folder, "dataset.json")) as handle:
        dataset = json.load(handle)
    for key in ("labels", "channel_names", "numTraining", "file_ending"):
        if key not in dataset:
            problems.append(f"missing key {key}")
    if problems:
        return problems
    ending = dataset["file_ending"]
    channels = len(dataset["channel_names"])
    images_dir, labels_dir = os.path.join(folder, "imagesTr"), os.path.join(folder, "labelsTr")
    names = [n for n in os.listdir(images_dir) if n.endswith(ending)]
    identifiers = sorted({n[: -len(ending) - 5] for n in names})
    if len(identifiers) != dataset["numTraining"]:
        problems.append(f"numTraining {dataset['numTraining']} but {len(identifiers)} cases in imagesTr")
    labels = dataset["labels"]
    values = sorted(v for k, v in labels.items() if k != "ignore")
    if labels.get("background") != 0:
        problems.append("background is not 0")
    expected = list(values)
    if "ignore" in labels:
        if labels["ignore"] != max(labels.values()):
            problems.append("ignore is not the highest label")
        expected.append(labels["ignore"])
    if list(np.ediff1d(expected)) != [1] * (len(expected) - 1):
        problems.append(f"labels not consecutive: {expected}")
    for identifier in identifiers:
        files = [os.path.join(images_dir, f"{identifier}_{c:04d}{ending}") for c in range(channels)]
        missing = [f for f in files if not os.path.isfile(f)]
        label_file = os.path.join(labels_dir, identifier + ending)
        if missing:
            problems.append(f"{identifier}: missing {missing}")
            continue
        if not os.path.isfile(label_file):
            problems.append(f"{identifier}: no label file")
            continue
        read = [_read(f) for f in files]
        seg, seg_spacing, seg_origin, seg_direction = _read(label_file)
        images = np.stack([r[0] for r in read])
        if np.isnan(images).any():
            problems.append(f"{identifier}: NaN in images")
        if np.isnan(seg.astype(float)).any():
            problems.append(f"{identifier}: NaN in seg")
        for array, spacing, origin, direction in read:
            if array.shape != seg.shape:
                problems.append(f"{identifier}: shape {array.shape} vs seg {seg.shape}")
            if not np.allclose(spacing, seg_spacing):
                problems.append(f"{identifier}: spacing {spacing} vs seg {seg_spacing}")
            if not np.allclose(origin, seg_origin):
                problems.append(f"{identifier}: origin {origin} vs seg {seg_origin}")
            if not np.allclose(direction, seg_direction):
                problems.append(f"{identifier}: direction {direction} vs seg {seg_direction}")
        unexpected = sorted(set(np.unique(seg).tolist()) - set(expected))
        if unexpected:
            problems.append(f"{identifier}: unexpected labels {unexpected}")
    for name in os.listdir(labels_dir):
        if name.endswith(ending) and name[: -len(ending)] not in identifiers:
            problems.append(f"label {name} without images")
    return problems
