"""Hostile NIfTI headers (issue 16 items 1, 8, 13, 14): typed errors naming the file, or nibabel's volume."""

from __future__ import annotations

import gzip
import os
import shutil

import nibabel as nib
import numpy as np
import pytest

import medconv
from medconv.errors import GeometryError, OutsideDatasetError, UnreadableFileError, VolumeTooLargeError
from medconv.options import ReadOptions
from medconv.readers.nifti import NiftiReader

from conftest import corpus_path

ANATOMICAL = ("nibabel_data", "nibabel", "tests", "data", "anatomical.nii")  # big-endian int16, 33x41x25


def _with_fields(source, dest, **fields):
    """Copy the NIfTI-1 ``source`` to ``dest`` with header fields set as raw values (no validation)."""
    data = bytearray(open(source, "rb").read())
    header = np.frombuffer(bytes(data[:348]), nib.nifti1.header_dtype.newbyteorder(">")).copy()
    if int(header["sizeof_hdr"][0]) != 348:
        header = header.view(nib.nifti1.header_dtype.newbyteorder("<"))
    for key, value in fields.items():
        header[key] = value
    data[:348] = header.tobytes()
    dest.write_bytes(bytes(data))
    return dest


# -- item 1: a bad header is one unit, never the end of discovery --------------------------------------------

@pytest.mark.parametrize("fields, error", [
    pytest.param(dict(quatern_b=np.nan, qform_code=1, sform_code=0), GeometryError, id="quaternion-nan"),
    pytest.param(dict(quatern_b=0.9, quatern_c=0.9, quatern_d=0.9, qform_code=1, sform_code=0),
                 UnreadableFileError, id="quaternion-not-unit"),
    pytest.param(dict(dim=[3, -1, 41, 25, 1, 1, 1, 1]), UnreadableFileError, id="dim-negative"),
    pytest.param(dict(dim=[3, 0, 41, 25, 1, 1, 1, 1]), UnreadableFileError, id="dim-zero"),
    pytest.param(dict(datatype=999), UnreadableFileError, id="datatype-unknown"),
])
def test_a_bad_header_is_one_failing_unit_and_the_good_file_still_reads(tmp_path, fields, error):
    corpus = corpus_path(*ANATOMICAL)
    shutil.copy(corpus, tmp_path / "good.nii")
    _with_fields(corpus, tmp_path / "bad.nii", **fields)
    sources = {s.id: s for s in NiftiReader().discover(str(tmp_path))}
    assert set(sources) == {"good", "bad"}
    with pytest.raises(error) as caught:
        NiftiReader().read(sources["bad"])
    assert caught.value.path == str(tmp_path / "bad.nii")
    np.testing.assert_array_equal(NiftiReader().read(sources["good"]).array, np.asanyarray(nib.load(corpus).dataobj))


def test_a_broken_qform_beside_a_valid_sform_is_ignored_with_a_warning_as_nibabel_does(tmp_path):
    """The issue's "bad quaternion": nibabel's get_qform raises, which stopped discovery."""
    corpus = corpus_path(*ANATOMICAL)  # sform_code 2
    path = _with_fields(corpus, tmp_path / "q.nii", quatern_b=0.9, quatern_c=0.9, quatern_d=0.9, qform_code=1)
    with pytest.raises(ValueError):
        nib.load(path).header.get_qform()
    source = next(iter(NiftiReader().discover(str(tmp_path))))
    assert "error" not in source.info
    volume = NiftiReader().read(source)
    np.testing.assert_allclose(volume.affine_ras, nib.load(path).affine, atol=1e-5)
    assert any("quaternion" in warning and "ignored" in warning for warning in volume.warnings)


def test_an_undefined_unit_code_is_a_warning_not_an_exception(tmp_path):
    corpus = corpus_path(*ANATOMICAL)
    path = _with_fields(corpus, tmp_path / "units.nii", xyzt_units=255)
    with pytest.raises(KeyError):
        nib.load(path).header.get_xyzt_units()  # what escaped before
    volume = medconv.read(path)
    np.testing.assert_array_equal(volume.array, np.asanyarray(nib.load(path).dataobj))
    assert any("xyzt_units = 255" in warning for warning in volume.warnings)


