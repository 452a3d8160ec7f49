"""Resampling: an analytic phantom, SimpleITK's own resampling, and nibabel/SimpleITK reloads as references.

The phantom ``f(p) = A sin(x/a) cos(y/b) + c z`` (``p = (x, y, z)`` in LPS mm) is
sampled on an oblique, anisotropic grid. Linear interpolation of a function
whose second directional derivatives are bounded by ``C`` errs by at most
``sum_n C h_n**2 / 8`` (``h_n`` the input spacings), and the anti-aliasing blur
(sigma ``s_n``) adds at most ``sum_n C s_n**2 / 2``. For the phantom
``C <= A (1/a**2 + 1/b**2)``; the tests assert that bound.
"""

from __future__ import annotations

import math
import os

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

import medconv
from medconv.errors import UsageError
from medconv.transforms import Grid, resample
from medconv.transforms.resample import antialias_sigmas, grid_for_spacing
from medconv.volume import Volume

A, a, b, c = 100.0, 18.0, 25.0, 0.5
CURVATURE = A * (1 / a**2 + 1 / b**2)
OBLIQUE = np.reshape(sitk.Euler3DTransform((0, 0, 0), 0.17, -0.26, 0.44).GetMatrix(), (3, 3))  # radians
SPACING = (0.6, 0.9, 2.5)
SHAPE = (70, 50, 22)
ORIGIN = (-20.0, -25.0, -30.0)


def phantom(points: np.ndarray) -> np.ndarray:
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    return A * np.sin(x / a) * np.cos(y / b) + c * z


def world_points(volume: Volume) -> np.ndarray:
    """LPS world position of every voxel, shape spatial_shape + (3,)."""
    index = np.stack(np.meshgrid(*[np.arange(n) for n in volume.spatial_shape], indexing="ij"), axis=-1)
    return index @ volume.affine_lps[:3, :3].T + volume.affine_lps[:3, 3]


def phantom_volume(dtype=np.float32, **meta) -> Volume:
    grid = Volume(array=np.zeros(SHAPE, dtype=np.uint8), spacing=SPACING, origin=ORIGIN, direction=OBLIQUE)
    values = phantom(world_points(grid)).astype(dtype)
    return grid.replace(array=values, meta=meta)


def index_in(volume_in: Volume, volume_out: Volume) -> np.ndarray:
    """The continuous input index of every output voxel, shape spatial_shape + (3,)."""
    inverse = np.linalg.inv(volume_in.affine_lps)
    return world_points(volume_out) @ inverse[:3, :3].T + inverse[:3, 3]


def interior(volume_in: Volume, volume_out: Volume, margin: float = 1.0) -> np.ndarray:
    """Mask of output voxels at least ``margin`` input voxels inside the input grid."""
    continuous = index_in(volume_in, volume_out)
    upper = np.asarray(volume_in.spatial_shape) - 1 - margin
    return np.all((continuous >= margin) & (continuous <= upper), axis=-1)


def centred_reference(volume: Volume, shape, spacing, direction, shift=(0.0, 0.0, 0.0)) -> Volume:
    """A grid around the centre of ``volume`` (moved by ``shift`` mm)."""
    centre = volume.affine_lps[:3, :3] @ ((np.asarray(volume.spatial_shape) - 1) / 2) + volume.affine_lps[:3, 3]
    origin = centre + np.asarray(shift) - np.asarray(direction) @ (np.asarray(spacing) * (np.asarray(shape) - 1) / 2)
    return Volume(array=np.zeros(shape, dtype=np.int16), spacing=spacing, origin=tuple(origin), direction=direction)


def error_bound(volume: Volume, sigmas=(0.0, 0.0, 0.0)) -> float:
    return CURVATURE * (sum(h * h for h in volume.spacing) / 8 + sum(s * s for s in sigmas) / 2)


def test_phantom_resampled_to_1mm_matches_its_analytic_values():
    volume = phantom_volume()
    out = resample(volume, 1.0)
    assert out.spacing == (1.0, 1.0, 1.0)
    np.testing.assert_allclose(out.direction, OBLIQUE, atol=1e-12)
    sigmas = antialias_sigmas(volume, Grid.of(out))
    assert sigmas[0] > 0 and sigmas[1] > 0 and sigmas[2] == 0  # 0.6 and 0.9 mm are downsampled, 2.5 is not
    mask = interior(volume, out, margin=3)  # the blur reaches ~3 voxels
    assert mask.sum() > 0.5 * mask.size
    errors = np.abs(out.array - phantom(world_points(out)))[mask]
    bound = error_bound(volume, sigmas)
    assert bound < 0.01 * A  # the test is meaningful: under 1 % of the amplitude
    assert errors.max() <= bound, (errors.max(), bound)


