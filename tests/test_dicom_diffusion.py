"""Diffusion-weighted DICOM (issue 10, fault 5): b-values and gradients from every layout, FSL .bval/.bvec.

References: dcm2niix's .bval/.bvec of the same files, compared in world space (each
file's directions turned back into RAS through its own affine, undoing FSL's
i flip of a positive-determinant affine), and the gradients pydicom reads from the
files, turned into the voxel frame by the FSL definition here in the test.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from conftest import corpus_path
from dicom_synth import oriented, phantom, write_series
from medconv.cli.main import main
from references import assert_same_in_world, run_dcm2niix

#: b-value, gradient (LPS) per volume in acquisition order: a repeated b = 0 in the middle stays there.
SCHEME = [(0.0, None), (1000.0, (1.0, 0.0, 0.0)), (1000.0, (0.0, 0.6, 0.8)), (0.0, None),
          (2000.0, (0.48, -0.6, 0.64))]
OBLIQUE_IOP = (1.0, 0.0, 0.0, 0.0, float(np.cos(0.3)), -float(np.sin(0.3)))


def _signal(t: int):
    return lambda points: phantom(points) / 10 + 40 * t


def write_siemens_classic_dwi(folder: Path, acquisition_per_volume: bool, positions: int = 4) -> None:
    """Siemens classic (non-mosaic) DWI as the scanner exports it: one file per slice per volume, B_value
    (0019,100C) IS, DiffusionDirectionality (0019,100D), DiffusionGradientDirection (0019,100E) FD under the
    "SIEMENS MR HEADER" creator; AcquisitionNumber per volume (VB/VE) or the same for all (XA classic)."""
    slices = oriented(OBLIQUE_IOP, np.arange(positions) * 3.0, origin=(-12.0, 8.0, 30.0))
    for t, (b_value, gradient) in enumerate(SCHEME):
        def siemens(ds, k, b_value=b_value, gradient=gradient):
            block = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
            block.add_new(0x0C, "IS", str(int(b_value)))
            block.add_new(0x0D, "CS", "DIRECTIONAL" if gradient else "NONE")
            if gradient:
                block.add_new(0x0E, "FD", list(gradient))

        write_series(folder, slices, OBLIQUE_IOP, series_uid="2.25.9090", modality="MR", rows=8, columns=6,
                     description="ep2d_diff", prefix=f"v{t}_", names="shuffled", seed=t, function=_signal(t),
                     image_type=("ORIGINAL", "PRIMARY", "DIFFUSION", "NONE", "ND"), edit=siemens,
                     per_file=lambda k, t=t: {"InstanceNumber": t * positions + k + 1,
                                              "AcquisitionNumber": t + 1 if acquisition_per_volume else 1},
                     extra={"Manufacturer": "SIEMENS", "PatientPosition": "HFS", "RepetitionTime": "3000"})


def _world_gradients(bvec: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """RAS unit directions ``(volumes, 3)`` from an FSL ``.bvec`` ``(3, volumes)`` and its image's affine."""
    vectors = np.array(bvec, dtype=float).T
    if np.linalg.det(affine[:3, :3]) > 0:  # FSL's voxel frame flips i for such images
        vectors[:, 0] = -vectors[:, 0]
    rotation = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    return vectors @ rotation.T


def _convert(source: Path, dest: Path) -> Path:
    assert main(["tcia2nii", str(source), str(dest), "-q", "--format", "nii"]) == 0
    (output,) = sorted(dest.rglob("*.nii"))
    return output


def _assert_tables_match_dcm2niix(ours: Path, reference: Path, atol_mm: float = 1e-4) -> None:
    our_image, their_image = nib.load(ours), nib.load(reference)
    assert_same_in_world(our_image, their_image, atol_mm=atol_mm)
    our_b = np.loadtxt(ours.with_suffix(".bval"), ndmin=1)
    np.testing.assert_allclose(our_b, np.loadtxt(reference.with_suffix(".bval"), ndmin=1))
    ours_world = _world_gradients(np.loadtxt(ours.with_suffix(".bvec"), ndmin=2), our_image.affine)
    theirs_world = _world_gradients(np.loadtxt(reference.with_suffix(".bvec"), ndmin=2), their_image.affine)
    np.testing.assert_allclose(ours_world, theirs_world, atol=2e-5)  # dcm2niix prints 6 significant digits


