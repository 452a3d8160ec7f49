"""Every transfer syntax decodes to the values of the uncompressed copy.

References: the uncompressed file of the same image (dcm_qa_ts, pydicom's
MR_small, SC_rgb), copies re-encoded at test time by pydicom's encoders
(CT_small), and for 12-bit data dcm2niix (fresh run) and dcm_qa_12bit's Ref/.
"""

from __future__ import annotations

import io
import shutil

import nibabel as nib
import numpy as np
import pytest

from medconv.errors import UnreadableFileError
from medconv.readers.dicom import DicomReader
from medconv.readers.dicom.pixels import read_pixel_stack
from medconv.source import Source

from conftest import corpus_path
from references import assert_same_in_world, run_dcm2niix

QA_TS = [
    pytest.param("2.dcm", id="implicit-little-endian"),
    pytest.param("3.dcm", id="explicit-big-endian"),
    pytest.param("4.dcm", id="rle"),
    pytest.param("5.dcm", id="jpeg-lossless-sv1-a"),
    pytest.param("6.dcm", id="jpeg-lossless-sv1-b"),
    pytest.param("7.dcm", id="jpeg-ls-lossless-a"),
    pytest.param("8.dcm", id="jpeg-ls-lossless-b"),
    pytest.param("9.dcm", id="jpeg2000-lossless"),
]


@pytest.mark.parametrize("name", QA_TS)
def test_dcm_qa_ts_syntax_equals_uncompressed(name):
    folder = corpus_path("dcm_qa_ts", "In")
    reference = read_pixel_stack([folder / "1.dcm"]).array
    decoded = read_pixel_stack([folder / name]).array
    assert decoded.dtype == reference.dtype
    np.testing.assert_array_equal(decoded, reference)


MR_SMALL = [
    pytest.param("MR_small_implicit.dcm", id="implicit-little-endian"),
    pytest.param("MR_small_bigendian.dcm", id="explicit-big-endian"),
    pytest.param("MR_small_expb.dcm", id="explicit-big-endian-b"),
    pytest.param("MR_small_RLE.dcm", id="rle"),
    pytest.param("MR_small_jp2klossless.dcm", id="jpeg2000-lossless"),
    pytest.param("MR_small_jpeg_ls_lossless.dcm", id="jpeg-ls-lossless"),
    pytest.param("MR_small_padded.dcm", id="padded-explicit-little"),
]


@pytest.mark.parametrize("name", MR_SMALL)
def test_mr_small_syntax_equals_uncompressed(name):
    folder = corpus_path("pydicom_test_files")
    reference = read_pixel_stack([folder / "MR_small.dcm"]).array
    np.testing.assert_array_equal(read_pixel_stack([folder / name]).array, reference)


RGB = [
    pytest.param("SC_rgb_jpeg_gdcm.dcm", 0, id="rgb-jpeg-lossless"),
    pytest.param("SC_rgb_gdcm_KY.dcm", 0, id="rgb-jpeg2000"),
    pytest.param("SC_rgb_dcmtk_+eb+cr.dcm", 8, id="rgb-jpeg-baseline-rgb"),
    pytest.param("SC_rgb_jpeg_dcmtk.dcm", 8, id="rgb-jpeg-baseline-ybr"),
    pytest.param("SC_rgb_jls_lossy_line.dcm", 3, id="rgb-jpeg-ls-near-lossless"),
]


@pytest.mark.parametrize("name, tolerance", RGB)
def test_rgb_syntax_close_to_lossless_copy(name, tolerance):
    folder = corpus_path("pydicom_test_files")
    reference = read_pixel_stack([folder / "SC_rgb_rle.dcm"]).array.astype(np.int32)
    decoded = read_pixel_stack([folder / name]).array
    assert decoded.shape == reference.shape == (1, 100, 100, 3)
    assert np.abs(decoded.astype(np.int32) - reference).max() <= tolerance


def test_rgb_small_odd_jpeg_baseline_close_to_uncompressed():
    folder = corpus_path("pydicom_test_files")
    reference = read_pixel_stack([folder / "SC_rgb_small_odd.dcm"]).array.astype(np.int32)
    big_endian = read_pixel_stack([folder / "SC_rgb_small_odd_big_endian.dcm"]).array
    jpeg = read_pixel_stack([folder / "SC_rgb_small_odd_jpeg.dcm"]).array
    np.testing.assert_array_equal(big_endian, reference)
    assert np.abs(jpeg.astype(np.int32) - reference).max() <= 8


def _reencoded(source, syntax: str, **kwargs) -> bytes:
    import pydicom

    ds = pydicom.dcmread(source)
    if syntax == pydicom.uid.DeflatedExplicitVRLittleEndian:
        ds.file_meta.TransferSyntaxUID = syntax
    else:
        ds.compress(syntax, **kwargs)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