def test_phantom_resampled_onto_reference_grid_like():
    volume = phantom_volume()
    reference = centred_reference(volume, shape=(30, 30, 70), spacing=(1.0, 1.2, 1.0),
                                  direction=np.diag([1.0, -1.0, 1.0]))  # 70 mm along z: reaches outside
    out = resample(volume, like=reference, antialias=False)
    assert out.shape == reference.shape
    np.testing.assert_allclose(out.affine_lps, reference.affine_lps, atol=1e-12)
    mask = interior(volume, out)
    assert mask.sum() > 1000
    errors = np.abs(out.array - phantom(world_points(out)))[mask]
    assert errors.max() <= error_bound(volume), errors.max()
    # outside the input: the fill value (MR/unknown modality: 0)
    outside = ~interior(volume, out, margin=-1.0)
    assert outside.any() and np.all(out.array[outside] == 0)


def test_like_accepts_a_path_and_a_grid(tmp_path):
    volume = phantom_volume()
    reference = Volume(array=np.zeros((20, 21, 22), dtype=np.uint8), spacing=(1.5, 1.5, 1.5),
                       origin=(0.0, 0.0, 0.0), direction=np.eye(3))
    path = tmp_path / "reference.nii.gz"
    medconv.write(reference, path)
    by_path = resample(volume, like=path)
    by_volume = resample(volume, like=reference)
    np.testing.assert_allclose(by_path.affine_lps, reference.affine_lps, atol=1e-5)
    np.testing.assert_allclose(by_path.array, by_volume.array, atol=1e-3)
    assert str(path) in by_path.history[-1]


def test_output_grid_rounding_and_centre():
    volume = Volume(array=np.zeros((5, 7, 3), dtype=np.int16), spacing=(0.5, 0.7, 2.5), origin=(1, 2, 3),
                    direction=OBLIQUE)
    grid = grid_for_spacing(volume, (1.0, 1.0, None))
    # 5*0.5/1 = 2.5 -> 3 (half up), 7*0.7/1 = 4.9 -> 5; the kept axis stays as it is
    assert grid.shape == (3, 5, 3)
    assert grid.spacing == (1.0, 1.0, 2.5)
    centre_in = volume.affine_lps @ np.array([2.0, 3.0, 1.0, 1.0])
    out_affine = Volume(array=np.zeros(grid.shape), spacing=grid.spacing, origin=grid.origin,
                        direction=grid.direction_matrix).affine_lps
    centre_out = out_affine @ np.array([1.0, 2.0, 1.0, 1.0])
    np.testing.assert_allclose(centre_out, centre_in, atol=1e-12)
    # the kept axis: same positions along k
    np.testing.assert_allclose(np.asarray(grid.direction_matrix)[:, 2] @ (np.asarray(grid.origin) - volume.origin), 0,
                               atol=1e-12)
    assert grid_for_spacing(volume, (10.0, 10.0, 10.0)).shape == (1, 1, 1)  # never empty
    one_slice = volume.replace(array=np.zeros((5, 7, 1)))
    assert grid_for_spacing(one_slice, (0.25, 0.25, 0.25)).spacing == (0.25, 0.25, 2.5)  # a 2D image stays 2D
    assert grid_for_spacing(one_slice, (0.25, 0.25, 0.25)).shape == (10, 20, 1)  # 2.5 -> 10, 4.9 / 0.25 = 19.6 -> 20


