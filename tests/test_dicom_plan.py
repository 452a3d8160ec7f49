"""The unit plan and the image reference: what discovery hands to reading and to annotation readers.

* A discovered Source carries its frozen plan (``Source.plan``), which pickles with
  it (worker processes) and is what ``read`` uses; ``info`` stays JSON.
* ``DicomReader.image_reference(source)`` is computed from headers only and its grid
  equals ``Grid.of(read(source))`` exactly (shape, spacing, origin, direction to 1e-6)
  for plain, tilted, gap-repaired and unevenly spaced stacks, mosaics and enhanced
  multi-frame; its instances are every file's SOPInstanceUID and
  ImagePositionPatient as pydicom reads them.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from conftest import corpus_path
from dicom_synth import oriented, write_series
from medconv.readers.dicom import DicomReader
from medconv.readers.dicom.plan import FrameRef, Layout, Split, SplitKind, UnitPlan
from medconv.transforms.resample import Grid


def _assert_same_grid(reference, grid: Grid) -> None:
    assert tuple(reference.grid.shape) == tuple(grid.shape)
    np.testing.assert_allclose(reference.grid.spacing, grid.spacing, atol=1e-6)
    np.testing.assert_allclose(reference.grid.origin, grid.origin, atol=1e-6)
    np.testing.assert_allclose(reference.grid.direction, grid.direction, atol=1e-6)


def _pydicom_instances(paths) -> dict[str, tuple[float, ...]]:
    import pydicom

    found = {}
    for path in paths:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        found[str(ds.SOPInstanceUID)] = tuple(float(v) for v in ds.ImagePositionPatient)
    return found


def test_discovered_source_carries_a_picklable_plan_that_read_uses(tmp_path):
    iop = (1, 0, 0, 0, 1, 0)
    write_series(tmp_path / "s", oriented(iop, [0, 2, 4, 6]), iop)
    reader = DicomReader(jobs=1)
    (source,) = reader.discover(str(tmp_path))
    plan = source.plan
    assert isinstance(plan, UnitPlan) and plan.layout is Layout.SINGLE_FRAME
    assert len(plan.frames) == 4 and all(isinstance(f, FrameRef) for f in plan.frames)
    json.dumps(dict(source.info))  # info stays JSON; the plan is kept out of it
    again = pickle.loads(pickle.dumps(source))
    assert again.plan == plan and again.info == source.info
    np.testing.assert_array_equal(reader.read(again).array, reader.read(source).array)
    assert Split(SplitKind.ECHO, 2).text == "echo 2" and Split(SplitKind.ECHO, 2).label == "echo-2"


@pytest.mark.parametrize("distances, shift, flags", [
    pytest.param([0, 2, 4, 6, 8], (0.0, 0.0), set(), id="plain"),
    pytest.param([0, 2, 4, 6, 8, 10], (0.0, 0.27), {"tilt"}, id="tilt-15deg"),
    pytest.param([0, 2, 4, 8, 10], (0.2, 0.1), {"tilt", "gap"}, id="tilt-and-gap"),
    pytest.param([0, 1, 2.5, 3.0, 5.0, 6.0], (0.0, 0.0), {"uneven"}, id="uneven"),
])
def test_image_reference_grid_is_the_grid_read_writes(tmp_path, distances, shift, flags):
    iop = (1, 0, 0, 0, 0.8, -0.6)
    series = write_series(tmp_path / "s", oriented(iop, distances, inplane_shift_per_mm=shift), iop,
                          rows=16, columns=14, names="shuffled")
    reader = DicomReader(jobs=1)
    (source,) = reader.discover(str(tmp_path))
    reference = reader.image_reference(source)
    volume = reader.read(source)
    assert flags <= set(volume.meta.get("geometry_flags", ()))
    _assert_same_grid(reference, Grid.of(volume))
    expected = _pydicom_instances(series.paths)
    found = {i.sop_instance_uid: i.position for i in reference.instances}
    assert set(found) == set(expected)
    for uid, position in expected.items():
        np.testing.assert_allclose(found[uid], position, atol=1e-9)
    assert reference.series_uid == series.series_uid and reference.modality == "CT"
    along = [np.dot(i.position, np.cross(iop[:3], iop[3:])) for i in reference.instances]
    assert along == sorted(along)


def _corpus_cases():
    return [
        pytest.param(("lidc",), 3, id="lidc"),
        pytest.param(("dcm_qa_ct", "In", "Philips"), None, id="dcm_qa_ct-philips-tilted"),
        pytest.param(("dcm_qa_ct", "In", "GE"), None, id="dcm_qa_ct-ge-tilted-uneven"),
        pytest.param(("dcm_qa_enh", "In"), 3, id="dcm_qa_enh"),
        pytest.param(("nibabel_data", "nibabel", "nicom", "tests", "data", "siemens_dwi_1000.dcm.gz"), 1,
                     id="nibabel-mosaic"),
    ]


@pytest.mark.corpus
@pytest.mark.parametrize("parts, expected_units", _corpus_cases())
def test_image_reference_on_the_corpora(parts, expected_units):
    import pydicom

    reader = DicomReader(jobs=1)
    sources = [s for s in reader.discover(str(corpus_path(*parts)))
               if not s.info.get("excluded") and s.reader == "dicom"]  # not the annotation units beside them
    if expected_units is not None:
        assert len(sources) == expected_units
    for source in sources:
        reference = reader.image_reference(source)
        _assert_same_grid(reference, Grid.of(reader.read(source)))
        uids = set()
        for path in source.paths:
            opener = __import__("gzip").open if path.endswith(".gz") else open
            with opener(path, "rb") as handle:
                uids.add(str(pydicom.dcmread(handle, stop_before_pixels=True).SOPInstanceUID))
        assert reference.sop_instance_uids == uids
        assert len(reference.instances) == len(source.plan.frames)
