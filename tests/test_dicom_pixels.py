"""DICOM pixel values: bit masking, sign, MONOCHROME1, per-slice rescale, dtype choice.

Every expectation is computed here from the stored values the test writes
(the analytic reference), never from medconv's own earlier output.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from medconv.errors import UnreadableFileError, UnsupportedFormatError
from medconv.readers.dicom.pixels import read_pixel_stack, rescale_frames


def write_slice(path: Path, stored: np.ndarray, *, bits_stored: int | None = None, signed: bool | None = None,
                slope=None, intercept=None, photometric: str = "MONOCHROME2", modality: str = "CT",
                syntax: str = "1.2.840.10008.1.2.1", high_bit: int | None = None, raw_bytes: bytes | None = None,
                samples: int = 1) -> Path:
    """Write one single-frame DICOM slice holding ``stored`` (its exact bytes, garbage included)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, generate_uid

    stored = np.asarray(stored)
    ds = Dataset()
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = UID(syntax)
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.Rows, ds.Columns = stored.shape[:2]
    ds.SamplesPerPixel = samples
    if samples > 1:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = stored.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = high_bit if high_bit is not None else ds.BitsStored - 1
    ds.PixelRepresentation = int(stored.dtype.kind == "i" if signed is None else signed)
    if slope is not None:
        ds.RescaleSlope = slope
    if intercept is not None:
        ds.RescaleIntercept = intercept
    ds.PixelData = raw_bytes if raw_bytes is not None else stored.astype(stored.dtype.newbyteorder("<")).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def ramp(shape=(6, 5), start=0, dtype=np.int16) -> np.ndarray:
    return (np.arange(np.prod(shape)).reshape(shape) + start).astype(dtype)


def test_ct_hounsfield_units_stay_int16(tmp_path):
    stored = [ramp(start=k * 100, dtype=np.uint16) for k in range(3)]
    paths = [write_slice(tmp_path / f"{k}.dcm", s, bits_stored=12, slope=1, intercept=-1024) for k, s in enumerate(stored)]
    stack = read_pixel_stack(paths)
    assert stack.array.dtype == np.int16
    assert stack.units == "HU"
    assert stack.array.flags.c_contiguous and stack.array.shape == (3, 6, 5)
    np.testing.assert_array_equal(stack.array, np.stack(stored).astype(np.int32) - 1024)


def test_full_range_unsigned_with_intercept_uses_actual_values(tmp_path):
    # BitsStored 16 unsigned could reach 65535-1024 (int32), but the data stay in int16 range.
    stored = ramp(start=3000, dtype=np.uint16)
    stack = read_pixel_stack([write_slice(tmp_path / "a.dcm", stored, slope=1, intercept=-1024)])
    assert stack.array.dtype == np.int16
    np.testing.assert_array_equal(stack.array[0], stored.astype(np.int32) - 1024)


@pytest.mark.parametrize("low, high, intercept, expected_dtype", [
    pytest.param(2000, 60000, -1024, np.uint16, id="beyond-int16-all-positive"),
    pytest.param(0, 60000, -1024, np.int32, id="beyond-int16-both-signs"),
])
def test_result_beyond_int16_stays_exact(tmp_path, low, high, intercept, expected_dtype):
    stored = np.full((4, 4), high, dtype=np.uint16)
    stored[0, 0] = low
    stack = read_pixel_stack([write_slice(tmp_path / "a.dcm", stored, slope=1, intercept=intercept)])
    assert stack.array.dtype == expected_dtype
    np.testing.assert_array_equal(stack.array[0].astype(np.int64), stored.astype(np.int64) + intercept)


