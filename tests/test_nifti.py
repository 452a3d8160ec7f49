"""NIfTI in and out: exact round trips, the sform/qform choice, and the nibabel corpus."""

import gzip

import nibabel as nib
import numpy as np
import pytest

import medconv
from medconv import Volume, WriteOptions
from medconv.errors import GeometryError, OutputExistsError, UnreadableFileError
from medconv.geometry import direction_from_axis_codes

from conftest import corpus_path

OBLIQUE_RAS = np.array([
    [-0.69, 0.05, 0.10, 12.5],
    [0.06, 0.79, -0.12, -20.0],
    [-0.07, 0.09, 2.49, 31.0],
    [0.0, 0.0, 0.0, 1.0],
])


def oblique_affine():
    """An orthogonal but oblique RAS affine with spacing (0.7, 0.8, 2.5)."""
    u, _, vt = np.linalg.svd(OBLIQUE_RAS[:3, :3])
    affine = np.eye(4)
    affine[:3, :3] = (u @ vt) * [0.7, 0.8, 2.5]
    affine[:3, 3] = OBLIQUE_RAS[:3, 3]
    return affine


DTYPES = [np.int16, np.uint8, np.uint16, np.int32, np.float32, np.float64, np.int8]


@pytest.mark.parametrize("dtype", [pytest.param(d, id=np.dtype(d).name) for d in DTYPES])
@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_round_trip_keeps_voxels_dtype_and_affine(tmp_path, dtype, suffix):
    rng = np.random.default_rng(1)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    data = (rng.integers(info.min, info.max, size=(9, 7, 5), endpoint=True) if info
            else rng.normal(size=(9, 7, 5))).astype(dtype)
    source = tmp_path / f"in{suffix}"
    nib.save(nib.Nifti1Image(data, oblique_affine()), source)
    volume = medconv.read(source)
    assert volume.array.dtype == dtype
    out = tmp_path / f"out{suffix}"
    medconv.write(volume, out)
    image = nib.load(out)
    assert image.get_data_dtype() == dtype
    np.testing.assert_array_equal(np.asanyarray(image.dataobj), data)
    np.testing.assert_allclose(image.affine, oblique_affine(), atol=1e-6)
    assert int(image.header["sform_code"]) == 1 and int(image.header["qform_code"]) == 1
    np.testing.assert_allclose(image.get_qform(), oblique_affine(), atol=1e-5)
    assert image.header.get_xyzt_units() == ("mm", "sec")


def test_four_dimensional_round_trip(tmp_path):
    data = np.random.default_rng(2).normal(size=(6, 5, 4, 3)).astype(np.float32)
    nib.save(nib.Nifti1Image(data, oblique_affine()), tmp_path / "in.nii.gz")
    medconv.convert(tmp_path / "in.nii.gz", tmp_path / "out.nii.gz")
    np.testing.assert_array_equal(nib.load(tmp_path / "out.nii.gz").get_fdata(dtype=np.float32), data)


def test_scaled_integers_become_the_smallest_exact_integer_type(tmp_path):
    stored = np.arange(-100, 140, dtype=np.int16).reshape(6, 5, 8)
    image = nib.Nifti1Image(stored, np.eye(4))
    image.header.set_slope_inter(1, -1024)
    nib.save(image, tmp_path / "ct.nii")
    volume = medconv.read(tmp_path / "ct.nii")
    assert volume.array.dtype == np.int16
    np.testing.assert_array_equal(volume.array, nib.load(tmp_path / "ct.nii").get_fdata())


def test_fractional_scaling_becomes_float32(tmp_path):
    stored = np.arange(0, 120, dtype=np.uint16).reshape(4, 5, 6)
    image = nib.Nifti1Image(stored, np.eye(4))
    image.header.set_slope_inter(0.5, 3)
    nib.save(image, tmp_path / "pet.nii")
    volume = medconv.read(tmp_path / "pet.nii")
    assert volume.array.dtype == np.float32
    np.testing.assert_allclose(volume.array, nib.load(tmp_path / "pet.nii").get_fdata())


def test_sform_wins_over_qform_with_a_warning(tmp_path):
    image = nib.Nifti1Image(np.zeros((3, 3, 3), np.int16), None)
    image.set_qform(np.diag([2.0, 2, 2, 1]), code=1)
    image.set_sform(oblique_affine(), code=2)
    nib.save(image, tmp_path / "both.nii")
    volume = medconv.read(tmp_path / "both.nii")
    np.testing.assert_allclose(volume.affine_ras, oblique_affine(), atol=1e-6)
    assert any("disagree" in w for w in volume.warnings)


def test_qform_is_used_when_sform_is_unset(tmp_path):
    image = nib.Nifti1Image(np.zeros((3, 3, 3), np.int16), None)
    image.set_qform(oblique_affine(), code=1)
    image.set_sform(np.eye(4), code=0)
    nib.save(image, tmp_path / "q.nii")
    np.testing.assert_allclose(medconv.read(tmp_path / "q.nii").affine_ras, oblique_affine(), atol=1e-5)


