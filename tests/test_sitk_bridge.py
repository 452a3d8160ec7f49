"""Volume <-> SimpleITK: same voxels at the same index, same LPS world positions.

The reference is SimpleITK itself: ``GetPixel``/``TransformIndexToPhysicalPoint``
on the image built by ``to_sitk`` must agree with the Volume's array and
``affine_lps``, and a Volume made by ``from_sitk`` from an image built with
SimpleITK's own API must agree with that image.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from medconv.sitk_bridge import from_sitk, to_sitk
from medconv.volume import Volume

from conftest import corpus_path

OBLIQUE = np.reshape(sitk.Euler3DTransform((0, 0, 0), 0.35, -0.61, 0.87).GetMatrix(), (3, 3))  # radians
FLIPPED = np.array([[-1.0, 0, 0], [0, 0, 1], [0, -1, 0]])  # a left-handed axis permutation


def _volume(shape=(5, 4, 3), direction=OBLIQUE, dtype=np.int16, order="kji") -> Volume:
    rng = np.random.default_rng(0)
    data = rng.integers(-1000, 2000, size=shape).astype(dtype)
    if order == "kji":  # what readers produce: transposed view of a C-ordered (k, j, i) buffer
        data = np.ascontiguousarray(data.T).T
    return Volume(array=data, spacing=(0.7, 1.1, 2.5), origin=(-12.5, 30.0, 7.25), direction=direction)


@pytest.mark.parametrize("direction", [pytest.param(np.eye(3), id="identity"),
                                       pytest.param(OBLIQUE, id="oblique"),
                                       pytest.param(FLIPPED, id="permuted-flipped")])
@pytest.mark.parametrize("order", [pytest.param("kji", id="transposed-c-buffer"),
                                   pytest.param("ijk", id="c-ordered-ijk")])
def test_to_sitk_same_value_and_world_position_at_every_index(direction, order):
    volume = _volume(direction=direction, order=order)
    image = to_sitk(volume)
    assert image.GetSize() == volume.shape
    assert image.GetPixelID() == sitk.sitkInt16
    affine = volume.affine_lps
    for index in np.ndindex(volume.shape):
        assert image.GetPixel(index) == volume.array[index]
        world = np.array(image.TransformIndexToPhysicalPoint(tuple(int(x) for x in index)))
        np.testing.assert_allclose(world, affine[:3, :3] @ index + affine[:3, 3], atol=1e-9)


def test_from_sitk_matches_image_built_with_simpleitk():
    rng = np.random.default_rng(1)
    image = sitk.GetImageFromArray(rng.normal(size=(3, 4, 6)).astype(np.float32))  # (k, j, i)
    image.SetSpacing((0.5, 0.8, 3.0))
    image.SetOrigin((1.0, -2.0, 3.0))
    image.SetDirection(tuple(OBLIQUE.ravel()))
    volume = from_sitk(image, kind="intensity", meta={"modality": "CT"}, history=("read",))
    assert volume.shape == (6, 4, 3)
    assert volume.meta["modality"] == "CT" and volume.history == ("read",)
    for index in np.ndindex(volume.shape):
        assert volume.array[index] == image.GetPixel(index)
        np.testing.assert_allclose(volume.affine_lps @ (*index, 1), (*image.TransformIndexToPhysicalPoint(index), 1),
                                   atol=1e-9)
    # the array is a view of SimpleITK's buffer, laid out like a NIfTI file (Fortran order in (i, j, k))
    assert volume.array.flags.f_contiguous


def test_round_trip_keeps_everything():
    volume = _volume(direction=FLIPPED, dtype=np.float32)
    back = from_sitk(to_sitk(volume), kind="label")
    np.testing.assert_array_equal(back.array, volume.array)
    assert back.array.dtype == volume.array.dtype
    np.testing.assert_allclose(back.affine_lps, volume.affine_lps, atol=1e-12)
    assert back.kind == "label"


def test_4d_volume_becomes_multicomponent_image_and_back():
    rng = np.random.default_rng(2)
    data = rng.integers(0, 100, size=(4, 3, 2, 5)).astype(np.uint16)
    volume = Volume(array=data, spacing=(1, 2, 3), origin=(0, 0, 0), direction=OBLIQUE)
    image = to_sitk(volume)
    assert image.GetSize() == (4, 3, 2) and image.GetNumberOfComponentsPerPixel() == 5
    assert image.GetPixel((3, 1, 0)) == tuple(int(v) for v in data[3, 1, 0])
    back = from_sitk(image)
    np.testing.assert_array_equal(back.array, data)


def test_bool_and_float16_widen_exactly():
    mask = Volume(array=np.eye(3, dtype=bool)[:, :, None].repeat(2, axis=2), spacing=(1, 1, 1), kind="label")
    assert to_sitk(mask).GetPixelID() == sitk.sitkUInt8
    np.testing.assert_array_equal(sitk.GetArrayFromImage(to_sitk(mask)).T, mask.array.astype(np.uint8))
    half = Volume(array=np.linspace(0, 1, 8, dtype=np.float16).reshape(2, 2, 2), spacing=(1, 1, 1))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(to_sitk(half)).T, half.array.astype(np.float32))


def test_2d_image_becomes_one_slice_volume():
    image = sitk.GetImageFromArray(np.arange(12, dtype=np.uint8).reshape(3, 4))
    image.SetSpacing((0.5, 0.25))
    image.SetOrigin((10.0, 20.0))
    volume = from_sitk(image)
    assert volume.shape == (4, 3, 1)
    assert volume.array[2, 1, 0] == image.GetPixel((2, 1))
    np.testing.assert_allclose(volume.affine_lps @ (2, 1, 0, 1), (*image.TransformIndexToPhysicalPoint((2, 1)), 0, 1))


def test_real_metaimage_geometry_agrees_with_simpleitk_reader():
    folder = corpus_path("metaimage")
    candidates = sorted(p for p in folder.rglob("*") if p.suffix in (".mha", ".mhd"))
    image = None
    for path in candidates:
        try:
            candidate = sitk.ReadImage(str(path))
        except RuntimeError:
            continue
        if candidate.GetDimension() == 3 and candidate.GetNumberOfComponentsPerPixel() == 1:
            image = candidate
            break
    if image is None:
        pytest.skip("no scalar 3D MetaImage in the corpus")
    volume = from_sitk(image)
    corner = tuple(s - 1 for s in image.GetSize())
    np.testing.assert_allclose(volume.affine_lps @ (*corner, 1), (*image.TransformIndexToPhysicalPoint(corner), 1),
                               atol=1e-6)
    again = to_sitk(volume)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(again), sitk.GetArrayFromImage(image))
    assert again.GetDirection() == pytest.approx(image.GetDirection())
