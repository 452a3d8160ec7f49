"""MR and 4D series (issue 10 faults), each from synthetic files with the structure of real vendor files.

The expected values come from what the test wrote (tiles, analytic phantoms) and from
dcm2niix where it is the reference, never from medconv's own output.
"""

from __future__ import annotations

import numpy as np
import pytest

from dicom_synth import oriented, phantom, write_mosaic, write_series
from medconv.readers.dicom import DicomReader


def _tiles(echo: int, t: int, count: int = 5, rows: int = 4, columns: int = 6) -> np.ndarray:
    """Stored values telling echo, time point, slice and pixel apart."""
    base = 1000 * echo + 100 * t
    return (base + 10 * np.arange(count)[:, None, None] + np.arange(rows * columns).reshape(1, rows, columns) % 10
            ).astype(np.uint16)


def test_multi_echo_mosaics_are_one_output_per_echo(tmp_path):
    """Fault 2: TE1, TE2, TE1 ... mosaics of one series were interleaved into one time axis."""
    instance = 0
    for t in range(3):
        for echo, echo_time in ((1, 12.0), (2, 30.0)):
            instance += 1
            write_mosaic(tmp_path / f"{instance:03d}.dcm", _tiles(echo, t), echo=echo, echo_time=echo_time,
                         instance_number=instance, acquisition_number=t + 1, seed=instance)
    reader = DicomReader(jobs=1)
    sources = [s for s in reader.discover(str(tmp_path)) if not s.info.get("excluded")]
    assert sorted(s.info["split"] for s in sources) == [["echo 1"], ["echo 2"]]
    for source in sources:
        echo = int(source.info["split"][0].split()[1])
        assert source.info["series_description"] == f"bold echo-{echo}"
        volume = reader.read(source)
        assert volume.shape == (6, 4, 5, 3) and volume.meta["axis4"] == "time"
        assert volume.meta["dicom"]["EchoTime"] == (12.0 if echo == 1 else 30.0)
        for t in range(3):
            np.testing.assert_array_equal(np.asarray(volume.array[..., t]).transpose(2, 1, 0), _tiles(echo, t))


def _written(volume, tmp_path, name="out.nii"):
    import nibabel as nib

    from medconv.writers.nifti import NiftiWriter

    (path, *_) = NiftiWriter().write(volume, tmp_path / name)
    return nib.load(path).header


def test_time_series_header_carries_the_repetition_time(tmp_path):
    """Fault 1: pixdim[4] was 1 s whatever RepetitionTime said (3200 ms here)."""
    for t in range(3):
        write_mosaic(tmp_path / "in" / f"{t:03d}.dcm", _tiles(1, t), instance_number=t + 1, acquisition_number=t + 1,
                     repetition_time=3200.0, seed=t)
    reader = DicomReader(jobs=1)
    (source,) = reader.discover(str(tmp_path / "in"))
    volume = reader.read(source)
    assert volume.meta["repetition_time"] == 3.2
    header = _written(volume, tmp_path)
    assert header.get_zooms()[3] == pytest.approx(3.2)
    assert header.get_xyzt_units() == ("mm", "sec")


def test_a_4th_axis_that_is_not_time_has_unknown_time_units(tmp_path):
    from medconv.volume import Volume

    for axis4 in ("echo", "volume", "channel"):
        volume = Volume(np.zeros((3, 4, 2, 2), np.int16), spacing=(1, 1, 1),
                        meta={"axis4": axis4, "repetition_time": 2.0})
        header = _written(volume, tmp_path, f"{axis4}.nii")
        assert header.get_xyzt_units() == ("mm", "unknown") and header.get_zooms()[3] == 1.0


def _rewrite(paths, **values) -> None:
    """Set attributes of written files (per-file values: a callable of the file index)."""
    import pydicom

    for index, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        for keyword, value in values.items():
            setattr(ds, keyword, value(index) if callable(value) else value)
        ds.save_as(path, enforce_file_format=True)


PHILIPS_SWI_TYPES = {  # ImageType of Philips SWIp magnitude and phase files, as the scanner writes them
    "magnitude": ["ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"],
    "phase": ["ORIGINAL", "PRIMARY", "PHASE MAP", "P", "FFE"],
}