def _sitk_image(volume: Volume) -> sitk.Image:
    """The volume built directly with SimpleITK's API (not through medconv.sitk_bridge)."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(np.asarray(volume.array), (2, 1, 0))))
    image.SetSpacing(volume.spacing)
    image.SetOrigin(volume.origin)
    image.SetDirection(tuple(np.asarray(volume.direction).ravel()))
    return image


def _sitk_resample(volume: Volume, out: Volume, interpolator, fill: float, pixel) -> np.ndarray:
    f = sitk.ResampleImageFilter()
    f.SetSize(out.spatial_shape)
    f.SetOutputSpacing(out.spacing)
    f.SetOutputOrigin(out.origin)
    f.SetOutputDirection(tuple(np.asarray(out.direction).ravel()))
    f.SetInterpolator(interpolator)
    f.SetDefaultPixelValue(fill)
    f.SetOutputPixelType(pixel)
    return np.transpose(sitk.GetArrayFromImage(f.Execute(_sitk_image(volume))), (2, 1, 0))


def label_volume() -> Volume:
    points = world_points(Volume(array=np.zeros(SHAPE, dtype=np.uint8), spacing=SPACING, origin=ORIGIN,
                                 direction=OBLIQUE))
    labels = np.zeros(SHAPE, dtype=np.uint8)
    for value, centre, radius in ((1, (0, 0, 0), 12), (2, (8, 6, -3), 6), (5, (-12, 5, 8), 5), (200, (5, -8, 6), 4)):
        labels[np.linalg.norm(points - centre, axis=-1) <= radius] = value
    return Volume(array=labels, spacing=SPACING, origin=ORIGIN, direction=OBLIQUE, kind="label",
                  meta={"modality": "CT"})


@pytest.mark.parametrize("asked", [pytest.param(None, id="default"), pytest.param("linear", id="linear-asked"),
                                   pytest.param("bspline", id="bspline-asked")])
def test_label_map_keeps_its_label_set_and_matches_simpleitk_nearest(asked):
    labels = label_volume()
    out = resample(labels, 1.0, interpolation=asked)
    assert out.kind == "label" and out.array.dtype == np.uint8
    assert set(np.unique(out.array)) == set(np.unique(labels.array)) == {0, 1, 2, 5, 200}
    expected = _sitk_resample(labels, out, sitk.sitkNearestNeighbor, 0.0, sitk.sitkUInt8)
    # a sample exactly halfway between two input voxels (here every 5th slice: 2.5 -> 1 mm) has two nearest
    # voxels; medconv rounds such ties up, SimpleITK as its float rounding falls: compare everywhere else
    continuous = index_in(labels, out)
    tie = np.any(np.abs(continuous - np.floor(continuous) - 0.5) < 1e-6, axis=-1)
    assert 0 < tie.mean() < 0.5  # most voxels are compared
    np.testing.assert_array_equal(out.array[~tie], expected[~tie])
    assert "nearest (label)" in out.history[-1] and "fill 0" in out.history[-1]  # CT label: fill 0, not -1024


def test_intensity_agrees_with_simpleitk_resampling_and_reloads_identically(tmp_path):
    volume = phantom_volume()
    out = resample(volume, (1.0, 1.25, 1.0), antialias=False)
    expected = _sitk_resample(volume, out, sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    np.testing.assert_allclose(out.array, expected, rtol=0, atol=1e-4)
    path = tmp_path / "resampled.nii.gz"
    medconv.write(out, path)
    loaded = nib.load(path)
    np.testing.assert_allclose(loaded.affine, out.affine_ras, atol=1e-4)
    np.testing.assert_array_equal(np.asanyarray(loaded.dataobj), out.array)
    image = sitk.ReadImage(str(path))
    np.testing.assert_allclose(image.GetSpacing(), out.spacing, atol=1e-5)
    np.testing.assert_allclose(image.GetOrigin(), out.origin, atol=1e-4)
    np.testing.assert_allclose(image.GetDirection(), np.asarray(out.direction).ravel(), atol=1e-5)
    np.testing.assert_array_equal(np.transpose(sitk.GetArrayFromImage(image), (2, 1, 0)), out.array)


def test_ct_integers_round_back_to_int16_and_fill_with_air():
    volume = phantom_volume(dtype=np.int16, modality="CT")
    out = resample(volume, like=centred_reference(volume, (40, 40, 40), (1.0, 1.0, 1.0), np.eye(3), (0, 0, 20)),
                   antialias=False)
    assert out.array.dtype == np.int16
    reference = _sitk_resample(volume, out, sitk.sitkLinear, -1024.0, sitk.sitkFloat32)
    expected = np.trunc(reference + np.copysign(0.5, reference)).astype(np.int16)
    np.testing.assert_array_equal(out.array, expected)
    outside = ~interior(volume, out, margin=-1.0)
    assert outside.any() and np.all(out.array[outside] == -1024)
    as_float = resample(volume, like=Grid.of(out), antialias=False, dtype="float32")
    assert as_float.array.dtype == np.float32
    np.testing.assert_allclose(as_float.array, reference, atol=1e-3)


def test_explicit_fill_and_fill_that_does_not_fit():
    volume = phantom_volume(dtype=np.int16)
    reference = Volume(array=np.zeros((10, 10, 10)), spacing=(1, 1, 1), origin=(500.0, 500.0, 500.0))
    assert np.all(resample(volume, like=reference, fill=-7).array == -7)
    unsigned = volume.replace(array=np.abs(np.asarray(volume.array)).astype(np.uint16))
    with pytest.raises(UsageError, match="does not fit"):
        resample(unsigned, like=reference, fill=-1)


def test_bspline_and_nearest_interpolation():
    volume = phantom_volume()
    bspline = resample(volume, 1.0, interpolation="bspline", antialias=False)
    expected = _sitk_resample(volume, bspline, sitk.sitkBSpline, 0.0, sitk.sitkFloat32)
    np.testing.assert_allclose(bspline.array, expected, atol=1e-3)
    nearest = resample(volume, 1.0, interpolation="nearest")
    assert "anti-aliased" not in nearest.history[-1]  # nearest copies values: no smoothing
    assert set(np.unique(nearest.array)) <= set(np.unique(volume.array))


def test_antialiasing_suppresses_aliasing_when_downsampling():
    # a wave of period 1.25 mm: resolved at 0.5 mm, far above the Nyquist limit of a 2 mm grid (4 mm)
    x = np.arange(128) * 0.5
    stripes = np.broadcast_to((100 * np.cos(2 * np.pi * x / 1.25))[:, None, None], (128, 4, 4)).astype(np.float32)
    volume = Volume(array=stripes, spacing=(0.5, 1, 1))
    plain = resample(volume, (2.0, None, None), antialias=False)
    smooth = resample(volume, (2.0, None, None))
    inner = slice(2, -2)
    assert plain.array[inner].std() > 15  # aliasing: a slow false wave of high contrast
    assert smooth.array[inner].std() < 0.02 * plain.array[inner].std()
    sigma = math.sqrt(2.0**2 - 0.5**2) / (2 * math.sqrt(2 * math.log(2)))
    assert f"sigma {sigma:.3g}, 0, 0 mm" in smooth.history[-1]


def test_4d_volume_resampled_per_volume():
    volume = phantom_volume()
    four = volume.replace(array=np.stack([volume.array, 2 * volume.array], axis=3))
    out = resample(four, 1.5)
    single = resample(volume, 1.5)
    assert out.shape == single.shape + (2,)
    np.testing.assert_allclose(out.array[..., 0], single.array, atol=1e-4)
    np.testing.assert_allclose(out.array[..., 1], 2 * single.array, atol=2e-4)


@pytest.mark.parametrize("kwargs", [pytest.param({}, id="nothing"),
                                    pytest.param({"spacing": 1, "like": Grid((1, 1, 1), (1, 1, 1), (0, 0, 0),
                                                                             tuple(np.eye(3).ravel()))}, id="both"),
                                    pytest.param({"spacing": (1, 2)}, id="two-values"),
                                    pytest.param({"spacing": -1}, id="negative"),
                                    pytest.param({"spacing": 1, "interpolation": "cubicspline"}, id="bad-method")])
def test_bad_requests_are_usage_errors(kwargs):
    with pytest.raises(UsageError):
        resample(phantom_volume(), **kwargs)


def test_real_lidc_series_resampled_to_1mm_agrees_with_simpleitk(tmp_path):
    from conftest import corpus_path

    root = corpus_path("lidc")
    folders = sorted({p.parent for p in root.rglob("*.dcm")})
    if not folders:
        pytest.skip("no DICOM files in the LIDC corpus")
    reader = sitk.ImageSeriesReader()
    files = reader.GetGDCMSeriesFileNames(str(folders[0]))
    reader.SetFileNames(files)
    image = reader.Execute()
    volume = Volume(array=np.transpose(sitk.GetArrayFromImage(image), (2, 1, 0)), spacing=image.GetSpacing(),
                    origin=image.GetOrigin(), direction=np.reshape(image.GetDirection(), (3, 3)),
                    meta={"modality": "CT", "units": "HU"})
    out = resample(volume, 1.0, antialias=False, dtype="float32")
    expected = _sitk_resample(volume, out, sitk.sitkLinear, -1024.0, sitk.sitkFloat32)
    np.testing.assert_allclose(out.array, expected, atol=1e-2)
    assert out.spacing == (1.0, 1.0, 1.0)


def test_thread_count_does_not_change_the_result():
    volume = phantom_volume(dtype=np.int16, modality="CT")
    np.testing.assert_array_equal(resample(volume, 1.0, threads=1).array, resample(volume, 1.0).array)


def test_volume_already_on_the_grid_is_left_unchanged():
    volume = phantom_volume(dtype=np.int16)
    out = resample(volume, SPACING)
    assert out.array is volume.array or np.shares_memory(out.array, volume.array)
    assert out.history[-1].startswith("resample: already on spacing (0.6, 0.9, 2.5) mm")
    same = resample(volume, like=volume)
    assert np.shares_memory(same.array, volume.array)


def test_a_label_lost_by_downsampling_is_named_in_a_warning():
    labels = np.zeros((40, 40, 40), dtype=np.int16)
    labels[5:30, 5:30, 5:30] = 1
    labels[33, 33, 33] = 9  # one 0.5 mm voxel: falls between the 4 mm samples
    volume = Volume(array=labels, spacing=(0.5, 0.5, 0.5), kind="label")
    out = resample(volume, 4.0)
    assert set(np.unique(out.array)) == {0, 1}
    assert any("label(s) 9 vanished" in warning for warning in out.warnings)
    assert not resample(volume.replace(array=np.where(labels == 9, 0, labels)), 4.0).warnings


# -- the separable path against the previous implementation's algorithm ------------------------

def _previous_algorithm(volume: Volume, out: Volume, sigmas, fill: float) -> np.ndarray:
    """What medconv did before the separable path, in SimpleITK: DiscreteGaussian (variance sigma², max error 0.01,
    max kernel width 128, image spacing) on a float32 copy, then a linear ResampleImageFilter onto ``out``'s grid."""
    image = sitk.Cast(_sitk_image(volume), sitk.sitkFloat32)
    smoother = sitk.DiscreteGaussianImageFilter()
    smoother.SetVariance([s * s for s in sigmas])
    smoother.SetMaximumError(0.01)
    smoother.SetMaximumKernelWidth(128)
    smoother.SetUseImageSpacing(True)
    smoothed = smoother.Execute(image)
    f = sitk.ResampleImageFilter()
    f.SetSize(out.spatial_shape)
    f.SetOutputSpacing(out.spacing)
    f.SetOutputOrigin(out.origin)
    f.SetOutputDirection(tuple(np.asarray(out.direction).ravel()))
    f.SetInterpolator(sitk.sitkLinear)
    f.SetDefaultPixelValue(fill)
    f.SetOutputPixelType(sitk.sitkFloat32)
    return np.transpose(sitk.GetArrayFromImage(f.Execute(smoothed)), (2, 1, 0))


