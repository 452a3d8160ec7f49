"""NRRD (.nrrd, .nhdr) and MetaImage (.mha, .mhd) output, read back by SimpleITK and pynrrd (independent readers)."""

from __future__ import annotations

import json
import re

import nibabel as nib
import nrrd
import numpy as np
import pytest
import SimpleITK as sitk
from scipy.spatial.transform import Rotation

import medconv
from medconv.atomic import TEMP_MARKER
from medconv.cli.main import main
from medconv.errors import OutputExistsError, UnsupportedFormatError
from medconv.options import WriteOptions
from medconv.volume import Volume
from metaimage_synth import write_mhd_by_hand

SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd")
#: the files each suffix writes besides the header and the sidecar, by compression wanted
DATA_FILES = {(".nhdr", False): ".raw", (".nhdr", True): ".raw.gz", (".mhd", False): ".raw", (".mhd", True): ".zraw"}


def oblique_volume(dtype=np.int16, kind="intensity", shape=(7, 5, 4)) -> Volume:
    """An oblique, anisotropic volume whose direction is not symmetric (a transposed matrix would show)."""
    direction = Rotation.from_euler("xyz", [20, -35, 50], degrees=True).as_matrix()
    values = (np.arange(np.prod(shape)) - 30).reshape(shape)
    return Volume(values.astype(dtype), spacing=(0.7, 1.3, 2.5), origin=(-10.5, 20.25, 33.0), direction=direction,
                  kind=kind)


def assert_same_in_simpleitk(path, volume: Volume, dtype=None):
    image = sitk.ReadImage(str(path))
    np.testing.assert_allclose(image.GetSpacing(), volume.spacing, rtol=0, atol=1e-12)
    np.testing.assert_allclose(image.GetOrigin(), volume.origin, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.reshape(image.GetDirection(), (3, 3)), volume.direction, atol=1e-12)
    voxels = sitk.GetArrayFromImage(image)  # (k, j, i)
    assert voxels.dtype == np.dtype(dtype or volume.array.dtype)
    np.testing.assert_array_equal(voxels, volume.array.transpose(2, 1, 0))


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("level", [None, 0, 6], ids=["default", "raw", "level6"])
def test_geometry_and_voxels_read_back_in_simpleitk(tmp_path, suffix, level):
    volume = oblique_volume()
    dest = tmp_path / f"ct{suffix}"
    written = medconv.write(volume, dest, options=WriteOptions(compression_level=level))
    assert_same_in_simpleitk(dest, volume)
    compressed = {".nrrd": level != 0, ".mha": level != 0}.get(suffix, bool(level))
    extra = DATA_FILES.get((suffix, compressed))
    expected = {dest.name, "ct.json"} | ({"ct" + extra} if extra else set())
    assert {p.split("/")[-1] for p in written} == expected == {p.name for p in tmp_path.iterdir()}
    header = dest.read_bytes()[:600]
    if suffix in (".mha", ".mhd"):
        assert (b"CompressedData = True" in header) == compressed
    else:
        assert (b"encoding: gzip" in header) == compressed


@pytest.mark.parametrize("suffix", [".nrrd", ".nhdr"])
@pytest.mark.parametrize("level", [None, 1])
def test_nrrd_reads_back_in_pynrrd_with_lps_space(tmp_path, suffix, level):
    volume = oblique_volume(np.float32)
    medconv.write(volume, tmp_path / f"x{suffix}", options=WriteOptions(compression_level=level))
    data, header = nrrd.read(str(tmp_path / f"x{suffix}"))  # index order F: (i, j, k)
    assert header["space"] == "left-posterior-superior" and data.dtype == np.float32
    np.testing.assert_array_equal(data, volume.array)
    np.testing.assert_allclose(header["space origin"], volume.origin, atol=1e-12)
    # one row per axis: the axis' LPS direction times its spacing
    np.testing.assert_allclose(header["space directions"], (volume.direction * np.array(volume.spacing)).T,
                               atol=1e-12)
    assert list(header["kinds"]) == ["domain"] * 3


