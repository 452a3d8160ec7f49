"""The .npz output read back with numpy alone, and the NIfTI -> npz -> NIfTI round trip."""

import json

import nibabel as nib
import numpy as np

import medconv
from medconv import Volume
from medconv.geometry import direction_from_axis_codes

from test_nifti import oblique_affine


def test_npz_fields_load_with_plain_numpy(tmp_path):
    volume = Volume(np.arange(24, dtype=np.int16).reshape(4, 3, 2), spacing=(0.5, 0.6, 2.0), origin=(1, 2, 3),
                    direction=direction_from_axis_codes("LAS"), kind="label",
                    meta={"modality": "CT", "warnings": ["w"]}, history=("step",))
    medconv.write(volume, tmp_path / "v.npz")
    with np.load(tmp_path / "v.npz", allow_pickle=False) as fields:
        np.testing.assert_array_equal(fields["array"], volume.array)
        np.testing.assert_allclose(fields["spacing"], volume.spacing)
        np.testing.assert_allclose(fields["origin"], volume.origin)
        np.testing.assert_allclose(fields["direction"], volume.direction)
        np.testing.assert_allclose(fields["affine_ras"], volume.affine_ras)
        np.testing.assert_allclose(fields["affine_lps"], volume.affine_lps)
        assert str(fields["kind"]) == "label"
        assert json.loads(str(fields["meta"]))["modality"] == "CT"
        assert json.loads(str(fields["history"])) == ["step"]


def test_nifti_to_npz_and_back_is_identical(tmp_path):
    data = np.random.default_rng(3).integers(-1024, 3000, size=(11, 9, 7)).astype(np.int16)
    nib.save(nib.Nifti1Image(data, oblique_affine()), tmp_path / "x.nii.gz")
    medconv.convert(tmp_path / "x.nii.gz", tmp_path / "y.npz")
    medconv.convert(tmp_path / "y.npz", tmp_path / "z.nii.gz")
    back = nib.load(tmp_path / "z.nii.gz")
    assert back.get_data_dtype() == np.int16
    np.testing.assert_array_equal(np.asanyarray(back.dataobj), data)
    np.testing.assert_allclose(back.affine, nib.load(tmp_path / "x.nii.gz").affine, atol=1e-6)
    sidecar = json.loads((tmp_path / "z.json").read_text())
    assert sidecar["shape"] == [11, 9, 7] and sidecar["axis_codes"] == medconv.read(tmp_path / "z.nii.gz").axis_codes
