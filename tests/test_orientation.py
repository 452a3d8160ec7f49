"""Reorientation to all 48 axis codes: exact, round-trips, every voxel keeps its world position.

References: plain affine maths (each voxel's world position before and after) and
nibabel's own orientation tools (``io_orientation``/``ornt_transform``/
``apply_orientation``, ``as_reoriented``, ``as_closest_canonical``).
"""

from __future__ import annotations

import itertools

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from nibabel.orientations import apply_orientation, axcodes2ornt, io_orientation, ornt_transform

from medconv.errors import UsageError
from medconv.geometry import direction_from_axis_codes
from medconv.transforms import reorient
from medconv.volume import Volume

PAIRS = (("L", "R"), ("P", "A"), ("S", "I"))
ALL_CODES = sorted(
    "".join(PAIRS[world][sign] for world, sign in zip(order, signs))
    for order in itertools.permutations(range(3))
    for signs in itertools.product((0, 1), repeat=3)
)
assert len(ALL_CODES) == 48 and len(set(ALL_CODES)) == 48

SLIGHTLY_OBLIQUE = np.reshape(sitk.Euler3DTransform((0, 0, 0), 0.14, -0.09, 0.21).GetMatrix(), (3, 3)) \
    @ direction_from_axis_codes("LAI")  # 8, -5, 12 degrees off LAI


def _volume(direction, shape=(4, 5, 6), extra=()) -> Volume:
    data = np.arange(np.prod(shape + extra), dtype=np.int32).reshape(shape + extra)
    return Volume(array=data, spacing=(0.5, 0.8, 2.0), origin=(10.0, -20.0, 30.0), direction=direction,
                  meta={"modality": "CT"})


def _assert_same_world_values(before: Volume, after: Volume) -> None:
    """Every voxel of ``after`` holds the value of the voxel of ``before`` at the same world point."""
    index = np.stack(np.meshgrid(*[np.arange(n) for n in after.spatial_shape], indexing="ij"), axis=-1).reshape(-1, 3)
    world = index @ after.affine_lps[:3, :3].T + after.affine_lps[:3, 3]
    back = world @ np.linalg.inv(before.affine_lps)[:3, :3].T + np.linalg.inv(before.affine_lps)[:3, 3]
    rounded = np.rint(back)
    np.testing.assert_allclose(back, rounded, atol=1e-9)  # lands exactly on a voxel of the input
    rounded = rounded.astype(int)
    np.testing.assert_array_equal(after.array[tuple(index.T)], before.array[tuple(rounded.T)])


@pytest.mark.parametrize("start", [pytest.param("LPS", id="from-LPS"), pytest.param("RAS", id="from-RAS"),
                                   pytest.param("SLA", id="from-SLA")])
@pytest.mark.parametrize("target", ALL_CODES)
def test_every_orientation_exact_round_trip_and_world_preserving(start, target):
    volume = _volume(direction_from_axis_codes(start))
    out = reorient(volume, target)
    assert out.axis_codes == target
    assert out.array.dtype == volume.array.dtype and out.array.size == volume.array.size
    _assert_same_world_values(volume, out)
    back = reorient(out, start)
    np.testing.assert_array_equal(back.array, volume.array)
    np.testing.assert_allclose(back.affine_lps, volume.affine_lps, atol=1e-12)
    assert sorted(out.spacing) == sorted(volume.spacing)


@pytest.mark.parametrize("target", ALL_CODES)
def test_matches_nibabel_orientation_tools(target):
    volume = _volume(SLIGHTLY_OBLIQUE)
    image = nib.Nifti1Image(np.asarray(volume.array), volume.affine_ras)
    transform = ornt_transform(io_orientation(image.affine), axcodes2ornt(tuple(target)))
    expected = image.as_reoriented(transform)
    out = reorient(volume, target)
    np.testing.assert_array_equal(out.array, apply_orientation(np.asarray(volume.array), transform))
    np.testing.assert_array_equal(out.array, np.asanyarray(expected.dataobj))
    np.testing.assert_allclose(out.affine_ras, expected.affine, atol=1e-9)
    assert "".join(nib.aff2axcodes(out.affine_ras)) == target


def test_ras_equals_nibabel_closest_canonical_on_oblique_volume():
    volume = _volume(SLIGHTLY_OBLIQUE)
    canonical = nib.as_closest_canonical(nib.Nifti1Image(np.asarray(volume.array), volume.affine_ras))
    out = reorient(volume, "RAS")
    np.testing.assert_array_equal(out.array, np.asanyarray(canonical.dataobj))
    np.testing.assert_allclose(out.affine_ras, canonical.affine, atol=1e-9)
    np.testing.assert_allclose(out.direction, volume.direction[:, [0, 1, 2]] * [-1, 1, -1], atol=1e-12)


def test_4d_keeps_the_fourth_axis_last():
    volume = _volume(direction_from_axis_codes("LPS"), extra=(3,))
    out = reorient(volume, "SAR")
    assert out.shape == (6, 5, 4, 3)
    for t in range(3):
        _assert_same_world_values(volume.replace(array=volume.array[..., t]), out.replace(array=out.array[..., t]))


def test_2d_volume_becomes_one_slice_3d():
    volume = Volume(array=np.arange(12).reshape(3, 4), spacing=(1, 2, 3), direction=np.eye(3))
    out = reorient(volume, "RAS")
    assert out.shape == (3, 4, 1)
    np.testing.assert_array_equal(out.array[:, :, 0], volume.array[::-1, ::-1])


def test_same_orientation_returns_volume_unchanged_and_history_is_recorded():
    volume = _volume(direction_from_axis_codes("LPS"))
    assert reorient(volume, "lps") is volume
    out = reorient(volume, "RAS")
    assert out.history == ("reorient LPS -> RAS: axes (i, j, k) <- (-i, -j, k), exact, no interpolation",)
    assert out.meta["modality"] == "CT"
    assert np.shares_memory(out.array, volume.array)  # a view: no copy, no interpolation


@pytest.mark.parametrize("codes", [pytest.param("RAX", id="bad-letter"), pytest.param("RRS", id="repeated-axis"),
                                   pytest.param("RA", id="too-short"), pytest.param("RLS", id="same-axis-twice")])
def test_invalid_codes_are_usage_errors(codes):
    with pytest.raises(UsageError, match="not an orientation"):
        reorient(_volume(np.eye(3)), codes)