def test_sheared_sform_falls_back_to_qform_or_is_refused(tmp_path):
    sheared = np.diag([1.0, 1, 1, 1])
    sheared[0, 2] = 0.4
    image = nib.Nifti1Image(np.zeros((3, 3, 3), np.int16), None)
    image.set_sform(sheared, code=1)
    image.set_qform(np.diag([1.0, 1, 1, 1]), code=1)
    nib.save(image, tmp_path / "shear_q.nii")
    volume = medconv.read(tmp_path / "shear_q.nii")
    assert any("shear" in w for w in volume.warnings)
    image.set_qform(None, code=0)
    nib.save(image, tmp_path / "shear.nii")
    with pytest.raises(GeometryError, match="shear"):
        medconv.read(tmp_path / "shear.nii")


def test_label_volumes_carry_the_label_intent(tmp_path):
    labels = Volume(np.array([[[0, 1], [2, 3]]], dtype=np.uint8), spacing=(1, 1, 1), kind="label")
    medconv.write(labels, tmp_path / "seg.nii.gz")
    assert nib.load(tmp_path / "seg.nii.gz").header.get_intent()[0] == "label"
    assert medconv.read(tmp_path / "seg.nii.gz").kind == "label"


def test_bool_is_written_as_uint8_and_big_endian_as_little(tmp_path):
    mask = Volume(np.eye(4, dtype=bool)[:, :, None], spacing=(1, 1, 1))
    medconv.write(mask, tmp_path / "mask.nii")
    assert nib.load(tmp_path / "mask.nii").get_data_dtype() == np.uint8
    big = Volume(np.arange(24, dtype=">i4").reshape(2, 3, 4), spacing=(1, 1, 1))
    medconv.write(big, tmp_path / "big.nii")
    image = nib.load(tmp_path / "big.nii")
    assert image.get_data_dtype().byteorder in "<="
    np.testing.assert_array_equal(np.asanyarray(image.dataobj), big.array)


def test_non_contiguous_arrays_are_written_in_nifti_order(tmp_path):
    base = np.arange(5 * 6 * 7, dtype=np.int16).reshape(5, 6, 7)
    strided = base[::-1, ::2, 1:]  # neither C nor Fortran contiguous
    medconv.write(Volume(strided, spacing=(1, 1, 1), direction=direction_from_axis_codes("RAS")), tmp_path / "s.nii.gz")
    np.testing.assert_array_equal(np.asanyarray(nib.load(tmp_path / "s.nii.gz").dataobj), strided)


def test_gzip_output_is_standard_gzip(tmp_path):
    volume = Volume(np.zeros((10, 10, 10), np.int16), spacing=(1, 1, 1))
    medconv.write(volume, tmp_path / "z.nii.gz", options=WriteOptions(sidecar=False))
    with gzip.open(tmp_path / "z.nii.gz") as handle:
        assert handle.read()[344:348] == b"n+1\x00"


def test_existing_output_is_kept_unless_overwrite(tmp_path):
    volume = Volume(np.zeros((2, 2, 2), np.int16), spacing=(1, 1, 1))
    medconv.write(volume, tmp_path / "x.nii")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        medconv.write(volume, tmp_path / "x.nii")
    medconv.write(volume, tmp_path / "x.nii", options=WriteOptions(overwrite=True))


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    from medconv.writers import nifti

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(nifti, "write_fortran_order", explode)
    with pytest.raises(RuntimeError):
        medconv.write(Volume(np.zeros((2, 2, 2)), spacing=(1, 1, 1)), tmp_path / "x.nii.gz")
    assert list(tmp_path.iterdir()) == []


