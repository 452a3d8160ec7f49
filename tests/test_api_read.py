"""``medconv.read(folder)``: the folder's one image volume, with the units discovery excluded left aside."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

import medconv
from dicom_synth import axial, write_rtstruct, write_series
from medconv.errors import NothingFoundError, UsageError

LOCALIZER = ("ORIGINAL", "PRIMARY", "LOCALIZER")


def test_one_ct_beside_a_localizer_and_an_rtstruct_is_read(tmp_path):
    iop, positions = axial(6)
    ct = write_series(tmp_path, positions, iop, series_number=2)
    write_series(tmp_path, positions[:1], (0.0, 1.0, 0.0, 0.0, 0.0, -1.0), series_number=1, image_type=LOCALIZER,
                 prefix="scout_", seed=1)
    write_rtstruct(tmp_path / "rtstruct.dcm", ct)
    volume = medconv.read(tmp_path)
    assert volume.shape == (10, 12, 6)
    first = pydicom.dcmread(ct.paths[0])  # the reference: pydicom's own decoding of the first slice
    expected = first.pixel_array.astype(np.int32) * int(first.RescaleSlope) + int(first.RescaleIntercept)
    np.testing.assert_array_equal(np.asarray(volume.array)[:, :, 0].T, expected)


def test_several_images_are_named_with_the_excluded_units_apart(tmp_path):
    iop, positions = axial(4)
    first = write_series(tmp_path, positions, iop, series_number=2, description="one")
    write_series(tmp_path, positions, iop, series_number=3, description="two", prefix="b_", seed=2)
    write_rtstruct(tmp_path / "rtstruct.dcm", first)
    with pytest.raises(UsageError, match=r"holds 2 images, not one: .*\(besides 1 excluded: ") as info:
        medconv.read(tmp_path)
    found = list(medconv.api.discover(tmp_path))
    for source in found:
        assert source.id in str(info.value)


def test_a_folder_of_excluded_units_only_says_why(tmp_path):
    iop, positions = axial(4)
    series = write_series(tmp_path / "ct", positions, iop)
    write_rtstruct(tmp_path / "only" / "a.dcm", series)
    write_rtstruct(tmp_path / "only" / "b.dcm", series)
    with pytest.raises(NothingFoundError, match="no image volume in this folder: its 2 units are excluded"):
        medconv.read(tmp_path / "only")
