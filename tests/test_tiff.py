"""TIFF reader: voxels against tifffile's own array, spacing from OME and ImageJ metadata, slice folders."""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import tifffile

import medconv
from medconv.api import discover
from medconv.errors import MissingDependencyError, UnreadableFileError, UnsupportedFormatError
from medconv.options import ReadOptions, WriteOptions
from medconv.readers.tiff import TiffReader

from conftest import CORPORA, corpus_path

TIFF_CORPUS = CORPORA / "tiff"

#: The documented axis mapping, written out per tifffile axes string: tifffile's
#: C-ordered array -> medconv's (i, j, k[, 4th]) = (X, Y, Z|I, T|C|S).
AXIS_MAPPING = {
    "YX": lambda a: a.T[:, :, np.newaxis],
    "YXS": lambda a: a.transpose(1, 0, 2)[:, :, np.newaxis, :],
    "SYX": lambda a: a.transpose(2, 1, 0)[:, :, np.newaxis, :],
    "IYX": lambda a: a.transpose(2, 1, 0),
    "ZYX": lambda a: a.transpose(2, 1, 0),
    "IYXS": lambda a: a.transpose(2, 1, 0, 3),
    "CZYX": lambda a: a.transpose(3, 2, 1, 0),
    "TZYX": lambda a: a.transpose(3, 2, 1, 0),
}


def _corpus_files() -> list:
    if not TIFF_CORPUS.exists():
        return [pytest.param(None, id="corpus-absent")]
    files = sorted(TIFF_CORPUS.glob("*.tif")) + sorted((TIFF_CORPUS / "ome").glob("*.tif"))
    return [pytest.param(p.relative_to(TIFF_CORPUS).as_posix(), id=p.name) for p in files]


def _corpus(relative: str | None) -> Path:
    if relative is None:
        corpus_path("tiff")  # skips, or fails under CI
    return corpus_path("tiff", *relative.split("/"))


@pytest.mark.corpus
@pytest.mark.parametrize("relative", _corpus_files())
def test_corpus_file_matches_tifffile(relative, tmp_path):
    path = _corpus(relative)
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        expected = AXIS_MAPPING[series.axes](series.asarray())
    volume = medconv.read(path, options=ReadOptions(kind="intensity"))
    np.testing.assert_array_equal(volume.array, expected)
    assert volume.origin == (0.0, 0.0, 0.0) and np.array_equal(volume.direction, np.eye(3))
    out = tmp_path / "out.nii.gz"
    medconv.write(volume, out, options=WriteOptions(sidecar=False))
    written = nib.load(out)
    np.testing.assert_array_equal(np.asanyarray(written.dataobj), expected)
    np.testing.assert_allclose(written.affine, np.diag([-1.0, -1.0, 1.0, 1.0]))  # identity LPS, 1 mm


LOSSLESS_SAME_AS_UNCOMPRESSED = ["shapes_deflate.tif", "shapes_lzw.tif", "shapes_zstd.tif", "shapes_lzw_tiled.tif",
                                 "shapes_lzw_planar.tif", "shapes_lzw_tiled_planar.tif",
                                 "shapes_uncompressed_tiled_planar.tif", "shapes_multi_size.tif"]


@pytest.mark.corpus
@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in LOSSLESS_SAME_AS_UNCOMPRESSED])
def test_every_lossless_encoding_decodes_to_the_uncompressed_image(name):
    reference = medconv.read(corpus_path("tiff", "shapes_uncompressed.tif")).array
    np.testing.assert_array_equal(medconv.read(corpus_path("tiff", name)).array, reference)


@pytest.mark.corpus
def test_jpeg_encoding_is_close_to_the_uncompressed_image():
    reference = medconv.read(corpus_path("tiff", "shapes_uncompressed.tif")).array.astype(float)
    jpeg = medconv.read(corpus_path("tiff", "shapes_jpg.tif")).array.astype(float)
    assert np.mean(np.abs(jpeg - reference)) < 3.0


@pytest.mark.corpus
def test_rgb_to_gray_matches_pillow_luma():
    from PIL import Image

    path = corpus_path("tiff", "shapes_uncompressed.tif")
    grey = medconv.read(path, options=ReadOptions(rgb_to_gray=True))
    assert grey.shape == (128, 72, 1) and "axis4" not in grey.meta
    pillow = np.asarray(Image.open(path).convert("L"))  # (rows, cols)
    assert np.max(np.abs(grey.array[:, :, 0].astype(int) - pillow.T.astype(int))) <= 1


