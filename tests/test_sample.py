"""The generated sample tree: layout, classification, and voxels equal to the analytic phantom."""

from __future__ import annotations

import filecmp

import numpy as np
import pytest
from click.testing import CliRunner

from dicom_synth import sample_acquired_slices
from medconv.cli.main import cli
from medconv.readers.dicom import DicomReader
from medconv.sample import chest_phantom_hu, write_sample_dataset
from references import canonical, run_dcm2niix


@pytest.fixture(scope="module")
def sample_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample")
    written = write_sample_dataset(root, patients=3, slices=6, size=32, seed=3)
    return root, written


def test_layout_is_nbia_style(sample_tree):
    root, written = sample_tree
    kinds = sorted(item.kind for item in written)
    assert kinds == ["localizer"] * 3 + ["rtstruct"] + ["volume"] * 4
    first = next(item for item in written if item.kind == "volume")
    relative = first.folder[len(str(root)) + 1:].split("/")
    assert relative[0] == "SAMPLE-CT-0001"
    assert relative[1].startswith("01-01-2000-NA-CT CHEST-")
    assert relative[2].startswith("3.000000-Chest CT-")
    assert (root / relative[0] / relative[1] / relative[2] / "1-001.dcm").exists()


def test_discovery_converts_volumes_and_explains_the_rest(sample_tree):
    root, _ = sample_tree
    reader = DicomReader(jobs=1)
    found = list(reader.discover(str(root)))
    sources = [s for s in found if s.reader == "dicom"]
    volumes = [s for s in sources if not s.info.get("excluded")]
    assert len(volumes) == 4
    reasons = sorted(s.info["excluded"].split(" ")[0] for s in sources if s.info.get("excluded"))
    assert reasons == ["localizer", "localizer", "localizer"]
    # the RTSTRUCT is an annotation unit drawn on patient 1's chest CT (issue 11)
    (rtstruct,) = [s for s in found if s.reader == "annotation"]
    assert rtstruct.info["annotates"] == next(s.id for s in volumes if s.info["patient_id"] == "SAMPLE-CT-0001")
    tilted = [s for s in volumes if "tilt" in s.info["flags"]]
    assert len(tilted) == 1


def test_untilted_volumes_hold_the_phantom_at_every_voxel(sample_tree):
    root, _ = sample_tree
    reader = DicomReader(jobs=1)
    for source in reader.discover(str(root)):
        if source.reader != "dicom" or source.info.get("excluded") or "tilt" in source.info["flags"]:
            continue
        volume = reader.read(source)
        assert volume.array.dtype == np.int16 and volume.meta["units"] == "HU"
        grid = np.stack(np.meshgrid(*[np.arange(n) for n in volume.shape], indexing="ij"), axis=-1)
        world = grid @ volume.affine_lps[:3, :3].T + volume.affine_lps[:3, 3]
        expected = chest_phantom_hu(world.astype(np.float32))
        assert np.max(np.abs(volume.array - expected)) <= 0.5 + 1e-3


def test_tilted_series_agrees_with_dcm2niix_tilt_repair(sample_tree, tmp_path):
    import nibabel as nib

    root, written = sample_tree
    (item,) = [w for w in written if w.tilted]
    reader = DicomReader(jobs=1)
    (source,) = [s for s in reader.discover(item.folder) if not s.info.get("excluded")]
    volume = reader.read(source)
    (tilt,) = [p for p in run_dcm2niix(item.folder, tmp_path, "-f", "%s") if "_Tilt" in p.name]
    ours, our_affine = canonical(nib.Nifti1Image(np.asarray(volume.array), volume.affine_ras))
    theirs, their_affine = canonical(nib.load(tilt))
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(our_affine, their_affine, atol=0.01)
    # against the acquired slices themselves, sampled at each output voxel's world position
    index = np.stack(np.meshgrid(*[np.arange(n) for n in volume.shape], indexing="ij"), axis=-1).reshape(-1, 3)
    world = index @ volume.affine_lps[:3, :3].T + volume.affine_lps[:3, 3]
    expected, valid = sample_acquired_slices(source.paths, world)
    # where the output holds acquired data it agrees with dcm2niix; outside the sheared slab medconv fills
    # -1024 HU (the resampler's one fill rule), dcm2niix the stack's minimum
    acquired = canonical(nib.Nifti1Image(valid.reshape(volume.shape).astype(np.uint8), volume.affine_ras))[0] > 0
    difference = np.abs(ours.astype(np.int32) - theirs.astype(np.int32))
    assert np.mean(difference[acquired] <= 1) >= 0.99
    assert valid.mean() > 0.5
    assert np.max(np.abs(np.asarray(volume.array).reshape(-1)[valid] - expected[valid])) <= 0.51


def test_same_seed_writes_the_same_files(tmp_path):
    write_sample_dataset(tmp_path / "a", patients=1, slices=2, size=8, seed=5, localizer=False, rtstruct=False)
    write_sample_dataset(tmp_path / "b", patients=1, slices=2, size=8, seed=5, localizer=False, rtstruct=False)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.dcm"))
    assert len(files) == 2
    for path in files:
        assert filecmp.cmp(tmp_path / "a" / path, tmp_path / "b" / path, shallow=False)


def test_sample_command(tmp_path):
    result = CliRunner().invoke(cli, ["sample", str(tmp_path / "demo"), "--patients", "1", "--slices", "3",
                                      "--size", "16"])
    assert result.exit_code == 0, result.output
    assert "wrote 3 series (5 files)" in result.output
    assert len(list((tmp_path / "demo").rglob("*.dcm"))) == 5
