"""``--format msd`` and ``--format monai``: the Decathlon files and index, MONAI's datalist, read back by hand.

The index files are read here the way MONAI's ``load_decathlon_datalist`` reads them (paths
relative to the index file's folder, ``test`` as plain paths or dicts), and every path must exist.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np

from export_synth import TASK01_LABELS, TASK01_MODALITIES, nifti_world_value, write_task01, write_task03
from medconv.batch import RunOptions
from medconv.export import ExportOptions, check_dataset, export_dataset

QUIET = RunOptions(jobs=1, progress=False, summary=False)


def _datalist(path: Path, key: str) -> list[dict]:
    """MONAI's load_decathlon_datalist, re-done: items with absolute, normalised paths."""
    content = json.loads(path.read_text())
    items = content[key]
    if key == "test" and items and not isinstance(items[0], dict):
        items = [{"image": item} for item in items]
    return [{k: os.path.normpath(os.path.join(path.parent, v)) if k in ("image", "label") else v
             for k, v in item.items()} for item in items]


def test_msd_keeps_4d_channels_and_lists_every_file(tmp_path):
    src = write_task01(tmp_path / "Task01_BrainTumour", train=3, test=1)
    result = export_dataset(src, tmp_path / "msd", ExportOptions(format="msd", dataset_id=1, name="Brain"),
                            run_options=QUIET)
    folder = Path(result.dataset_dir)
    assert folder.name == "Task01_Brain" and result.exit_code == 0
    index = json.loads((folder / "dataset.json").read_text())
    assert index["modality"] == TASK01_MODALITIES and index["labels"] == TASK01_LABELS
    assert index["tensorImageSize"] == "4D" and index["numTraining"] == 3 and index["numTest"] == 1
    training = _datalist(folder / "dataset.json", "training")
    assert [Path(item["image"]).name for item in training] == [f"BRATS_00{n}.nii.gz" for n in (1, 2, 3)]
    for item in training + _datalist(folder / "dataset.json", "test"):
        assert all(os.path.isfile(item[key]) for key in ("image", "label") if key in item)
    for item in training:
        out = nib.load(item["image"])
        assert out.shape[3] == 4 and nib.load(item["label"]).shape == out.shape[:3]
        np.testing.assert_array_equal(out.affine, nib.load(item["label"]).affine)
        source = src / "imagesTr" / Path(item["image"]).name
        np.testing.assert_array_equal(np.asanyarray(out.dataobj), np.asanyarray(nib.load(str(source)).dataobj))
        np.testing.assert_array_equal(out.affine, nib.load(str(source)).affine)
    assert check_dataset(folder, deep=True).problems == ()


def test_monai_datalist_splits_validation_and_folds_deterministically(tmp_path):
    src = write_task03(tmp_path / "Task03_Liver", train=6, test=1)
    options = ExportOptions(format="monai", name="Liver", validation_fraction=0.34, folds=2, seed=7)
    result = export_dataset(src, tmp_path / "monai", options, run_options=QUIET)
    folder = Path(result.dataset_dir)
    assert folder.name == "Liver" and result.exit_code == 0
    path = folder / "datalist.json"
    training, validation, test = (_datalist(path, key) for key in ("training", "validation", "test"))
    assert len(validation) == 2 and len(training) == 4 and len(test) == 1
    names = [Path(item["image"]).name for item in training + validation]
    assert sorted(names) == [f"liver_{n}.nii.gz" for n in range(6)]
    assert sorted(item["fold"] for item in training) == [0, 0, 1, 1]
    for item in training + validation + test:
        assert all(os.path.isfile(item[key]) for key in ("image", "label") if key in item)
    for item in training + validation:  # the label map holds the input's values at the same world positions
        label = nib.load(item["label"])
        source = src / "labelsTr" / Path(item["label"]).name
        i, j, k = np.meshgrid(*(np.arange(n) for n in label.shape), indexing="ij")
        centres = (np.stack([i.ravel(), j.ravel(), k.ravel(), np.ones(i.size)], 1) @ label.affine.T)[:, :3]
        np.testing.assert_array_equal(nifti_world_value(Path(item["label"]), centres),
                                      nifti_world_value(source, centres))
    again = export_dataset(src, tmp_path / "monai", options, run_options=QUIET)
    assert json.loads(path.read_text()) == json.loads((Path(again.dataset_dir) / "datalist.json").read_text())
    assert check_dataset(folder, deep=True).problems == ()