@pytest.mark.parametrize("variance", [0.05, 0.182, 1.0, 4.0, 30.0])
def test_discrete_gaussian_kernel_is_itks(variance):
    from medconv.transforms.gaussian import discrete_gaussian_kernel

    kernel = discrete_gaussian_kernel(variance)
    impulse = np.zeros((1, 1, 301), dtype=np.float32)
    impulse[0, 0, 150] = 1.0
    smoother = sitk.DiscreteGaussianImageFilter()
    smoother.SetVariance([variance, 0.0, 0.0])
    smoother.SetMaximumError(0.01)
    smoother.SetMaximumKernelWidth(128)
    smoother.SetUseImageSpacing(False)
    response = sitk.GetArrayFromImage(smoother.Execute(sitk.GetImageFromArray(impulse))).ravel()
    radius = len(kernel) // 2
    assert np.count_nonzero(response) == len(kernel)  # the same truncation
    np.testing.assert_allclose(response[150 - radius:151 + radius], kernel, atol=2e-7)
    assert abs(kernel.sum() - 1) < 1e-12
    # the 1 % of mass cut off is in the tails: the kept kernel has 84-96 % of the variance asked for
    assert 0.8 * variance < (kernel * np.arange(-radius, radius + 1) ** 2).sum() <= variance


