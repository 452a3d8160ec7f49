"""The rules every file reader shares: stay inside SRC, no special files, discovery never aborts,
the voxel limit, and a rescale that cannot give non-finite values (issue 16)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

import medconv
from medconv.errors import OutsideDatasetError, SpecialFileError, UnreadableFileError, VolumeTooLargeError
from medconv.options import ReadOptions
from medconv.pixels import apply_rescale, rescaled_range
from medconv.readers.files import check_dataset_file, dataset_root
from medconv.readers.limits import available_memory, check_voxel_count, default_max_voxels
from medconv.readers.nifti import NiftiReader
from medconv.source import Source

from conftest import corpus_path

NIFTI = ("nibabel_data", "nibabel", "tests", "data", "anatomical.nii")


# -- check_dataset_file: the one place of the stay-inside-SRC rule ------------------------------------------------

@pytest.fixture
def tree(tmp_path):
    """SRC with a file, a link to it, a link out of SRC, a dangling link and a FIFO; a file outside."""
    src, outside = tmp_path / "src", tmp_path / "outside"
    src.mkdir()
    outside.mkdir()
    (src / "inside.raw").write_bytes(b"inside")
    (outside / "secret.raw").write_bytes(b"secret")
    os.symlink(src / "inside.raw", src / "link-in.raw")
    os.symlink(outside / "secret.raw", src / "link-out.raw")
    os.symlink(src / "gone.raw", src / "dangling.raw")
    os.mkfifo(src / "fifo.raw")
    return src, outside


def test_a_regular_file_and_a_link_inside_src_are_allowed(tree):
    src, _ = tree
    check_dataset_file(str(src / "inside.raw"), str(src))
    check_dataset_file(str(src / "link-in.raw"), str(src))


def test_a_link_out_of_src_is_refused_naming_the_file_and_the_way_out(tree):
    src, outside = tree
    with pytest.raises(OutsideDatasetError) as caught:
        check_dataset_file(str(src / "link-out.raw"), str(src))
    assert caught.value.path == str(src / "link-out.raw")
    assert str(outside / "secret.raw") in caught.value.message and "--follow-outside" in caught.value.hint
    check_dataset_file(str(src / "link-out.raw"), str(src), follow_outside=True)


def test_a_file_named_by_a_header_is_refused_about_the_header(tree):
    src, outside = tree
    with pytest.raises(OutsideDatasetError) as caught:
        check_dataset_file(str(src / ".." / "outside" / "secret.raw"), str(src), referrer=str(src / "a.mhd"),
                           role="data file")
    assert caught.value.path == str(src / "a.mhd") and "data file" in caught.value.message


@pytest.mark.parametrize("name", ["fifo.raw", "/dev/zero", "/dev/null"])
def test_devices_and_fifos_are_refused_even_with_follow_outside(tree, name):
    src, _ = tree
    path = name if name.startswith("/") else str(src / name)
    with pytest.raises(SpecialFileError):
        check_dataset_file(path, str(src), follow_outside=True)


def test_a_dangling_link_is_unreadable(tree):
    src, _ = tree
    with pytest.raises(UnreadableFileError, match="does not exist"):
        check_dataset_file(str(src / "dangling.raw"), str(src))


def test_src_of_a_source_is_its_root_or_the_folder_of_a_lone_file(tmp_path):
    assert dataset_root(Source("a", "nifti", (str(tmp_path / "x" / "a.nii"),), root=str(tmp_path))) == str(tmp_path)
    assert dataset_root(Source("a", "nifti", (str(tmp_path / "x" / "a.nii"),))) == str(tmp_path / "x")


def test_src_given_through_a_link_is_the_folder_it_resolves_to(tmp_path):
    """A dataset folder that is itself a link (``/data -> /mnt/big/data``) holds what is under its target."""
    real = tmp_path / "real"
    real.mkdir()
    (real / "a.raw").write_bytes(b"x")
    os.symlink(real, tmp_path / "alias")
    check_dataset_file(str(tmp_path / "alias" / "a.raw"), str(tmp_path / "alias"))


# -- a NIfTI link out of SRC, end to end (discovery never opens it) -----------------------------------------------

def test_a_nifti_link_out_of_src_is_one_refused_unit_and_follow_outside_reads_it(tmp_path):
    corpus = corpus_path(*NIFTI)
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(corpus, src / "kept.nii")
    os.symlink(corpus, src / "linked.nii")
    sources = {s.id: s for s in NiftiReader().discover(str(src))}
    assert set(sources) == {"kept", "linked"}
    assert "outside the dataset folder" in sources["linked"].info["error"]
    assert "shape" not in sources["linked"].info  # its header was not read
    with pytest.raises(OutsideDatasetError) as caught:
        NiftiReader().read(sources["linked"])
    assert caught.value.path == str(src / "linked.nii")
    volume = NiftiReader().read(sources["linked"], ReadOptions(follow_outside=True))
    np.testing.assert_array_equal(volume.array, np.asanyarray(nib.load(corpus).dataobj))


def test_a_batch_over_hostile_files_has_a_row_for_each_and_converts_the_good_one(tmp_path):
    """A NIfTI batch over a link out, a FIFO, an unparsable file and a good file: 4 rows, 1 converted.

    (``--reader nifti``: the DICOM reader's discovery opens every file, FIFOs included; phase 2.)
    """
    corpus = corpus_path(*NIFTI)
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(corpus, src / "good.nii")
    os.symlink(corpus, src / "linked.nii")
    os.mkfifo(src / "fifo.nii")
    (src / "garbage.nii").write_bytes(b"\x00" * 400)
    code = subprocess.run([sys.executable, "-c", "import sys; from medconv.cli.main import main; sys.exit(main())",
                           "convert", str(src), str(tmp_path / "out"), "--reader", "nifti", "-j", "1", "-q"],
                          capture_output=True, text=True, timeout=120).returncode
    assert code == 1
    import json

    rows = {row["unit_id"]: row for row in map(json.loads, (tmp_path / "out" / "medconv-manifest.jsonl").open())}
    assert set(rows) == {"good", "linked", "fifo", "garbage"}
    assert rows["good"]["status"] == "converted"
    assert rows["linked"]["error_type"] == "outside-dataset"
    assert rows["fifo"]["error_type"] == "special-file"
    assert rows["garbage"]["status"] == "failed"


# -- discovery never aborts -------------------------------------------------------------------------------------

def test_an_unforeseen_exception_while_parsing_one_file_is_one_unreadable_source(tmp_path, monkeypatch):
    corpus = corpus_path(*NIFTI)
    for name in ("a", "b"):
        shutil.copy(corpus, tmp_path / f"{name}.nii")
    import medconv.readers.nifti as nifti_module

    real_load = nifti_module._load

    def load(path):
        if path.endswith("b.nii"):
            raise RecursionError("a parser bug")
        return real_load(path)

    monkeypatch.setattr(nifti_module, "_load", load)
    sources = {s.id: s for s in NiftiReader().discover(str(tmp_path))}
    assert set(sources) == {"a", "b"} and "error" not in sources["a"].info
    assert "RecursionError: a parser bug" in sources["b"].info["error"]
    with pytest.raises(UnreadableFileError, match="cannot be parsed") as caught:
        NiftiReader().read(sources["b"])
    assert caught.value.path == str(tmp_path / "b.nii")


# -- the voxel limit --------------------------------------------------------------------------------------------

def test_the_default_voxel_limit_follows_the_memory_available_now():
    memory = available_memory()
    assert memory is not None and 0 < memory <= os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert abs(default_max_voxels() - memory // 4) < 0.2 * memory // 4  # memory moves between the two calls


def test_max_voxels_refuses_more_and_accepts_as_many(tmp_path):
    corpus = corpus_path(*NIFTI)
    voxels = int(np.prod(nib.load(corpus).shape))
    assert medconv.read(corpus, options=ReadOptions(max_voxels=voxels)).array.size == voxels
    with pytest.raises(VolumeTooLargeError, match=f"{voxels:,} voxels") as caught:
        medconv.read(corpus, options=ReadOptions(max_voxels=voxels - 1))
    assert "--max-voxels" in caught.value.hint
    with pytest.raises(VolumeTooLargeError):
        check_voxel_count((2**40, 2**40, 2**40), "x", ReadOptions())  # exact integers, no int64 wrap-around


# -- a rescale that cannot give finite values fails -------------------------------------------------------------

def test_rescale_past_float32_is_float64_and_equal_to_numpy_in_float64():
    stored = np.array([[-32768, 0], [1, 32767]], np.int16)
    result = apply_rescale(stored, 1e38, 5.0)
    assert result.dtype == np.float64 and np.all(np.isfinite(result))
    np.testing.assert_array_equal(result, stored.astype(np.float64) * 1e38 + 5.0)


def test_rescale_below_float32_normal_range_is_float64():
    stored = np.array([1, 2, 3], np.int16)
    result = apply_rescale(stored, 1e-300, 0.0)
    np.testing.assert_array_equal(result, stored.astype(np.float64) * 1e-300)
    assert np.all(result != 0)


@pytest.mark.parametrize("slope, intercept", [(1e308, 0.0), (1.0, 1e308 * 10), (float("nan"), 0.0),
                                              (1.0, float("inf"))])
def test_a_rescale_that_is_not_finite_fails_naming_the_file(slope, intercept):
    stored = np.array([1000.0, 2e300])
    with pytest.raises(UnreadableFileError, match="not finite") as caught:
        apply_rescale(stored, slope, intercept, path="scan.nii")
    assert caught.value.path == "scan.nii"
    with pytest.raises(UnreadableFileError):
        rescaled_range((1000.0, 2e300), slope, intercept)


def test_nan_stored_in_a_float_image_is_data_not_an_error():
    stored = np.array([np.nan, 1.0, np.inf], np.float32)
    result = apply_rescale(stored, 2.0, 1.0)
    np.testing.assert_array_equal(result, np.array([np.nan, 3.0, np.inf], np.float32))


# -- the command-line flags -------------------------------------------------------------------------------------

@pytest.fixture
def head_outside(tmp_path):
    """SRC/head.mhd naming ../HeadMRVolume.raw (outside SRC)."""
    corpus = corpus_path("metaimage", "vtk-data", "Data", "HeadMRVolume.mhd")
    (tmp_path / "src").mkdir()
    shutil.copy(corpus.with_suffix(".raw"), tmp_path / "HeadMRVolume.raw")
    (tmp_path / "src" / "head.mhd").write_text(corpus.read_text().replace("= HeadMRVolume.raw", "= ../HeadMRVolume.raw"))
    return tmp_path


@pytest.mark.parametrize("command", ["mhd2nii", "convert"])
def test_follow_outside_and_max_voxels_flags_reach_the_reader(head_outside, command):
    import SimpleITK as sitk

    from medconv.cli.main import main

    src = str(head_outside / "src")
    assert main([command, src, str(head_outside / "refused"), "-j", "1", "-q"]) == 1
    assert main([command, src, str(head_outside / "followed"), "-j", "1", "-q", "--follow-outside"]) == 0
    written = nib.load(head_outside / "followed" / "head.nii.gz")
    reference = sitk.GetArrayFromImage(sitk.ReadImage(str(head_outside / "src" / "head.mhd")))
    np.testing.assert_array_equal(np.asanyarray(written.dataobj), reference.T)
    assert main([command, src, str(head_outside / "limited"), "-j", "1", "-q", "--follow-outside",
                 "--max-voxels", "100k"]) == 1  # 124,992 voxels
    import json

    row = json.loads((head_outside / "limited" / "medconv-manifest.jsonl").read_text().splitlines()[0])
    assert row["error_type"] == "too-large" and "limit of 100,000" in row["reason"]


@pytest.mark.parametrize("value", ["0", "-5", "lots", "1.5G"])
def test_a_bad_max_voxels_is_a_usage_error(head_outside, capsys, value):
    from medconv.cli.main import main

    assert main(["mhd2nii", str(head_outside / "src"), str(head_outside / "out"), "--max-voxels", value]) == 2
    assert "--max-voxels" in capsys.readouterr().err