@pytest.mark.parametrize("direction_codes", ["LPS", "RAS", "PIR", "SLA"])
def test_anatomical_orientation_is_what_simpleitk_writes(tmp_path, direction_codes):
    from medconv.geometry import direction_from_axis_codes

    volume = Volume(np.zeros((3, 4, 5), np.uint8), spacing=(1, 1, 1), direction=direction_from_axis_codes(direction_codes))
    medconv.write(volume, tmp_path / "ours.mha")
    image = sitk.GetImageFromArray(volume.array.transpose(2, 1, 0))
    image.SetDirection(volume.direction.reshape(-1).tolist())
    sitk.WriteImage(image, str(tmp_path / "itk.mha"))

    def orientation(name):
        return re.search(rb"AnatomicalOrientation = (\w+)", (tmp_path / name).read_bytes()[:1000]).group(1)

    assert orientation("ours.mha") == orientation("itk.mha")


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("dtype, written_as", [
    pytest.param(np.uint8, np.uint8, id="uint8"),
    pytest.param(np.uint16, np.uint16, id="uint16"),
    pytest.param(bool, np.uint8, id="bool"),
])
def test_labels_stay_integer(tmp_path, suffix, dtype, written_as):
    labels = oblique_volume(np.int64).array % 3
    volume = oblique_volume().replace(array=labels.astype(dtype), kind="label")
    medconv.write(volume, tmp_path / f"mask{suffix}")
    expected = labels.astype(dtype).astype(written_as)
    assert_same_in_simpleitk(tmp_path / f"mask{suffix}", volume.replace(array=expected), dtype=written_as)


@pytest.mark.parametrize("suffix", [".mha", ".nrrd"])
def test_four_d_volume(tmp_path, suffix):
    array = np.arange(4 * 3 * 2 * 5, dtype=np.int16).reshape(4, 3, 2, 5)
    volume = Volume(array, spacing=(0.5, 0.6, 3.0), origin=(1, 2, 3), meta={"axis4": "time"})
    medconv.write(volume, tmp_path / f"t{suffix}")
    if suffix == ".nrrd":
        data, header = nrrd.read(str(tmp_path / "t.nrrd"))
        np.testing.assert_array_equal(data, array)
        assert list(header["kinds"]) == ["domain", "domain", "domain", "time"]
        assert np.isnan(header["space directions"][3]).all()  # 'none'
    else:
        image = sitk.ReadImage(str(tmp_path / "t.mha"))
        assert image.GetDimension() == 4 and image.GetSpacing()[:3] == (0.5, 0.6, 3.0)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(image), array.transpose(3, 2, 1, 0))


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_existing_output_is_kept_unless_overwrite(tmp_path, suffix):
    dest = tmp_path / f"x{suffix}"
    medconv.write(oblique_volume(), dest)
    before = dest.read_bytes()
    with pytest.raises(OutputExistsError):
        medconv.write(oblique_volume(np.float32), dest)
    assert dest.read_bytes() == before
    medconv.write(oblique_volume(np.float32), dest, options=WriteOptions(overwrite=True))
    assert sitk.ReadImage(str(dest)).GetPixelID() == sitk.sitkFloat32
    assert not [p for p in tmp_path.iterdir() if TEMP_MARKER in p.name]


@pytest.mark.parametrize("suffix", [".nhdr", ".mhd"])
def test_an_existing_data_file_is_kept_unless_overwrite(tmp_path, suffix):
    (tmp_path / "x.raw").write_bytes(b"someone's data")
    with pytest.raises(OutputExistsError, match="x.raw: the output's data file exists"):
        medconv.write(oblique_volume(), tmp_path / f"x{suffix}")
    assert (tmp_path / "x.raw").read_bytes() == b"someone's data" and not (tmp_path / f"x{suffix}").exists()
    medconv.write(oblique_volume(), tmp_path / f"x{suffix}", options=WriteOptions(overwrite=True))
    assert_same_in_simpleitk(tmp_path / f"x{suffix}", oblique_volume())


def test_complex_voxels_are_refused_naming_the_file(tmp_path):
    volume = Volume(np.zeros((2, 2, 2), np.complex64), spacing=(1, 1, 1))
    with pytest.raises(UnsupportedFormatError, match="x.nrrd"):
        medconv.write(volume, tmp_path / "x.nrrd")
    assert list(tmp_path.iterdir()) == []


# -- through the command line ---------------------------------------------------------------------------------

def _nifti(path, array, affine):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, affine), str(path))


def test_convert_one_file_to_mha_and_nrrd(tmp_path):
    affine = np.array([[-0.8, 0, 0, 10], [0, 0.9, 0, -20], [0, 0, 2.0, 30], [0, 0, 0, 1]])
    array = np.arange(6 * 5 * 4, dtype=np.int16).reshape(6, 5, 4)
    _nifti(tmp_path / "in.nii.gz", array, affine)
    for name in ("out.mha", "out.nrrd"):
        assert main(["convert", str(tmp_path / "in.nii.gz"), str(tmp_path / name)]) == 0
        image = sitk.ReadImage(str(tmp_path / name))
        reference = sitk.ReadImage(str(tmp_path / "in.nii.gz"))  # SimpleITK's own NIfTI reading: the same LPS grid
        np.testing.assert_allclose(image.GetOrigin(), reference.GetOrigin(), atol=1e-6)
        np.testing.assert_allclose(image.GetDirection(), reference.GetDirection(), atol=1e-6)
        np.testing.assert_allclose(image.GetSpacing(), reference.GetSpacing(), atol=1e-6)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(reference))


