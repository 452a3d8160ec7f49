"""Hostile TIFF files (issue 16 items 9, 10, 13, 14): looping page chains, strips that cannot fill the
image, memory bombs, links out of SRC. Each is built from a corpus file at test time."""

from __future__ import annotations

import os
import shutil
import struct

import numpy as np
import pytest
import tifffile

import medconv
from medconv.errors import OutsideDatasetError, UnreadableFileError
from medconv.options import ReadOptions
from medconv.readers.tiff import TiffReader

from conftest import corpus_path
from hostile_inputs import fuzz_inputs

MRI = ("tiff", "mri.tif")  # 27 pages, 128x128, PackBits, 2 strips per page
RGB = ("tiff", "shapes_lzw.tif")  # 72x128 RGB, LZW, one strip, PlanarConfiguration 1


def _entry(data: bytes, tag: int, page: int = 0):
    """``(entry offset, type, count)`` of ``tag`` in page ``page`` (the harness' own IFD walker)."""
    order, entries, ifds = fuzz_inputs.tiff_entries(data)
    place, _, kind, count, _ = next(e for e in entries if e[1] == tag and e[4] == ifds[page])
    return order, place, kind, count


def _loop_last_page_to(data: bytes, target_page: int) -> bytes:
    order, _, ifds = fuzz_inputs.tiff_entries(data)
    last = ifds[-1]
    count = struct.unpack(order + "H", data[last:last + 2])[0]
    out = bytearray(data)
    struct.pack_into(order + "I", out, last + 2 + 12 * count, ifds[target_page])
    return bytes(out)


# -- item 10: IFD cycles ---------------------------------------------------------------------------------------

def test_a_short_cycle_fails_where_tifffile_silently_drops_pages(tmp_path):
    data = corpus_path(*MRI).read_bytes()
    path = tmp_path / "loop.tif"
    path.write_bytes(_loop_last_page_to(data, 0))
    with tifffile.TiffFile(path) as tif:
        assert len(tif.pages) == 19  # tifffile's own cycle check keeps 19 of the 27 slices, no error
    with pytest.raises(UnreadableFileError, match="loops back: the page after page 27 is page 1 again") as caught:
        medconv.read(path)
    assert caught.value.path == str(path)


def test_a_cycle_longer_than_100_pages_is_found_in_discovery(tmp_path):
    """tifffile 2026.3.3 never ends on this file (tests/test_hostile_bombs.py times medconv on it)."""
    path = tmp_path / "long-loop.tif"
    tifffile.imwrite(path, np.arange(150 * 8 * 8, dtype=np.uint8).reshape(150, 8, 8))
    path.write_bytes(_loop_last_page_to(path.read_bytes(), 75))
    source = next(iter(TiffReader().discover(str(tmp_path))))
    assert "the page after page 150 is page 76 again" in source.info["error"]
    with pytest.raises(UnreadableFileError, match="loops back"):
        TiffReader().read(source)


# -- item 9: strips or tiles that cannot fill the image -------------------------------------------------------------

@pytest.mark.parametrize("value", [0, 3, 7])
def test_a_planar_configuration_tiff_does_not_define_is_refused(tmp_path, value):
    """tifffile fills one plane of three and leaves the rest uninitialised memory."""
    data = corpus_path(*RGB).read_bytes()
    order, place, kind, _ = _entry(data, 284)
    path = tmp_path / "planar.tif"
    path.write_bytes(fuzz_inputs.set_tiff_value(data, place, order, kind, value))
    with tifffile.TiffFile(path) as tif:  # the reference shows the hole: reads into zeros and ones differ
        series = tif.series[0]
        zeros = series.asarray(out=np.zeros(series.shape, series.dtype))
        ones = series.asarray(out=np.full(series.shape, 255, series.dtype))
    assert not np.array_equal(zeros, ones)
    with pytest.raises(UnreadableFileError, match=f"PlanarConfiguration = {value}"):
        medconv.read(path)


