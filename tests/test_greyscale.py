"""The PS3.4 greyscale pipeline against pydicom's apply_modality_lut / apply_voi_lut and analytic formulas.

Real files: pydicom's radiograph and LUT test files (``pydicom-data``, the test
extra: RG1/RG3 are MONOCHROME1 CR, mlut_18 has a Modality LUT Sequence, vlut_04 a
VOI LUT Sequence) and the corpus' MR/CT files with windows. Synthetic CR/DX/MG
files are written tag by tag with pydicom and read back from disk.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import apply_modality_lut, apply_presentation_lut, apply_voi_lut
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from conftest import corpus_path
from medconv.errors import HeaderError, UnsupportedFormatError
from medconv.readers.dicom.greyscale import (Presentation, SpacingSource, VoiChoice, VoiFunction, VoiKind, Window,
                                             detector_spacing, display_image, greyscale_header, modality_values,
                                             presentation_values, resolve_voi, voi_values)

CR_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
DX_PRESENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.1.1"
MG_PRESENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.1.2"


def pydicom_data(name: str) -> Path:
    """A file of pydicom's external test data (PyPI ``pydicom-data``); skips without it, fails under CI."""
    try:
        import data_store
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("pydicom-data is not installed: pip install -e '.[test]'")
        pytest.skip("pydicom-data is not installed")
    return Path(data_store.__file__).parent / "data" / name


def pydicom_range(ds) -> tuple[float, float]:
    """The output range pydicom's apply_windowing maps onto (the stored range in modality units)."""
    bits = int(ds.BitsStored)
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if ds.PixelRepresentation else (0, 2**bits - 1)
    slope, intercept = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
    return low * slope + intercept, high * slope + intercept