def test_magnitude_and_phase_of_one_series_are_two_outputs_named_like_dcm2niix(tmp_path):
    """Fault 4: Philips SWI writes magnitude and phase at the same positions in one series; it was refused."""
    import nibabel as nib

    from medconv.layout import output_stem
    from references import assert_same_in_world, run_dcm2niix

    iop = (1, 0, 0, 0, 1, 0)
    positions = oriented(iop, [0.0, 2.0, 4.0, 6.0])
    signal = {"magnitude": phantom, "phase": lambda p: -phantom(p) / 4}
    for offset, (component, image_type) in enumerate(PHILIPS_SWI_TYPES.items()):
        series = write_series(tmp_path / "in", positions, iop, series_uid="2.25.5151", modality="MR",
                              description="SWIp", prefix=f"{component[0]}", names="shuffled", seed=offset,
                              function=signal[component], extra={"Manufacturer": "Philips Medical Systems"})
        _rewrite(series.paths, ImageType=image_type, EchoTime="20", EchoNumbers=1,
                 InstanceNumber=lambda k, o=offset: 2 * k + 1 + o)  # magnitude and phase interleaved
    reader = DicomReader(jobs=1)
    sources = list(reader.discover(str(tmp_path / "in")))
    assert len(sources) == 2 and not any(s.info.get("excluded") for s in sources)
    stems = {output_stem(s).rsplit("/", 1)[1] for s in sources}
    assert stems == {"20000101_2_MR_SWIp", "20000101_2_MR_SWIp_ph"}
    references = {path.stem: path for path in run_dcm2niix(tmp_path / "in", tmp_path / "ref", "-f", "%d")}
    assert set(references) == {"SWIp", "SWIp_ph"}  # dcm2niix's names: the same two, "_ph" for the phase
    for source in sources:
        volume = reader.read(source)
        stem = "SWIp_ph" if source.info.get("frame_group") == "ph" else "SWIp"
        assert volume.shape == (10, 12, 4)
        ours = nib.Nifti1Image(np.asarray(volume.array), volume.affine_ras)
        assert_same_in_world(ours, nib.load(references[stem]), atol_mm=1e-4)


def _classic_fmri(folder, instance_order: str, positions: int = 15, volumes: int = 10, drop=None,
                  trigger: str = "slice-time"):
    """GE / Philips fMRI exported as one file per slice per volume: no TemporalPositionIdentifier,
    NumberOfTemporalPositions set, AcquisitionNumber 1 for all, TriggerTime the slice time within the TR
    (GE writes it so; ``trigger="elapsed"``: the time since the run started, one value per file),
    InstanceNumber in acquisition order (volume-major, GE) or slice-major (Philips)."""

    iop = (1, 0, 0, 0, 0.8, -0.6)  # oblique, as fMRI slabs are
    slice_positions = oriented(iop, np.arange(positions) * 3.0, origin=(-30.0, 20.0, 40.0))
    repetition_ms = 2000.0
    paths = []
    for t in range(volumes):
        def tags(k, t=t):
            number = t * positions + k + 1 if instance_order == "volume-major" else k * volumes + t + 1
            time = k * repetition_ms / positions + (t * repetition_ms if trigger == "elapsed" else 0.0)
            return {"InstanceNumber": number, "TriggerTime": f"{time:g}"}

        series = write_series(folder, slice_positions, iop, series_uid="2.25.3030", modality="MR", rows=8, columns=6,
                              description="fMRI rest", prefix=f"v{t:02d}_", names="shuffled", seed=t,
                              function=lambda p, t=t: phantom(p) / 10 + 25 * t, per_file=tags,
                              extra={"Manufacturer": "GE MEDICAL SYSTEMS", "AcquisitionNumber": 1,
                                     "NumberOfTemporalPositions": volumes, "RepetitionTime": f"{repetition_ms:g}"})
        for k, path in enumerate(series.paths):
            if drop == (t, k):
                path.unlink()
            else:
                paths.append(path)
    return paths


