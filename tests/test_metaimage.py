"""MetaImage reader: every geometry and voxel checked against SimpleITK's reading and writing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

import medconv
from medconv.api import discover
from medconv.errors import GeometryError, MedconvError, UnreadableFileError, UnsupportedFormatError
from medconv.options import ReadOptions
from medconv.readers.metaimage import MetaImageReader, read_metaimage
from medconv.readers.metaimage_header import parse_header

from conftest import CORPORA, corpus_path
from metaimage_synth import (ct_phantom, lung_mask, rotation, write_luna_tree, write_mhd_by_hand,
                              write_problem_cases, write_sitk, write_sliver_tree)
from references import assert_same_in_world

METAIMAGE_CORPUS = CORPORA / "metaimage"
#: frogtissue.mhd says CompressedDataSize = 260020 but its .zraw holds 262087 bytes:
#: ITK inflates only the first 260020 and silently leaves the last 2670 voxels uninitialised.
FROG = "vtk-data/Data/froggy/frogtissue.mhd"


def _corpus_files() -> list:
    if not METAIMAGE_CORPUS.exists():
        return [pytest.param(None, id="corpus-absent")]
    files = sorted(p for suffix in ("*.mhd", "*.mha") for p in METAIMAGE_CORPUS.rglob(suffix))
    return [pytest.param(p.relative_to(METAIMAGE_CORPUS).as_posix(), id=p.name) for p in files]


def _reference_path(relative: str, tmp_path: Path) -> Path:
    """The file SimpleITK should read: the corpus file, or for the frog a copy of its header with the true size."""
    path = corpus_path("metaimage", *relative.split("/"))
    if relative != FROG:
        return path
    fixed = tmp_path / "frogtissue_fixed.mhd"
    data = path.with_suffix(".zraw")
    text = path.read_text().replace("CompressedDataSize = 260020", f"CompressedDataSize = {data.stat().st_size}")
    fixed.write_text(text.replace("ElementDataFile = frogtissue.zraw", f"ElementDataFile = {data}"))
    return fixed


def _read_corpus_file(relative: str | None) -> medconv.Volume:
    if relative is None:  # no corpus: skip, or fail under CI
        corpus_path("metaimage")
    return medconv.read(corpus_path("metaimage", *relative.split("/")))


def _sitk_geometry(image: "sitk.Image") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dims = image.GetDimension()
    spacing = np.ones(3)
    origin = np.zeros(3)
    direction = np.eye(3)
    spatial = min(dims, 3)
    spacing[:spatial] = image.GetSpacing()[:spatial]
    origin[:spatial] = image.GetOrigin()[:spatial]
    direction[:spatial, :spatial] = np.array(image.GetDirection()).reshape(dims, dims)[:spatial, :spatial]
    return spacing, origin, direction


def assert_matches_sitk(volume: medconv.Volume, reference: Path) -> None:
    """Voxels (in ``(i, j, k)`` order), spacing, origin and direction equal SimpleITK's reading."""
    image = sitk.ReadImage(str(reference))
    expected = sitk.GetArrayFromImage(image)  # (k, j, i[, c])
    if image.GetNumberOfComponentsPerPixel() > 1:
        expected = np.moveaxis(expected, -1, 0).T  # -> (i, j, k, c)
        expected = expected.reshape(volume.shape)
    else:
        expected = expected.T
    np.testing.assert_array_equal(volume.array, expected)
    spacing, origin, direction = _sitk_geometry(image)
    np.testing.assert_allclose(volume.spacing, spacing, rtol=0, atol=1e-9)
    np.testing.assert_allclose(volume.origin, origin, rtol=0, atol=1e-9)
    np.testing.assert_allclose(volume.direction, direction, rtol=0, atol=1e-9)


@pytest.mark.corpus
@pytest.mark.parametrize("relative", _corpus_files())
def test_corpus_file_matches_simpleitk(relative, tmp_path):
    volume = _read_corpus_file(relative)
    assert volume.meta["source_format"] == "metaimage"
    assert_matches_sitk(volume, _reference_path(relative, tmp_path))


@pytest.mark.corpus
def test_frog_compressed_size_disagreement_is_warned_and_matches_zlib(tmp_path):
    import zlib

    path = corpus_path("metaimage", *FROG.split("/"))
    volume = medconv.read(path)
    assert any("CompressedDataSize" in warning for warning in volume.warnings)
    inflated = np.frombuffer(zlib.decompress(path.with_suffix(".zraw").read_bytes()), np.uint8)
    np.testing.assert_array_equal(volume.array.T.ravel(), inflated)
    # ITK's reading of the file as is agrees up to what the first CompressedDataSize bytes inflate to
    # (beyond that its buffer is left uninitialised, so it is not compared)
    covered = len(zlib.decompressobj().decompress(path.with_suffix(".zraw").read_bytes()[:260020]))
    assert 0.9 * inflated.size < covered < inflated.size
    itk = sitk.GetArrayFromImage(sitk.ReadImage(str(path))).ravel()
    np.testing.assert_array_equal(itk[:covered], inflated[:covered])