@pytest.mark.parametrize(
    "rescales, expected_dtype",
    [
        pytest.param([(1, -1024), (2, -1024), (1, 0)], np.int16, id="integral-per-slice"),
        pytest.param([(0.5, 0), (1, 0.25), (1.5, -3)], np.float32, id="fractional-per-slice"),
    ],
)
def test_rescale_differs_per_slice(tmp_path, rescales, expected_dtype):
    stored = [ramp(start=10 * k, dtype=np.int16) for k in range(len(rescales))]
    paths = [write_slice(tmp_path / f"{k}.dcm", s, slope=a, intercept=b)
             for k, (s, (a, b)) in enumerate(zip(stored, rescales))]
    stack = read_pixel_stack(paths)
    assert stack.array.dtype == expected_dtype
    expected = np.stack([s.astype(np.float64) * a + b for s, (a, b) in zip(stored, rescales)])
    np.testing.assert_array_equal(stack.array, expected.astype(expected_dtype))
    assert any("vary between slices" in w for w in stack.warnings)


def test_pet_slices_with_fractional_slopes_are_float32_in_their_units(tmp_path):
    import pydicom

    stored = [ramp(start=k, dtype=np.uint16) * 3 for k in range(2)]
    paths = [write_slice(tmp_path / f"{k}.dcm", s, slope=0.0123 * (k + 1), intercept=0, modality="PT")
             for k, s in enumerate(stored)]
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.Units = "BQML"
        ds.save_as(path, enforce_file_format=True)
    stack = read_pixel_stack(paths)
    assert stack.array.dtype == np.float32 and stack.units == "BQML"
    expected = np.stack([s * np.float32(0.0123 * (k + 1)) for k, s in enumerate(stored)])
    np.testing.assert_allclose(stack.array, expected, rtol=1e-6)


def test_no_rescale_keeps_stored_dtype(tmp_path):
    stored = ramp(dtype=np.uint8)
    stack = read_pixel_stack([write_slice(tmp_path / "a.dcm", stored, modality="MR")])
    assert stack.array.dtype == np.uint8 and stack.units is None
    np.testing.assert_array_equal(stack.array[0], stored)


def test_twelve_bit_unsigned_garbage_is_masked(tmp_path):
    values = ramp(dtype=np.uint16) * 100  # 0 .. 2900, fits 12 bits
    garbage = values | np.uint16(0xF000)
    stack = read_pixel_stack([write_slice(tmp_path / "a.dcm", garbage, bits_stored=12, signed=False, modality="MR")])
    np.testing.assert_array_equal(stack.array[0], values)


def test_twelve_bit_signed_is_sign_extended(tmp_path):
    values = (ramp(dtype=np.int16) - 15) * 100  # -1500 .. 1400
    # Write as 12-bit two's complement with garbage in bits 12-15 (0x0F0F-style stripes).
    raw = (values.astype(np.int32) & 0x0FFF) | 0x5000
    path = write_slice(tmp_path / "a.dcm", values, bits_stored=12, signed=True, modality="MR",
                       raw_bytes=raw.astype("<u2").tobytes())
    stack = read_pixel_stack([path])
    assert stack.array.dtype == np.int16
    np.testing.assert_array_equal(stack.array[0], values)


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_a_high_bit_that_is_not_bits_stored_minus_one_is_read_as_pydicom_reads_it_with_a_warning(tmp_path, signed):
    """Issue 16 item 7: HighBit 13 with BitsStored 12 (PS3.3 requires 11). pydicom uses the low BitsStored
    bits whatever HighBit says; so does medconv, with a warning (HighBit 7 on 16-bit CT had multiplied every
    value by 256)."""
    import pydicom

    values = ramp(dtype=np.uint16) * 10
    raw = (values.astype(np.uint32) << 2) | 0x3 | 0xC000  # bits 2..13 as HighBit 13 would have them, junk around
    path = write_slice(tmp_path / "a.dcm", values, bits_stored=12, high_bit=13, signed=signed, modality="MR",
                       raw_bytes=raw.astype("<u2").tobytes())
    stack = read_pixel_stack([path])
    np.testing.assert_array_equal(stack.array[0], pydicom.dcmread(path).pixel_array)
    assert any("HighBit 13 does not match BitsStored 12" in warning for warning in stack.warnings)


