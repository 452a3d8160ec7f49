"""ImageOrientationPatient: one tolerance, one rule for every DICOM layout (stack.IOP_UNIT_TOLERANCE).

A header whose row/column vectors are unit and orthogonal up to the rounding of the
written digits converts, along the directions dcm2niix finds (dcm2niix normalises
them too). Beyond the tolerance the unit fails with a GeometryError naming the file
and the length or cosine measured here from the file itself (pydicom), where dcm2niix
and SimpleITK normalise silently (SimpleITK even falls back to the identity for a
cosine of 0.002; measured while choosing the tolerance, see docs/dicom.md).
"""

from __future__ import annotations

import math
import shutil

import nibabel as nib
import numpy as np
import pydicom
import pytest

from conftest import corpus_path
from dicom_synth import axial, oriented, write_series
from medconv.errors import GeometryError
from medconv.readers.dicom import DicomReader
from medconv.readers.dicom.stack import orientation_limits
from medconv.source import Source
from references import assert_same_in_world, run_dcm2niix
from test_dicom_geometry import read_only_volume

OBLIQUE = (math.cos(0.3), math.sin(0.3), 0.0, -math.sin(0.3) * math.cos(0.4), math.cos(0.3) * math.cos(0.4),
           math.sin(0.4))


def _measured(path) -> tuple[float, float, float]:
    """(row length, column length, cosine) of the IOP the file stores, read by pydicom."""
    iop = np.array([float(v) for v in pydicom.dcmread(path, stop_before_pixels=True).ImageOrientationPatient])
    row, column = iop[:3], iop[3:]
    return (float(np.linalg.norm(row)), float(np.linalg.norm(column)),
            float(row @ column / np.linalg.norm(row) / np.linalg.norm(column)))


@pytest.mark.parametrize("iop, measure", [
    pytest.param((0.99, 0, 0, 0, 1, 0), "row", id="row-length-0.99"),
    pytest.param((1, 0, 0, 0, 0, 1.01), "column", id="column-length-1.01"),
    pytest.param((0.6, 0, 0, 0, 0.6, 0), "row", id="both-0.6"),
    pytest.param((1, 0, 0, 0.002, 1, 0), "cosine", id="cosine-0.002"),
    pytest.param((1, 0, 0, math.sin(0.05), math.cos(0.05), 0), "cosine", id="unit-vectors-cosine-0.05"),
    # one decimal is no exporter's precision (stack.IOP_COARSEST_QUANTUM): beyond two decimals' rounding
    pytest.param((1, 0.1, 0, 0, 1, 0), "cosine", id="one-decimal-cosine-0.0995"),
    pytest.param((0.9, 0.4, 0, -0.4, 0.9, 0), "row", id="one-decimal-oblique-length-0.985"),
])
def test_an_orientation_beyond_the_tolerance_fails_naming_the_file_and_the_measure(tmp_path, iop, measure):
    series = write_series(tmp_path / "in", axial(4)[1], iop)
    reader = DicomReader(jobs=1)
    (source,) = reader.discover(str(tmp_path / "in"))
    with pytest.raises(GeometryError) as error:
        reader.read(source)
    line = error.value.one_line()
    assert str(series.paths[0]) in line
    row, column, cosine = _measured(series.paths[0])
    value = {"row": row, "column": column, "cosine": cosine}[measure]
    assert f"{value:.6g}" in line, line
    assert ("length" if measure != "cosine" else "not orthogonal") in line
    assert "correct ImageOrientationPatient" in line  # says what to do


@pytest.mark.parametrize("iop", [
    pytest.param(tuple(round(v, 3) for v in OBLIQUE), id="oblique-three-decimals"),
    pytest.param((0.9995, 0, 0, 0, 0, -1.0005), id="coronal-lengths-off-by-5e-4"),
    # two decimals: lengths off by more than 1e-3, all of it explained by the rounding (within sqrt(3) * 0.005)
    pytest.param(tuple(round(v, 2) for v in OBLIQUE), id="oblique-two-decimals"),
])
def test_an_orientation_rounded_within_the_tolerance_converts_as_dcm2niix(tmp_path, iop):
    row, column = np.asarray(iop[:3]), np.asarray(iop[3:])
    assert max(abs(np.linalg.norm(row) - 1), abs(np.linalg.norm(column) - 1)) > 1e-4  # really rounded
    write_series(tmp_path / "in", oriented(iop, [0.0, 2.0, 4.0, 6.0]), iop)
    _, volume = read_only_volume(tmp_path / "in")
    np.testing.assert_allclose(volume.direction.T @ volume.direction, np.eye(3), atol=1e-12)
    (reference,) = run_dcm2niix(tmp_path / "in", tmp_path / "d2n")
    ours = nib.Nifti1Image(np.asarray(volume.array), volume.affine_ras)
    # dcm2niix normalises without orthonormalising: the directions may differ by the limit (1e-3, or the
    # rounding's), which moves the far corner (the canonical origin after a flip) by at most that times the extent
    extent = float(np.max(np.multiply(volume.shape[:3], volume.spacing)))
    assert_same_in_world(ours, nib.load(reference), atol_mm=max(orientation_limits(np.asarray(iop))) * extent)


@pytest.mark.corpus
def test_a_mosaic_with_a_corrupt_orientation_fails_before_its_tiles_are_placed(tmp_path):
    """The mosaic tile offset uses the IOP vectors, so the rule applies before (it was normalised after)."""
    path = tmp_path / "1.dcm"
    shutil.copy(corpus_path("dcm_qa_ts", "In", "1.dcm"), path)
    ds = pydicom.dcmread(path)
    iop = [float(v) for v in ds.ImageOrientationPatient]
    ds.ImageOrientationPatient = [f"{v:.6f}" for v in [*(np.array(iop[:3]) * 0.98), *iop[3:]]]
    ds.save_as(path)
    with pytest.raises(GeometryError) as error:
        DicomReader().read(Source("mosaic", "dicom", (str(path),)))
    assert str(path) in error.value.one_line()
    assert f"length {_measured(path)[0]:.6g}" in error.value.one_line()


def test_an_enhanced_object_with_a_corrupt_plane_orientation_fails_by_the_same_rule(tmp_path):
    """PlaneOrientationSequence > ImageOrientationPatient of an enhanced multi-frame object, written with a row
    vector of length 0.98: the frames' 4D split and the stack refuse it, naming the file and the length."""
    from dicom_synth import write_enhanced_dwi

    iop = (0.98, 0.0, 0.0, 0.0, 1.0, 0.0)
    path = write_enhanced_dwi(tmp_path / "in" / "IM_0001", [(0.0, None, "NONE"), (1000.0, (1.0, 0.0, 0.0),
                              "DIRECTIONAL")], oriented(iop, np.arange(3) * 3.0), iop)
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    group = ds.SharedFunctionalGroupsSequence[0] if "PlaneOrientationSequence" in ds.SharedFunctionalGroupsSequence[0] \
        else ds.PerFrameFunctionalGroupsSequence[0]
    stored = [float(v) for v in group.PlaneOrientationSequence[0].ImageOrientationPatient]
    reader = DicomReader(jobs=1)
    (source,) = [s for s in reader.discover(str(tmp_path / "in")) if not s.info.get("excluded")]
    with pytest.raises(GeometryError) as error:
        reader.read(source)
    line = error.value.one_line()
    assert str(path) in line and f"length {np.linalg.norm(stored[:3]):.6g}" in line, line