@pytest.mark.corpus
@pytest.mark.parametrize("relative", _corpus_files())
def test_corpus_nifti_matches_simpleitk_nifti(relative, tmp_path):
    volume = _read_corpus_file(relative)
    ours = tmp_path / "ours.nii"  # uncompressed: gzip of the 32M-voxel frog is what would take the time
    medconv.write(volume, ours)
    reference = tmp_path / "sitk.nii"
    sitk.WriteImage(sitk.ReadImage(str(_reference_path(relative, tmp_path))), str(reference))
    ours_image, reference_image = nib.load(ours), nib.load(reference)
    if volume.array.ndim == 2:  # nibabel's canonical reorientation needs 3 axes
        np.testing.assert_allclose(ours_image.affine, reference_image.affine, atol=1e-4)
        np.testing.assert_array_equal(np.asanyarray(ours_image.dataobj), np.asanyarray(reference_image.dataobj))
    else:
        assert_same_in_world(ours_image, reference_image, atol_mm=1e-4)


# -- geometry, layouts and element types, against SimpleITK ------------------------------------


def test_transform_matrix_is_transposed_itk_direction(tmp_path):
    """A non-symmetric TransformMatrix written by hand: direction = TM.T, as SimpleITK reads it."""
    direction = rotation((25.0, -15.0, 40.0))
    assert not np.allclose(direction, direction.T)
    text = " ".join(repr(float(v)) for v in direction.T.ravel())  # row n of the text = axis n's direction
    path = write_mhd_by_hand(tmp_path / "oblique.mhd", ct_phantom(), spacing=(0.7, 0.8, 2.5),
                             offset=(-10.0, 20.0, 30.0), matrix_text=text)
    volume = read_metaimage(path)
    np.testing.assert_allclose(volume.direction, direction, atol=1e-12)
    assert_matches_sitk(volume, path)


def test_oblique_written_by_simpleitk(tmp_path):
    path = write_sitk(ct_phantom(), tmp_path / "oblique.mhd", direction=rotation())
    volume = read_metaimage(path)
    assert_matches_sitk(volume, path)
    medconv.write(volume, tmp_path / "ours.nii.gz")
    sitk.WriteImage(sitk.ReadImage(str(path)), str(tmp_path / "sitk.nii.gz"))
    ours, reference = nib.load(tmp_path / "ours.nii.gz"), nib.load(tmp_path / "sitk.nii.gz")
    np.testing.assert_allclose(ours.affine, reference.affine, atol=1e-4)
    np.testing.assert_array_equal(np.asanyarray(ours.dataobj), np.asanyarray(reference.dataobj))


@pytest.mark.parametrize("layout", [
    pytest.param(dict(data="raw"), id="mhd-raw"),
    pytest.param(dict(data="raw", compress=True), id="mhd-zraw"),
    pytest.param(dict(data="local"), id="mha-local-raw"),
    pytest.param(dict(data="local", compress=True), id="mha-local-zlib"),
    pytest.param(dict(data="list"), id="list-of-slices"),
    pytest.param(dict(data="pattern"), id="file-pattern"),
    pytest.param(dict(msb=True), id="big-endian"),
    pytest.param(dict(header_size=37), id="header-size"),
    pytest.param(dict(header_size=-1), id="header-size-minus-one"),
])
def test_data_layouts_match_simpleitk(tmp_path, layout):
    header_size = layout.pop("header_size", 0)
    suffix = ".mha" if layout.get("data") == "local" else ".mhd"
    array = ct_phantom((16, 12, 5))
    path = write_mhd_by_hand(tmp_path / f"image{suffix}", array, spacing=(0.5, 0.6, 3.0), offset=(1.0, 2.0, 3.0),
                             header_size=max(header_size, 0) if header_size != -1 else 11, **layout)
    if header_size == -1:  # junk before the data, found by reading the data from the file's end
        path.write_text(path.read_text().replace("HeaderSize = 11", "HeaderSize = -1"))
    volume = read_metaimage(path)
    assert volume.array.flags.f_contiguous  # the transposed view of a C-ordered buffer
    assert_matches_sitk(volume, path)


@pytest.mark.parametrize("dtype", [pytest.param(np.dtype(t), id=t) for t in (
    "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64")])
