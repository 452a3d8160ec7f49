"""``medconv info`` and the CLI's error boundary, through click's test runner and a real subprocess."""

import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from medconv.cli.main import main

from conftest import corpus_path
from test_nifti import NIBABEL_FILES, oblique_affine


def run(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def ct_file(tmp_path):
    data = np.arange(-1024, -1024 + 6 * 5 * 4, dtype=np.int16).reshape(6, 5, 4)
    nib.save(nib.Nifti1Image(data, oblique_affine()), tmp_path / "ct.nii.gz")
    return tmp_path / "ct.nii.gz"


def test_info_prints_geometry_for_a_person(ct_file, capsys):
    code, out, _ = run(["info", str(ct_file)], capsys)
    assert code == 0
    assert "6x5x4" in out and "int16" in out
    assert "axis codes   " + "".join(nib.aff2axcodes(oblique_affine())) in out
    assert "(-1024, -905)" in out


def test_info_json_matches_nibabel(ct_file, capsys):
    code, out, _ = run(["info", "--json", str(ct_file)], capsys)
    report = json.loads(out)
    assert code == 0
    assert report["shape"] == [6, 5, 4] and report["dtype"] == "int16"
    np.testing.assert_allclose(report["affine_ras"], nib.load(ct_file).affine, atol=1e-5)
    assert report["value_range"] == [-1024, -905]


@pytest.mark.corpus
@pytest.mark.parametrize("name", NIBABEL_FILES)
def test_info_on_the_nibabel_corpus_reports_what_nibabel_reports(name, capsys):
    path = corpus_path("nibabel_data", "nibabel", "tests", "data", name)
    reference = nib.load(path)
    code, out, _ = run(["info", "--json", str(path)], capsys)
    report = json.loads(out)
    assert code == 0
    assert tuple(report["shape"]) == reference.shape
    assert report["axis_codes"] == "".join(nib.aff2axcodes(reference.affine))
    np.testing.assert_allclose(report["affine_ras"], reference.affine, atol=1e-5)


@pytest.mark.corpus
def test_info_on_a_header_without_data_shows_the_header_and_fails(capsys):
    path = corpus_path("nibabel_data", "nibabel", "tests", "data", "nifti1.hdr")
    code, out, err = run(["info", str(path)], capsys)
    assert code == 1
    assert "91x109x91" in out
    assert err.count("\n") == 1 and "nifti1.img' does not exist" in err


def test_unreadable_file_is_one_line_and_exit_1(tmp_path, capsys):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00" * 10)
    code, out, err = run(["info", str(junk)], capsys)
    assert code == 1
    assert err.startswith("medconv: ") and str(junk) in err and err.count("\n") == 1
    assert "Traceback" not in err


def test_usage_error_exits_2(capsys):
    code, _, err = run(["info", "/no/such/file"], capsys)
    assert code == 2 and "does not exist" in err


def test_console_script_version_and_help():
    completed = subprocess.run([sys.executable, "-m", "medconv", "--version"], capture_output=True, text=True)
    assert completed.returncode == 0 and "medconv, version" in completed.stdout
    completed = subprocess.run([sys.executable, "-m", "medconv", "--help"], capture_output=True, text=True)
    assert completed.returncode == 0 and "info" in completed.stdout


def test_convert_single_file_to_npz(ct_file, capsys):
    out = ct_file.parent / "ct.npz"
    code, _, err = run(["convert", str(ct_file), str(out)], capsys)
    assert code == 0, err
    with np.load(out) as fields:
        np.testing.assert_array_equal(fields["array"], np.asanyarray(nib.load(ct_file).dataobj))


@pytest.mark.corpus
def test_a_single_dicom_slice_named_alone_converts(tmp_path, capsys):
    pydicom = pytest.importorskip("pydicom")
    series = sorted(p for p in corpus_path("lidc").rglob("*.dcm"))
    one = series[0]
    code, _, err = run(["convert", str(one), str(tmp_path / "one.nii.gz")], capsys)
    assert code == 0, err
    dataset = pydicom.dcmread(one)
    image = nib.load(tmp_path / "one.nii.gz")
    expected = dataset.pixel_array * float(dataset.RescaleSlope) + float(dataset.RescaleIntercept)
    np.testing.assert_array_equal(np.asanyarray(image.dataobj)[:, :, 0].T, expected)
    ipp = np.array(dataset.ImagePositionPatient, dtype=float)
    np.testing.assert_allclose(image.affine[:3, 3], [-ipp[0], -ipp[1], ipp[2]], atol=1e-4)


@pytest.mark.corpus
def test_a_secondary_capture_named_alone_says_what_it_is(capsys):
    path = corpus_path("dcm_qa_ct", "In", "Philips", "S21610", "S4010", "I10")
    code, _, err = run(["info", str(path)], capsys)
    assert code == 1 and "secondary capture" in err and err.count("\n") == 1
