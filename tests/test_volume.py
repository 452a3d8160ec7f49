"""Volume validation and geometry, checked against nibabel's and SimpleITK's conventions."""

import pickle

import nibabel as nib
import numpy as np
import pytest

from medconv import Volume
from medconv.errors import InvalidVolumeError
from medconv.geometry import (LPS_TO_RAS, affine_from_geometry, axis_codes, direction_from_axis_codes,
                              geometry_from_affine, index_to_world, orthonormalize, world_to_index)


def rotation(ax, angle):
    c, s = np.cos(angle), np.sin(angle)
    m = np.eye(3)
    a, b = [i for i in range(3) if i != ax]
    m[a, a], m[a, b], m[b, a], m[b, b] = c, -s, s, c
    return m


def oblique_volume():
    direction = rotation(0, 0.3) @ rotation(2, -0.7)
    array = np.arange(4 * 5 * 6, dtype=np.int16).reshape(6, 5, 4).T  # transposed view of (k, j, i)
    return Volume(array, spacing=(0.5, 0.75, 2.0), origin=(10.0, -20.0, 30.0), direction=direction)


@pytest.mark.parametrize("shape", [pytest.param((4, 5), id="2d"), pytest.param((4, 5, 6), id="3d"),
                                   pytest.param((4, 5, 6, 2), id="4d")])
def test_accepts_two_to_four_dimensions(shape):
    assert Volume(np.zeros(shape), spacing=(1, 1, 1)).shape == shape


@pytest.mark.parametrize("kwargs", [
    pytest.param(dict(array=np.zeros(4), spacing=(1, 1, 1)), id="1d"),
    pytest.param(dict(array=np.zeros((2, 2, 2, 2, 2)), spacing=(1, 1, 1)), id="5d"),
    pytest.param(dict(array=np.zeros((2, 0, 2)), spacing=(1, 1, 1)), id="empty"),
    pytest.param(dict(array=np.zeros((2, 2, 2)), spacing=(1, 0, 1)), id="zero-spacing"),
    pytest.param(dict(array=np.zeros((2, 2, 2)), spacing=(1, -1, 1)), id="negative-spacing"),
    pytest.param(dict(array=np.zeros((2, 2, 2)), spacing=(1, np.nan, 1)), id="nan-spacing"),
    pytest.param(dict(array=np.zeros((2, 2, 2)), spacing=(1, 1)), id="two-spacings"),
    pytest.param(dict(array=np.zeros((2, 2, 2)), spacing=(1, 1, 1), origin=(0, np.inf, 0)), id="inf-origin"),
    pytest.param(dict(array=np.zeros((2, 2, 2)), spacing=(1, 1, 1), direction=[[1, 0.1, 0], [0, 1, 0], [0, 0, 1]]),
                 id="sheared-direction"),
    pytest.param(dict(array=np.zeros((2, 2, 2)), spacing=(1, 1, 1), direction=np.eye(3) * 2), id="scaled-direction"),
    pytest.param(dict(array=np.zeros((2, 2, 2)), spacing=(1, 1, 1), kind="mask"), id="unknown-kind"),
])
def test_rejects_invalid_values(kwargs):
    with pytest.raises(InvalidVolumeError):
        Volume(**kwargs)


def test_accepts_dicom_rounding_in_direction():
    iop = np.array([0.999998, 0.001745, 0.0, -0.001745, 0.999998, 0.0])  # six decimals, as in DICOM headers
    direction = np.column_stack([iop[:3], iop[3:], np.cross(iop[:3], iop[3:])])
    assert Volume(np.zeros((2, 2, 2)), spacing=(1, 1, 1), direction=direction).axis_codes == "LPS"


def test_is_frozen_and_read_only():
    volume = oblique_volume()
    with pytest.raises(AttributeError):
        volume.spacing = (1, 1, 1)
    with pytest.raises(ValueError):
        volume.array[0, 0, 0] = 1
    with pytest.raises(TypeError):
        volume.meta["x"] = 1


def test_keeps_the_transposed_buffer_without_copy():
    buffer = np.zeros((6, 5, 4), dtype=np.int16)
    volume = Volume(buffer.T, spacing=(1, 1, 1))
    assert np.shares_memory(volume.array, buffer)
    assert volume.array.T.flags.c_contiguous


def test_affines_match_simpleitk_index_to_physical():
    sitk = pytest.importorskip("SimpleITK")
    volume = oblique_volume()
    image = sitk.GetImageFromArray(np.ascontiguousarray(volume.array.T))  # ITK takes (k, j, i)
    image.SetSpacing(volume.spacing)
    image.SetOrigin(volume.origin)
    image.SetDirection(volume.direction.flatten().tolist())
    for index in [(0, 0, 0), (3, 0, 0), (0, 4, 0), (1, 2, 5), (3, 4, 5)]:
        lps = image.TransformIndexToPhysicalPoint(index)
        np.testing.assert_allclose(volume.affine_lps @ (*index, 1), (*lps, 1), atol=1e-9)
        np.testing.assert_allclose(volume.affine_ras @ (*index, 1), (-lps[0], -lps[1], lps[2], 1), atol=1e-9)


@pytest.mark.parametrize("codes", ["RAS", "LPS", "LAS", "LPI", "PIR", "SAL", "IRP"])
def test_axis_codes_agree_with_nibabel(codes):
    direction = direction_from_axis_codes(codes)
    volume = Volume(np.zeros((2, 3, 4)), spacing=(1, 2, 3), direction=direction)
    assert volume.axis_codes == codes
    assert "".join(nib.aff2axcodes(volume.affine_ras)) == codes


def test_axis_codes_of_oblique_directions_agree_with_nibabel():
    rng = np.random.default_rng(0)
    for _ in range(200):
        direction = orthonormalize(rng.normal(size=(3, 3)))
        affine_ras = LPS_TO_RAS @ affine_from_geometry((1, 1, 1), (0, 0, 0), direction)
        assert axis_codes(direction) == "".join(nib.aff2axcodes(affine_ras))


def test_geometry_round_trips_through_the_affine():
    volume = oblique_volume()
    spacing, origin, direction = geometry_from_affine(volume.affine_lps)
    np.testing.assert_allclose(spacing, volume.spacing)
    np.testing.assert_allclose(origin, volume.origin)
    np.testing.assert_allclose(direction, volume.direction, atol=1e-12)


def test_geometry_from_sheared_affine_is_refused():
    affine = np.eye(4)
    affine[0, 2] = 0.3  # the k axis leans along x: gantry-tilt-like shear
    with pytest.raises(InvalidVolumeError, match="shear"):
        geometry_from_affine(affine)


def test_world_and_index_are_inverse():
    volume = oblique_volume()
    indices = np.array([[0, 0, 0], [1.5, 2.25, 3.0], [3, 4, 5]])
    world = index_to_world(volume.affine_lps, indices)
    np.testing.assert_allclose(world_to_index(volume.affine_lps, world), indices, atol=1e-9)
    np.testing.assert_allclose(world[0], volume.origin)


def test_derivation_records_history_and_warnings():
    volume = oblique_volume()
    step = volume.with_step("flip", array=volume.array[::-1]).with_warning("something was decided")
    assert step.history == ("flip",)
    assert step.warnings == ("something was decided",)
    assert volume.history == () and volume.warnings == ()


def test_pickles_for_worker_processes():
    volume = oblique_volume().with_warning("w")
    copy = pickle.loads(pickle.dumps(volume))
    np.testing.assert_array_equal(copy.array, volume.array)
    np.testing.assert_allclose(copy.affine_lps, volume.affine_lps)
    assert copy.warnings == ("w",)
