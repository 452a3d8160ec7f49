"""Messages for the input and output mistakes users make: what is wrong, named, and what to type instead."""

from __future__ import annotations

import shutil
import zipfile

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from dicom_synth import axial, write_series
from medconv.cli.main import main


def medconv(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, " ".join(capsys.readouterr().err.split())


@pytest.fixture
def dicom_tree(tmp_path):
    iop, positions = axial(4)
    write_series(tmp_path / "dicom" / "PAT-1" / "series1", positions, iop, rows=8, columns=8)
    return tmp_path / "dicom"


@pytest.fixture
def metaimage_tree(tmp_path):
    (tmp_path / "luna" / "subset0").mkdir(parents=True)
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 5, 6), np.int16)), str(tmp_path / "luna" / "subset0" / "1.3.6.mhd"))
    return tmp_path / "luna"


def nifti_file(folder):
    folder.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.arange(24, dtype=np.int16).reshape(2, 3, 4), np.eye(4)), str(folder / "case.nii.gz"))
    return folder / "case.nii.gz"


# -- output names ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["out.jpg", "out.bmp", "out.tar.gz"])
def test_unknown_output_suffix_is_a_usage_error_listing_the_formats(tmp_path, capsys, name):
    source = nifti_file(tmp_path / "src")
    code, err = medconv(capsys, "convert", source, tmp_path / name)
    assert code == 2 and not (tmp_path / name).exists()
    assert f"{tmp_path / name}: '" in err and "is not an output format medconv writes" in err
    for fmt in (".nii.gz", ".npz", ".nrrd", ".nhdr", ".mha", ".mhd"):
        assert fmt in err


def test_a_folder_name_with_a_dot_and_an_existing_folder_stay_folders(tmp_path, capsys):
    source = nifti_file(tmp_path / "src")
    assert medconv(capsys, "convert", source, tmp_path / "run.v2", "-q")[0] == 0
    assert (tmp_path / "run.v2" / "case.nii.gz").is_file()
    (tmp_path / "old.jpg").mkdir()
    assert medconv(capsys, "convert", source, tmp_path / "old.jpg", "-q")[0] == 0
    assert (tmp_path / "old.jpg" / "case.nii.gz").is_file()


def test_a_file_name_where_a_dataset_command_writes_a_folder(tmp_path, capsys, dicom_tree):
    code, err = medconv(capsys, "tcia2nii", dicom_tree, tmp_path / "out.nrrd")
    assert code == 2 and not (tmp_path / "out.nrrd").exists()
    assert "DST is the folder the outputs go to, not a file" in err and "--format nrrd" in err


# -- nothing found: what is there instead ---------------------------------------------------------------------------

def test_zip_of_dicom_says_unzip_it_first_naming_the_folder(tmp_path, capsys, dicom_tree):
    (tmp_path / "download").mkdir()
    archive = tmp_path / "download" / "LIDC.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in dicom_tree.rglob("*.dcm"):
            handle.write(path, path.relative_to(dicom_tree))
    for src in (tmp_path / "download", archive):
        code, err = medconv(capsys, "tcia2nii", src, tmp_path / "out")
        assert code == 3 and err.startswith(f"medconv: {src}: no DICOM image series found")
        assert f"unzip {archive} -d {tmp_path / 'download' / 'LIDC'}" in err and "medconv: .:" not in err
    assert not (tmp_path / "out").exists()


def test_tar_gz_names_the_tar_command(tmp_path, capsys, dicom_tree):
    shutil.make_archive(str(tmp_path / "dl" / "CT"), "gztar", dicom_tree)
    code, err = medconv(capsys, "tcia2nii", tmp_path / "dl", tmp_path / "out")
    assert code == 3 and f"tar -xzf {tmp_path / 'dl' / 'CT.tar.gz'} -C {tmp_path / 'dl' / 'CT'}" in err


def test_nbia_manifest_says_download_the_series_first(tmp_path, capsys):
    manifest = tmp_path / "manifest-1600000000000.tcia"
    manifest.write_text("downloadServerUrl=https://public.cancerimagingarchive.net/nbia-download/servlet/"
                        "DownloadServlet\nincludeAnnotation=true\nnoOfrRetry=4\ndatabasketId=manifest-1.tcia\n"
                        "manifestVersion=3.0\nListOfSeriesToDownload=\n1.3.6.1.4.1.14519.5.2.1.6279.6001.1\n")
    for src in (manifest, tmp_path):
        code, err = medconv(capsys, "tcia2nii", src, tmp_path / "out")
        assert code == 3 and f"medconv: {src}: " in err
        assert "manifest-1600000000000.tcia is an NBIA download manifest" in err
        assert "download the series with the NBIA Data Retriever first" in err
        assert f"medconv: {tmp_path / 'out'}" not in err  # never the destination


def test_mhd2nii_on_dicom_suggests_tcia2nii(tmp_path, capsys, dicom_tree):
    code, err = medconv(capsys, "mhd2nii", dicom_tree, tmp_path / "out")
    assert code == 3 and f"{dicom_tree}: no MetaImage volume (.mhd, .mha) found" in err
    assert f"it holds 4 DICOM file(s): run medconv tcia2nii {dicom_tree} {tmp_path / 'out'}" in err


def test_tcia2nii_on_luna16_suggests_mhd2nii(tmp_path, capsys, metaimage_tree):
    code, err = medconv(capsys, "tcia2nii", metaimage_tree, tmp_path / "out")
    assert code == 3 and f"{metaimage_tree}: no DICOM image series found" in err
    assert f"run medconv mhd2nii {metaimage_tree} {tmp_path / 'out'}" in err


def test_tcia2nii_on_a_nifti_file_names_the_file(tmp_path, capsys):
    source = nifti_file(tmp_path / "src")
    code, err = medconv(capsys, "tcia2nii", source, tmp_path / "out")
    assert code == 3 and err.startswith(f"medconv: {source}: no DICOM image series found in this file")
    assert f"it is a NIfTI file: run medconv convert {source}" in err


def test_tcia2nii_on_a_folder_of_jpegs_suggests_the_2d_path_that_works(tmp_path, capsys):
    (tmp_path / "jpgs").mkdir()
    for index in range(3):
        Image.fromarray(np.full((6, 6), index * 40, np.uint8)).save(tmp_path / "jpgs" / f"CHNCXR_{index:04d}_0.jpg")
    code, err = medconv(capsys, "tcia2nii", tmp_path / "jpgs", tmp_path / "out")
    suggested = f"run medconv convert {tmp_path / 'jpgs'} {tmp_path / 'out'}"
    assert code == 3 and "it holds 3 2D picture (PNG, JPEG, BMP, GIF) file(s)" in err and suggested in err
    assert medconv(capsys, *suggested.split()[2:], "-q")[0] == 0  # the suggestion converts them
    assert len(list((tmp_path / "out").glob("CHNCXR_*.nii.gz"))) == 3


def test_scan_says_the_same(tmp_path, capsys, dicom_tree):
    code, err = medconv(capsys, "scan", dicom_tree, "--reader", "metaimage")
    assert code == 3 and "run medconv tcia2nii" in err


def test_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, err = medconv(capsys, "convert", tmp_path / "empty", tmp_path / "out")
    assert code == 3 and f"{tmp_path / 'empty'}: no convertible image found (the folder holds no files)" in err
