"""DICOM correctness fixes found by an independent review, each checked against an independent reference.

* header precision: ImagePositionPatient written with one or two decimals must not
  make a regular stack look uneven or tilted (analytic phantom, dcm2niix's slice count);
* a slice without ImagePositionPatient, or off the stack, is named, not described as a jump;
* a truncated slice of an image series fails its series, naming the file (it was excluded as
  "no pixel data" and the hole filled by interpolation);
* echo units are named by their echo (``..._echo-1``), and mosaic / multi-frame sidecars carry
  EchoNumbers and EchoTime.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from dicom_synth import oriented, phantom, write_series
from medconv.readers.dicom import DicomReader
from medconv.readers.dicom.stack import plan_stack, position_quantum

OBLIQUE_IOP = (math.cos(0.3), math.sin(0.3), 0.0, -math.sin(0.3) * math.cos(0.4), math.cos(0.3) * math.cos(0.4),
               math.sin(0.4))
PHANTOM_GRADIENT_L1 = 3.0 + 2.0 + 5.0  # |d phantom / d x| + |d/dy| + |d/dz|


def _rotation(rng: np.random.Generator) -> np.ndarray:
    """A random rotation within +-30 degrees about x, y and z (typical oblique acquisitions)."""
    result = np.eye(3)
    for axis in range(3):
        angle = math.radians(rng.uniform(-30, 30))
        c, s = math.cos(angle), math.sin(angle)
        rotation = np.eye(3)
        a, b = [i for i in range(3) if i != axis]
        rotation[a, a], rotation[a, b], rotation[b, a], rotation[b, b] = c, -s, s, c
        result = result @ rotation
    return result


def _round_positions_in_files(paths, decimals: int) -> None:
    """Rewrite each file's ImagePositionPatient with ``decimals`` digits, as many exporters do (pixels untouched)."""
    import pydicom

    for path in paths:
        ds = pydicom.dcmread(path)
        ds.ImagePositionPatient = [f"{float(v):.{decimals}f}" for v in ds.ImagePositionPatient]
        ds.save_as(path, enforce_file_format=True)


def _read_all(folder):
    reader = DicomReader(jobs=1)
    sources = [s for s in reader.discover(str(folder)) if not s.info.get("excluded")]
    return reader, sources


# -- header precision (W5) --------------------------------------------------------------------------------
@pytest.mark.parametrize("decimals", [pytest.param(1, id="1-decimal"), pytest.param(2, id="2-decimals")])
@pytest.mark.parametrize("iop, step, count", [
    pytest.param((1, 0, 0, 0, 1, 0), 0.625, 40, id="axial-0.625mm-40"),
    pytest.param(OBLIQUE_IOP, 0.8, 30, id="oblique-0.8mm-30"),
    pytest.param((1, 0, 0, 0, 0, -1), 1.25, 25, id="coronal-1.25mm-25"),
])
def test_rounded_positions_keep_a_regular_stack(tmp_path, decimals, iop, step, count):
    distances = np.arange(count) * step
    series = write_series(tmp_path, oriented(iop, distances, origin=(-20.37, 15.61, 30.29)), iop, rows=6,
                          columns=5)
    _round_positions_in_files(series.paths, decimals)
    reader, (source,) = _read_all(tmp_path)
    volume = reader.read(source)
    quantum = 10.0 ** -decimals
    assert source.info["flags"] == []
    assert volume.warnings == () and "geometry_flags" not in volume.meta
    assert volume.shape == (5, 6, count)  # one slice per file: nothing interpolated
    # the fitted step is the true step to much better than the printed precision
    assert volume.spacing[2] == pytest.approx(step, abs=quantum / count * 4)
    # every voxel: the phantom at its world position, to the rounding of the stored value plus what the
    # header's precision allows (each coordinate of the first slice and the step are known to ~q/2)
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in volume.shape], indexing="ij"), axis=-1).astype(float)
    world = grid @ volume.affine_lps[:3, :3].T + volume.affine_lps[:3, 3]
    error = np.abs(volume.array.astype(np.float64) - phantom(world))
    assert error.max() <= 0.5 + PHANTOM_GRADIENT_L1 * quantum + 1e-6
    # and the slices are where they were acquired, to the printed precision
    true = series.positions[np.argsort(series.positions @ np.cross(iop[:3], iop[3:]))]
    np.testing.assert_allclose(world[0, 0, :, :], true, atol=quantum)