def test_every_element_type_matches_simpleitk(tmp_path, dtype):
    rng = np.random.default_rng(1)
    info = np.iinfo(dtype) if dtype.kind in "iu" else None
    if info is not None:
        array = rng.integers(max(info.min, -(2**40)), min(info.max, 2**40), size=(4, 5, 6), dtype=dtype)
    else:
        array = rng.normal(size=(4, 5, 6)).astype(dtype)
    path = write_sitk(array, tmp_path / "typed.mhd")
    volume = read_metaimage(path, ReadOptions(kind="intensity"))
    assert volume.array.dtype == dtype
    assert_matches_sitk(volume, path)


def test_multichannel_image_keeps_channels_on_the_4th_axis(tmp_path):
    rgb = np.stack([ct_phantom((8, 6, 4), seed=s).astype(np.int16) for s in range(3)], axis=-1)  # (k, j, i, c)
    path = write_sitk(rgb, tmp_path / "rgb.mha", vector=True)
    assert parse_header(path).channels == 3
    volume = read_metaimage(path)
    assert volume.shape == (8, 6, 4, 3) and volume.meta["axis4"] == "channel"
    assert_matches_sitk(volume, path)


def test_four_d_image_has_time_axis(tmp_path):
    array = np.arange(2 * 3 * 4 * 5, dtype=np.int16).reshape(5, 4, 3, 2)  # (t, k, j, i)
    path = write_sitk(array, tmp_path / "four.mhd", spacing=(1, 2, 3, 4), origin=(1, 2, 3, 0))
    volume = read_metaimage(path)
    assert volume.shape == (2, 3, 4, 5) and volume.meta["axis4"] == "time"
    np.testing.assert_array_equal(volume.array, sitk.GetArrayFromImage(sitk.ReadImage(str(path))).T)
    assert volume.spacing == (1.0, 2.0, 3.0) and volume.origin == (1.0, 2.0, 3.0)


def test_anatomical_orientation_disagreeing_is_warned_not_used(tmp_path):
    path = write_mhd_by_hand(tmp_path / "ao.mhd", ct_phantom(), matrix_text="1 0 0 0 1 0 0 0 1",
                             extra=["AnatomicalOrientation = LPI"])
    volume = read_metaimage(path)
    assert np.allclose(volume.direction, np.eye(3))  # ITK ignores it: so do we
    assert_matches_sitk(volume, path)
    assert any("AnatomicalOrientation" in warning for warning in volume.warnings)


# -- errors ----------------------------------------------------------------------------------


def test_missing_data_file_is_a_clear_error(tmp_path):
    path = write_problem_cases(tmp_path)["missing"]
    with pytest.raises(UnreadableFileError, match="missing.raw.*does not exist") as caught:
        medconv.read(path)
    assert caught.value.path == str(path) and "put" in caught.value.hint


def test_truncated_data_file_is_a_clear_error(tmp_path):
    path = write_problem_cases(tmp_path)["truncated"]
    with pytest.raises(UnreadableFileError, match="too short: 5760 bytes, the header needs 11520") as caught:
        medconv.read(path)
    assert "truncated" in caught.value.hint


def test_corrupt_compressed_data_is_a_clear_error(tmp_path):
    path = write_sitk(ct_phantom(), tmp_path / "bad.mhd", compress=True)
    zraw = tmp_path / "bad.zraw"
    zraw.write_bytes(zraw.read_bytes()[:100])
    with pytest.raises(UnreadableFileError, match="cannot be inflated"):
        medconv.read(path)


def test_unknown_element_type_is_unsupported(tmp_path):
    path = write_mhd_by_hand(tmp_path / "odd.mhd", ct_phantom())
    path.write_text(path.read_text().replace("MET_SHORT", "MET_FLOAT_MATRIX"))
    with pytest.raises(UnsupportedFormatError, match="ElementType = 'MET_FLOAT_MATRIX'"):
        medconv.read(path)


def test_sheared_matrix_is_refused(tmp_path):
    path = write_mhd_by_hand(tmp_path / "shear.mhd", ct_phantom(), matrix_text="1 0 0 0.3 1 0 0 0 1")
    with pytest.raises(GeometryError, match="not a rotation"):
        medconv.read(path)


def test_data_file_named_in_another_case_is_found_with_a_warning(tmp_path):
    path = write_sitk(ct_phantom(), tmp_path / "liver-orig001.mhd")
    path.write_text(path.read_text().replace("ElementDataFile = liver-orig001.raw", "ElementDataFile = LIVER-ORIG001.RAW"))
    volume = read_metaimage(path)
    assert any("differ in case" in warning for warning in volume.warnings)
    np.testing.assert_array_equal(volume.array, ct_phantom().T)


