"""The label table (consecutive values, ignore last, by name or by value) and the integrity checks on broken folders.

The broken nnU-Net folders are written by hand with nibabel, one fault each, so each
check is seen to fire on its own and to say which case and what.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from export_synth import save_nifti
from medconv.errors import LabelValuesError, UsageError
from medconv.export import LabelSpec, build_label_table, check_dataset


def test_surveyed_values_become_consecutive_with_hints_and_the_ignore_label_last():
    table = build_label_table(surveyed=[0, 4, 1, 2, 255], hints={1: "edema", 4: "enhancing"}, ignore=255)
    assert table.names_by_value() == {0: "background", 1: "edema", 2: "label_2", 3: "enhancing", 4: "ignore"}
    mapped = table.apply(np.array([[0, 1], [4, 255]], np.int16))
    np.testing.assert_array_equal(mapped, [[0, 1], [3, 4]])
    assert mapped.dtype == np.uint8


def test_user_labels_merge_values_and_refuse_what_they_do_not_cover():
    table = build_label_table(specs=[LabelSpec.parse("lung=3,4"), LabelSpec.parse("trachea=5")])
    np.testing.assert_array_equal(table.apply(np.array([0, 3, 4, 5], np.uint8)), [0, 1, 1, 2])
    with pytest.raises(LabelValuesError, match=r"label value\(s\) 6 are not in the label table"):
        table.apply(np.array([0, 6], np.uint8))
    with pytest.raises(LabelValuesError, match="non-integer"):
        table.apply(np.array([0.0, 0.5]))
    for bad in ("lung", "=3", "background=1", "x=0"):
        with pytest.raises(UsageError):
            LabelSpec.parse(bad)


def test_a_declared_ignore_label_stays_last():
    table = build_label_table(declared={0: "background", 1: "a", 2: "ignore", 3: "b"})
    assert table.names_by_value() == {0: "background", 1: "a", 2: "b", 3: "ignore"}
    assert table.mapping({0: "background", 1: "a", 2: "ignore", 3: "b"}) == {0: 0, 1: 1, 2: 3, 3: 2}


def _dataset(root: Path, labels=None, cases=("a", "b"), channels=1) -> Path:
    root.mkdir(parents=True)
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    for case in cases:
        for channel in range(channels):
            save_nifti(np.zeros((4, 4, 3), np.float32), affine, root / "imagesTr" / f"{case}_{channel:04d}.nii.gz")
        label = np.zeros((4, 4, 3), np.uint8)
        label[1, 1, 1] = 1
        save_nifti(label, affine, root / "labelsTr" / f"{case}.nii.gz")
    (root / "dataset.json").write_text(json.dumps({
        "channel_names": {str(c): f"c{c}" for c in range(channels)},
        "labels": labels or {"background": 0, "tumour": 1}, "numTraining": len(cases), "file_ending": ".nii.gz"}))
    return root


def _messages(folder, deep=False) -> list[str]:
    return [problem.one_line() for problem in check_dataset(folder, deep=deep).problems]


def test_a_clean_dataset_passes(tmp_path):
    assert _messages(_dataset(tmp_path / "ok", channels=2), deep=True) == []


@pytest.mark.parametrize("fault, expected", [
    pytest.param("missing-channel", "case b: imagesTr/ lacks channel file(s) b_0001.nii.gz", id="missing-channel"),
    pytest.param("orphan-label", "case c: labelsTr/c.nii.gz has no images in imagesTr/", id="orphan-label"),
    pytest.param("count", "dataset.json says numTraining 5, imagesTr holds 2 case(s)", id="num-training"),
    pytest.param("labels", "label values must be consecutive 0, 1, 2, ..., got [0, 2]", id="not-consecutive"),
    pytest.param("ignore", "the 'ignore' label must have the highest value, it has 1", id="ignore-not-last"),
    pytest.param("spacing", "case a: labelsTr/a.nii.gz is not on the grid of imagesTr/a_0000.nii.gz: spacing", id="spacing"),
    pytest.param("key", "dataset.json has no 'file_ending'", id="required-key"),
    pytest.param("channels", "dataset.json: channel_names must map '0', '1', ... to names", id="channel-table"),
])
def test_each_fault_is_one_line_naming_the_case(tmp_path, fault, expected):
    labels = {"labels": {"background": 0, "tumour": 2}, "ignore": {"background": 0, "ignore": 1, "tumour": 2}}.get(fault)
    folder = _dataset(tmp_path / "d", labels=labels, channels=2)
    if fault == "missing-channel":
        (folder / "imagesTr" / "b_0001.nii.gz").unlink()
    elif fault == "orphan-label":
        save_nifti(np.zeros((4, 4, 3), np.uint8), np.eye(4), folder / "labelsTr" / "c.nii.gz")
    elif fault in ("count", "key"):
        dataset = json.loads((folder / "dataset.json").read_text())
        dataset.pop("file_ending") if fault == "key" else dataset.update(numTraining=5)
        (folder / "dataset.json").write_text(json.dumps(dataset))
    elif fault == "channels":
        dataset = json.loads((folder / "dataset.json").read_text())
        dataset["channel_names"] = {"first": "c0", "second": "c1"}  # not numbered
        (folder / "dataset.json").write_text(json.dumps(dataset))
    elif fault == "spacing":
        save_nifti(np.zeros((4, 4, 3), np.uint8), np.diag([1.0, 1.0, 2.5, 1.0]), folder / "labelsTr" / "a.nii.gz")
    messages = _messages(folder)
    assert any(message.startswith(expected) for message in messages), messages


def test_deep_check_reads_voxels_for_nan_and_undeclared_values(tmp_path):
    folder = _dataset(tmp_path / "d")
    image = np.zeros((4, 4, 3), np.float32)
    image[0, 0, 0] = np.nan
    save_nifti(image, np.diag([1.0, 1.0, 2.0, 1.0]), folder / "imagesTr" / "a_0000.nii.gz")
    label = np.zeros((4, 4, 3), np.uint8)
    label[2, 2, 2] = 7
    save_nifti(label, np.diag([1.0, 1.0, 2.0, 1.0]), folder / "labelsTr" / "b.nii.gz")
    assert _messages(folder) == []  # headers only: nothing to see
    assert _messages(folder, deep=True) == ["case a: imagesTr/a_0000.nii.gz holds 1 NaN voxel(s)",
                                            "case b: labelsTr/b.nii.gz holds label value(s) 7 that are not declared"]
    in_workers = check_dataset(folder, deep=True, jobs=2)  # medconv check --jobs 2: the batch's guarded workers
    assert [problem.one_line() for problem in in_workers.problems] == _messages(folder, deep=True)
