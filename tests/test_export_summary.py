"""dataset_summary.json against the exported files themselves, read back with nibabel.

The summary is computed in the workers from the arrays they wrote; this test
recomputes every figure it states (cases, spacing and shape statistics, label
voxel counts and cases, shares of the foreground, intensity range and the
foreground statistics of the CT channel) from the files on disk, so a summary
of other arrays than those written, or a mislabelled column, fails.
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from export_synth import write_task03
from medconv.cli.main import main


def _exported(raw):
    (dataset,) = raw.glob("Dataset*")
    return dataset, json.loads((dataset / "dataset_summary.json").read_text())


def test_summary_figures_are_those_of_the_written_files(tmp_path):
    src = write_task03(tmp_path / "Task03_Liver", train=3, test=1)
    assert main(["export", "nnunet", str(src), str(tmp_path / "raw"), "--id", "520", "--name", "Liver",
                 "-q", "-j", "1"]) == 0
    dataset, summary = _exported(tmp_path / "raw")
    images = sorted((dataset / "imagesTr").glob("*.nii.gz")) + sorted((dataset / "imagesTs").glob("*.nii.gz"))
    labels = {path.name: np.asarray(nib.load(path).dataobj) for path in (dataset / "labelsTr").glob("*.nii.gz")}
    assert summary["cases"] == {"training": len(labels), "test": len(images) - len(labels)} == {"training": 3, "test": 1}

    zooms = np.array([nib.load(path).header.get_zooms()[:3] for path in images], dtype=float)
    shapes = np.array([nib.load(path).shape[:3] for path in images], dtype=float)
    for key, values in (("spacing", zooms), ("shape", shapes)):
        np.testing.assert_allclose(summary[key]["median"], np.median(values, axis=0), atol=1e-5)
        np.testing.assert_allclose(summary[key]["min"], values.min(axis=0), atol=1e-5)
        np.testing.assert_allclose(summary[key]["max"], values.max(axis=0), atol=1e-5)
    median = np.median(zooms, axis=0)
    assert summary["anisotropy"] == pytest.approx(median.max() / median.min(), abs=1e-3)

    counts = sum(np.bincount(array.ravel().astype(np.int64), minlength=3) for array in labels.values())
    holding = sum((np.bincount(array.ravel().astype(np.int64), minlength=3) > 0).astype(int) for array in labels.values())
    rows = {row["value"]: row for row in summary["labels"]}
    assert {value: row["name"] for value, row in rows.items()} == {0: "background", 1: "liver", 2: "cancer"}
    for value in (0, 1, 2):
        assert rows[value]["voxels"] == counts[value] and rows[value]["cases"] == holding[value]
    for value in (1, 2):
        assert rows[value]["share_of_foreground"] == pytest.approx(counts[value] / counts[1:].sum(), abs=1e-6)

    (ct,) = summary["intensity"]
    arrays = {path.name.replace("_0000", ""): np.asarray(nib.load(path).dataobj).astype(np.float64) for path in images}
    assert ct["channel"] == "CT"
    assert ct["min"] == min(a.min() for a in arrays.values()) and ct["max"] == max(a.max() for a in arrays.values())
    assert ct["mean"] == pytest.approx(np.mean([a.mean() for a in arrays.values()]), rel=1e-9)
    foreground = [arrays[name][labels[name] > 0] for name in labels]
    assert ct["foreground_mean"] == pytest.approx(np.mean([f.mean() for f in foreground]), rel=1e-9)
    assert ct["foreground_std"] == pytest.approx(np.mean([f.std() for f in foreground]), rel=1e-9)
    assert ct["foreground_p99_5"] == pytest.approx(np.median([np.percentile(f, 99.5) for f in foreground]), rel=1e-9)


def test_summary_notes_name_the_case_whose_spacing_is_far_off_and_the_empty_label_map(tmp_path):
    src = write_task03(tmp_path / "Task03_Liver", train=3)
    odd = src / "imagesTr" / "liver_2.nii.gz"
    image = nib.load(odd)
    affine = image.affine.copy()
    affine[:3, 2] *= 3.0  # slices 7.5 mm apart instead of 2.5 mm
    for path in (odd, src / "labelsTr" / "liver_2.nii.gz"):
        data = np.asarray(nib.load(path).dataobj)
        if "labelsTr" in str(path):
            data = np.zeros_like(data)  # and its label map is empty
        out = nib.Nifti1Image(data, affine)
        out.set_qform(affine, code=1)
        out.set_sform(affine, code=1)
        nib.save(out, str(path))
    assert main(["export", "nnunet", str(src), str(tmp_path / "raw"), "--id", "521", "--name", "Liver",
                 "-q", "-j", "1"]) == 0
    _, summary = _exported(tmp_path / "raw")
    (spacing_note,) = [note for note in summary["notes"] if "is far from the median" in note]
    (empty_note,) = [note for note in summary["notes"] if "label map is empty" in note]
    assert "liver_2" in spacing_note and "liver_2" in empty_note
