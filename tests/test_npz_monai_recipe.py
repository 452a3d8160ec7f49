"""The .npz recipe docs/conventions.md gives MONAI users holds: 'array' is the image, 'affine_ras' its affine."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from medconv.cli.main import main

RECIPE = 'LoadImage(reader="NumpyReader", npz_keys=["array"], image_only=True, dtype=None)'


def test_the_documented_npz_keys_hold_what_nibabel_reads(tmp_path):
    affine = np.array([[-0.7, 0, 0, 10], [0, 0, 2.5, -20], [0, 0.7, 0, 30], [0, 0, 0, 1]])  # oblique storage
    data = np.arange(6 * 5 * 4, dtype=np.int16).reshape(6, 5, 4) - 1000
    nib.save(nib.Nifti1Image(data, affine), str(tmp_path / "ct.nii.gz"))
    assert main(["convert", str(tmp_path / "ct.nii.gz"), str(tmp_path / "ct.npz")]) == 0
    reference = nib.load(str(tmp_path / "ct.nii.gz"))
    with np.load(tmp_path / "ct.npz") as stored:  # what NumpyReader(npz_keys=["array"]) hands MONAI
        assert stored["array"].dtype == np.int16
        np.testing.assert_array_equal(stored["array"], np.asarray(reference.dataobj))
        np.testing.assert_allclose(stored["affine_ras"], reference.affine, atol=1e-5)
    page = (Path(__file__).resolve().parent.parent / "docs" / "conventions.md").read_text()
    assert RECIPE in page and 'image.affine = torch.as_tensor(np.load(path)["affine_ras"])' in page
