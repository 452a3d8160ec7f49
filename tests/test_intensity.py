"""Windows, clipping, scaling and MR normalisation: exact values at the boundaries.

The expected values are written out from the definitions in docs/preprocessing.md
(window = [L - W/2, L + W/2]; unit = (x - lo)/(hi - lo); uint8 = floor(255*unit + 0.5)),
computed independently of the implementation with Python fractions where exactness matters.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from medconv.errors import UsageError
from medconv.transforms import WINDOW_PRESETS, clip, normalize, window
from medconv.transforms.intensity import preset_name
from medconv.volume import Volume

#: the published values (Radiopaedia, "Windowing (CT)"), written out again on purpose
EXPECTED_PRESETS = {
    "lung": (-600, 1500), "mediastinum": (50, 350), "soft-tissue": (50, 400), "liver": (30, 150),
    "bone": (400, 1800), "brain": (40, 80), "subdural": (80, 200), "stroke": (40, 40),
    "temporal-bone": (600, 2800), "head-soft-tissue": (40, 380),
}


def _ct(values, dtype=np.int16, **meta) -> Volume:
    array = np.asarray(values, dtype=dtype).reshape(-1, 1, 1)
    return Volume(array=array, spacing=(1, 1, 1), meta={"modality": "CT", "units": "HU", **meta})


def test_preset_table_is_the_documented_one():
    assert WINDOW_PRESETS == {name: (float(l), float(w)) for name, (l, w) in EXPECTED_PRESETS.items()}


@pytest.mark.parametrize("name", [pytest.param(name, id=name) for name in EXPECTED_PRESETS])
def test_preset_boundaries_exact(name):
    level, width = EXPECTED_PRESETS[name]
    lo, hi = level - width / 2, level + width / 2  # whole numbers for every preset
    values = [-3024, lo - 1, lo, level, hi, hi + 1, 3071]
    volume = _ct(values)
    none = window(volume, preset=name).array.ravel()
    assert none.dtype == np.int16
    assert none.tolist() == [lo, lo, lo, level, hi, hi, hi]
    unit = window(volume, preset=name, scale="unit").array.ravel()
    assert unit.dtype == np.float32
    assert unit.tolist() == [0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 1.0]
    uint8 = window(volume, preset=name, scale="uint8").array.ravel()
    assert uint8.dtype == np.uint8
    assert uint8.tolist() == [0, 0, 0, 128, 255, 255, 255]


@pytest.mark.parametrize("alias,name", [pytest.param("abdomen", "soft-tissue", id="abdomen"),
                                        pytest.param("Soft_Tissue", "soft-tissue", id="soft_tissue"),
                                        pytest.param("LUNGS", "lung", id="lungs"),
                                        pytest.param("mediastinal", "mediastinum", id="mediastinal")])
def test_preset_aliases(alias, name):
    assert preset_name(alias) == name


def test_dicom_window_uses_the_volumes_own_values():
    volume = _ct([-2000, -160, 40, 240, 2000], window=[40, 400])
    assert window(volume, preset="dicom").array.ravel().tolist() == [-160, -160, 40, 240, 240]
    assert window(volume, preset="dicom", scale="unit").array.ravel().tolist() == [0, 0, 0.5, 1, 1]
    several = _ct([-2000, -160, 40, 240, 2000], window=[[40, 300], [400, 1500]])  # the first one counts
    assert window(several, preset="dicom").array.ravel().tolist() == [-160, -160, 40, 240, 240]
    assert "window dicom L 40 W 400" in window(volume, preset="dicom").history[-1]


def test_dicom_window_missing_is_a_usage_error_naming_the_file():
    volume = _ct([0, 1], source_files=["/data/ct/IM0001.dcm"])
    with pytest.raises(UsageError, match="no DICOM WindowCenter") as info:
        window(volume, preset="dicom")
    assert info.value.path == "/data/ct/IM0001.dcm"


def test_uint8_and_unit_scaling_exact_for_every_value_in_range():
    lo, hi = -1350, 150  # the lung window
    values = np.arange(lo - 5, hi + 6)
    volume = _ct(values)
    uint8 = window(volume, preset="lung", scale="uint8").array.ravel()
    unit = window(volume, preset="lung", scale="unit").array.ravel()
    for value, got8, got_unit in zip(values.tolist(), uint8.tolist(), unit.tolist()):
        fraction = (Fraction(min(max(value, lo), hi)) - lo) / (hi - lo)
        expected8 = int((fraction * 255 + Fraction(1, 2)).__floor__())
        assert got8 == expected8, value
        assert got_unit == np.float32(float(fraction)), value


@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("scale", ["unit", "uint8"])
def test_scaling_is_bit_for_bit_the_definition_in_float64(dtype, scale):
    """The in-place scaling gives exactly what the definition, written as one numpy expression, gives."""
    rng = np.random.default_rng(7)
    if np.dtype(dtype).kind == "f":
        special = [np.inf, -np.inf, -0.0, 0.0, 5e-324, -1350.3, 150.7, np.nextafter(150.7, 1e9)]
        special += [np.nan] if scale == "unit" else []  # NaN has no uint8 value (numpy's cast is undefined)
        values = np.concatenate([rng.normal(-400, 900, 4000), special]).astype(dtype)
    else:
        info = np.iinfo(dtype)
        values = np.concatenate([rng.integers(info.min, info.max, 4000, endpoint=True), [info.min, info.max]])
    lo, hi = -1350.3, 150.7  # ends that float64 cannot hold exactly
    out = clip(_ct(values, dtype=dtype), lo, hi, scale=scale).array.ravel()
    definition = (np.clip(values.astype(np.float64), lo, hi) - lo) / (hi - lo)
    expected = definition.astype(np.float32) if scale == "unit" else np.floor(definition * 255.0 + 0.5).astype(np.uint8)
    assert out.dtype == expected.dtype
    np.testing.assert_array_equal(out.view(np.uint8), expected.view(np.uint8))  # the same bytes, NaN included


def test_integer_window_with_half_bounds_rounds_bounds_inwards():
    volume = _ct(np.arange(-5, 6))
    out = window(volume, 0, 5).array.ravel()  # [-2.5, 2.5]
    assert out.dtype == np.int16
    assert out.tolist() == [-2, -2, -2, -2, -1, 0, 1, 2, 2, 2, 2]
    floats = window(_ct(np.arange(-5, 6), dtype=np.float32), 0, 5).array.ravel()
    assert floats.tolist() == [-2.5, -2.5, -2.5, -2, -1, 0, 1, 2, 2.5, 2.5, 2.5]


def test_clip_and_unsigned_input():
    volume = Volume(array=np.array([0, 10, 100, 4095], dtype=np.uint16).reshape(4, 1, 1), spacing=(1, 1, 1))
    assert clip(volume, -100, 1000).array.ravel().tolist() == [0, 10, 100, 1000]  # -100 below uint16: no effect
    assert clip(volume, 0, 100, scale="unit").array.ravel().tolist() == [0, 0.1 if False else np.float32(0.1), 1, 1]
    with pytest.raises(UsageError):
        clip(volume, 5, 5)


def test_labels_are_never_windowed_and_say_so():
    mask = Volume(array=np.array([0, 1, 2, 7], dtype=np.uint8).reshape(4, 1, 1), spacing=(1, 1, 1), kind="label")
    for out in (window(mask, preset="lung", scale="unit"), clip(mask, 0, 1), normalize(mask, "zscore")):
        np.testing.assert_array_equal(out.array, mask.array)
        assert out.array.dtype == np.uint8
        assert any("labels are never windowed" in w for w in out.warnings)
        assert out.history[-1].endswith("skipped (label)")


def test_zscore_over_foreground():
    rng = np.random.default_rng(0)
    background = np.zeros(500)
    tissue = rng.uniform(250.0, 350.0, size=1500)  # all above the volume mean (225): the foreground
    volume = Volume(array=np.concatenate([background, tissue]).astype(np.float32).reshape(20, 10, 10),
                    spacing=(1, 1, 1), meta={"modality": "MR"})
    out = normalize(volume, "zscore")
    assert out.array.dtype == np.float32
    foreground = out.array.ravel()[500:]
    assert tissue.min() > 225
    assert abs(float(foreground.mean())) < 1e-4 and abs(float(foreground.std()) - 1) < 1e-4
    np.testing.assert_allclose(out.array.ravel()[:500], -tissue.mean() / tissue.std(), rtol=1e-4)


def test_percentile_clipping_matches_numpy_percentiles():
    values = np.arange(1000, dtype=np.float32).reshape(10, 10, 10)
    volume = Volume(array=values, spacing=(1, 1, 1))
    out = normalize(volume, "percentile", percentiles=(1, 99))
    lo, hi = np.percentile(values, [1, 99])
    expected = ((np.clip(values.astype(np.float64), lo, hi) - lo) / (hi - lo)).astype(np.float32)
    np.testing.assert_array_equal(out.array, expected)
    assert out.array.min() == 0 and out.array.max() == 1
    kept = normalize(volume, "percentile", percentiles=(1, 99), scale="none")
    assert kept.array.min() == np.float32(lo) and kept.array.max() == np.float32(hi)


@pytest.mark.parametrize("kwargs", [pytest.param({"level": 0, "width": 0}, id="zero-width"),
                                    pytest.param({"preset": "nope"}, id="unknown-preset"),
                                    pytest.param({"level": 0}, id="level-only")])
def test_bad_windows_are_usage_errors(kwargs):
    with pytest.raises(UsageError):
        window(_ct([0]), **kwargs)


@pytest.mark.parametrize("meta", [pytest.param({"modality": "MR"}, id="mr"),
                                  pytest.param({"modality": "PT", "units": "BQML"}, id="pet")])
def test_a_hounsfield_preset_on_a_non_ct_volume_is_refused(meta):
    from medconv.errors import NotApplicableError

    mr = Volume(np.arange(24, dtype=np.int16).reshape(2, 3, 4), spacing=(1, 1, 1),
                meta={**meta, "source_files": ["/data/mr/1.dcm"]})
    with pytest.raises(NotApplicableError, match="Hounsfield") as info:
        window(mr, preset="lung")
    assert info.value.path == "/data/mr/1.dcm"
    assert window(mr, 10, 20).array.max() == 20  # explicit L,W in the volume's own units still works


def test_unknown_units_are_trusted_and_scaled_units_are_recorded():
    volume = Volume(np.array([[[-2000, -600, 200]]], dtype=np.int16), spacing=(1, 1, 1),
                    meta={"window": [40, 400]})  # e.g. a NIfTI CT: no modality recorded
    out = window(volume, preset="lung", scale="unit")
    np.testing.assert_allclose(out.array, [[[0.0, 0.5, 1.0]]])
    assert out.meta["units"] == "window fraction [0, 1]" and "window" not in out.meta


def _four_channels(axis4):
    """A BraTS-like 4D image: four channels on unrelated intensity scales."""
    rng = np.random.default_rng(3)
    channels = [rng.normal(150.0 * (c + 1), 12.0 * (c + 1), size=(10, 9, 8)) for c in range(4)]
    meta = {"axis4": axis4} if axis4 else {}
    return Volume(np.stack(channels, axis=3).astype(np.float32), spacing=(1, 1, 1), meta=meta), channels


@pytest.mark.parametrize("axis4", [pytest.param("channel", id="channel"), pytest.param("volume", id="volume"),
                                   pytest.param(None, id="unknown")])
def test_zscore_of_a_multichannel_image_is_per_channel(axis4):
    volume, channels = _four_channels(axis4)
    out = normalize(volume, "zscore")
    for index, channel in enumerate(channels):
        foreground = channel[channel > channel.mean()]  # written out from the definition, per channel
        expected = (channel - foreground.mean()) / foreground.std()
        np.testing.assert_allclose(out.array[..., index], expected, rtol=1e-5, atol=1e-5)
        assert abs(float(out.array[..., index][channel > channel.mean()].mean())) < 1e-4
    assert out.history[-1].startswith("normalize zscore per channel over each channel's foreground (0: mean ")
    assert "; 3: mean " in out.history[-1]


def test_percentile_of_a_multichannel_image_is_per_channel():
    volume, channels = _four_channels("channel")
    out = normalize(volume, "percentile", percentiles=(1, 99))
    for index, channel in enumerate(channels):
        lo, hi = np.percentile(channel.astype(np.float32).astype(np.float64), [1, 99])
        expected = (np.clip(channel.astype(np.float32).astype(np.float64), lo, hi) - lo) / (hi - lo)
        np.testing.assert_allclose(out.array[..., index], expected, atol=1e-6)
    assert out.array.min() == 0 and out.array.max() == 1
    assert "per channel (0: [" in out.history[-1]


@pytest.mark.parametrize("axis4", ["time", "echo"])
def test_a_time_series_or_echoes_share_one_normalisation(axis4):
    volume, _ = _four_channels(axis4)
    out = normalize(volume, "zscore")
    data = volume.array.astype(np.float64)
    foreground = data[data > data.mean()]
    np.testing.assert_allclose(out.array, (data - foreground.mean()) / foreground.std(), rtol=1e-5, atol=1e-5)
    assert "per channel" not in out.history[-1]
    forced = normalize(volume, "zscore", per_channel=True)
    assert forced.history[-1].startswith("normalize zscore per channel")