def test_rounded_positions_match_dcm2niix_slice_count(tmp_path):
    from references import run_dcm2niix

    iop = (1, 0, 0, 0, 1, 0)
    series = write_series(tmp_path / "in", oriented(iop, np.arange(40) * 0.625, origin=(-10.0, -20.0, 30.0)), iop,
                          rows=6, columns=5)
    _round_positions_in_files(series.paths, 1)
    (reference,) = run_dcm2niix(tmp_path / "in", tmp_path / "ref")
    import nibabel as nib

    reader, (source,) = _read_all(tmp_path / "in")
    volume = reader.read(source)
    assert volume.shape == nib.load(reference).shape == (5, 6, 40)
    # dcm2niix takes the step from the first two rounded positions (0.6 mm here); the fitted step is the true one
    assert volume.spacing[2] == pytest.approx(0.625, abs=0.005)


@pytest.mark.parametrize("decimals", [pytest.param(1, id="1-decimal"), pytest.param(2, id="2-decimals")])
def test_random_oblique_stacks_with_rounded_positions_are_not_flagged(decimals):
    rng = np.random.default_rng(7)
    for _ in range(150):
        rotation = _rotation(rng)
        count = int(rng.integers(3, 250))
        step = float(rng.choice([0.625, 1.0, 1.25, 2.5, 5.0]))
        exact = rng.uniform(-200, 200, 3) + np.outer(np.arange(count) * step, rotation[:, 2])
        iop = np.round(np.r_[rotation[:, 0], rotation[:, 1]], 6)
        plan = plan_stack(np.round(exact, decimals), iop, (0.7, 0.7), rows=4, columns=4)
        assert plan.flags == [], (count, step, plan.warnings)
        assert plan.shape_kji[0] == count
        assert plan.spacing[2] == pytest.approx(step, abs=10.0 ** -decimals)


@pytest.mark.parametrize("case", [
    pytest.param("gap", id="one-missing-slice"), pytest.param("gap3", id="three-missing-slices"),
    pytest.param("tilt", id="tilt-2deg"), pytest.param("uneven", id="uneven-0.5-step"),
])
def test_real_defects_are_still_found_with_rounded_positions(case):
    rng = np.random.default_rng(11)
    for _ in range(60):
        rotation = _rotation(rng)
        count = int(rng.integers(20, 200))
        # a slice half a 0.625 mm step off (0.31 mm) is within what 0.1 mm rounding can do to an oblique stack
        step = float(rng.choice([1.0, 1.25, 2.5] if case == "uneven" else [0.625, 1.0, 2.5]))
        distances = np.arange(count) * step
        if case == "gap":
            distances = np.delete(distances, int(rng.integers(1, count - 1)))
        elif case == "gap3":
            distances = np.delete(distances, [5, 6, 7])
        elif case == "uneven":
            distances[int(rng.integers(1, count - 1))] += 0.5 * step
        shear = math.tan(math.radians(2.0)) if case == "tilt" else 0.0
        exact = (rng.uniform(-200, 200, 3) + np.outer(distances, rotation[:, 2])
                 + np.outer(distances * shear, rotation[:, 1]))
        iop = np.round(np.r_[rotation[:, 0], rotation[:, 1]], 6)
        plan = plan_stack(np.round(exact, 1), iop, (0.7, 0.7), rows=4, columns=4)
        expected_flag = "gap" if case.startswith("gap") else case
        assert expected_flag in plan.flags, (count, step, plan.flags)
        if expected_flag == "gap":  # the regular grid the slices were taken from, not a rounding artefact
            assert plan.shape_kji[0] == count
            assert plan.spacing[2] == pytest.approx(step, abs=0.1 / count * 4)


@pytest.mark.parametrize("values, quantum", [
    pytest.param([[-10.0, -20.0, 30.0], [-10.0, -20.0, 30.6]], 0.1, id="one-decimal"),
    pytest.param([[-10.25, -20.0, 30.0], [-10.25, -20.0, 30.63]], 0.01, id="two-decimals"),
    pytest.param([[0.0, 0.0, 30.0], [0.0, 0.0, 35.0]], 0.1, id="whole-mm-assumed-0.1"),
    pytest.param([[-159.2578125, 10.0, 3.0], [-159.2578125, 10.0, 3.6251]], 0.0, id="full-precision"),
])
def test_position_quantum_reads_the_printed_precision(values, quantum):
    assert position_quantum(np.array(values)) == pytest.approx(quantum)


