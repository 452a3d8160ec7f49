"""Hostile MetaImage headers (issue 16 items 1, 11, 12, 13, 14): each fails fast with a typed error
naming the header, in discovery and in reading, or reads exactly what SimpleITK reads."""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest
import SimpleITK as sitk

import medconv
from medconv.errors import (MedconvError, OutsideDatasetError, SpecialFileError, UnreadableFileError,
                            VolumeTooLargeError)
from medconv.options import ReadOptions
from medconv.readers.metaimage import MetaImageReader

from conftest import corpus_path

HEAD = ("metaimage", "vtk-data", "Data", "HeadMRVolume.mhd")  # 48 x 62 x 42 MET_UCHAR + HeadMRVolume.raw


@pytest.fixture
def head(tmp_path):
    """SRC holding a copy of the corpus' HeadMRVolume (.mhd + .raw); returns (src, header text)."""
    corpus = corpus_path(*HEAD)
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(corpus, src / "head.mhd")
    shutil.copy(corpus.with_suffix(".raw"), src / "HeadMRVolume.raw")
    return src, (src / "head.mhd").read_text()


def _variant(src, text: str, name: str, **fields: str):
    """Write ``name``.mhd: ``text`` with the given fields replaced (or added before ElementDataFile)."""
    lines = text.splitlines()
    for key, value in fields.items():
        found = [i for i, line in enumerate(lines) if line.split("=")[0].strip().lower() == key.lower()]
        if found:
            lines[found[0]] = f"{key} = {value}"
        else:
            at = next(i for i, line in enumerate(lines) if line.lower().startswith("elementdatafile"))
            lines.insert(at, f"{key} = {value}")
    path = src / f"{name}.mhd"
    path.write_text("\n".join(lines) + "\n")
    return path


def _assert_equals_simpleitk(volume, path):
    reference = sitk.ReadImage(str(path))
    np.testing.assert_array_equal(volume.array, sitk.GetArrayFromImage(reference).T)
    np.testing.assert_allclose(volume.spacing, reference.GetSpacing())


# -- item 1: discovery never aborts --------------------------------------------------------------------------

@pytest.mark.parametrize("dimsize", ["48 62 inf", "48 62 nan", "48 62 1e400", "48 62 -42", "48 62 42.5"])
def test_a_bad_dimsize_is_one_unreadable_unit_and_the_rest_still_reads(head, dimsize):
    src, text = head
    _variant(src, text, "bad", DimSize=dimsize)
    sources = {s.id: s for s in MetaImageReader().discover(str(src))}
    assert set(sources) == {"head", "bad"}
    assert "DimSize" in sources["bad"].info["error"]
    with pytest.raises(UnreadableFileError, match="DimSize") as caught:
        MetaImageReader().read(sources["bad"])
    assert caught.value.path == str(src / "bad.mhd")
    _assert_equals_simpleitk(MetaImageReader().read(sources["head"]), src / "head.mhd")


@pytest.mark.parametrize("fields", [
    pytest.param(dict(ElementDataFile="LIST abc"), id="list-not-a-dimension"),
    pytest.param(dict(ElementNumberOfChannels="0"), id="no-channels"),
    pytest.param(dict(HeaderSize="-7"), id="negative-header-size"),
    pytest.param(dict(ElementSpacing="nan 4 4"), id="spacing-nan"),
    pytest.param(dict(ElementSize="4 4 4.0e\v000"), id="unused-element-size-corrupt"),  # fuzz 23:25248
    pytest.param(dict(ElementByteOrderMSB="True", BinaryDataByteOrderMSB="False"), id="contradicting-synonyms"),
    pytest.param(dict(CompressedData="True", HeaderSize="-1"), id="compressed-at-end"),
])
def test_malformed_fields_are_typed_errors_in_discovery_and_reading(head, fields):
    src, text = head
    path = _variant(src, text, "bad", **fields)
    source = next(s for s in MetaImageReader().discover(str(src)) if s.id == "bad")
    assert source.info["error"].startswith(str(path))
    with pytest.raises(UnreadableFileError):
        MetaImageReader().read(source)