@pytest.mark.parametrize(
    "stored, bits, expected",
    [
        pytest.param(np.array([[0, 1], [254, 255]], np.uint8), 8, np.array([[255, 254], [1, 0]]), id="uint8"),
        pytest.param(np.array([[0, 1], [4094, 4095]], np.uint16), 12, np.array([[4095, 4094], [1, 0]]), id="uint12"),
        pytest.param(np.array([[-2048, -1], [0, 2047]], np.int16), 12, np.array([[2047, 0], [-1, -2048]]), id="int12"),
    ],
)
def test_monochrome1_is_inverted_within_stored_range(tmp_path, stored, bits, expected):
    path = write_slice(tmp_path / "a.dcm", stored, bits_stored=bits, photometric="MONOCHROME1", modality="CR")
    stack = read_pixel_stack([path])
    np.testing.assert_array_equal(stack.array[0], expected)
    assert any("MONOCHROME1" in w for w in stack.warnings)


def test_gzipped_slices_read_like_plain_ones(tmp_path):
    plain = write_slice(tmp_path / "a.dcm", ramp(), slope=1, intercept=-1024)
    zipped = tmp_path / "b.dcm.gz"
    with open(plain, "rb") as source, gzip.open(zipped, "wb") as target:
        shutil.copyfileobj(source, target)
    np.testing.assert_array_equal(read_pixel_stack([zipped]).array, read_pixel_stack([plain]).array)


@pytest.mark.parametrize("syntax", [
    pytest.param("1.2.840.10008.1.2", id="implicit-little"),
    pytest.param("1.2.840.10008.1.2.2", id="explicit-big"),
])
def test_direct_read_and_pydicom_decoders_agree(tmp_path, syntax):
    values = ramp(dtype=np.int16) - 7
    raw = values.astype(">i2" if syntax.endswith(".2.2") else "<i2").tobytes()
    path = write_slice(tmp_path / "a.dcm", values, syntax=syntax, raw_bytes=raw, modality="MR")
    np.testing.assert_array_equal(read_pixel_stack([path]).array[0], values)


def test_rgb_slices_keep_their_samples(tmp_path):
    rgb = np.stack([ramp(dtype=np.uint8), ramp(start=50, dtype=np.uint8), ramp(start=100, dtype=np.uint8)], axis=-1)
    path = write_slice(tmp_path / "a.dcm", rgb, photometric="RGB", samples=3, modality="OT")
    stack = read_pixel_stack([path])
    assert stack.array.shape == (1, 6, 5, 3)
    np.testing.assert_array_equal(stack.array[0], rgb)


def test_truncated_pixel_data_names_the_file(tmp_path):
    path = write_slice(tmp_path / "a.dcm", ramp(shape=(64, 64)))
    data = path.read_bytes()
    path.write_bytes(data[:-100])
    with pytest.raises(UnreadableFileError) as info:
        read_pixel_stack([path])
    assert info.value.path == str(path)


def test_slices_of_different_sizes_are_refused(tmp_path):
    paths = [write_slice(tmp_path / "a.dcm", ramp()), write_slice(tmp_path / "b.dcm", ramp(shape=(5, 5)))]
    with pytest.raises(UnsupportedFormatError, match="differs"):
        read_pixel_stack(paths)


def test_not_dicom_is_unreadable(tmp_path):
    path = tmp_path / "junk.dcm"
    path.write_bytes(b"not a dicom file at all" * 10)
    with pytest.raises(UnreadableFileError):
        read_pixel_stack([path])


def test_in_place_rescale_wraps_back_to_exact_values():
    # 33000 does not fit int16, but 33000 - 1024 does: the in-place int16 view must wrap back exactly.
    stored = np.array([[[0, 33000]]], dtype=np.uint16)
    out = rescale_frames(stored.copy(), [1], [-1024])
    np.testing.assert_array_equal(out.astype(np.int64), stored.astype(np.int64) - 1024)
    assert out.dtype == np.int16