@pytest.mark.parametrize("acquisition_per_volume", [
    pytest.param(True, id="acquisition-number-per-volume"), pytest.param(False, id="one-acquisition-number"),
])
def test_siemens_classic_dwi_gets_bval_and_bvec_like_dcm2niix(tmp_path, acquisition_per_volume):
    write_siemens_classic_dwi(tmp_path / "in", acquisition_per_volume)
    output = _convert(tmp_path / "in", tmp_path / "out")
    image = nib.load(output)
    assert image.shape == (6, 8, 4, 5) and image.header.get_xyzt_units()[1] == "unknown"  # volumes, not time
    # volumes in acquisition order, each the phantom of its own weighting
    data = np.asanyarray(image.dataobj)
    ii, jj, kk = np.meshgrid(*(np.arange(n) for n in image.shape[:3]), indexing="ij")
    world = (np.stack([ii, jj, kk, np.ones_like(ii)], axis=-1) @ image.affine.T)[..., :3] * [-1, -1, 1]  # LPS
    for t in range(len(SCHEME)):
        assert np.abs(data[..., t] - _signal(t)(world)).max() <= 0.5 + 1e-6
    # the .bvec is the FSL definition applied to the gradients as written: direction.T @ g, i negated
    # when the affine's determinant is positive
    sidecar = json.loads(output.with_suffix(".json").read_text())
    direction_lps = np.array(sidecar["direction_lps"])
    expected = np.array([g if g else (0.0, 0.0, 0.0) for _, g in SCHEME]) @ direction_lps
    expected[:, 0] *= -1 if np.linalg.det(image.affine[:3, :3]) > 0 else 1
    np.testing.assert_allclose(np.loadtxt(output.with_suffix(".bvec")).T, expected, atol=1e-6)
    assert list(np.loadtxt(output.with_suffix(".bval"))) == [b for b, _ in SCHEME]
    assert sidecar["meta"]["diffusion"]["b_values"] == [b for b, _ in SCHEME]
    (reference,) = run_dcm2niix(tmp_path / "in", tmp_path / "ref")
    _assert_tables_match_dcm2niix(output, reference)


def test_nibabel_siemens_dwi_mosaics_get_bval_and_bvec_like_dcm2niix(tmp_path):
    import gzip
    import shutil

    folder = corpus_path("nibabel_data", "nibabel", "nicom", "tests", "data")
    plain = tmp_path / "in"
    plain.mkdir()
    for name in ("siemens_dwi_0.dcm.gz", "siemens_dwi_1000.dcm.gz"):  # dcm2niix does not read .gz
        with gzip.open(folder / name) as source, open(plain / name[:-3], "wb") as target:
            shutil.copyfileobj(source, target)
    output = _convert(plain, tmp_path / "out")
    assert nib.load(output).shape == (128, 128, 48, 2)
    (reference,) = run_dcm2niix(plain, tmp_path / "ref")
    _assert_tables_match_dcm2niix(output, reference, atol_mm=1e-3)  # dcm2niix: float32 mosaic corner arithmetic