def test_contradicting_byte_orders_are_refused_not_guessed(head):
    """ITK picks one of BinaryDataByteOrderMSB / ElementByteOrderMSB by its own field order; medconv refuses."""
    src, text = head
    path = _variant(src, text, "both", ElementType="MET_SHORT", DimSize="48 62 21",
                    BinaryDataByteOrderMSB="False", ElementByteOrderMSB="True")
    with pytest.raises(UnreadableFileError, match="contradict"):
        medconv.read(path)


@pytest.mark.parametrize("separator", [pytest.param("\xa0", id="no-break-space"), pytest.param("\r", id="lone-cr")])
def test_header_white_space_is_what_metaio_takes_for_it(head, separator):
    """``CompressedData =\xa0True`` is not True for MetaIO (C isspace), and a lone CR ends a line: read the
    header as ITK does, never as "compressed" on a guess (both files fail, in SimpleITK too)."""
    import zlib

    src, text = head
    (src / "z.zraw").write_bytes(zlib.compress((src / "HeadMRVolume.raw").read_bytes()))
    path = _variant(src, text, "z", ElementDataFile="z.zraw")
    path.write_bytes(path.read_bytes().replace(b"ElementDataFile", f"CompressedData ={separator}True\nElementDataFile"
                                               .encode("latin-1")))
    with pytest.raises(RuntimeError):
        sitk.ReadImage(str(path))
    with pytest.raises(UnreadableFileError):
        medconv.read(path)


# -- item 11: file-name patterns and lists have hard limits, checked before names are built ------------------

def test_a_pattern_of_fifty_million_names_fails_at_once(head):
    src, text = head
    path = _variant(src, text, "pattern", ElementDataFile="s%09d.raw 1 50000000 1")
    start = time.perf_counter()
    source = next(s for s in MetaImageReader().discover(str(src)) if s.id == "pattern")
    with pytest.raises(UnreadableFileError, match="names 50000000 files, but DimSize 48 62 42 has 42 2D slices"):
        MetaImageReader().read(source)
    assert time.perf_counter() - start < 1.0
    assert "50000000 files" in source.info["error"] and source.path == str(path)


def test_a_pattern_with_as_many_names_as_slices_past_the_hard_limit_is_refused(head):
    src, text = head
    path = _variant(src, text, "many", DimSize="1 1 200000", ElementDataFile="s%06d.raw 1 200000 1")
    start = time.perf_counter()
    with pytest.raises(UnreadableFileError, match="more than the 100000"):
        medconv.read(path)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("pattern", ["%09999999d.raw 1 42 1", "%c.raw 1099999 1100040 1", "%d%d.raw 1 42 1"])
def test_patterns_that_cannot_make_file_names_are_refused(head, pattern):
    src, text = head
    with pytest.raises(UnreadableFileError, match="pattern"):
        medconv.read(_variant(src, text, "bad", ElementDataFile=pattern))


def test_a_list_naming_more_files_than_slices_is_refused(head):
    src, text = head
    path = _variant(src, text, "list", ElementDataFile="LIST")
    path.write_text(path.read_text() + "\n".join(f"s{n}.raw" for n in range(43)) + "\n")
    with pytest.raises(UnreadableFileError, match="names 43 files, but DimSize 48 62 42 has 42 2D slices"):
        medconv.read(path)


# -- item 12: decompression stops at the declared size --------------------------------------------------------

def test_compressed_data_longer_than_declared_stops_there(head):
    """The issue's bomb is a 3 GiB .zraw (tests/test_hostile_bombs.py times it); here a small one."""
    import zlib

    src, text = head
    (src / "long.zraw").write_bytes(zlib.compress(bytes(48 * 62 * 42 * 100)))
    path = _variant(src, text, "long", CompressedData="True", ElementDataFile="long.zraw")
    with pytest.raises(UnreadableFileError, match="inflates to more than the 124992 bytes the header declares"):
        medconv.read(path)


@pytest.mark.parametrize("compressed", ["True", "False"])
def test_dev_zero_as_data_file_is_refused_without_reading(head, compressed):
    src, text = head
    path = _variant(src, text, "zero", ElementDataFile="/dev/zero", CompressedData=compressed)
    with pytest.raises(SpecialFileError, match="'/dev/zero' is a device") as caught:
        medconv.read(path, options=ReadOptions(follow_outside=True))
    assert caught.value.path == str(path)