@pytest.mark.parametrize("stored_value, stored_dtype, intercept", [
    pytest.param(1027, np.int16, -1024, id="ct-constant-hu3-signed"),
    pytest.param(1027, np.uint16, -1024, id="ct-constant-hu3-unsigned"),
    pytest.param(1024, np.uint16, -1024, id="ct-constant-water-zero"),
    pytest.param(200, np.uint8, -1024, id="uint8-stored-negative-result"),
])
def test_small_result_range_keeps_stored_width_and_exact_values(tmp_path, stored_value, stored_dtype, intercept):
    # Values that would fit 8 bits after the rescale: no OverflowError from the intercept, and
    # a 16-bit CT series stays int16 HU (never narrower than the stored type).
    stored = np.full((4, 3), stored_value, dtype=stored_dtype)
    paths = [write_slice(tmp_path / f"{k}.dcm", stored, slope=1, intercept=intercept) for k in range(3)]
    stack = read_pixel_stack(paths)
    expected_value = stored_value + intercept
    assert stack.array.dtype == np.int16
    np.testing.assert_array_equal(stack.array, np.full((3, 4, 3), expected_value))


def test_constant_hu_series_reads_as_int16_volume(tmp_path):
    # The reported case end to end: a three-slice CT series of constant HU 3 (stored 1027, intercept -1024).
    from dicom_synth import axial, write_series

    from medconv.readers.dicom import DicomReader

    iop, positions = axial(3)
    write_series(tmp_path, positions, iop, function=lambda world: np.full(world.shape[:-1], 3.0))
    reader = DicomReader(jobs=1)
    (source,) = list(reader.discover(tmp_path))
    volume = reader.read(source)
    assert volume.array.dtype == np.int16 and volume.meta["units"] == "HU"
    np.testing.assert_array_equal(volume.array, np.full((10, 12, 3), 3))


def test_shared_apply_rescale_with_an_intercept_wider_than_the_result(tmp_path):
    # medconv.pixels.apply_rescale (NIfTI scl_slope/scl_inter) had the same OverflowError;
    # nibabel's scaled data is the reference.
    import nibabel as nib

    import medconv

    raw = np.full((3, 4, 2), 1027, dtype=np.int16)
    raw[0, 0, 0] = 1030
    image = nib.Nifti1Image(raw, np.eye(4))
    image.header.set_slope_inter(1, -1024)
    nib.save(image, tmp_path / "hu.nii")
    volume = medconv.read(tmp_path / "hu.nii")
    np.testing.assert_array_equal(volume.array, nib.load(tmp_path / "hu.nii").get_fdata())


def test_image_without_pixel_data_element_says_so(tmp_path):
    # nibabel's csa_slice_norm.dcm is such a header-only copy; here one is made from a normal slice.
    import pydicom

    path = write_slice(tmp_path / "a.dcm", ramp())
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(UnreadableFileError, match="no Pixel Data element"):
        read_pixel_stack([path])


def test_monochrome1_display_window_follows_the_inversion(tmp_path):
    """The header window applies before the MONOCHROME1 inversion (PS3.3 C.11.2.1.2): it must move with it."""
    import pydicom

    import medconv
    from medconv.transforms import window

    stored = np.arange(2070, 2154, dtype=np.uint16).reshape(12, 7)  # 12-bit data around the window
    path = write_slice(tmp_path / "cr.dcm", stored, bits_stored=12, photometric="MONOCHROME1", modality="CR")
    dataset = pydicom.dcmread(path)
    dataset.WindowCenter, dataset.WindowWidth = 2110, 100
    dataset.ImagePositionPatient, dataset.ImageOrientationPatient = [0, 0, 0], [1, 0, 0, 0, 1, 0]
    dataset.PixelSpacing = [0.5, 0.5]
    dataset.save_as(path)
    volume = medconv.read(path)
    assert volume.meta["window"] == [4095 - 2110, 100]
    shown = window(volume, preset="dicom", scale="unit").array
    # the same pixels are inside the window as before the inversion, and their order is reversed
    inside = (stored >= 2060) & (stored <= 2160)
    assert np.all((shown[..., 0].T > 0)[inside & (stored > 2060)])
    assert np.all(np.diff(shown[..., 0].T.reshape(-1)) <= 0)
