"""``export nnunet`` on generated Decathlon, LUNA16 and Sliver07 trees, checked against independent references.

Every tree is written with nibabel or SimpleITK (tests/export_synth.py, tests/metaimage_synth.py).
Each exported dataset must pass nnU-Net's integrity rules as re-implemented with SimpleITK
(tests/nnunet_reference.py), and its voxels must be the inputs' voxels at the same world
positions (nibabel / SimpleITK on both sides).
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from export_synth import TASK01_LABELS, TASK01_MODALITIES, TASK03_LABELS, nifti_world_value, write_task01, write_task03
from metaimage_synth import write_luna_tree, write_sliver_tree
from nnunet_reference import nnunet_problems
from medconv.batch import RunOptions
from medconv.export import ExportOptions, export_dataset
from medconv.transforms import Preprocessing

QUIET = RunOptions(jobs=1, progress=False, summary=False)


def _export(src, dest, **options):
    run = options.pop("run_options", QUIET)
    preprocessing = options.pop("preprocessing", None)
    return export_dataset(src, dest, ExportOptions(**options), preprocessing=preprocessing, run_options=run)


def _voxel_centres(path: Path) -> np.ndarray:
    image = nib.load(str(path))
    i, j, k = np.meshgrid(*(np.arange(n) for n in image.shape[:3]), indexing="ij")
    index = np.stack([i.ravel(), j.ravel(), k.ravel(), np.ones(i.size)], axis=1)
    return (index @ image.affine.T)[:, :3]


def _manifest(folder: str) -> dict[str, dict]:
    rows = [json.loads(line) for line in Path(folder, "medconv-manifest.jsonl").read_text().splitlines()]
    return {row["unit_id"]: row for row in rows}


@pytest.mark.slow  # two worker processes (~6 s with their start-up on 2 cores)
def test_task01_4d_four_channels_split_into_nnunet_channels(tmp_path):
    src = write_task01(tmp_path / "Task01_BrainTumour", train=3, test=1)
    result = _export(src, tmp_path / "raw", format="nnunet", dataset_id=501, name="Brain",
                     run_options=RunOptions(jobs=2, progress=False, summary=False))
    folder = Path(result.dataset_dir)
    assert folder.name == "Dataset501_Brain" and result.exit_code == 0
    assert nnunet_problems(str(folder)) == []
    dataset = json.loads((folder / "dataset.json").read_text())
    assert dataset["channel_names"] == TASK01_MODALITIES
    assert dataset["labels"] == {name: int(value) for value, name in TASK01_LABELS.items()}
    assert dataset["numTraining"] == 3 and dataset["file_ending"] == ".nii.gz"
    for case in ("BRATS_001", "BRATS_002", "BRATS_003"):
        centres = _voxel_centres(folder / "labelsTr" / f"{case}.nii.gz")
        for channel in range(4):
            out = folder / "imagesTr" / f"{case}_{channel:04d}.nii.gz"
            np.testing.assert_array_equal(nifti_world_value(out, centres),
                                          nifti_world_value(src / "imagesTr" / f"{case}.nii.gz", centres, channel))
        np.testing.assert_array_equal(nifti_world_value(folder / "labelsTr" / f"{case}.nii.gz", centres),
                                      nifti_world_value(src / "labelsTr" / f"{case}.nii.gz", centres))
    assert sorted(p.name for p in (folder / "imagesTs").iterdir()) == [f"BRATS_004_{c:04d}.nii.gz" for c in range(4)]
    assert not list((folder / "labelsTr").glob("BRATS_004*"))


def _bilinear_reference(src: Path, out: Path) -> tuple[np.ndarray, np.ndarray]:
    """The input CT interpolated (by hand, trilinear in index space) at the output's voxel centres inside it."""
    image = nib.load(str(src))
    data = np.asanyarray(image.dataobj).astype(np.float64)
    centres = _voxel_centres(out)
    index = (np.c_[centres, np.ones(len(centres))] @ np.linalg.inv(image.affine).T)[:, :3]
    inside = np.all((index >= 0) & (index <= np.array(data.shape) - 1), axis=1)
    index = index[inside]
    low = np.floor(index).astype(int)
    low = np.minimum(low, np.array(data.shape) - 2)
    fraction = index - low
    value = np.zeros(len(index))
    for corner in np.ndindex(2, 2, 2):
        weight = np.prod(np.where(np.array(corner) == 1, fraction, 1 - fraction), axis=1)
        at = low + np.array(corner)
        value += weight * data[at[:, 0], at[:, 1], at[:, 2]]
    return inside, value