def test_a_local_stream_longer_than_compressed_data_size_is_read_only_that_far(tmp_path):
    """LOCAL data with CompressedDataSize: the stream is read to that size, never further (as ITK does)."""
    array = np.arange(10 * 12 * 14, dtype=np.int16).reshape(14, 12, 10)
    image = sitk.GetImageFromArray(array)
    sitk.WriteImage(image, str(tmp_path / "a.mha"), useCompression=True)
    data = (tmp_path / "a.mha").read_bytes()
    (tmp_path / "a.mha").write_bytes(data + b"\x00" * 1000)  # trailing bytes after the declared stream
    volume = medconv.read(tmp_path / "a.mha")
    np.testing.assert_array_equal(volume.array, sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "a.mha"))).T)


# -- item 13: declared sizes checked before allocating ------------------------------------------------------------

def test_a_100000_cubed_header_is_too_large(head):
    src, text = head
    with pytest.raises(VolumeTooLargeError, match="100000x100000x100000"):
        medconv.read(_variant(src, text, "huge", DimSize="100000 100000 100000"))


def test_a_size_within_the_limit_is_checked_against_the_file_before_allocating(head):
    src, text = head
    path = _variant(src, text, "long", DimSize="10000 10000 10000")  # 1e12 bytes, the .raw holds 124992
    with pytest.raises(UnreadableFileError, match="too short: 124992 bytes, the header needs 1000000000000"):
        medconv.read(path, options=ReadOptions(max_voxels=10**13))


def test_max_voxels_applies_to_metaimage(head):
    src, _ = head
    with pytest.raises(VolumeTooLargeError):
        medconv.read(src / "head.mhd", options=ReadOptions(max_voxels=48 * 62 * 42 - 1))
    _assert_equals_simpleitk(medconv.read(src / "head.mhd", options=ReadOptions(max_voxels=48 * 62 * 42)),
                             src / "head.mhd")


# -- item 14: data files stay inside SRC --------------------------------------------------------------------

@pytest.mark.parametrize("name", ["/etc/hostname", "../outside/HeadMRVolume.raw", "sub/../../outside/HeadMRVolume.raw",
                                  "ABSOLUTE"])
def test_a_data_file_outside_src_is_refused_and_follow_outside_reads_it_as_itk_does(head, name):
    src, text = head
    outside = src.parent / "outside"
    outside.mkdir()
    (src / "sub").mkdir()
    shutil.copy(src / "HeadMRVolume.raw", outside / "HeadMRVolume.raw")
    if name == "ABSOLUTE":
        name = str(outside / "HeadMRVolume.raw")
    path = _variant(src, text, "out", ElementDataFile=name)
    if name == "/etc/hostname":
        path = _variant(src, text, "out", ElementDataFile=name, DimSize="1 1 1")
    source = next(s for s in MetaImageReader().discover(str(src)) if s.id == "out")
    assert "outside the dataset folder" in source.info["error"] and source.paths == (str(path),)
    with pytest.raises(OutsideDatasetError) as caught:
        MetaImageReader().read(source)
    assert caught.value.path == str(path) and "--follow-outside" in caught.value.hint
    if name != "/etc/hostname":
        _assert_equals_simpleitk(MetaImageReader().read(source, ReadOptions(follow_outside=True)), path)


def test_a_data_file_link_pointing_out_of_src_is_refused(head, tmp_path):
    src, text = head
    (tmp_path / "elsewhere.raw").write_bytes((src / "HeadMRVolume.raw").read_bytes())
    os.symlink(tmp_path / "elsewhere.raw", src / "linked.raw")
    path = _variant(src, text, "linked", ElementDataFile="linked.raw")
    with pytest.raises(OutsideDatasetError, match="elsewhere.raw"):
        medconv.read(path)  # a file named on its own: SRC is its folder


def test_a_header_link_pointing_out_of_src_is_not_opened_by_discovery(head, tmp_path):
    src, _ = head
    os.symlink("/etc/passwd", src / "passwd.mhd")
    source = next(s for s in MetaImageReader().discover(str(src)) if s.id == "passwd")
    assert "root:" not in source.info["error"]  # the content of a file outside never reaches a manifest
    with pytest.raises(OutsideDatasetError):
        MetaImageReader().read(source)
    with pytest.raises(MedconvError):
        MetaImageReader().read(source, ReadOptions(follow_outside=True))  # read, and refused as not a header