def test_a_missing_strip_is_refused_where_tifffile_fills_zeros(tmp_path):
    data = corpus_path(*MRI).read_bytes()
    order, place, kind, count = _entry(data, 279, page=3)  # StripByteCounts of the 4th page
    assert count == 2
    offset = struct.unpack(order + "I", data[place + 8:place + 12])[0]
    out = bytearray(data)
    struct.pack_into(order + "I", out, offset + 4, 0)  # its second strip: no bytes
    path = tmp_path / "hole.tif"
    path.write_bytes(bytes(out))
    original = tifffile.imread(corpus_path(*MRI))
    assert not np.array_equal(tifffile.imread(path)[3], original[3])  # tifffile: no error, zeros
    with pytest.raises(UnreadableFileError, match="page 4 has 1 of the 2 strips"):
        medconv.read(path)


def test_a_sample_format_tifffile_cannot_decode_is_refused_not_an_empty_array(tmp_path):
    data = corpus_path(*RGB).read_bytes()
    order, place, kind, _ = _entry(data, 258)  # BitsPerSample (3 values, out of line): point them at 0s
    out = bytearray(data)
    struct.pack_into(order + "I", out, place + 4, 1)  # one value, inline
    struct.pack_into(order + "H", out, place + 8, 0)
    path = tmp_path / "bits.tif"
    path.write_bytes(bytes(out))
    with pytest.raises(UnreadableFileError):
        medconv.read(path)


def test_a_decoding_tag_tifffile_cannot_parse_is_refused_not_dropped(tmp_path):
    """tifffile drops a Compression tag whose values lie past the file's end and decodes as uncompressed
    (a fuzz mutant of this file came out as its LZW bytes, shown as pixels)."""
    data = corpus_path(*RGB).read_bytes()
    order, place, _, _ = _entry(data, 259)
    out = bytearray(data)
    struct.pack_into(order + "I", out, place + 4, 3)  # three SHORTs: stored out of line ...
    struct.pack_into(order + "I", out, place + 8, 0xFFFFFF00)  # ... past the end of the file
    path = tmp_path / "dropped.tif"
    path.write_bytes(bytes(out))
    with tifffile.TiffFile(path) as tif:
        assert 259 not in tif.pages.first.tags and tif.pages.first.compression == 1
    with pytest.raises(UnreadableFileError, match="page 1's Compression cannot be read"):
        medconv.read(path)


# -- item 13: memory bombs -----------------------------------------------------------------------------------------

def test_max_voxels_applies_to_tiff():
    path = corpus_path(*MRI)
    with pytest.raises(medconv.errors.VolumeTooLargeError):
        medconv.read(path, options=ReadOptions(max_voxels=27 * 128 * 128 - 1))
    np.testing.assert_array_equal(medconv.read(path, options=ReadOptions(max_voxels=27 * 128 * 128)).array,
                                  tifffile.imread(path).transpose(2, 1, 0))


# -- item 14: links out of SRC ---------------------------------------------------------------------------------------

def test_a_slice_folder_with_a_link_out_is_not_opened_and_the_link_is_refused(tmp_path):
    corpus = corpus_path(*MRI)
    src = tmp_path / "src"
    src.mkdir()
    for n in range(3):
        tifffile.imwrite(src / f"slice_{n}.tif", tifffile.imread(corpus)[n])
    os.symlink(corpus, src / "slice_3.tif")
    sources = list(TiffReader().discover(str(src)))
    linked = next(s for s in sources if s.paths == (str(src / "slice_3.tif"),))
    with pytest.raises(OutsideDatasetError):
        TiffReader().read(linked)
    stack = next(s for s in sources if len(s.paths) == 3)  # the three real slices are still one volume
    np.testing.assert_array_equal(TiffReader().read(stack).array, tifffile.imread(corpus)[:3].transpose(2, 1, 0))
    shutil.rmtree(src)