# -- a slice without ImagePositionPatient (W4) -------------------------------------------------------------
def test_missing_position_is_named_with_its_file():
    from medconv.errors import GeometryError

    iop = (1, 0, 0, 0, 1, 0)
    positions = oriented(iop, [0, 2, 4, 6, 8])
    positions[2] = np.nan  # what a reader passes for a file without the tag
    paths = [f"/data/s/{k}.dcm" for k in range(5)]
    with pytest.raises(GeometryError, match=r"1 of 5 slice\(s\) have no ImagePositionPatient") as info:
        plan_stack(positions, iop, (0.8, 0.6), path=paths[0], paths=paths)
    assert info.value.path == "/data/s/2.dcm" and "/data/s/2.dcm" in str(info.value)


def test_series_with_a_slice_missing_its_position_says_so(tmp_path):
    import pydicom

    from medconv.errors import GeometryError

    iop = (1, 0, 0, 0, 1, 0)
    series = write_series(tmp_path, oriented(iop, [0, 2, 4, 6, 8]), iop)
    ds = pydicom.dcmread(series.paths[2])
    del ds.ImagePositionPatient
    ds.save_as(series.paths[2], enforce_file_format=True)
    reader, (source,) = _read_all(tmp_path)
    with pytest.raises(GeometryError, match="no ImagePositionPatient") as info:
        reader.read(source)
    assert str(series.paths[2]) in str(info.value)


def test_scattered_slice_is_named():
    from medconv.errors import GeometryError

    iop = (1, 0, 0, 0, 1, 0)
    positions = oriented(iop, [0, 2, 4, 6, 8])
    positions[3, 0] += 5.0  # one slice 5 mm off in-plane: not a straight stack
    paths = [f"/data/s/{k}.dcm" for k in range(5)]
    with pytest.raises(GeometryError, match=r"worst: /data/s/3\.dcm, ImagePositionPatient"):
        plan_stack(positions[::-1], iop, (0.8, 0.6), path=paths[0], paths=paths[::-1])


# -- a broken slice fails its series (W3) ------------------------------------------------------------------
def _cut_before(path, keyword: str, margin: int = 0) -> None:
    """Truncate a file just before the element ``keyword`` (as a broken download would)."""
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword)
    marker = (tag >> 16).to_bytes(2, "little") + (tag & 0xFFFF).to_bytes(2, "little")
    data = open(path, "rb").read()
    offset = data.index(marker, 132)
    open(path, "wb").write(data[:offset - margin])


@pytest.mark.parametrize("cut", [
    pytest.param("Rows", id="cut-before-rows"),
    pytest.param("PixelData", id="cut-before-pixel-data"),
    pytest.param("SeriesInstanceUID", id="cut-before-series-uid"),
])
def test_truncated_slice_fails_its_series_naming_the_file(tmp_path, cut):
    from medconv.errors import MedconvError
    from medconv.readers.dicom.grouping import group_headers
    from medconv.readers.dicom.headers import scan_files

    iop = (1, 0, 0, 0, 1, 0)
    series = write_series(tmp_path, oriented(iop, [0, 2, 4, 6, 8]), iop)
    broken = str(series.paths[2])
    _cut_before(broken, cut)
    reader = DicomReader(jobs=1)
    sources = list(reader.discover(str(tmp_path)))
    # one unit, holding every file: the hole is not hidden by leaving the file out (and then filling the gap)
    assert [s for s in sources if not s.info.get("excluded")] == sources
    (source,) = sources
    assert broken in source.paths and len(source.paths) == 5
    if cut != "PixelData":  # a file cut just before its pixels has a complete header: the pixel stage finds out
        assert "corrupt-slice" in source.info["flags"]
        (group,) = group_headers(scan_files([str(p) for p in series.paths], jobs=1).headers)
        assert group.unreadable.startswith("the series has a broken slice: " + broken)
        assert "truncated or corrupt" in group.unreadable and "CT Image Storage" in group.unreadable
    with pytest.raises(MedconvError) as info:
        reader.read(source)
    assert broken in str(info.value)
    if cut != "PixelData":
        from medconv.errors import UnreadableFileError

        assert isinstance(info.value, UnreadableFileError) and "truncated or corrupt" in str(info.value)


def test_series_of_header_only_image_files_is_one_failing_unit(tmp_path):
    from medconv.errors import MedconvError
    from medconv.readers.dicom.grouping import group_headers
    from medconv.readers.dicom.headers import scan_files

    iop = (1, 0, 0, 0, 1, 0)
    series = write_series(tmp_path, oriented(iop, [0, 2, 4]), iop)
    for path in series.paths:
        _cut_before(path, "Rows")
    (group,) = group_headers(scan_files([str(p) for p in series.paths], jobs=1).headers)
    assert group.excluded is None and len(group.headers) == 3
    assert group.unreadable.startswith("none of the 3 files of the series holds an image, e.g. ")
    reader = DicomReader(jobs=1)
    (source,) = list(reader.discover(str(tmp_path)))
    with pytest.raises(MedconvError):
        reader.read(source)