def test_truncated_file_is_an_unreadable_error(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((20, 20, 20), np.int16), np.eye(4)), tmp_path / "full.nii")
    data = (tmp_path / "full.nii").read_bytes()
    (tmp_path / "cut.nii").write_bytes(data[: len(data) // 2])
    with pytest.raises(UnreadableFileError, match="cut.nii"):
        medconv.read(tmp_path / "cut.nii")


NIBABEL_FILES = ["anatomical.nii", "example4d.nii.gz", "example_nifti2.nii.gz", "functional.nii",
                 "reoriented_anat_moved.nii", "resampled_anat_moved.nii", "standard.nii.gz"]


@pytest.mark.corpus
@pytest.mark.parametrize("name", NIBABEL_FILES)
def test_corpus_files_match_nibabel(tmp_path, name):
    path = corpus_path("nibabel_data", "nibabel", "tests", "data", name)
    reference = nib.load(path)
    volume = medconv.read(path)
    assert volume.shape == reference.shape
    assert volume.axis_codes == "".join(nib.aff2axcodes(reference.affine))
    np.testing.assert_allclose(volume.affine_ras, reference.affine, atol=1e-5)
    np.testing.assert_allclose(volume.array, reference.get_fdata(), rtol=1e-6)
    medconv.write(volume, tmp_path / "copy.nii.gz")
    copy = nib.load(tmp_path / "copy.nii.gz")
    np.testing.assert_allclose(copy.affine, reference.affine, atol=1e-5)
    np.testing.assert_allclose(copy.get_fdata(), reference.get_fdata(), rtol=1e-6)


@pytest.mark.corpus
@pytest.mark.parametrize("name", ["nifti1.hdr", "nifti2.hdr", "analyze.hdr"])
def test_header_without_data_file_is_a_clear_error(name):
    path = corpus_path("nibabel_data", "nibabel", "tests", "data", name)
    with pytest.raises(UnreadableFileError, match=r"\.img' does not exist"):
        medconv.read(path)


def test_nifti_pair_and_analyze_round_trip(tmp_path):
    data = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    nib.save(nib.Nifti1Pair(data, oblique_affine()), tmp_path / "pair.hdr")
    volume = medconv.read(tmp_path / "pair.hdr")
    np.testing.assert_array_equal(volume.array, data)
    np.testing.assert_allclose(volume.affine_ras, oblique_affine(), atol=1e-5)
    nib.save(nib.AnalyzeImage(data, np.diag([2.0, 3, 4, 1])), tmp_path / "an.hdr")
    analyze = medconv.read(tmp_path / "an.hdr")
    np.testing.assert_allclose(analyze.affine_ras, nib.load(tmp_path / "an.hdr").affine)
    assert any("Analyze" in w for w in analyze.warnings)


@pytest.mark.parametrize("relpath, values, expected", [
    pytest.param("labelsTr/liver_001.nii.gz", [0, 1, 2], "label", id="msd-labels-folder"),
    pytest.param("imagesTr/liver_001.nii.gz", [0, 1, 2], "intensity", id="few-integer-values-unnamed"),
    pytest.param("imagesTr/liver_001.nii.gz", list(range(-1024, -1000)), "intensity", id="many-values"),
])
def test_label_masks_are_recognised_and_compacted(tmp_path, relpath, values, expected):
    data = np.resize(np.array(values, dtype=np.int32), (8, 8, 8))
    path = tmp_path / relpath
    path.parent.mkdir(parents=True)
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    (source,) = medconv.discover(tmp_path, ["nifti"])
    volume = medconv.read(source)
    assert volume.kind == expected
    if expected == "label":
        assert volume.array.dtype == np.uint8
        np.testing.assert_array_equal(volume.array, data)


def test_discovery_reports_header_facts_without_reading_voxels(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((4, 5, 6, 2), np.int16), oblique_affine()), tmp_path / "a.nii.gz")
    nib.save(nib.Nifti1Pair(np.zeros((3, 3, 3), np.uint8), np.eye(4)), tmp_path / "pair.hdr")
    (tmp_path / "pair.img").unlink()
    sources = {source.id: source for source in medconv.discover(tmp_path, ["nifti"])}
    reference = nib.load(tmp_path / "a.nii.gz")
    info = sources["a"].info
    assert info["shape"] == [4, 5, 6, 2] and info["4d"] is True and info["dtype"] == "int16"
    np.testing.assert_allclose(info["spacing"], reference.header.get_zooms()[:3], rtol=1e-6)
    assert info["axes"] == "".join(nib.aff2axcodes(reference.affine))
    assert "pair.img' does not exist" in sources["pair"].info["error"]


def test_scaled_int16_with_a_small_range_stays_int16(tmp_path):
    stored = np.full((4, 4, 4), 1027, dtype=np.int16)  # HU 3 everywhere: would fit int8
    image = nib.Nifti1Image(stored, np.eye(4))
    image.header.set_slope_inter(1, -1024)
    nib.save(image, tmp_path / "flat.nii")
    volume = medconv.read(tmp_path / "flat.nii")
    assert volume.array.dtype == np.int16
    np.testing.assert_array_equal(volume.array, nib.load(tmp_path / "flat.nii").get_fdata())


@pytest.mark.parametrize("level, isal", [(None, 3), (0, 0), (1, 1), (3, 1), (4, 2), (6, 2), (7, 3), (9, 3)])
def test_compression_levels_map_onto_isal(level, isal):
    from medconv.writers.nifti import isal_level

    assert isal_level(level) == isal


def test_every_compression_level_round_trips(tmp_path):
    data = np.random.default_rng(5).integers(-1024, 2000, size=(16, 16, 8)).astype(np.int16)
    volume = Volume(data, spacing=(1, 1, 1))
    for level in (None, 0, 1, 9):
        path = tmp_path / f"level{level}.nii.gz"
        medconv.write(volume, path, options=WriteOptions(compression_level=level, sidecar=False))
        np.testing.assert_array_equal(np.asanyarray(nib.load(path).dataobj), data)


def test_a_channel_axis_is_not_labelled_as_time(tmp_path):
    rgb = Volume(np.zeros((4, 4, 1, 3), np.uint8), spacing=(1, 1, 1), meta={"axis4": "channel"})
    medconv.write(rgb, tmp_path / "rgb.nii")
    assert nib.load(tmp_path / "rgb.nii").header.get_xyzt_units() == ("mm", "unknown")
    series = Volume(np.zeros((4, 4, 2, 3), np.int16), spacing=(1, 1, 1), meta={"axis4": "time"})
    medconv.write(series, tmp_path / "t.nii")
    assert nib.load(tmp_path / "t.nii").header.get_xyzt_units() == ("mm", "sec")