def test_gradients_follow_a_reorientation_before_writing(tmp_path):
    """The .bvec is in the voxel frame of what is written: reoriented to RAS, the same world directions."""
    from medconv.readers.dicom import DicomReader
    from medconv.transforms.orientation import reorient
    from medconv.writers.nifti import NiftiWriter

    write_siemens_classic_dwi(tmp_path / "in", True)
    reader = DicomReader(jobs=1)
    (source,) = reader.discover(str(tmp_path / "in"))
    volume = reader.read(source)
    plain = NiftiWriter().write(volume, tmp_path / "plain.nii")
    turned = NiftiWriter().write(reorient(volume, "RAS"), tmp_path / "ras.nii")
    assert [Path(p).suffix for p in plain] == [".nii", ".bval", ".bvec", ".json"]
    worlds = [_world_gradients(np.loadtxt(paths[2]), nib.load(paths[0]).affine) for paths in (plain, turned)]
    np.testing.assert_allclose(worlds[0], worlds[1], atol=1e-9)
    assert not np.allclose(np.loadtxt(plain[2]), np.loadtxt(turned[2]))  # the table itself changed


def test_philips_enhanced_dwi_gets_bval_and_bvec_like_dcm2niix_and_its_trace_apart(tmp_path):
    """Philips enhanced DWI: MRDiffusionSequence per frame, and an isotropic (trace) volume that dcm2niix
    writes apart (``_ADC``); medconv gives the trace its own unit (label ``isotropic``)."""
    from dicom_synth import write_enhanced_dwi

    scheme = [(0.0, None, "NONE"), (1000.0, (1.0, 0.0, 0.0), "DIRECTIONAL"), (1000.0, (0.0, 0.6, 0.8), "DIRECTIONAL"),
              (1000.0, None, "ISOTROPIC")]
    write_enhanced_dwi(tmp_path / "in" / "IM_0001", scheme, oriented(OBLIQUE_IOP, np.arange(4) * 3.0), OBLIQUE_IOP)
    assert main(["tcia2nii", str(tmp_path / "in"), str(tmp_path / "out"), "-q", "--format", "nii"]) == 0
    outputs = {path.name: path for path in (tmp_path / "out").rglob("*.nii")}
    assert sorted(outputs) == ["20000101_7_MR_DWI.nii", "20000101_7_MR_DWI_isotropic.nii"]
    references = {path.name: path for path in run_dcm2niix(tmp_path / "in", tmp_path / "ref", "-f", "%p")}
    assert sorted(references) == ["DWI.nii", "DWI_ADC.nii"]
    dwi = outputs["20000101_7_MR_DWI.nii"]
    assert nib.load(dwi).shape == (5, 6, 4, 3)
    assert list(np.loadtxt(dwi.with_suffix(".bval"))) == [0.0, 1000.0, 1000.0]
    _assert_tables_match_dcm2niix(dwi, references["DWI.nii"])
    # dcm2niix's _ADC file keeps every volume; the trace is its last
    trace = nib.load(references["DWI_ADC.nii"]).slicer[..., 3]
    assert_same_in_world(nib.load(outputs["20000101_7_MR_DWI_isotropic.nii"]), trace, atol_mm=1e-4)
    assert np.asanyarray(trace.dataobj).min() > 0  # (no wrapped values on either side)


def test_ge_gradients_are_kept_as_stored_and_no_bvec_is_written(tmp_path):
    """GE writes gradients relative to its frequency/phase/slice axes: no .bvec claims them in the patient frame."""
    from test_dicom_vendor4d import _tag_ge, write_dwi

    from medconv.readers.dicom import DicomReader
    from medconv.writers.nifti import NiftiWriter

    iop = (1, 0, 0, 0, 1, 0)
    write_dwi(tmp_path / "in", _tag_ge, iop, oriented(iop, [0.0, 3.0, 6.0]))
    reader = DicomReader(jobs=1)
    (source,) = reader.discover(str(tmp_path / "in"))
    volume = reader.read(source)
    assert volume.meta["diffusion"]["frame"].startswith("GE ")
    assert any("no .bvec written" in warning for warning in volume.warnings)
    written = NiftiWriter().write(volume, tmp_path / "ge.nii")
    assert [Path(p).suffix for p in written] == [".nii", ".bval", ".json"]
    assert list(np.loadtxt(written[1])) == [1000.0, 1000.0, 0.0]  # acquisition order: the reverse of the weightings


