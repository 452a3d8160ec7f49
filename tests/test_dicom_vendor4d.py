"""Vendor multi-volume DWI from single-frame files: split by diffusion key, checked against a phantom."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from dicom_synth import axial, oriented, phantom, write_series

from medconv.errors import GeometryError
from medconv.readers.dicom import DicomReader
from medconv.readers.dicom.headers import read_header, read_header_pydicom
from medconv.source import Source

WEIGHTINGS = [(0.0, (0.0, 0.0, 0.0)), (1000.0, (1.0, 0.0, 0.0)), (1000.0, (0.0, 0.6, 0.8))]


def _signal(t: int):
    return lambda points: phantom(points) / 10 - 50 * t


def _tag_standard(ds, b, gradient):
    ds.DiffusionBValue = b
    ds.DiffusionGradientOrientation = list(gradient)


def _tag_philips(ds, b, gradient):
    ds.Manufacturer = "Philips Medical Systems"
    ds.private_block(0x2001, "Philips Imaging DD 001", create=True).add_new(0x03, "FL", b)
    block = ds.private_block(0x2005, "Philips MR Imaging DD 001", create=True)
    for offset, value in zip((0xB0, 0xB1, 0xB2), gradient):
        block.add_new(offset, "FL", value)


def _tag_siemens(ds, b, gradient):  # Siemens classic (non-mosaic) DWI: B_value IS, DiffusionGradientDirection FD
    ds.Manufacturer = "SIEMENS"
    block = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    block.add_new(0x0C, "IS", str(int(b)))
    block.add_new(0x0D, "CS", "DIRECTIONAL" if b else "NONE")
    if b:
        block.add_new(0x0E, "FD", list(gradient))


def _tag_ge(ds, b, gradient):
    ds.Manufacturer = "GE MEDICAL SYSTEMS"
    ds.private_block(0x0043, "GEMS_PARM_01", create=True).add_new(0x39, "IS", [int(1e9 + b), 8, 0, 0])
    block = ds.private_block(0x0019, "GEMS_ACQU_01", create=True)
    for offset, value in zip((0xBB, 0xBC, 0xBD), gradient):
        block.add_new(offset, "DS", f"{value:g}")


def write_dwi(folder, tagger, iop, positions, weightings=WEIGHTINGS, drop=None):
    """One MR series, every position repeated once per weighting, InstanceNumber in acquisition order."""
    paths = []
    for t, (b, gradient) in enumerate(weightings):
        series = write_series(folder, positions, iop, series_uid="2.25.4242", modality="MR", prefix=f"w{t}_",
                              names="shuffled", seed=t, function=_signal(t))
        for k, path in enumerate(series.paths):
            if drop == (t, k):
                path.unlink()
                continue
            ds = pydicom.dcmread(path)
            ds.InstanceNumber = 100 * (len(weightings) - t) + k  # acquisition order is the reverse of t
            tagger(ds, b, gradient)
            ds.save_as(path, enforce_file_format=True)
            paths.append(str(path))
    return paths


@pytest.mark.parametrize("tagger", [
    pytest.param(_tag_standard, id="standard-attributes"),
    pytest.param(_tag_philips, id="philips-private"),
    pytest.param(_tag_ge, id="ge-private"),
])
def test_dwi_volumes_follow_the_phantom(tmp_path, tagger):
    iop = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)  # sagittal
    positions = oriented(iop, [7.5, 0.0, 5.0, 2.5])
    paths = write_dwi(tmp_path, tagger, iop, positions)
    volume = DicomReader().read(Source("dwi", "dicom", tuple(paths)))
    assert volume.shape[3] == 3 and volume.meta["axis4"] == "volume"
    # InstanceNumber puts the last weighting first
    order = [2, 1, 0]
    diffusion = volume.meta["diffusion"]
    assert diffusion["b_values"] == [WEIGHTINGS[t][0] for t in order]
    # as stored (Philips: float32)
    assert np.allclose(diffusion["gradients"], [list(WEIGHTINGS[t][1]) for t in order], atol=1e-7, rtol=0)
    # GE's directions are relative to its frequency/phase/slice axes: kept as stored, not called LPS
    assert diffusion["frame"] == ("LPS" if tagger is not _tag_ge else "GE frequency/phase/slice (as stored, not "
                                  "converted)")
    ii, jj, kk = np.meshgrid(*(np.arange(n) for n in volume.shape[:3]), indexing="ij")
    world = (np.stack([ii, jj, kk, np.ones_like(ii)], axis=-1) @ volume.affine_lps.T)[..., :3]
    for index, t in enumerate(order):
        expected = _signal(t)(world)
        # stored values are rint(signal + 1024) with the synthetic series' -1024 intercept
        np.testing.assert_allclose(np.asarray(volume.array[..., index]), expected, atol=0.5 + 1e-6)


@pytest.mark.parametrize("implicit", [pytest.param(False, id="explicit-vr"), pytest.param(True, id="implicit-vr")])
def test_header_scan_reads_each_vendors_diffusion_tags(tmp_path, implicit):
    iop, positions = axial(1)
    for tagger in (_tag_standard, _tag_philips, _tag_ge, _tag_siemens):
        (path,) = write_dwi(tmp_path / tagger.__name__, tagger, iop, positions, weightings=[(700.0, (0.0, 0.6, 0.8))])
        if implicit:  # private tags in implicit VR: their VR comes from the vendor's convention, not the file
            ds = pydicom.dcmread(path)
            ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
            ds.save_as(path, implicit_vr=True, little_endian=True, enforce_file_format=True)
        for scan in (read_header, read_header_pydicom):  # the raw parser and the pydicom fallback agree
            found = scan(str(path)).diffusion
            assert (found.b_value, found.gradient) == (700.0, pytest.approx((0.0, 0.6, 0.8))), tagger.__name__


def test_incomplete_weighting_is_refused(tmp_path):
    iop, positions = axial(4)
    paths = write_dwi(tmp_path, _tag_standard, iop, positions, drop=(1, 2))
    with pytest.raises(GeometryError, match="positions hold different numbers of frames"):
        DicomReader().read(Source("dwi", "dicom", tuple(paths)))


def test_repeats_without_b_values_are_ordered_by_acquisition(tmp_path):
    # no diffusion key and no NumberOfTemporalPositions: a 4D unit over "volume", in InstanceNumber order
    iop, positions = axial(3)
    paths = write_dwi(tmp_path, lambda ds, b, g: None, iop, positions)
    volume = DicomReader().read(Source("dwi", "dicom", tuple(paths)))
    assert volume.shape == (10, 12, 3, 3) and volume.meta["axis4"] == "volume"
    assert any("ordered by acquisition (InstanceNumber)" in w and "no NumberOfTemporalPositions" in w
               for w in volume.warnings)
    _assert_volumes_in_acquisition_order(volume)


def _assert_volumes_in_acquisition_order(volume) -> None:
    ii, jj, kk = np.meshgrid(*(np.arange(n) for n in volume.shape[:3]), indexing="ij")
    world = (np.stack([ii, jj, kk, np.ones_like(ii)], axis=-1) @ volume.affine_lps.T)[..., :3]
    for index, t in enumerate([2, 1, 0]):  # acquisition order (InstanceNumber) is the reverse of t
        np.testing.assert_allclose(np.asarray(volume.array[..., index]), _signal(t)(world), atol=0.5 + 1e-6)


@pytest.mark.parametrize("tagger", [
    pytest.param(_tag_standard, id="standard-attributes"),
    pytest.param(_tag_philips, id="philips-private"),
])
def test_discovery_routes_single_frame_dwi_to_4d(tmp_path, tagger):
    # Repeated positions that no temporal/echo index separates but the diffusion key does:
    # one 4D unit (layout vendor4d), not a duplicate-position GeometryError.
    from medconv.readers.dicom import DicomReader

    iop = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
    write_dwi(tmp_path, tagger, iop, oriented(iop, [7.5, 0.0, 5.0, 2.5]))
    reader = DicomReader(jobs=1)
    (source,) = list(reader.discover(tmp_path))
    assert source.info["layout"] == "vendor4d" and "duplicate" not in source.info["flags"]
    assert source.info["shape"] == [10, 12, 4, 3] and source.info["spacing"][2] == pytest.approx(2.5)
    volume = reader.read(source)
    assert list(volume.shape) == source.info["shape"]
    ii, jj, kk = np.meshgrid(*(np.arange(n) for n in volume.shape[:3]), indexing="ij")
    world = (np.stack([ii, jj, kk, np.ones_like(ii)], axis=-1) @ volume.affine_lps.T)[..., :3]
    for index, t in enumerate([2, 1, 0]):  # acquisition order (InstanceNumber) is the reverse of t
        np.testing.assert_allclose(np.asarray(volume.array[..., index]), _signal(t)(world), atol=0.5 + 1e-6)
    # a hand-made Source of the same files (no discovery info) is routed the same way
    assert reader.read(Source("dwi", "dicom", source.paths)).shape == volume.shape


def test_discovery_orders_repeats_without_b_values_by_acquisition(tmp_path):
    from medconv.readers.dicom import DicomReader

    iop, positions = axial(3)
    write_dwi(tmp_path, lambda ds, b, g: None, iop, positions)
    reader = DicomReader(jobs=1)
    (source,) = list(reader.discover(tmp_path))
    assert "duplicate" not in source.info["flags"] and "4D over acquisition order (3 volumes)" in source.info["flags"]
    assert source.info["layout"] == "vendor4d" and source.info["axis4"] == "volume"
    _assert_volumes_in_acquisition_order(reader.read(source))


def test_repeats_that_nothing_orders_are_refused(tmp_path):
    iop, positions = axial(3)
    paths = write_dwi(tmp_path, lambda ds, b, g: setattr(ds, "InstanceNumber", 1), iop, positions)
    with pytest.raises(GeometryError, match="nothing orders the repeats"):
        DicomReader().read(Source("dwi", "dicom", tuple(paths)))