@pytest.mark.corpus
def test_ome_dimension_order_gives_time_and_channel_axes():
    four_d = medconv.read(corpus_path("tiff", "ome", "4D-series.ome.tif"))
    assert four_d.shape == (439, 167, 5, 7) and four_d.meta["axis4"] == "time"
    channels = medconv.read(corpus_path("tiff", "ome", "multi-channel-z-series.ome.tif"))
    assert channels.shape == (439, 167, 5, 3) and channels.meta["axis4"] == "channel"


# -- spacing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("unit, factor", [pytest.param("µm", 1e-3, id="micrometre"),
                                          pytest.param("nm", 1e-6, id="nanometre"),
                                          pytest.param("mm", 1.0, id="millimetre")])
def test_ome_physical_size_reaches_spacing_and_nifti(tmp_path, unit, factor):
    data = np.arange(4 * 6 * 8, dtype=np.uint16).reshape(4, 6, 8)
    path = tmp_path / "stack.ome.tif"
    tifffile.imwrite(path, data, ome=True, metadata={
        "axes": "ZYX", "PhysicalSizeX": 0.5, "PhysicalSizeXUnit": unit, "PhysicalSizeY": 0.25,
        "PhysicalSizeYUnit": unit, "PhysicalSizeZ": 2.0, "PhysicalSizeZUnit": unit})
    volume = medconv.read(path)
    np.testing.assert_allclose(volume.spacing, np.array([0.5, 0.25, 2.0]) * factor)
    np.testing.assert_array_equal(volume.array, data.transpose(2, 1, 0))
    out = tmp_path / "stack.nii.gz"
    medconv.write(volume, out, options=WriteOptions(sidecar=False))
    np.testing.assert_allclose(nib.load(out).header.get_zooms(), np.array([0.5, 0.25, 2.0]) * factor, rtol=1e-6)


def test_imagej_hyperstack_spacing_and_channels(tmp_path):
    data = np.random.default_rng(0).integers(0, 4000, size=(5, 2, 6, 7), dtype=np.uint16)  # Z C Y X
    path = tmp_path / "hyper.tif"
    tifffile.imwrite(path, data, imagej=True, resolution=(1 / 0.3, 1 / 0.4),
                     metadata={"axes": "ZCYX", "spacing": 1.5, "unit": "um"})
    volume = medconv.read(path)
    np.testing.assert_allclose(volume.spacing, (0.0003, 0.0004, 0.0015), rtol=1e-6)
    assert volume.shape == (7, 6, 5, 2) and volume.meta["axis4"] == "channel"
    np.testing.assert_array_equal(volume.array, data.transpose(3, 2, 0, 1))
    (source,) = TiffReader().discover(str(tmp_path))
    assert source.info["shape"] == [7, 6, 5, 2] and source.info["4d"]  # the header's facts, in volume order
    out = tmp_path / "hyper.nii.gz"
    medconv.write(volume, out, options=WriteOptions(sidecar=False))
    np.testing.assert_allclose(nib.load(out).header.get_zooms()[:3], (0.0003, 0.0004, 0.0015), rtol=1e-5)


@pytest.mark.parametrize("axes, shape, expected_shape, axis4", [
    pytest.param("TZYX", (3, 4, 5, 6), (6, 5, 4, 3), "time", id="frames-and-slices"),
    pytest.param("TYX", (3, 5, 6), (6, 5, 1, 3), "time", id="frames-only"),
    pytest.param("CYX", (2, 5, 6), (6, 5, 1, 2), "channel", id="channels-only"),
    pytest.param("ZYX", (4, 5, 6), (6, 5, 4), None, id="slices-only"),
])
def test_imagej_hyperstack_axes(tmp_path, axes, shape, expected_shape, axis4):
    data = np.arange(np.prod(shape), dtype=np.uint16).reshape(shape)
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": axes})
    volume = medconv.read(path)
    assert volume.shape == expected_shape and volume.meta.get("axis4") == axis4
    order = [axes.index("X"), axes.index("Y")] + [axes.index(a) for a in "ZTC" if a in axes]
    np.testing.assert_array_equal(volume.array.reshape(data.transpose(order).shape), data.transpose(order))


def test_imagej_time_and_channels_is_too_many_axes(tmp_path):
    path = tmp_path / "tzc.tif"
    tifffile.imwrite(path, np.zeros((3, 4, 2, 5, 6), np.uint8), imagej=True, metadata={"axes": "TZCYX"})
    with pytest.raises(UnsupportedFormatError, match="at most 4"):
        medconv.read(path)