def radiograph(path: Path, stored: np.ndarray, *, sop_class=DX_PRESENTATION_STORAGE, modality="DX",
               photometric="MONOCHROME1", bits_stored=12, signed=False, **tags) -> Path:
    """Write a projection radiograph as a vendor would (FOR PRESENTATION, detector tags), then return its path."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientID, ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "RAD-001", modality, 1, 1
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.ViewPosition, ds.BodyPartExamined = "PA", "CHEST"
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, bits_stored, bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    ds.PixelData = stored.astype(np.int16 if signed else np.uint16).tobytes()
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path


def stored_ramp(bits: int, signed: bool = False, shape=(64, 64)) -> np.ndarray:
    """Every stored value of the range, in order, then repeated to fill ``shape``."""
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    values = np.arange(low, high + 1)
    return np.resize(values, shape).astype(np.int16 if signed else np.uint16)


# -- pydicom's own radiographs and LUT files ------------------------------------------------

@pytest.mark.corpus
def test_modality_lut_sequence_equals_pydicom():
    ds = pydicom.dcmread(pydicom_data("mlut_18.dcm"))
    stored = ds.pixel_array
    header = greyscale_header(ds)
    assert header.modality_lut is not None and header.modality_lut.first_mapped == -2048
    np.testing.assert_array_equal(modality_values(stored, header), apply_modality_lut(stored, ds))


@pytest.mark.corpus
def test_voi_lut_sequence_equals_pydicom():
    ds = pydicom.dcmread(pydicom_data("vlut_04.dcm"))
    stored = ds.pixel_array
    header = greyscale_header(ds)
    applied = resolve_voi(header, VoiChoice())
    assert applied.kind is VoiKind.FILE_LUT
    ours = voi_values(modality_values(stored, header), applied, applied.lut.output_range)
    np.testing.assert_array_equal(ours, apply_voi_lut(apply_modality_lut(stored, ds), ds))


@pytest.mark.corpus
@pytest.mark.parametrize("name, bits", [("RG1_UNCR.dcm", 15), ("RG3_UNCR.dcm", 10)])
def test_monochrome1_radiographs(name, bits):
    ds = pydicom.dcmread(pydicom_data(name))
    stored = ds.pixel_array[::3, ::3]  # every step is per pixel: a third of the rows and columns say the same
    header = greyscale_header(ds)
    assert (ds.Modality, header.photometric, header.bits_stored) == ("CR", "MONOCHROME1", bits)
    # VOI equals pydicom's on pydicom's output range
    reference = apply_voi_lut(apply_modality_lut(stored, ds), ds)
    applied = resolve_voi(header, VoiChoice())
    np.testing.assert_allclose(voi_values(modality_values(stored, header), applied, pydicom_range(ds)), reference,
                               rtol=0, atol=1e-9)
    # 8-bit display: pydicom's VOI scaled to 0..255, then inverted by the output range (MONOCHROME1)
    low, high = pydicom_range(ds)
    expected = np.floor(255.0 - (reference - low) / (high - low) * 255.0 + 0.5)
    shown = display_image(stored, header).array.astype(np.float64)
    assert np.abs(shown - expected).max() <= 1 and np.mean(shown == expected) > 0.999
    # the lossless path inverts by bit depth, not by the data's maximum
    np.testing.assert_array_equal(presentation_values(stored, header), (2**bits - 1) - stored.astype(np.int64))
    # pydicom's presentation step leaves MONOCHROME1 as it is (why medconv has its own)
    np.testing.assert_array_equal(apply_presentation_lut(stored, ds), stored)


@pytest.mark.corpus
def test_zero_pixel_spacing_is_ignored_with_a_warning():
    ds = pydicom.dcmread(pydicom_data("RG1_UNCR.dcm"), stop_before_pixels=True)
    spacing = detector_spacing(ds)
    assert [float(v) for v in ds.PixelSpacing] == [0.0, 0.0]
    assert spacing.source is SpacingSource.NONE and spacing.ij == (1.0, 1.0)
    assert any("PixelSpacing (0028,0030)" in warning for warning in spacing.warnings)


@pytest.mark.corpus
@pytest.mark.parametrize("name, index", [("MR_small.dcm", 0), ("examples_overlay.dcm", 0),
                                         ("examples_overlay.dcm", 1), ("J2K_pixelrep_mismatch.dcm", 2)])
def test_windows_of_the_corpus_equal_pydicom(name, index):
    ds = pydicom.dcmread(corpus_path("pydicom_test_files", name))
    stored = ds.pixel_array
    header = greyscale_header(ds)
    applied = resolve_voi(header, VoiChoice(index=index))
    assert applied.kind is VoiKind.FILE_WINDOW and applied.window == header.windows[index]
    reference = apply_voi_lut(apply_modality_lut(stored, ds), ds, index=index)
    ours = voi_values(modality_values(stored, header).astype(np.float64), applied, pydicom_range(ds))
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-9)


@pytest.mark.corpus
def test_rescaled_ct_without_a_window_maps_its_min_max():
    ds = pydicom.dcmread(corpus_path("pydicom_test_files", "CT_small.dcm"))
    stored = ds.pixel_array
    header = greyscale_header(ds)
    np.testing.assert_array_equal(modality_values(stored, header), apply_modality_lut(stored, ds))
    shown = display_image(stored, header)
    hu = apply_modality_lut(stored, ds)
    expected = np.floor((hu - hu.min()) / (hu.max() - hu.min()) * 255 + 0.5)
    assert shown.voi.kind is VoiKind.MIN_MAX and any("min..max" in w for w in shown.warnings)
    assert np.abs(shown.array - expected).max() <= 1 and np.mean(shown.array == expected) > 0.999


# -- synthetic CR / DX / MG ---------------------------------------------------------------------

def test_dx_voi_lut_sequence_monochrome1_inverse_and_detector_spacing(tmp_path):
    """A DX FOR PRESENTATION: 12-bit in, an 8-bit VOI LUT of 4096 entries, MONOCHROME1 with INVERSE (one inversion)."""
    stored = stored_ramp(12)
    lut = (np.sqrt(np.arange(4096) / 4095.0) * 255).astype(np.uint16)  # a gamma-like 8-bit VOI
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 8]
    item.add_new(0x00283006, "US", lut.tolist())  # LUTData
    item.LUTExplanation = "NORMAL"
    path = radiograph(tmp_path / "dx.dcm", stored, VOILUTSequence=[item], PresentationLUTShape="INVERSE",
                      ImagerPixelSpacing=[0.139, 0.139], EstimatedRadiographicMagnificationFactor=1.1,
                      RescaleSlope=1, RescaleIntercept=0, RescaleType="US")
    ds = pydicom.dcmread(path)
    header = greyscale_header(ds)
    assert header.presentation is Presentation.INVERSE and not header.warnings
    shown = display_image(ds.pixel_array, header)
    np.testing.assert_array_equal(shown.array, 255 - lut[stored])  # inverted once, not twice
    assert shown.voi.kind is VoiKind.FILE_LUT and shown.voi.describe()["explanation"] == "NORMAL"
    spacing = detector_spacing(ds)
    assert spacing.source is SpacingSource.IMAGER_CORRECTED and spacing.magnification == 1.1
    np.testing.assert_allclose(spacing.ij, (0.139 / 1.1, 0.139 / 1.1), rtol=1e-12)


@pytest.mark.parametrize("function", ["SIGMOID", "LINEAR_EXACT", "LINEAR"])
def test_cr_window_functions_equal_pydicom_and_the_formula(tmp_path, function):
    stored = stored_ramp(12)
    path = radiograph(tmp_path / "cr.dcm", stored, sop_class=CR_STORAGE, modality="CR", photometric="MONOCHROME2",
                      WindowCenter=[1800, 2200], WindowWidth=[1200, 3000], VOILUTFunction=function,
                      PixelSpacing=[0.16, 0.15])
    ds = pydicom.dcmread(path)
    header = greyscale_header(ds)
    applied = resolve_voi(header, VoiChoice(index=1))
    assert applied.window == Window(2200.0, 3000.0, VoiFunction(function))
    ours = voi_values(modality_values(ds.pixel_array, header), applied, pydicom_range(ds))
    np.testing.assert_allclose(ours, apply_voi_lut(ds.pixel_array, ds, index=1), rtol=0, atol=1e-9)
    x = stored.astype(np.float64)
    c, w = 2200.0, 3000.0
    if function == "SIGMOID":
        y = 255.0 / (1 + np.exp(-4 * (x - c) / w))
    elif function == "LINEAR_EXACT":
        y = np.clip((x - c) / w + 0.5, 0, 1) * 255.0
    else:
        y = np.clip((x - (c - 0.5)) / (w - 1) + 0.5, 0, 1) * 255.0
    shown = display_image(ds.pixel_array, header, VoiChoice(index=1)).array.astype(np.float64)
    assert np.abs(shown - np.floor(y + 0.5)).max() <= 1 and np.mean(shown == np.floor(y + 0.5)) > 0.999
    spacing = detector_spacing(ds)
    assert spacing.source is SpacingSource.PIXEL_SPACING and spacing.ij == (0.15, 0.16)


def test_signed_rescaled_dx_equals_pydicom(tmp_path):
    stored = stored_ramp(12, signed=True)
    path = radiograph(tmp_path / "signed.dcm", stored, photometric="MONOCHROME2", signed=True, RescaleSlope=2,
                      RescaleIntercept=-100, WindowCenter=300, WindowWidth=5000)
    ds = pydicom.dcmread(path)
    header = greyscale_header(ds)
    np.testing.assert_array_equal(modality_values(ds.pixel_array, header), apply_modality_lut(ds.pixel_array, ds))
    ours = voi_values(modality_values(ds.pixel_array, header), resolve_voi(header, VoiChoice()), pydicom_range(ds))
    np.testing.assert_allclose(ours, apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds), rtol=0, atol=1e-9)


def test_mammogram_inverse_shape_and_monochrome1_identity(tmp_path):
    stored = stored_ramp(12)
    window = {"WindowCenter": 2048, "WindowWidth": 4096, "VOILUTFunction": "LINEAR_EXACT"}
    mg = radiograph(tmp_path / "mg.dcm", stored, sop_class=MG_PRESENTATION_STORAGE, modality="MG",
                    photometric="MONOCHROME2", PresentationLUTShape="INVERSE", **window)
    plain = radiograph(tmp_path / "plain.dcm", stored, sop_class=MG_PRESENTATION_STORAGE, modality="MG",
                       photometric="MONOCHROME2", PresentationLUTShape="IDENTITY", **window)
    odd = radiograph(tmp_path / "odd.dcm", stored, photometric="MONOCHROME1", PresentationLUTShape="IDENTITY",
                     **window)
    shown = {name: display_image(pydicom.dcmread(path).pixel_array, greyscale_header(pydicom.dcmread(path)))
             for name, path in (("mg", mg), ("plain", plain), ("odd", odd))}
    expected = np.floor(stored / 4096.0 * 255 + 0.5)  # LINEAR_EXACT over 0..4096
    np.testing.assert_array_equal(shown["plain"].array, expected)
    np.testing.assert_array_equal(shown["mg"].array, np.floor(255 - stored / 4096.0 * 255 + 0.5))
    np.testing.assert_array_equal(shown["odd"].array, shown["mg"].array)
    assert any("IDENTITY" in warning for warning in shown["odd"].warnings)


def test_choices_none_min_max_given_window_and_16_bits(tmp_path):
    stored = np.resize(np.arange(1000, 3000), (40, 50)).astype(np.uint16)
    ds = pydicom.dcmread(radiograph(tmp_path / "x.dcm", stored, photometric="MONOCHROME2",
                                    WindowCenter=2000, WindowWidth=1000))
    header = greyscale_header(ds)
    none = display_image(stored, header, VoiChoice(VoiKind.NONE)).array
    np.testing.assert_array_equal(none, np.floor(stored / 4095.0 * 255 + 0.5))  # the whole 12-bit range
    minmax = display_image(stored, header, VoiChoice(VoiKind.MIN_MAX)).array
    np.testing.assert_array_equal(minmax, np.floor((stored - 1000) / 1999.0 * 255 + 0.5))
    given = display_image(stored, header, VoiChoice(VoiKind.WINDOW, window=Window(1500, 1001)), bits=16)
    assert given.array.dtype == np.uint16 and given.bits == 16
    y = np.clip((stored - 1499.5) / 1000.0 + 0.5, 0, 1) * 65535
    np.testing.assert_array_equal(given.array, np.floor(y + 0.5))
    with pytest.raises(HeaderError, match="window 2"):
        display_image(stored, header, VoiChoice(index=1))
    with pytest.raises(HeaderError, match="VOILUTSequence"):
        display_image(stored, header, VoiChoice(VoiKind.FILE_LUT))


def test_8bit_voi_lut_sent_as_ow_is_read_entry_by_entry(tmp_path):
    stored = stored_ramp(8)
    item = Dataset()
    item.LUTDescriptor = [256, 0, 8]
    item.add_new(0x00283006, "OW", bytes(255 - np.arange(256, dtype=np.uint8)))  # 8-bit entries, two per word
    ds = pydicom.dcmread(radiograph(tmp_path / "ow.dcm", stored, photometric="MONOCHROME2", bits_stored=8,
                                    VOILUTSequence=[item]))
    np.testing.assert_array_equal(display_image(ds.pixel_array, greyscale_header(ds)).array, 255 - stored)


def test_spacing_rules(tmp_path):
    stored = stored_ramp(8, shape=(4, 4))

    def spacing(**tags):
        return detector_spacing(pydicom.dcmread(radiograph(tmp_path / "s.dcm", stored, bits_stored=8, **tags)))

    both = spacing(PixelSpacing=[0.1, 0.1], ImagerPixelSpacing=[0.12, 0.12], EstimatedRadiographicMagnificationFactor=1.2)
    assert both.source is SpacingSource.PIXEL_SPACING and both.ij == (0.1, 0.1)
    detector = spacing(ImagerPixelSpacing=[0.15, 0.143])
    assert detector.source is SpacingSource.IMAGER and detector.ij == (0.143, 0.15)
    assert any("at the detector" in warning for warning in detector.warnings)
    shrunk = spacing(ImagerPixelSpacing=[0.15, 0.15], EstimatedRadiographicMagnificationFactor=0.5)
    assert shrunk.source is SpacingSource.IMAGER and any("(0018,1114)" in w for w in shrunk.warnings)
    scanned = spacing(NominalScannedPixelSpacing=[0.2, 0.2])
    assert scanned.source is SpacingSource.NOMINAL_SCANNED and scanned.ij == (0.2, 0.2)


def test_colour_images_have_no_greyscale_pipeline(tmp_path):
    ds = Dataset()
    ds.PhotometricInterpretation, ds.BitsStored = "RGB", 8
    with pytest.raises(UnsupportedFormatError, match="RGB"):
        greyscale_header(ds)


def test_values_above_the_stored_range_take_the_last_entry(tmp_path):
    """Unmasked high bits (a caller's array, not the reader's): the table's last entry, as clipping would give."""
    stored = stored_ramp(12, shape=(64, 64))
    ds = pydicom.dcmread(radiograph(tmp_path / "x.dcm", stored, photometric="MONOCHROME2", WindowCenter=2048,
                                    WindowWidth=4096))
    header = greyscale_header(ds)
    high = np.array([[4095, 4096, 40000, 65535]], dtype=np.uint16)
    shown = display_image(high, header).array
    np.testing.assert_array_equal(shown, np.full_like(shown, display_image(np.array([[4095]], np.uint16), header)
                                                      .array[0, 0]))