def ct_phantom(shape=(90, 80, 40), spacing=(0.7, 0.75, 1.25)) -> Volume:
    """int16 HU with sharp edges and noise, on an LPS grid like an axial CT."""
    rng = np.random.default_rng(5)
    grid = Volume(array=np.zeros(shape, dtype=np.int16), spacing=spacing, origin=(-30.0, -25.0, 40.0),
                  direction=np.diag([1.0, 1.0, -1.0]))
    points = world_points(grid)
    hu = np.where(np.linalg.norm(points[..., :2] - (1.0, 3.0), axis=-1) < 22, 40.0, -1000.0)
    hu[np.linalg.norm(points - (8.0, 5.0, 15.0), axis=-1) < 6] = 700.0
    hu += rng.normal(0, 15, shape)
    return grid.replace(array=np.round(hu).astype(np.int16), meta={"modality": "CT", "units": "HU"})


@pytest.mark.parametrize("spacing", [pytest.param((1.0, 1.0, 1.0), id="1mm"),
                                     pytest.param((2.0, 3.1, 1.25), id="strong-downsampling"),
                                     pytest.param((0.5, 1.0, 0.6), id="mixed")])
def test_separable_path_equals_the_previous_algorithm(spacing):
    volume = ct_phantom()
    out = resample(volume, spacing, dtype="float32")
    sigmas = antialias_sigmas(volume, Grid.of(out))
    expected = _previous_algorithm(volume, out, sigmas, -1024.0)
    np.testing.assert_allclose(out.array, expected, rtol=0, atol=2e-3)  # float32 sums of values up to 1000 HU
    np.testing.assert_allclose(out.affine_lps, grid_affine(grid_for_spacing(volume, spacing)), atol=1e-12)
    as_int = resample(volume, spacing)  # int16 HU: the same values, rounded half away from zero
    assert as_int.array.dtype == np.int16
    near_half = np.abs(np.abs(expected - np.trunc(expected)) - 0.5) < 1e-2
    rounded = np.trunc(expected + np.copysign(0.5, expected))
    np.testing.assert_array_equal(as_int.array[~near_half], rounded[~near_half])


