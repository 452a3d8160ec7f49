"""Preprocessing: fixed order, history, pickling, description; casting rules; the CLI options."""

from __future__ import annotations

import json
import pickle
from concurrent.futures import ProcessPoolExecutor

import click
import numpy as np
import pytest
from click.testing import CliRunner

import medconv
from medconv.cli.transform_options import preprocessing_from_cli, transform_options
from medconv.errors import UsageError
from medconv.geometry import direction_from_axis_codes
from medconv.transforms import ORDER, Preprocessing, cast
from medconv.volume import Volume


def ct_volume() -> Volume:
    rng = np.random.default_rng(3)
    data = rng.integers(-1024, 1500, size=(12, 10, 6)).astype(np.int16)
    return Volume(array=data, spacing=(0.7, 0.7, 2.5), origin=(-50, -60, 10), direction=direction_from_axis_codes("LPS"),
                  meta={"modality": "CT", "units": "HU", "window": [40, 400]})


def test_steps_run_in_the_fixed_order_and_are_recorded():
    prep = Preprocessing.from_options(orient="RAS", spacing="1,1,keep", window="lung", scale="uint8", dtype="int16")
    out = prep(ct_volume())
    steps = [entry.split(" ")[0] for entry in out.history]
    assert steps == ["reorient", "resample", "window", "cast"]
    assert ORDER == ("reorient", "resample", "intensity", "cast")
    assert out.axis_codes == "RAS"
    # the kept axis is the output's k (reorient ran first); 12*0.7 = 8.4 -> 8, 10*0.7 = 7
    assert out.spacing == (1.0, 1.0, 2.5) and out.shape == (8, 7, 6)
    assert out.array.dtype == np.int16 and out.array.min() >= 0 and out.array.max() <= 255
    assert "window lung L -600 W 1500 -> [-1350, 150], scaled to 0-255 uint8" in out.history[2]
    assert "cast uint8 -> int16" == out.history[3]


def test_resample_keeps_floats_for_a_scaled_window():
    volume = ct_volume()
    out = Preprocessing.from_options(spacing="1", window="-600,1500", scale="unit")(volume)
    assert out.array.dtype == np.float32
    # interpolated values were not rounded to whole HU before scaling
    fractions = (out.array.astype(np.float64) * 1500) % 1
    assert np.any((fractions > 0.01) & (fractions < 0.99))


def test_identity_and_description():
    assert Preprocessing().is_identity
    assert Preprocessing.from_options(scale="none").is_identity
    assert Preprocessing().describe() == {}
    volume = ct_volume()
    assert Preprocessing()(volume) is volume
    prep = Preprocessing.from_options(orient="las", spacing="0.8,0.8,0", interpolation="bspline", fill="-1000",
                                      window="dicom", scale="unit")
    description = prep.describe()
    assert json.loads(json.dumps(description)) == description
    assert description == {"orient": "LAS", "spacing": [0.8, 0.8, "keep"], "interpolation": "bspline",
                           "fill": -1000.0, "antialias": True, "window": "dicom", "scale": "unit"}


def test_dicom_window_in_pipeline():
    out = Preprocessing.from_options(window="dicom")(ct_volume())
    assert out.array.min() >= -160 and out.array.max() <= 240
    assert "window dicom L 40 W 400" in out.history[-1]


def _apply(prep_and_volume):
    prep, volume = prep_and_volume
    return prep(volume)


def test_pickles_and_runs_in_a_worker_process(tmp_path):
    reference = Volume(array=np.zeros((8, 8, 8), dtype=np.uint8), spacing=(1.0, 1.0, 1.0), origin=(-50, -60, 10))
    path = tmp_path / "ref.nii.gz"
    medconv.write(reference, path)
    prep = Preprocessing.from_options(orient="RAS", like=path, normalize="percentile:1,99", dtype="float32")
    clone = pickle.loads(pickle.dumps(prep))
    assert clone == prep and hash(clone) == hash(prep)
    volume = ct_volume()
    with ProcessPoolExecutor(max_workers=1) as pool:
        remote = pool.submit(_apply, (prep, volume)).result()
    local = prep(volume)
    np.testing.assert_array_equal(remote.array, local.array)
    assert remote.history == local.history
    assert remote.shape == (8, 8, 8)


