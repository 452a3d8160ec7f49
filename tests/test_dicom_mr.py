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
