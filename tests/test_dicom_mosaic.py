"""Siemens mosaic: tiles unpacked in order, first-slice position corrected, compared with dcm2niix and nibabel."""

from __future__ import annotations

import gzip
import shutil
import warnings

import nibabel as nib
import numpy as np
import pytest

from conftest import corpus_path
from references import assert_same_in_world, run_dcm2niix

from medconv.errors import UnsupportedFormatError
from medconv.geometry import LPS_TO_RAS
from medconv.readers.dicom import DicomReader
from medconv.readers.dicom.layouts.mosaic import unpack_mosaic
from medconv.source import Source


def _nifti(volume) -> nib.Nifti1Image:
    return nib.Nifti1Image(np.asarray(volume.array), volume.affine_ras)


def _read(*paths) -> object:
    return DicomReader().read(Source("mosaic", "dicom", tuple(str(p) for p in paths)))


def test_unpack_mosaic_tile_order():
    # 3 slices in a 2x2 grid of 2x3 tiles; tile t holds value 10*t + pixel index.
    tiles = [10 * t + np.arange(6).reshape(2, 3) for t in range(4)]
    mosaic = np.block([[tiles[0], tiles[1]], [tiles[2], tiles[3]]])
    out = np.empty((3, 2, 3), dtype=mosaic.dtype)
    unpack_mosaic(mosaic, 3, out)
    np.testing.assert_array_equal(out, np.stack(tiles[:3]))


@pytest.mark.parametrize("name", [pytest.param(f"{n}.dcm", id=f"series-{n}") for n in range(1, 10)])
def test_dcm_qa_ts_mosaic_matches_reference(name):
    """Every transfer syntax of the mosaic gives dcm2niix's volume (upstream Ref/, made with -f %s)."""
    volume = _read(corpus_path("dcm_qa_ts", "In", name))
    assert volume.shape == (64, 64, 35)
    reference = nib.load(corpus_path("dcm_qa_ts", "Ref", name.replace(".dcm", ".nii")))
    assert_same_in_world(_nifti(volume), reference)


def test_dcm_qa_ts_mosaic_matches_fresh_dcm2niix(tmp_path):
    source = corpus_path("dcm_qa_ts", "In", "1.dcm")
    (tmp_path / "in").mkdir()
    shutil.copy(source, tmp_path / "in" / "1.dcm")
    (converted,) = run_dcm2niix(tmp_path / "in", tmp_path / "out")
    assert_same_in_world(_nifti(_read(source)), nib.load(converted))


def _nibabel_mosaic(path):
    import pydicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        from nibabel.nicom import dicomwrappers

        with gzip.open(path) as handle:
            wrapper = dicomwrappers.wrapper_from_data(pydicom.dcmread(handle))
        return nib.Nifti1Image(wrapper.get_data(), LPS_TO_RAS @ wrapper.affine)


@pytest.mark.parametrize("name", [
    pytest.param("siemens_dwi_0.dcm.gz", id="dwi-b0"),
    pytest.param("siemens_dwi_1000.dcm.gz", id="dwi-b1000"),
])
def test_gzipped_dwi_mosaic_matches_nibabel(name):
    path = corpus_path("nibabel_data", "nibabel", "nicom", "tests", "data", name)
    volume = _read(path)
    assert volume.shape == (128, 128, 48)
    assert_same_in_world(_nifti(volume), _nibabel_mosaic(path))


def test_several_mosaics_become_volumes_in_acquisition_order():
    """Two DWI mosaics (AcquisitionNumber 1 and 2; their pixels are blanked upstream) given in reverse order;
    their b-values (0 and 1000) make the 4th axis diffusion volumes, not time."""
    folder = corpus_path("nibabel_data", "nibabel", "nicom", "tests", "data")
    first, second = folder / "siemens_dwi_0.dcm.gz", folder / "siemens_dwi_1000.dcm.gz"
    volume = _read(second, first)
    assert volume.shape == (128, 128, 48, 2)
    assert volume.meta["axis4"] == "volume" and volume.meta["diffusion"]["b_values"] == [0.0, 1000.0]
    assert volume.meta["source_files"] == [str(first), str(second)]  # acquisition order, not argument order
    np.testing.assert_allclose(volume.affine_lps, _read(first).affine_lps, atol=1e-6)


def test_inconsistent_mosaic_is_refused():
    path = corpus_path("nibabel_data", "nibabel", "nicom", "tests", "data", "0.dcm")
    with pytest.raises(UnsupportedFormatError, match="cannot hold 48 slices"):
        _read(path)


def test_oblique_csa_slice_normal_positions_match_nibabel():
    """``csa_slice_norm.dcm`` (no pixel data) has an oblique CSA SliceNormalVector: tile centres vs nibabel."""
    import pydicom

    from medconv.readers.dicom.layouts.mosaic import _csa_image_header, mosaic_geometry, mosaic_slice_count

    path = corpus_path("nibabel_data", "nibabel", "nicom", "tests", "data", "csa_slice_norm.dcm")
    ds = pydicom.dcmread(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        from nibabel.nicom import dicomwrappers

        affine = dicomwrappers.wrapper_from_data(ds).affine  # LPS, voxel (row, column, slice)
    csa = _csa_image_header(ds)
    count = mosaic_slice_count(ds, csa)
    positions, _, _, tile, notes = mosaic_geometry(ds, csa, count, str(path))
    assert count == 32 and tile == (64, 64) and notes == []
    expected = (affine @ np.stack([np.zeros(count), np.zeros(count), np.arange(count), np.ones(count)]))[:3].T
    np.testing.assert_allclose(positions, expected, atol=1e-4)


def test_mosaic_sidecar_carries_echo_number_and_time():
    import json

    import pydicom

    from conftest import corpus_path

    path = corpus_path("dcm_qa_ts", "In", "1.dcm")
    reader = DicomReader(jobs=1)
    (source,) = list(reader.discover(str(path)))
    dicom = reader.read(source).meta["dicom"]
    reference = json.loads(corpus_path("dcm_qa_ts", "Ref", "1.json").read_text())  # dcm2niix: seconds
    assert dicom["EchoTime"] == pytest.approx(reference["EchoTime"] * 1000.0)
    assert dicom["EchoNumbers"] == float(pydicom.dcmread(path, stop_before_pixels=True).EchoNumbers)