CT_SYNTAXES = [
    pytest.param("1.2.840.10008.1.2.5", {}, 0, id="rle"),
    pytest.param("1.2.840.10008.1.2.4.80", {}, 0, id="jpeg-ls-lossless"),
    pytest.param("1.2.840.10008.1.2.4.81", {"jls_error": 3}, 3, id="jpeg-ls-near-lossless"),
    pytest.param("1.2.840.10008.1.2.4.90", {}, 0, id="jpeg2000-lossless"),
    pytest.param("1.2.840.10008.1.2.4.91", {"j2k_psnr": [80]}, 40, id="jpeg2000-lossy"),
    pytest.param("1.2.840.10008.1.2.1.99", {}, 0, id="deflate"),
]


@pytest.mark.parametrize("syntax, encode_options, tolerance", CT_SYNTAXES)
def test_ct_small_reencoded_equals_uncompressed(tmp_path, syntax, encode_options, tolerance):
    source = corpus_path("pydicom_test_files", "CT_small.dcm")
    target = tmp_path / "ct.dcm"
    target.write_bytes(_reencoded(source, syntax, **encode_options))
    reference = read_pixel_stack([source])
    decoded = read_pixel_stack([target])
    assert reference.units == decoded.units == "HU"
    assert decoded.array.dtype == reference.array.dtype == np.int16
    difference = np.abs(decoded.array.astype(np.int32) - reference.array.astype(np.int32)).max()
    assert difference <= tolerance


@pytest.mark.parametrize("name", [
    pytest.param("image_dfl.dcm", id="deflate-dclunie"),
    pytest.param("JPGExtended.dcm", id="jpeg-extended-12bit"),
    pytest.param("JPEGLSNearLossless_16.dcm", id="jpeg-ls-near-lossless-16bit"),
    pytest.param("693_J2KI.dcm", id="jpeg2000-ct"),
])
def test_other_syntaxes_match_a_full_pydicom_decode(name):
    """Files without an uncompressed twin: same values as pydicom's full-dataset decode, within BitsStored."""
    import pydicom

    path = corpus_path("pydicom_test_files", name)
    ds = pydicom.dcmread(path)
    expected = ds.pixel_array.astype(np.float64) * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
    decoded = read_pixel_stack([path])
    np.testing.assert_array_equal(decoded.array[0].astype(np.float64), expected)
    assert decoded.array[0].std() > 0


@pytest.mark.parametrize("name", [
    pytest.param("JPEG-lossy.dcm", id="broken-jpeg-extended"),
    pytest.param("JPEG2000-embedded-sequence-delimiter.dcm", id="corrupt-jpeg2000"),
])
def test_undecodable_data_names_file_and_syntax(name):
    path = corpus_path("pydicom_test_files", name)
    with pytest.raises(UnreadableFileError) as info:
        read_pixel_stack([path])
    assert info.value.path == str(path)
    assert "1.2.840.10008.1.2.4." in info.value.message


def test_htj2k_decoder_is_installed():
    """No HTJ2K sample exists in the corpora; at least the plugin that decodes it must be present."""
    from pydicom.pixels import get_decoder
    from pydicom.uid import HTJ2K, HTJ2KLossless, HTJ2KLosslessRPCL

    for syntax in (HTJ2KLossless, HTJ2KLosslessRPCL, HTJ2K):
        assert get_decoder(syntax).is_available, syntax.name


TWELVE_BIT = [
    pytest.param("12bitUnsigned.dcm", "2", id="unsigned"),
    pytest.param("12bitUnsigned_0x0F0F.dcm", "3", id="unsigned-high-bit-garbage"),
    pytest.param("12bitSigned_0x0F0F.dcm", "4", id="signed-high-bit-garbage"),
]


@pytest.mark.parametrize("name, series", TWELVE_BIT)
def test_twelve_bit_mosaics_match_dcm2niix(tmp_path, name, series):
    source = corpus_path("dcm_qa_12bit", "In", name)
    stored_ref = corpus_path("dcm_qa_12bit", "Ref", f"{series}.nii")
    (tmp_path / "in").mkdir()
    shutil.copy(source, tmp_path / "in" / name)
    fresh = run_dcm2niix(tmp_path / "in", tmp_path / "out", "-f", "%s")
    assert len(fresh) == 1
    volume = DicomReader().read(Source(name, "dicom", (str(source),)))
    ours = nib.Nifti1Image(np.asarray(volume.array), volume.affine_ras)
    assert_same_in_world(ours, nib.load(fresh[0]))
    assert_same_in_world(ours, nib.load(stored_ref))
    if "Signed" in name:
        assert volume.array.min() < 0  # the sign bit is bit 11, not 15


def test_missing_decoder_plugin_says_what_to_install(monkeypatch):
    """With every RLE plugin made unavailable, the error is MissingDependencyError naming the package."""
    from pydicom.pixels import get_decoder
    from pydicom.uid import RLELossless

    from medconv.errors import MissingDependencyError

    path = corpus_path("pydicom_test_files", "MR_small_RLE.dcm")
    monkeypatch.setattr(get_decoder(RLELossless), "_available", {})
    with pytest.raises(MissingDependencyError) as info:
        read_pixel_stack([path])
    assert info.value.path == str(path)
    assert "RLE Lossless" in info.value.message and "pylibjpeg-rle" in info.value.hint