def test_one_dimensional_header_is_refused(tmp_path):
    path = tmp_path / "line.mhd"
    path.write_text("NDims = 1\nDimSize = 4\nElementType = MET_UCHAR\nElementDataFile = line.raw\n")
    with pytest.raises(UnreadableFileError, match="NDims = '1': need 2, 3 or 4"):
        read_metaimage(path)


def test_not_a_header_is_unreadable(tmp_path):
    path = tmp_path / "binary.mhd"
    path.write_bytes(b"\x00\x01\x02garbage\n")
    assert not MetaImageReader().sniff(str(path))
    with pytest.raises(UnreadableFileError, match="not a MetaImage header"):
        read_metaimage(path)


# -- dataset trees ---------------------------------------------------------------------------


def test_luna_tree_converts_with_original_names_and_clear_errors(tmp_path):
    written = write_luna_tree(tmp_path / "LUNA16", n_images=3)
    problems = write_problem_cases(tmp_path / "LUNA16" / "subset0")
    sources = {source.id: source for source in discover(tmp_path / "LUNA16", ["metaimage"])}
    expected_ids = {p.relative_to(tmp_path / "LUNA16").with_suffix("").as_posix()
                    for p in written["images"] + written["masks"] + list(problems.values())}
    assert set(sources) == expected_ids
    failures: dict[str, MedconvError] = {}
    for source_id, source in sources.items():
        try:
            volume = medconv.read(source)
        except MedconvError as error:
            failures[source_id] = error
            continue
        reference = Path(source.path)
        assert_matches_sitk(volume, reference)
        if source_id.startswith("seg-lungs-LUNA16/"):
            assert volume.kind == "label" and volume.array.dtype == np.uint8
            assert source.info["kind_guess"] == "label"
        else:
            assert volume.kind == "intensity" and volume.array.dtype == np.int16
    assert set(failures) == {"subset0/missing", "subset0/truncated"}
    assert all(isinstance(error, UnreadableFileError) for error in failures.values())


def test_luna_image_nifti_matches_simpleitk_nifti(tmp_path):
    written = write_luna_tree(tmp_path / "LUNA16", n_images=1)
    for path in written["images"] + written["masks"]:
        ours = tmp_path / f"{path.parent.name}-ours.nii.gz"
        reference = tmp_path / f"{path.parent.name}-sitk.nii.gz"
        kind = "label" if path.parent.name == "seg-lungs-LUNA16" else None  # one file alone: no folder names it
        medconv.write(medconv.read(path, options=ReadOptions(kind=kind)), ours)
        sitk.WriteImage(sitk.ReadImage(str(path)), str(reference))
        assert_same_in_world(nib.load(ours), nib.load(reference), atol_mm=1e-4)
    mask = nib.load(tmp_path / "seg-lungs-LUNA16-ours.nii.gz")
    assert mask.header.get_intent()[0] == "label"


def test_sliver_tree_recognises_masks_by_name(tmp_path):
    write_sliver_tree(tmp_path / "sliver07")
    kinds = {source.id: medconv.read(source).kind for source in discover(tmp_path / "sliver07", ["metaimage"])}
    assert kinds == {"liver-orig001": "intensity", "liver-seg001": "label",
                     "liver-orig002": "intensity", "liver-seg002": "label"}


def test_label_options_override_names_and_content(tmp_path):
    written = write_luna_tree(tmp_path / "LUNA16", n_images=1)
    mask_source = next(s for s in discover(tmp_path / "LUNA16", ["metaimage"]) if s.id.startswith("seg-lungs"))
    assert medconv.read(mask_source, options=ReadOptions(kind="intensity")).kind == "intensity"
    # content never decides: a mask no pattern names is an image (scan says so too); resampling it warns
    assert medconv.read(mask_source, options=ReadOptions(label_patterns=("nothing",))).kind == "intensity"
    image = medconv.read(written["images"][0], options=ReadOptions(kind="label"))
    assert image.kind == "label" and image.array.dtype == np.int16  # -1000..3000 needs int16


def test_discovery_reads_headers_only(tmp_path):
    problems = write_problem_cases(tmp_path)
    broken = tmp_path / "broken.mhd"
    broken.write_text("NDims = 3\nDimSize = 4 4\nElementType = MET_SHORT\nElementDataFile = x.raw\n")
    sources = {s.id: s for s in MetaImageReader().discover(str(tmp_path))}
    assert "DimSize has 2 values" in sources["broken"].info["error"]
    assert sources["missing"].paths == (str(problems["missing"]),)  # the absent .raw is not listed
    assert sources["compressed"].paths[1].endswith("compressed.zraw")
    assert sources["oblique"].info["shape"] == [24, 20, 12]
    assert sources["embedded"].info["local_data"] is True