def test_a_non_finite_sform_falls_back_to_the_qform_with_a_warning_saying_so(tmp_path):
    corpus = corpus_path(*ANATOMICAL)
    path = _with_fields(corpus, tmp_path / "nan.nii", srow_x=[np.nan, 0, 0, 0], sform_code=1, qform_code=1)
    volume = medconv.read(path)
    np.testing.assert_allclose(volume.affine_ras, nib.load(path).get_qform(), atol=1e-5)
    assert "the sform is not finite; used the qform instead" in volume.warnings
    assert not any("disagree" in warning for warning in volume.warnings)


# -- item 8: a rescale overflowing float32 ------------------------------------------------------------------------

def test_scl_slope_1e38_gives_nibabels_finite_float64_values(tmp_path):
    corpus = corpus_path(*ANATOMICAL)
    path = _with_fields(corpus, tmp_path / "slope.nii", scl_slope=1e38, scl_inter=0.0)
    volume = medconv.read(path)
    reference = nib.load(path).get_fdata()
    assert volume.array.dtype == np.float64 and np.all(np.isfinite(volume.array))
    np.testing.assert_array_equal(volume.array, reference)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # nibabel's own read, shown to overflow
def test_a_rescale_overflowing_float64_fails_the_unit(tmp_path):
    data = np.full((4, 3, 2), 1e300)
    image = nib.Nifti1Image(data, np.eye(4))
    image.header.set_slope_inter(1e10, 0.0)
    nib.save(image, tmp_path / "over.nii")
    assert not np.all(np.isfinite(nib.load(tmp_path / "over.nii").get_fdata()))  # nibabel writes inf
    with pytest.raises(UnreadableFileError, match="not finite") as caught:
        medconv.read(tmp_path / "over.nii")
    assert caught.value.path == str(tmp_path / "over.nii")


# -- item 13: sizes declared against what the file holds -------------------------------------------------------

def _huge_header(shape, dtype=np.int16) -> bytes:
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    header["qform_code"] = header["sform_code"] = 1
    header["vox_offset"] = 352
    return header.binaryblock + b"\x00" * 4


def test_a_32767_cubed_nii_gz_of_57_bytes_is_too_large(tmp_path):
    path = tmp_path / "bomb.nii.gz"
    path.write_bytes(gzip.compress(_huge_header((32767, 32767, 32767))))
    assert path.stat().st_size < 100
    with pytest.raises(VolumeTooLargeError):
        medconv.read(path)


def test_a_declared_gigabyte_in_a_tiny_nii_gz_fails_on_what_it_holds(tmp_path):
    """(nibabel allocates the declared gigabyte first; tests/test_hostile_bombs.py measures medconv's RSS.)"""
    path = tmp_path / "short.nii.gz"
    path.write_bytes(gzip.compress(_huge_header((1000, 1000, 500)) + b"\x01" * 1000))
    with pytest.raises(UnreadableFileError, match="inflates to 1000 bytes, the header needs 1000000000"):
        medconv.read(path, options=ReadOptions(max_voxels=10**9))


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_a_vox_offset_of_1e38_is_a_typed_error(tmp_path, suffix):
    """Fuzz finding 12:24726: the offset sized a read (OverflowError escaped)."""
    header = bytearray(_huge_header((4, 4, 4)))
    header[108:112] = np.array(1e38, "<f4").tobytes()
    data = bytes(header) + bytes(64 * 2)
    path = tmp_path / f"far{suffix}"
    path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    with pytest.raises(UnreadableFileError):
        medconv.read(path)


def test_a_vox_offset_inside_the_header_is_refused(tmp_path):
    """nibabel reads a .nii with vox_offset 0 from byte 0: the header's own bytes become voxels."""
    header = nib.Nifti1Header()
    header.set_data_shape((4, 3, 2))
    header.set_data_dtype(np.int16)
    path = tmp_path / "zero.nii"
    path.write_bytes(header.binaryblock + b"\x00" * 4 + np.arange(24, dtype=np.int16).tobytes())
    assert np.asanyarray(nib.load(path).dataobj).ravel(order="F")[0] == 348  # sizeof_hdr, read as a voxel
    with pytest.raises(UnreadableFileError, match="vox_offset = 0 puts the voxels inside the header"):
        medconv.read(path)


