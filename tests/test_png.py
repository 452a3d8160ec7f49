"""PNG output: values and depth as Pillow reads them back, pixel size in pHYs, refusals that say what to do."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

import medconv
from medconv import Volume
from medconv.errors import OutputExistsError, UnsupportedFormatError
from medconv.options import WriteOptions
from medconv.registry import writer_for, writer_for_format

RNG = np.random.default_rng(7)


def plane_volume(plane: np.ndarray, spacing=(0.14, 0.14), kind="intensity", **meta) -> Volume:
    """A (rows, columns[, c]) picture as medconv's (i, j, 1[, c]) volume."""
    array = plane.T[:, :, None] if plane.ndim == 2 else plane.transpose(1, 0, 2)[:, :, None, :]
    if plane.ndim == 3:
        meta.setdefault("axis4", "channel")
    return Volume(array, spacing=(*spacing, 1.0), kind=kind, meta=meta)


def write(volume, path, **options):
    return medconv.write(volume, path, options=WriteOptions(**options))


def test_png_is_registered_for_suffix_and_format():
    assert writer_for("x.png").name == "png"
    assert writer_for_format("png")[1] == ".png"


def test_16bit_modality_values_are_lossless(tmp_path):
    values = RNG.integers(0, 32768, (41, 57), dtype=np.uint16)
    written = write(plane_volume(values), tmp_path / "cr.png", png_depth=16)
    with Image.open(tmp_path / "cr.png") as image:
        assert image.mode == "I;16"
        np.testing.assert_array_equal(np.asarray(image), values)  # row r, column c as the array's j = r, i = c
        px_per_m = round(image.info["dpi"][0] / 0.0254)
    assert px_per_m == round(1000 / 0.14)
    assert written == [str(tmp_path / "cr.png"), str(tmp_path / "cr.json")]
    assert json.loads((tmp_path / "cr.json").read_text())["spacing"][:2] == [0.14, 0.14]


def test_png_spacing_reads_back(tmp_path):
    write(plane_volume(RNG.integers(0, 255, (20, 30), dtype=np.uint8), spacing=(0.139, 0.2)), tmp_path / "a.png")
    volume = medconv.read(tmp_path / "a.png")
    np.testing.assert_allclose(volume.spacing[:2], (1000 / round(1000 / 0.139), 1000 / round(1000 / 0.2)), atol=1e-9)


@pytest.mark.parametrize("dtype, values, expected_mode", [
    pytest.param(np.uint8, (0, 255), "L", id="uint8-8bit"),
    pytest.param(np.uint16, (0, 65535), "I;16", id="uint16-16bit"),
    pytest.param(np.int16, (0, 3000), "I;16", id="int16-nonnegative-16bit"),
    pytest.param(np.float32, (0, 4095), "I;16", id="integral-float-16bit"),
])
def test_automatic_depth_follows_the_data(tmp_path, dtype, values, expected_mode):
    plane = RNG.integers(values[0], values[1], (12, 9), endpoint=True).astype(dtype)
    write(plane_volume(plane), tmp_path / "x.png")
    with Image.open(tmp_path / "x.png") as image:
        assert image.mode == expected_mode
        np.testing.assert_array_equal(np.asarray(image), plane.astype(np.asarray(image).dtype))


def test_colour_and_alpha(tmp_path):
    rgb = RNG.integers(0, 256, (10, 14, 3), dtype=np.uint8)
    write(plane_volume(rgb), tmp_path / "rgb.png")
    rgba = RNG.integers(0, 256, (10, 14, 4), dtype=np.uint8)
    write(plane_volume(rgba), tmp_path / "rgba.png")
    for name, reference in (("rgb.png", rgb), ("rgba.png", rgba)):
        with Image.open(tmp_path / name) as image:
            np.testing.assert_array_equal(np.asarray(image), reference)


def test_16bit_colour_goes_through_imagecodecs(tmp_path):
    imagecodecs = pytest.importorskip("imagecodecs")
    rgb = RNG.integers(0, 65536, (10, 14, 3), dtype=np.uint16)
    write(plane_volume(rgb), tmp_path / "rgb48.png")
    np.testing.assert_array_equal(imagecodecs.png_decode((tmp_path / "rgb48.png").read_bytes()), rgb)


def test_label_values_are_kept(tmp_path):
    mask = RNG.integers(0, 4, (16, 20), dtype=np.uint8)
    write(plane_volume(mask, kind="label"), tmp_path / "mask.png")
    with Image.open(tmp_path / "mask.png") as image:
        np.testing.assert_array_equal(np.asarray(image), mask)
    assert medconv.read(tmp_path / "mask.png").kind == "label"


@pytest.mark.parametrize("plane, depth, message", [
    pytest.param(np.array([[-1024, 3071]], np.int16), None, "do not fit a 16-bit PNG", id="negative"),
    pytest.param(np.array([[0, 4095]], np.uint16), 8, "do not fit a 8-bit PNG", id="12bit-as-8bit"),
    pytest.param(np.array([[0.25, 1.0]], np.float32), None, "fractional", id="fractions"),
])
def test_values_that_do_not_fit_are_refused(tmp_path, plane, depth, message):
    with pytest.raises(UnsupportedFormatError, match=message) as caught:
        write(plane_volume(plane), tmp_path / "x.png", png_depth=depth)
    assert caught.value.hint and "--window" in caught.value.hint
    assert not os.listdir(tmp_path)  # nothing left, not even a temporary file


def test_a_volume_with_slices_is_refused(tmp_path):
    volume = Volume(np.zeros((4, 5, 3), np.uint8), spacing=(1, 1, 1))
    with pytest.raises(UnsupportedFormatError, match="3 slices"):
        write(volume, tmp_path / "x.png")
    timeseries = Volume(np.zeros((4, 5, 1, 3), np.uint8), spacing=(1, 1, 1), meta={"axis4": "time"})
    with pytest.raises(UnsupportedFormatError, match="4th axis"):
        write(timeseries, tmp_path / "x.png")


def test_two_dimensional_volume_and_existing_output(tmp_path):
    plane = RNG.integers(0, 255, (6, 8), dtype=np.uint8)
    flat = Volume(plane.T, spacing=(1, 1, 1))  # (i, j) without the slice axis
    write(flat, tmp_path / "flat.png", sidecar=False)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "flat.png")), plane)
    with pytest.raises(OutputExistsError):
        write(flat, tmp_path / "flat.png", sidecar=False)
    write(flat, tmp_path / "flat.png", sidecar=False, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["flat.png"]