def test_resolution_in_centimetres_is_used_and_inches_ignored(tmp_path):
    data = np.zeros((3, 4, 5), np.uint8)
    tifffile.imwrite(tmp_path / "cm.tif", data, resolution=(40.0, 20.0), resolutionunit="CENTIMETER",
                     photometric="minisblack")
    tifffile.imwrite(tmp_path / "inch.tif", data, resolution=(300.0, 300.0), resolutionunit="INCH",
                     photometric="minisblack")
    centimetre = medconv.read(tmp_path / "cm.tif", options=ReadOptions(tiff_spacing=(9.0, 9.0, 2.5)))
    assert centimetre.spacing == pytest.approx((0.25, 0.5, 2.5)) and centimetre.shape == (5, 4, 3)
    inch = medconv.read(tmp_path / "inch.tif")
    assert inch.spacing == (1.0, 1.0, 1.0) and any("1 mm" in w for w in inch.warnings)
    chosen = medconv.read(tmp_path / "inch.tif", options=ReadOptions(tiff_spacing=(0.7, 0.7, 3.0)))
    assert chosen.spacing == (0.7, 0.7, 3.0) and not chosen.warnings


# -- slice folders -----------------------------------------------------------------------------


def _write_slices(folder: Path, count: int, shape=(6, 5)) -> np.ndarray:
    folder.mkdir(parents=True)
    slices = np.random.default_rng(3).integers(-1000, 1000, size=(count,) + shape, dtype=np.int16)
    for index in reversed(range(count)):  # written out of order: the reader sorts naturally
        tifffile.imwrite(folder / f"slice_{index + 1}.tif", slices[index])
    return slices


def test_folder_of_single_slices_is_one_volume_in_natural_order(tmp_path):
    slices = _write_slices(tmp_path / "data" / "case1", 12)
    sources = list(discover(tmp_path / "data", ["tiff"]))
    assert [(s.id, len(s.paths)) for s in sources] == [("case1", 12)]
    volume = medconv.read(sources[0], options=ReadOptions(tiff_spacing=(0.5, 0.5, 2.0)))
    np.testing.assert_array_equal(volume.array, slices.transpose(2, 1, 0))  # slice_2 before slice_10
    assert volume.spacing == (0.5, 0.5, 2.0)
    assert medconv.read(tmp_path / "data" / "case1").shape == (5, 6, 12)  # the folder itself


def test_slice_folder_with_an_odd_slice_names_it(tmp_path):
    _write_slices(tmp_path / "case", 4)
    tifffile.imwrite(tmp_path / "case" / "slice_3.tif", np.zeros((7, 5), np.int16))
    with pytest.raises(UnreadableFileError, match="slice 3 of 4") as caught:
        medconv.read(tmp_path / "case")
    assert caught.value.path.endswith("slice_3.tif")


def test_folder_of_unrelated_or_multipage_tiffs_gives_one_volume_each(tmp_path):
    tifffile.imwrite(tmp_path / "liver.tif", np.zeros((4, 5), np.uint8))
    tifffile.imwrite(tmp_path / "brain_mask.tif", np.zeros((4, 5), np.uint8))
    tifffile.imwrite(tmp_path / "stack_1.tif", np.zeros((3, 4, 5), np.uint8), photometric="minisblack")
    tifffile.imwrite(tmp_path / "stack_2.tif", np.zeros((3, 4, 5), np.uint8), photometric="minisblack")
    ids = sorted(source.id for source in TiffReader().discover(str(tmp_path)))
    assert ids == ["brain_mask", "liver", "stack_1", "stack_2"]


def test_tiff_label_mask_by_name_is_compact(tmp_path):
    tifffile.imwrite(tmp_path / "organ_label.tif", np.array([[0, 2], [1, 0]], np.uint32))
    volume = medconv.read(tmp_path / "organ_label.tif")
    assert volume.kind == "label" and volume.array.dtype == np.uint8


# -- errors ----------------------------------------------------------------------------------


def test_truncated_tiff_is_unreadable(tmp_path):
    good = tmp_path / "good.tif"
    tifffile.imwrite(good, np.arange(64 * 64, dtype=np.uint16).reshape(64, 64))
    bad = tmp_path / "bad.tif"
    bad.write_bytes(good.read_bytes()[:200])
    with pytest.raises(UnreadableFileError):
        medconv.read(bad)
    text = tmp_path / "text.tif"
    text.write_text("not a tiff")
    assert not TiffReader().sniff(str(text)) and TiffReader().sniff(str(good))
    with pytest.raises(UnreadableFileError, match="not a readable TIFF"):
        medconv.read(text, reader="tiff")


def test_missing_tifffile_is_a_missing_dependency(monkeypatch):
    from medconv.registry import BUILTIN_READERS, Registry

    monkeypatch.setitem(sys.modules, "tifffile", None)  # makes `import tifffile` fail
    monkeypatch.delitem(sys.modules, "medconv.readers.tiff", raising=False)
    registry = Registry("reader", BUILTIN_READERS, "medconv.test-none")
    with pytest.raises(MissingDependencyError) as caught:
        registry.get("tiff")
    assert "medconv[tiff]" in caught.value.hint