def test_broken_slice_of_another_series_number_does_not_join(tmp_path):
    from medconv.readers.dicom.grouping import group_headers
    from medconv.readers.dicom.headers import scan_files

    iop = (1, 0, 0, 0, 1, 0)
    good = write_series(tmp_path / "a", oriented(iop, [0, 2, 4]), iop, series_uid="2.25.77", series_number=2)
    other = write_series(tmp_path / "a", oriented(iop, [6]), iop, series_uid="2.25.77", series_number=3, prefix="x",
                         seed=5)
    _cut_before(other.paths[0], "Rows")
    groups = group_headers(scan_files([str(p) for p in good.paths + other.paths], jobs=1).headers)
    by_number = {g.first.series_number: g for g in groups}
    assert by_number[2].unreadable is None and len(by_number[2].headers) == 3
    assert by_number[3].unreadable == (f"{other.paths[0]}: CT Image Storage file without Rows, Columns, "
                                           "BitsAllocated: truncated or corrupt")


# -- echo units have readable names (M8) -------------------------------------------------------------------
def test_echo_units_are_named_by_echo_and_read_their_own_slices(tmp_path):
    from medconv.layout import output_stem

    iop = (1, 0, 0, 0, 1, 0)
    positions = oriented(iop, [0, 2, 4])
    for echo, echo_time in ((1, 4.5), (2, 9.0)):
        write_series(tmp_path, positions, iop, series_uid="2.25.79", prefix=f"e{echo}_", seed=echo,
                     description="T2 multi-echo", function=lambda p, e=echo: phantom(p) + 100 * e,
                     extra={"EchoNumbers": echo, "EchoTime": echo_time})
    reader, sources = _read_all(tmp_path)
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


@pytest.mark.parametrize("case, labels", [
    pytest.param("orientation", {"axial", "sagittal"}, id="orientation-split"),
    pytest.param("matrix", {"matrix-10x12", "matrix-8x6"}, id="matrix-split"),
    pytest.param("copies", {"copy-1", "copy-2"}, id="copies-of-the-same-instances"),
])
def test_units_that_names_could_not_tell_apart_get_a_readable_label(tmp_path, case, labels):
    import shutil

    from medconv.layout import output_stem

    axial_iop, sagittal_iop = (1, 0, 0, 0, 1, 0), (0, 1, 0, 0, 0, -1)
    first = write_series(tmp_path / "a", oriented(axial_iop, [0, 2, 4]), axial_iop, series_uid="2.25.80", seed=1)
    if case == "orientation":
        write_series(tmp_path / "b", oriented(sagittal_iop, [0, 2, 4]), sagittal_iop, series_uid="2.25.80", seed=2)
    elif case == "matrix":
        write_series(tmp_path / "b", oriented(axial_iop, [10, 12, 14]), axial_iop, series_uid="2.25.80", seed=2,
                     rows=6, columns=8)
    else:
        shutil.copytree(first.folder, tmp_path / "b")
    reader, sources = _read_all(tmp_path)
    assert len(sources) == 2
    assert {s.info["frame_group"] for s in sources} == labels
    stems = {output_stem(s) for s in sources}
    assert stems == {f"SYNTH-001/20000101_2_CT_synthetic_{label}" for label in labels}
    for source in sources:  # each still reads to its own stack
        assert reader.read(source).shape[2] == 3


def test_truncated_slice_of_a_multi_echo_series_joins_its_own_echo(tmp_path):
    from medconv.readers.dicom.grouping import group_headers
    from medconv.readers.dicom.headers import scan_files

    iop = (1, 0, 0, 0, 1, 0)
    paths = []
    for echo in (1, 2):
        series = write_series(tmp_path, oriented(iop, [0, 2, 4, 6]), iop, series_uid="2.25.81", prefix=f"e{echo}_",
                              seed=echo, extra={"EchoNumbers": echo})
        paths += [str(p) for p in series.paths]
    broken = str(tmp_path / "e2_0002.dcm")
    _cut_before(broken, "Rows")  # EchoNumbers (0018,0086) comes before Rows (0028,0010): the echo is known
    groups = {g.frame_group: g for g in group_headers(scan_files(paths, jobs=1).headers)}
    assert groups["echo-1"].unreadable is None and len(groups["echo-1"].headers) == 4
    assert groups["echo-2"].unreadable.startswith("the series has a broken slice: " + broken)