@pytest.mark.parametrize("options,message", [
    pytest.param({"window": "lung", "clip": "-1000,400"}, "choose one of", id="window-and-clip"),
    pytest.param({"scale": "unit"}, "needs a value range", id="scale-without-range"),
    pytest.param({"normalize": "zscore", "scale": "unit"}, "takes no --scale", id="zscore-with-scale"),
    pytest.param({"spacing": "1", "like": Volume(array=np.zeros((2, 2, 2)), spacing=(1, 1, 1))}, "not both",
                 id="spacing-and-like"),
    pytest.param({"orient": "XYZ"}, "not an orientation", id="bad-orient"),
    pytest.param({"dtype": "complex64"}, "unsupported dtype", id="bad-dtype"),
    pytest.param({"spacing": "1,2"}, "one or three", id="spacing-two-values"),
    pytest.param({"normalize": "percentile:99,1"}, "MIN must be below MAX", id="percentiles-reversed"),
    pytest.param({"interpolation": "bspline"}, "only apply to resampling", id="interpolation-without-resampling"),
    pytest.param({"fill": "0"}, "only apply to resampling", id="fill-without-resampling"),
])
def test_options_that_do_not_fit_are_usage_errors(options, message):
    with pytest.raises(UsageError, match=message):
        Preprocessing.from_options(**options)


# -- cast -------------------------------------------------------------------------------

def _values(values, dtype, kind="intensity") -> Volume:
    return Volume(array=np.asarray(values, dtype=dtype).reshape(-1, 1, 1), spacing=(1, 1, 1), kind=kind)


def test_cast_rounds_half_away_from_zero():
    out = cast(_values([-2.5, -1.5, -0.4, 0.5, 1.5, 2.49], np.float32), "int16")
    assert out.array.ravel().tolist() == [-3, -2, 0, 1, 2, 2]
    assert out.history[-1] == "cast float32 -> int16 (rounded to nearest)"


def test_cast_out_of_range_is_an_error_unless_clipping():
    volume = _values([-1024, 0, 3071], np.int16)
    with pytest.raises(UsageError, match="do not fit uint8"):
        cast(volume, "uint8")
    assert cast(volume, "uint8", clip=True).array.ravel().tolist() == [0, 0, 255]
    clipped_first = Preprocessing.from_options(clip="0,255", dtype="uint8")(volume)
    assert clipped_first.array.ravel().tolist() == [0, 0, 255]


def test_cast_refuses_nan_to_integer_and_keeps_labels_integer():
    with pytest.raises(UsageError, match="NaN"):
        cast(_values([np.nan, 1.0], np.float32), "int16")
    label = cast(_values([0, 1], np.uint8, kind="label"), "float32")
    assert label.array.dtype == np.uint8 and any("label maps keep" in w for w in label.warnings)
    assert cast(_values([0, 1, 300], np.uint16, kind="label"), "int16").array.dtype == np.int16


def test_cast_to_float32_warns_about_inexact_large_integers():
    out = cast(_values([0, 2**24 + 1], np.int32), "float32")
    assert any("not exact" in warning for warning in out.warnings)
    assert not cast(_values([0, 2**20], np.int32), "float32").warnings


# -- CLI options ---------------------------------------------------------------------------

@click.command()
@transform_options
def _command(**kwargs):
    prep = preprocessing_from_cli(**kwargs)
    click.echo(json.dumps(prep.describe() if prep else None))