@pytest.mark.parametrize("fmt", ["mhd", "nhdr"])
def test_dataset_to_detached_headers_with_masks_as_labels(tmp_path, fmt):
    affine = np.diag([0.7, 0.7, 2.5, 1.0])
    image = np.arange(8 * 8 * 4, dtype=np.int16).reshape(8, 8, 4)
    mask = (image % 7 == 0).astype(np.uint8)
    _nifti(tmp_path / "src" / "imagesTr" / "case1.nii.gz", image, affine)
    _nifti(tmp_path / "src" / "labelsTr" / "case1.nii.gz", mask, affine)
    assert main(["convert", str(tmp_path / "src"), str(tmp_path / "out"), "--format", fmt, "-q"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "out" / "medconv-manifest.jsonl").read_text().splitlines()]
    assert {row["status"] for row in rows} == {"converted"}
    written = sitk.ReadImage(str(tmp_path / "out" / "labelsTr" / f"case1.{fmt}"))
    assert written.GetPixelID() == sitk.sitkUInt8
    np.testing.assert_array_equal(sitk.GetArrayFromImage(written), mask.transpose(2, 1, 0))
    assert (tmp_path / "out" / "labelsTr" / "case1.raw").is_file()
    # a rerun skips them: the header and the sidecar are the unit's output
    assert main(["convert", str(tmp_path / "src"), str(tmp_path / "out"), "--format", fmt, "-q"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "out" / "medconv-manifest.jsonl").read_text().splitlines()]
    assert {row["status"] for row in rows} == {"skipped"}


def _src_with_a_foreign_raw(src):
    """``scan.nii.gz`` beside a MetaImage ``other.mhd`` whose voxels are in ``scan.raw`` (what ``scan.nhdr`` writes)."""
    _nifti(src / "scan.nii.gz", np.arange(4 * 3 * 2, dtype=np.int16).reshape(4, 3, 2), np.eye(4))
    header = write_mhd_by_hand(src / "other.mhd", np.ones((2, 3, 4), np.int16))
    (src / "other.raw").rename(src / "scan.raw")
    header.write_text(header.read_text().replace("ElementDataFile = other.raw", "ElementDataFile = scan.raw"))
    assert sitk.GetArrayFromImage(sitk.ReadImage(str(header))).shape == (2, 3, 4)  # a valid input (SimpleITK reads it)
    return src / "scan.raw"


@pytest.mark.parametrize("fmt", ["nhdr", "mhd"])
def test_a_data_file_never_replaces_an_input(tmp_path, capsys, fmt):
    src = tmp_path / "src"
    data = _src_with_a_foreign_raw(src)
    before = data.read_bytes()
    assert main(["convert", str(src), str(src), "--format", fmt, "-q"]) != 0
    assert f"scan.raw: the data file of scan.{fmt} would replace an input file" in capsys.readouterr().err
    assert data.read_bytes() == before
    assert not (src / f"scan.{fmt}").exists()


def test_a_data_file_never_replaces_a_file_medconv_did_not_write(tmp_path):
    from medconv.batch import discover_sources, make_plan
    from medconv.errors import OutputCollisionError

    src = tmp_path / "src"
    _nifti(src / "scan.nii.gz", np.zeros((4, 3, 2), np.int16), np.eye(4))
    out = tmp_path / "out"
    out.mkdir()
    (out / "scan.raw").write_bytes(b"someone's data")
    with pytest.raises(OutputCollisionError, match="data file of scan.nhdr would replace a file medconv did not write"):
        make_plan(discover_sources(str(src), ["nifti"]), str(out), fmt="nhdr")
    assert (out / "scan.raw").read_bytes() == b"someone's data"
    make_plan(discover_sources(str(src), ["nifti"]), str(out), fmt="nrrd")  # an attached header writes no data file


@pytest.mark.parametrize("suffix, files", [(".nhdr", ("ct.raw", "ct.raw.gz")), (".mhd", ("ct.raw", "ct.zraw")),
                                           (".nrrd", ()), (".mha", ())])
def test_companion_files_list_every_data_file_a_write_may_make(tmp_path, suffix, files):
    writer = medconv.registry.writer_for(tmp_path / f"ct{suffix}")
    assert writer.companion_files(str(tmp_path / f"ct{suffix}")) == tuple(str(tmp_path / name) for name in files)
    for level in (0, 6):
        written = medconv.write(oblique_volume(), tmp_path / f"ct{suffix}",
                                options=WriteOptions(compression_level=level, overwrite=True, sidecar=False))
        assert set(written) - {str(tmp_path / f"ct{suffix}")} <= set(writer.companion_files(str(tmp_path / f"ct{suffix}")))
