"""MR and 4D series (issue 10 faults), each from synthetic files with the structure of real vendor files.

The expected values come from what the test wrote (tiles, analytic phantoms) and from
dcm2niix where it is the reference, never from medconv's own output.
"""

from __future__ import annotations

import numpy as np
import pytest

from dicom_synth import write_mosaic
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
