"""The hand-built NIfTI-1 header against nibabel's, field by field."""

import io

import nibabel as nib
import numpy as np
import pytest

from medconv.geometry import orthonormalize
from medconv.writers.nifti_header import HEADER_DTYPE, nifti1_header


def nibabel_header(shape, dtype, affine, label=False, time_units=True):
    header = nib.Nifti1Header()
    header.set_data_dtype(dtype)
    header.set_data_shape(shape)
    header.set_sform(affine, code=1)
    header.set_qform(affine, code=1)
    header.set_xyzt_units("mm", "sec" if time_units else "unknown")
    header["descrip"] = b"medconv test"
    if label:
        header.set_intent("label")
    header["vox_offset"] = 352
    stream = io.BytesIO()
    header.write_to(stream)
    return stream.getvalue()


def random_affines(count, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        direction = orthonormalize(rng.normal(size=(3, 3)))  # any handedness: qfac +1 and -1
        affine = np.eye(4)
        affine[:3, :3] = direction * rng.uniform(0.2, 5.0, size=3)
        affine[:3, 3] = rng.uniform(-300, 300, size=3)
        yield affine


@pytest.mark.parametrize("shape, dtype, label, time_units", [
    pytest.param((64, 48, 30), np.int16, False, True, id="ct-int16"),
    pytest.param((10, 12, 3, 5), np.float32, False, True, id="4d-time"),
    pytest.param((10, 12, 3, 3), np.uint8, False, False, id="4d-channels"),
    pytest.param((7, 9), np.uint16, True, True, id="2d-labels"),
    pytest.param((5, 6, 7), np.float64, False, True, id="float64"),
])
def test_every_field_matches_nibabel(shape, dtype, label, time_units):
    for affine in random_affines(25):
        ours = np.frombuffer(nifti1_header(shape, dtype, affine, label=label, time_units=time_units,
                                           description="medconv test")[:348], dtype=HEADER_DTYPE)[0]
        theirs = np.frombuffer(nibabel_header(shape, dtype, affine, label, time_units)[:348], dtype=HEADER_DTYPE)[0]
        for name in HEADER_DTYPE.names:
            if name in ("scl_slope", "scl_inter"):
                continue  # no scaling: medconv writes 0 (the standard's "none"), nibabel NaN
            if name.startswith("quatern"):
                # same rotation: q and -q are one rotation; nibabel keeps w >= 0, as do we
                np.testing.assert_allclose(ours[name], theirs[name], atol=2e-7, err_msg=name)
            else:
                np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)


def test_nibabel_and_simpleitk_read_the_same_geometry(tmp_path):
    import SimpleITK as sitk

    import medconv
    from medconv import Volume

    for index, affine in enumerate(random_affines(10, seed=1)):
        spacing = np.linalg.norm(affine[:3, :3], axis=0)
        lps = np.diag([-1.0, -1, 1, 1]) @ affine
        volume = Volume(np.arange(24, dtype=np.int16).reshape(2, 3, 4), spacing=spacing, origin=lps[:3, 3],
                        direction=lps[:3, :3] / spacing)
        path = tmp_path / f"v{index}.nii"
        medconv.write(volume, path)
        image = nib.load(path)
        np.testing.assert_allclose(image.affine, affine, atol=1e-4)
        np.testing.assert_allclose(image.get_qform(), affine, atol=1e-4)
        np.testing.assert_array_equal(np.asanyarray(image.dataobj), volume.array)
        itk = sitk.ReadImage(str(path))
        np.testing.assert_allclose(itk.GetOrigin(), lps[:3, 3], atol=1e-4)
        np.testing.assert_allclose(np.array(itk.GetDirection()).reshape(3, 3), volume.direction, atol=1e-5)
