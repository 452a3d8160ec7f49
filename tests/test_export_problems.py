"""Bad input: each problem is one line naming the case and what to do; the other cases export; exit 1.

The trees are LUNA16- and BraTS-shaped, written with SimpleITK / nibabel, then broken on purpose:
two images claiming one case id, a label map on another grid, label values outside the
declared table, a case folder missing a channel.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from export_synth import affine_for, intensity, save_nifti, shells, world
from metaimage_synth import write_luna_tree
from nnunet_reference import nnunet_problems
from medconv.batch import RunOptions
from medconv.export import ExportOptions, LabelSpec, export_dataset

QUIET = RunOptions(jobs=1, progress=False, summary=False)


def _rows(folder) -> dict[str, dict]:
    lines = Path(folder, "medconv-manifest.jsonl").read_text().splitlines()
    return {row["unit_id"]: row for row in map(json.loads, lines)}


def _broken_luna(root: Path) -> dict[str, Path]:
    written = write_luna_tree(root, n_images=4, subsets=2)
    images, masks = written["images"], written["masks"]
    duplicate = images[0].parent.parent / "subset1" / images[0].name  # the same SeriesInstanceUID twice
    shutil.copy(images[0], duplicate)
    shutil.copy(images[0].with_suffix(".raw"), duplicate.with_suffix(".raw"))
    shifted = sitk.ReadImage(str(masks[1]))
    shifted.SetOrigin(tuple(np.add(shifted.GetOrigin(), (5.0, 0.0, 0.0))))
    sitk.WriteImage(shifted, str(masks[1]))
    stray = sitk.ReadImage(str(masks[2]))
    array = sitk.GetArrayFromImage(stray)
    array[1, 2, 3] = 7
    fixed = sitk.GetImageFromArray(array)
    fixed.CopyInformation(stray)
    sitk.WriteImage(fixed, str(masks[2]))
    return {"duplicate": images[0], "shifted": images[1], "stray": images[2], "good": images[3]}


LUNA_LABELS = (LabelSpec.parse("lung=3,4"), LabelSpec.parse("trachea=5"))


def test_broken_luna_cases_fail_one_line_each_and_the_rest_export(tmp_path):
    cases = _broken_luna(tmp_path / "LUNA16")
    result = export_dataset(tmp_path / "LUNA16", tmp_path / "raw",
                            ExportOptions(format="nnunet", dataset_id=600, labels=LUNA_LABELS), run_options=QUIET)
    assert result.exit_code == 1
    rows = _rows(result.dataset_dir)
    duplicate, shifted, stray, good = (rows[cases[key].stem] for key in ("duplicate", "shifted", "stray", "good"))
    assert good["status"] == "converted"
    for row in (duplicate, shifted, stray):
        assert row["status"] == "failed" and "\n" not in row["reason"]
        assert row["reason"].rstrip().endswith(")")  # ends with what to do
    assert "2 images claim case id" in duplicate["reason"] and "subset0/" in duplicate["reason"] \
        and "subset1/" in duplicate["reason"]
    assert f"{cases['shifted'].stem}.mhd: the label map is not on the image's grid (origin" in shifted["reason"]
    assert "--on-grid-mismatch resample" in shifted["reason"]
    assert f"{cases['stray'].stem}.mhd: label value(s) 7 are not in the label table" in stray["reason"]
    assert "--label NAME=VALUE" in stray["reason"]
    folder = Path(result.dataset_dir)
    assert nnunet_problems(str(folder)) == []
    assert sorted(p.name for p in (folder / "labelsTr").iterdir()) == [f"{cases['good'].stem}.nii.gz"]
    assert json.loads((folder / "dataset.json").read_text())["labels"] == {"background": 0, "lung": 1, "trachea": 2}


def test_a_label_on_another_grid_is_resampled_on_purpose_with_a_warning(tmp_path):
    cases = _broken_luna(tmp_path / "LUNA16")
    result = export_dataset(tmp_path / "LUNA16", tmp_path / "raw",
                            ExportOptions(format="nnunet", dataset_id=600, labels=LUNA_LABELS,
                                          on_grid_mismatch="resample"), run_options=QUIET)
    shifted = _rows(result.dataset_dir)[cases["shifted"].stem]
    assert shifted["status"] == "converted"
    assert any("label map resampled onto the image grid (nearest neighbour)" in w and "origin" in w
               for w in shifted["warnings"])
    ours = sitk.ReadImage(str(Path(result.dataset_dir) / "labelsTr" / f"{cases['shifted'].stem}.nii.gz"))
    image = sitk.ReadImage(str(cases["shifted"]))
    np.testing.assert_allclose(ours.GetOrigin(), image.GetOrigin(), atol=1e-4)
    assert nnunet_problems(result.dataset_dir) == []


def _brats_case(folder: Path, name: str, number: int, channels=("flair", "t1", "t1ce", "t2"), shape=(10, 9, 8)):
    affine = affine_for(number)
    xyz = world(shape, affine)
    for index, channel in enumerate(channels):
        save_nifti(intensity(index, number, xyz), affine, folder / name / f"{name}_{channel}.nii.gz")
    centre = xyz[shape[0] // 2, shape[1] // 2, shape[2] // 2]
    save_nifti(shells(xyz, centre, (4.0, 2.0), (1, 4)), affine, folder / name / f"{name}_seg.nii.gz", np.uint8)


def test_a_case_folder_missing_a_channel_fails_and_the_others_export(tmp_path):
    root = tmp_path / "BraTS"
    for number in range(1, 4):
        _brats_case(root, f"BraTS_{number:05d}", number)
    _brats_case(root, "BraTS_00004", 4, channels=("flair", "t1", "t2"))
    result = export_dataset(root, tmp_path / "raw", ExportOptions(format="nnunet", dataset_id=601), run_options=QUIET)
    assert result.exit_code == 1
    rows = _rows(result.dataset_dir)
    assert rows["BraTS_00004"]["status"] == "failed"
    assert rows["BraTS_00004"]["reason"].startswith("channel 't1ce' is missing (the dataset's channels are flair, t1, t1ce, t2;")
    assert [rows[f"BraTS_{n:05d}"]["status"] for n in range(1, 4)] == ["converted"] * 3
    dataset = json.loads(Path(result.dataset_dir, "dataset.json").read_text())
    assert dataset["channel_names"] == {"0": "flair", "1": "t1", "2": "t1ce", "3": "t2"}
    assert dataset["labels"] == {"background": 0, "label_1": 1, "label_4": 2}  # BraTS's 0, 1, 4 made consecutive
    assert nnunet_problems(result.dataset_dir) == []


def test_nothing_pairable_is_a_usage_error_before_anything_is_written(tmp_path):
    from medconv.errors import UsageError

    save_nifti(np.zeros((3, 3, 3), np.int16), np.eye(4), tmp_path / "src" / "lonely.nii.gz")
    with pytest.raises(UsageError, match="no pairing rule recognises"):
        export_dataset(tmp_path / "src", tmp_path / "raw", ExportOptions(dataset_id=602), run_options=QUIET)
    assert not (tmp_path / "raw").exists()