@pytest.mark.parametrize("args,expected", [
    pytest.param([], None, id="nothing"),
    pytest.param(["--spacing", "1", "--window", "lung", "--scale", "unit", "--orient", "RAS"],
                 {"orient": "RAS", "spacing": [1.0, 1.0, 1.0], "interpolation": "linear",
                  "fill": "auto (-1024 for CT, else 0)", "antialias": True,
                  "window": {"name": "lung", "level": -600.0, "width": 1500.0}, "scale": "unit"}, id="done-when"),
    pytest.param(["--clip", "-1000,400", "--dtype", "int16"],
                 {"clip": [-1000.0, 400.0], "scale": "none", "dtype": "int16", "cast_clip": False}, id="negative-clip"),
    pytest.param(["--spacing", "0.8,0.8,keep", "--fill", "-1000", "--interpolation", "bspline", "--no-antialias"],
                 {"spacing": [0.8, 0.8, "keep"], "interpolation": "bspline", "fill": -1000.0, "antialias": False},
                 id="resampling-options"),
    pytest.param(["--normalize", "percentile:2,98"], {"normalize": "percentile", "percentiles": [2.0, 98.0],
                                                      "scale": "unit"}, id="percentile"),
])
def test_cli_options_build_the_preprocessing(args, expected):
    result = CliRunner().invoke(_command, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == expected


@pytest.mark.parametrize("args,option", [
    pytest.param(["--spacing", "abc"], "--spacing", id="spacing-not-a-number"),
    pytest.param(["--window", "lungs-wide"], "--window", id="unknown-preset"),
    pytest.param(["--window", "40,-5"], "--window", id="negative-width"),
    pytest.param(["--orient", "RAZ"], "--orient", id="bad-orient"),
    pytest.param(["--interpolation", "sinc"], "--interpolation", id="bad-interpolation"),
    pytest.param(["--scale", "unit"], "--scale", id="scale-without-window"),
    pytest.param(["--window", "lung", "--normalize", "zscore"], "--window", id="window-and-normalize"),
    pytest.param(["--dtype", "float16"], "--dtype", id="bad-dtype"),
    pytest.param(["--spacing", "1", "--fill", "air"], "--fill", id="fill-not-a-number"),
    pytest.param(["--fill", "0"], "--fill", id="fill-without-resampling"),
    pytest.param(["--clip", "400,-1000"], "--clip", id="clip-reversed"),
    pytest.param(["--normalize", "zscore:1,2"], "--normalize", id="zscore-with-parameters"),
])
def test_cli_bad_values_are_bad_parameters(args, option):
    result = CliRunner().invoke(_command, args)
    assert result.exit_code == 2
    assert f"Invalid value for '{option}'" in result.output or f"Invalid value for {option}" in result.output


# -- end to end on a real series --------------------------------------------------------------

def test_lidc_series_orient_resample_window_agrees_with_simpleitk_in_world_space(tmp_path):
    """``--orient RAS --spacing 1 --window lung --scale unit`` on real CT vs SimpleITK + nibabel, world space."""
    import nibabel as nib
    import SimpleITK as sitk
    from conftest import corpus_path
    from references import assert_same_in_world

    folder = sorted({p.parent for p in corpus_path("lidc").rglob("*.dcm")})[0]
    prep = Preprocessing.from_options(orient="RAS", spacing="1", window="lung", scale="unit", antialias=False)
    ours = prep(medconv.read(folder))
    path = tmp_path / "ours.nii"
    medconv.write(ours, path)

    # the reference: SimpleITK reads and resamples; the grid follows the documented rule
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    image = reader.Execute()
    size = np.array(image.GetSize())
    spacing = np.array(image.GetSpacing())
    direction = np.reshape(image.GetDirection(), (3, 3))
    new_size = np.floor(size * spacing / 1.0 + 0.5).astype(int)
    origin = np.array(image.GetOrigin()) + direction @ ((spacing * (size - 1) - (new_size - 1)) / 2)
    resampled = sitk.Resample(sitk.Cast(image, sitk.sitkFloat32), [int(n) for n in new_size], sitk.Transform(),
                              sitk.sitkLinear, tuple(origin), (1.0, 1.0, 1.0), image.GetDirection(), -1024.0,
                              sitk.sitkFloat32)
    values = np.transpose(sitk.GetArrayFromImage(resampled), (2, 1, 0)).astype(np.float64)
    expected = ((np.clip(values, -1350, 150) + 1350) / 1500).astype(np.float32)
    affine = np.eye(4)
    affine[:3, :3] = direction
    affine[:3, 3] = origin
    reference = nib.Nifti1Image(expected, np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine)

    assert_same_in_world(nib.load(path), reference, atol_mm=1e-3, value_atol=1e-5)
    assert "".join(nib.aff2axcodes(nib.load(path).affine)) == "RAS"


def test_direct_construction_normalises_values():
    prep = Preprocessing(spacing=1, clip=[-1000, 400], scale="unit", fill="-1000")  # noqa: strings on purpose
    assert prep.spacing == (1.0, 1.0, 1.0) and prep.clip == (-1000.0, 400.0) and prep.fill == -1000.0
    assert prep == Preprocessing.from_options(spacing="1", clip="-1000,400", scale="unit", fill=-1000)
    with pytest.raises(UsageError):
        Preprocessing(window=(40, 0))
    with pytest.raises(UsageError, match="must be a Grid"):
        Preprocessing(like="ref.nii.gz")