def grid_affine(grid: Grid) -> np.ndarray:
    from medconv.geometry import affine_from_geometry

    return affine_from_geometry(grid.spacing, grid.origin, grid.direction_matrix)


def test_separable_path_onto_a_permuted_and_flipped_reference():
    """A reference in RAS, another axis order and partly outside: still axis-aligned, so separable."""
    from medconv.transforms.separable import axis_map

    volume = ct_phantom()
    direction = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])  # i <- +z... a permutation + flips
    reference = centred_reference(volume, shape=(30, 70, 50), spacing=(1.1, 0.9, 1.3), direction=direction,
                                  shift=(2.0, -3.0, 25.0))
    assert axis_map(volume.spacing, volume.origin, volume.direction, reference.spatial_shape, reference.spacing,
                    reference.origin, reference.direction) is not None
    out = resample(volume, like=reference, dtype="float32")
    np.testing.assert_allclose(out.affine_lps, reference.affine_lps, atol=1e-12)
    sigmas = antialias_sigmas(volume, Grid.of(out))
    assert any(sigmas)
    expected = _previous_algorithm(volume, out, sigmas, -1024.0)
    np.testing.assert_allclose(out.array, expected, rtol=0, atol=2e-3)
    assert np.any(out.array == -1024.0)  # the part outside the input is filled


def test_thread_counts_give_identical_results():
    volume = ct_phantom()
    one = resample(volume, 1.0, threads=1, dtype="float32")
    for threads in (2, 3):
        np.testing.assert_array_equal(resample(volume, 1.0, threads=threads, dtype="float32").array, one.array)


def test_window_fused_into_the_resampling_equals_the_steps_one_by_one():
    from medconv.transforms import Preprocessing, window

    volume = ct_phantom()
    for scale in ("unit", "uint8", "none"):
        prep = Preprocessing.from_options(spacing="1", window="lung", scale=scale)
        fused = prep(volume)
        steps = window(resample(volume, 1.0, dtype="float32" if scale != "none" else None), preset="lung",
                       scale=scale)
        assert fused.array.dtype == steps.array.dtype
        np.testing.assert_array_equal(fused.array, steps.array)
        assert fused.history == steps.history and dict(fused.meta) == dict(steps.meta)


def test_threads_follow_omp_num_threads_when_it_is_set(monkeypatch):
    from medconv.transforms.separable import available_threads

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # a cluster job script's share, or the user's
    assert available_threads(0) == 1
    assert available_threads(3) == 3  # an explicit count wins
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert available_threads(0) == len(os.sched_getaffinity(0))