def test_task03_preprocessed_labels_follow_the_image_grid_exactly(tmp_path):
    src = write_task03(tmp_path / "Task03_Liver", train=2)
    prep = Preprocessing.from_options(orient="RAS", spacing="0.7,0.7,keep", antialias=False)
    result = _export(src, tmp_path / "raw", format="nnunet", dataset_id=503, preprocessing=prep)
    folder = Path(result.dataset_dir)
    assert result.exit_code == 0 and nnunet_problems(str(folder)) == []
    assert json.loads((folder / "dataset.json").read_text())["channel_names"] == {"0": "CT"}
    for case in ("liver_0", "liver_1"):
        image_path, label_path = folder / "imagesTr" / f"{case}_0000.nii.gz", folder / "labelsTr" / f"{case}.nii.gz"
        image, label = nib.load(str(image_path)), nib.load(str(label_path))
        assert image.shape == label.shape
        np.testing.assert_array_equal(image.affine, label.affine)  # the same grid, bit for bit
        assert nib.aff2axcodes(image.affine) == ("R", "A", "S")
        assert np.allclose(np.linalg.norm(image.affine[:3, :3], axis=0), (0.7, 0.7, 2.5))
        # the label: the input label at the nearest input voxel of every output voxel centre (no ties on this grid)
        source_label = nib.load(str(src / "labelsTr" / f"{case}.nii.gz"))
        index = np.c_[_voxel_centres(label_path), np.ones(np.prod(label.shape))] @ np.linalg.inv(source_label.affine).T
        fraction = np.abs(index[:, :3] - np.round(index[:, :3]))
        assert np.all(np.abs(fraction - 0.5) > 1e-3)
        nearest = np.round(index[:, :3]).astype(int)
        inside = np.all((nearest >= 0) & (nearest < np.array(source_label.shape)), axis=1)
        expected = np.asanyarray(source_label.dataobj)[tuple(nearest[inside].T)]
        np.testing.assert_array_equal(np.asanyarray(label.dataobj).reshape(-1)[inside], expected)
        # the image: the input interpolated linearly at the same world positions, rounded to int16
        # (0.5 for the rounding, 0.01 for SimpleITK interpolating in float32 between -1000 and tissue)
        inside, reference = _bilinear_reference(src / "imagesTr" / f"{case}.nii.gz", image_path)
        written = np.asanyarray(image.dataobj).reshape(-1)[inside]
        assert image.get_data_dtype() == np.int16 and inside.mean() > 0.8
        assert np.max(np.abs(written - reference)) <= 0.51


def test_luna16_masks_become_consecutive_labels(tmp_path):
    written = write_luna_tree(tmp_path / "LUNA16", n_images=3)
    result = _export(tmp_path / "LUNA16", tmp_path / "raw", format="nnunet", dataset_id=516, name="Lungs")
    folder = Path(result.dataset_dir)
    assert result.exit_code == 0 and nnunet_problems(str(folder)) == []
    dataset = json.loads((folder / "dataset.json").read_text())
    assert dataset["labels"] == {"background": 0, "label_3": 1, "label_4": 2, "label_5": 3}
    assert dataset["channel_names"] == {"0": "CT"}
    for image_path, mask_path in zip(written["images"], written["masks"]):
        case = image_path.stem
        ours_label = sitk.ReadImage(str(folder / "labelsTr" / f"{case}.nii.gz"))
        ours_image = sitk.ReadImage(str(folder / "imagesTr" / f"{case}_0000.nii.gz"))
        source_mask, source_image = sitk.ReadImage(str(mask_path)), sitk.ReadImage(str(image_path))
        for ours, source in ((ours_label, source_mask), (ours_image, source_image)):
            assert ours.GetSize() == source.GetSize()
            np.testing.assert_allclose(ours.GetOrigin(), source.GetOrigin(), atol=1e-4)
            np.testing.assert_allclose(ours.GetSpacing(), source.GetSpacing(), atol=1e-6)
            np.testing.assert_allclose(ours.GetDirection(), source.GetDirection(), atol=1e-6)
        lookup = np.array([0, 0, 0, 1, 2, 3], dtype=np.uint8)  # source values 0, 3, 4, 5 -> 0..3
        np.testing.assert_array_equal(sitk.GetArrayFromImage(ours_label), lookup[sitk.GetArrayFromImage(source_mask)])
        np.testing.assert_array_equal(sitk.GetArrayFromImage(ours_image), sitk.GetArrayFromImage(source_image))