@pytest.mark.parametrize("instance_order, positions, volumes, trigger", [
    pytest.param("volume-major", 15, 10, "slice-time", id="ge-volume-major-instances-15x10"),
    pytest.param("slice-major", 5, 4, "slice-time", id="philips-slice-major-instances-5x4"),
    pytest.param("volume-major", 5, 4, "elapsed", id="trigger-time-per-file-5x4"),
])
def test_classic_4d_without_temporal_index_is_ordered_by_acquisition_like_dcm2niix(tmp_path, instance_order,
                                                                                   positions, volumes, trigger):
    """Fault 3: 150 files = 15 positions x 10 volumes, no temporal index: refused as duplicate positions."""
    import nibabel as nib

    from references import assert_same_in_world, run_dcm2niix

    _classic_fmri(tmp_path / "in", instance_order, positions, volumes, trigger=trigger)
    reader = DicomReader(jobs=1)
    (source,) = reader.discover(str(tmp_path / "in"))
    assert source.info["shape"] == [6, 8, positions, volumes] and source.info["axis4"] == "time"
    assert f"4D over acquisition order ({volumes} volumes)" in source.info["flags"]
    volume = reader.read(source)
    assert volume.meta["axis4"] == "time" and volume.meta["repetition_time"] == 2.0
    assert any("ordered by acquisition (InstanceNumber)" in w for w in volume.warnings)
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in volume.shape[:3]], indexing="ij"), axis=-1).astype(float)
    world = grid @ volume.affine_lps[:3, :3].T + volume.affine_lps[:3, 3]
    for t in range(volumes):
        expected = phantom(world) / 10 + 25 * t
        assert np.abs(np.asarray(volume.array[..., t], dtype=float) - expected).max() <= 0.5 + 1e-6
    (reference,) = run_dcm2niix(tmp_path / "in", tmp_path / "ref")
    assert_same_in_world(nib.Nifti1Image(np.asarray(volume.array), volume.affine_ras), nib.load(reference),
                         atol_mm=1e-4)


def test_classic_4d_with_a_missing_file_is_refused_naming_the_counts(tmp_path):
    from medconv.errors import GeometryError

    _classic_fmri(tmp_path / "in", "volume-major", positions=4, volumes=3, drop=(1, 2))
    reader = DicomReader(jobs=1)
    (source,) = reader.discover(str(tmp_path / "in"))
    assert "geometry-error" in source.info["flags"]
    counts = r"7 slice\(s\) repeat a position, but the positions hold different numbers of frames \(\[2, 3\]\)"
    with pytest.raises(GeometryError, match=counts):
        reader.read(source)


# -- echo units have readable names -------------------------------------------------------------------
def test_echo_units_are_named_by_echo_and_read_their_own_slices(tmp_path):
    from medconv.layout import output_stem

    iop = (1, 0, 0, 0, 1, 0)
    positions = oriented(iop, [0, 2, 4])
    for echo, echo_time in ((1, 4.5), (2, 9.0)):
        write_series(tmp_path, positions, iop, series_uid="2.25.79", prefix=f"e{echo}_", seed=echo,
                     description="T2 multi-echo", function=lambda p, e=echo: phantom(p) + 100 * e,
                     extra={"EchoNumbers": echo, "EchoTime": echo_time})
    reader = DicomReader(jobs=1)
    sources = [s for s in reader.discover(str(tmp_path)) if not s.info.get("excluded")]
    assert len(sources) == 2
    by_echo = {s.info["split"][0]: s for s in sources}
    assert set(by_echo) == {"echo 1", "echo 2"}
    for echo in (1, 2):
        source = by_echo[f"echo {echo}"]
        assert source.info["series_description"] == f"T2 multi-echo echo-{echo}"
        assert output_stem(source).endswith(f"T2_multi-echo_echo-{echo}")
        assert all(f"/e{echo}_" in path for path in source.paths)
        volume = reader.read(source)
        grid = np.stack(np.meshgrid(*[np.arange(n) for n in volume.shape], indexing="ij"), axis=-1).astype(float)
        world = grid @ volume.affine_lps[:3, :3].T + volume.affine_lps[:3, 3]
        assert np.abs(volume.array - (phantom(world) + 100 * echo)).max() <= 0.5 + 1e-6