def test_a_rerun_resumes_a_dwi_unit_whatever_of_its_files_exist(tmp_path):
    """The tables are renamed before the image: an image under its final name always has them; a run cut
    between the renames converts the unit again (replacing them); a finished unit is skipped."""
    write_siemens_classic_dwi(tmp_path / "in", True)
    output = _convert(tmp_path / "in", tmp_path / "out")
    tables = [output.with_suffix(".bval"), output.with_suffix(".bvec")]
    first = [path.read_bytes() for path in tables]
    output.unlink()  # as if the run stopped after writing the tables
    output.with_suffix(".json").unlink()
    assert main(["tcia2nii", str(tmp_path / "in"), str(tmp_path / "out"), "-q", "--format", "nii"]) == 0
    assert output.exists() and [path.read_bytes() for path in tables] == first
    assert main(["tcia2nii", str(tmp_path / "in"), str(tmp_path / "out"), "-q", "--format", "nii"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "out" / "medconv-manifest.jsonl").read_text().splitlines()]
    assert [row["status"] for row in rows] == ["skipped"]


# A run killed with SIGKILL while the image's voxels are being written (in-process: -j 1, one small unit).
KILLED_RUN = """
import os, signal, sys
import medconv.writers.nifti as nifti
def killed(stream, array, dtype):
    stream.write(b"\\0" * 64)
    stream.flush()
    os.kill(os.getpid(), signal.SIGKILL)
nifti.write_fortran_order = killed
from medconv.cli.main import main
sys.exit(main(["tcia2nii", {src!r}, {dest!r}, "-q", "-j", "1", "--format", "nii"]))
"""


def test_a_run_killed_writing_a_dwi_image_leaves_no_final_name_and_the_rerun_cleans_up(tmp_path):
    """The .bval/.bvec wait as temporaries until the image is complete (they used to be under their final names
    while the image was written); the next run removes every temporary of the unit and converts it, with dcm2niix's
    tables."""
    import signal
    import subprocess
    import sys

    from batch_trees import temporaries

    write_siemens_classic_dwi(tmp_path / "in", True)
    out = tmp_path / "out"
    killed = subprocess.run([sys.executable, "-c", KILLED_RUN.format(src=str(tmp_path / "in"), dest=str(out))],
                            capture_output=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    left = sorted(Path(p).name for p in temporaries(out))
    assert sorted(name.rsplit(".", 1)[1] for name in left) == ["bval", "bvec", "nii"], left
    finals = [p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")
              and p.suffix in (".nii", ".bval", ".bvec", ".json")]
    assert finals == [], finals
    assert main(["tcia2nii", str(tmp_path / "in"), str(out), "-q", "-j", "1", "--format", "nii"]) == 0
    assert temporaries(out) == []
    (output,) = sorted(out.rglob("*.nii"))
    (reference,) = run_dcm2niix(tmp_path / "in", tmp_path / "d2n")
    _assert_tables_match_dcm2niix(output, reference)


def test_an_image_write_that_fails_leaves_neither_the_image_nor_its_tables(tmp_path, monkeypatch):
    """A disk that fills up during the image's voxels: nothing under a final name, no temporary either."""
    import errno

    import medconv.writers.nifti as nifti
    from batch_trees import temporaries
    from medconv import Volume, WriteOptions

    volume = Volume(np.zeros((3, 2, 2, 2), np.int16), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3),
                    meta={"diffusion": {"b_values": [0.0, 1000.0], "gradients": [[0, 0, 0], [1, 0, 0]],
                                        "frame": "LPS"}})

    def full(stream, array, dtype):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(nifti, "write_fortran_order", full)
    with pytest.raises(OSError):
        nifti.NiftiWriter().write(volume, tmp_path / "dwi.nii", WriteOptions(sidecar=False))
    assert sorted(p.name for p in tmp_path.iterdir()) == [] and temporaries(tmp_path) == []