def test_sliver07_pairs_orig_with_seg_and_names_the_liver(tmp_path):
    write_sliver_tree(tmp_path / "sliver07", n_cases=2)
    result = _export(tmp_path / "sliver07", tmp_path / "raw", format="nnunet", dataset_id=507)
    folder = Path(result.dataset_dir)
    assert folder.name == "Dataset507_sliver07" and result.exit_code == 0
    assert nnunet_problems(str(folder)) == []
    assert json.loads((folder / "dataset.json").read_text())["labels"] == {"background": 0, "liver": 1}
    assert sorted(p.name for p in (folder / "labelsTr").iterdir()) == ["liver_001.nii.gz", "liver_002.nii.gz"]


def test_a_rerun_resumes_and_other_options_redo(tmp_path):
    src = write_task03(tmp_path / "Task03_Liver", train=2)
    first = _export(src, tmp_path / "raw", format="nnunet", dataset_id=503)
    label = Path(first.dataset_dir) / "labelsTr" / "liver_0.nii.gz"
    stamp = label.stat().st_mtime_ns
    again = _export(src, tmp_path / "raw", format="nnunet", dataset_id=503)
    assert again.exit_code == 0 and {row["status"] for row in _manifest(again.dataset_dir).values()} == {"skipped"}
    assert label.stat().st_mtime_ns == stamp
    one_mm = Preprocessing.from_options(spacing="1,1,keep")
    refused = _export(src, tmp_path / "raw", format="nnunet", dataset_id=503, preprocessing=one_mm)
    rows = _manifest(refused.dataset_dir)
    assert refused.exit_code == 1 and {row["status"] for row in rows.values()} == {"failed"}
    assert all("other options" in row["reason"] and "--overwrite" in row["reason"] for row in rows.values())
    assert label.stat().st_mtime_ns == stamp and nnunet_problems(refused.dataset_dir) == []  # the old export stands
    changed = _export(src, tmp_path / "raw", format="nnunet", dataset_id=503, preprocessing=one_mm,
                      run_options=RunOptions(jobs=1, progress=False, summary=False, overwrite=True))
    rows = _manifest(changed.dataset_dir)
    assert changed.exit_code == 0 and {row["status"] for row in rows.values()} == {"converted"}, rows
    assert np.allclose(nib.load(str(label)).header.get_zooms()[:2], (1, 1))
    assert nnunet_problems(changed.dataset_dir) == []


def test_an_interrupted_exports_temporary_case_files_are_removed_and_nothing_else(tmp_path):
    from medconv.atomic import temporary_name

    src = write_task03(tmp_path / "Task03_Liver", train=2)
    first = _export(src, tmp_path / "raw", format="nnunet", dataset_id=503)
    image = Path(first.dataset_dir) / "imagesTr" / "liver_0_0000.nii.gz"
    leftover = Path(temporary_name(str(image)))  # what a kill in the middle of writing the image leaves
    leftover.write_bytes(b"half an image")
    unrelated = image.parent / ".notes.medconv-tmp-someone-elses.txt"
    unrelated.write_text("not a case file of this export")
    again = _export(src, tmp_path / "raw", format="nnunet", dataset_id=503)
    assert again.exit_code == 0 and not leftover.exists() and unrelated.exists()
    assert nnunet_problems(again.dataset_dir) == []