def test_extensions_past_the_bound_are_refused_before_nibabel_reads_them(tmp_path):
    """nibabel reads an announced extension whole: 2 GiB of a 9 MB .nii.gz took 49 s and 2.2 GB (the bombs
    test times medconv on the real thing); here the announcement alone."""
    import struct

    header = bytearray(_huge_header((4, 4, 4))[:348])
    header[108:112] = struct.pack("<f", 2.0**31)  # vox_offset: room for 2 GiB of extensions before the voxels
    header = bytes(header) + struct.pack("<4B2i", 1, 0, 0, 0, 2**31 - 8, 0)
    (tmp_path / "ext.nii.gz").write_bytes(gzip.compress(header + bytes(64)))
    with pytest.raises(UnreadableFileError, match="extensions declare 2147483640 bytes"):
        medconv.read(tmp_path / "ext.nii.gz")


def test_a_file_with_real_extensions_reads_as_nibabel_reads_it(tmp_path):
    image = nib.Nifti1Image(np.arange(60, dtype=np.int16).reshape(5, 4, 3), np.diag([2, 2, 3, 1]))
    image.header.extensions.append(nib.nifti1.Nifti1Extension("comment", b"x" * 5000))
    image.header.extensions.append(nib.nifti1.Nifti1Extension("afni", b"<AFNI_attributes/>"))
    for name in ("ext.nii", "ext.nii.gz", "ext.hdr"):
        nib.save(image if name != "ext.hdr" else nib.Nifti1Pair(image.dataobj, image.affine, image.header),
                 tmp_path / name)
        reference = nib.load(tmp_path / name)
        assert len(reference.header.extensions) == 2
        volume = medconv.read(tmp_path / name)
        np.testing.assert_array_equal(volume.array, np.asanyarray(reference.dataobj))


def test_a_truncated_uncompressed_file_says_how_short_it_is(tmp_path):
    corpus = corpus_path(*ANATOMICAL)
    (tmp_path / "cut.nii").write_bytes(corpus.read_bytes()[:30000])
    with pytest.raises(UnreadableFileError, match="too short: 29648 bytes, the header needs 67650"):
        medconv.read(tmp_path / "cut.nii")


def test_max_voxels_applies_to_nifti(tmp_path):
    corpus = corpus_path(*ANATOMICAL)
    with pytest.raises(VolumeTooLargeError):
        medconv.read(corpus, options=ReadOptions(max_voxels=33 * 41 * 25 - 1))


# -- item 14: links out of SRC ----------------------------------------------------------------------------------

def test_the_img_of_a_pair_linked_out_of_src_is_refused(tmp_path):
    src, outside = tmp_path / "src", tmp_path / "outside"
    src.mkdir()
    outside.mkdir()
    image = nib.Nifti1Pair(np.arange(24, dtype=np.int16).reshape(4, 3, 2), np.eye(4))
    nib.save(image, outside / "pair.hdr")
    shutil.copy(outside / "pair.hdr", src / "pair.hdr")
    os.symlink(outside / "pair.img", src / "pair.img")
    source = next(iter(NiftiReader().discover(str(src))))
    with pytest.raises(OutsideDatasetError) as caught:
        NiftiReader().read(source)
    assert caught.value.path == str(src / "pair.hdr") and "pair.img" in caught.value.message
    volume = NiftiReader().read(source, ReadOptions(follow_outside=True))
    np.testing.assert_array_equal(volume.array, np.asanyarray(nib.load(outside / "pair.hdr").dataobj))


def test_a_fifo_named_like_a_nifti_does_not_block_discovery(tmp_path):
    """Opening a FIFO for reading blocks until a writer comes: discovery must not open it."""
    import subprocess
    import sys

    os.mkfifo(tmp_path / "pipe.nii")
    code = ("import sys; from medconv.readers.nifti import NiftiReader; "
            "s = list(NiftiReader().discover(sys.argv[1])); print(s[0].info['error'])")
    completed = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert "is a FIFO" in completed.stdout, completed.stderr
