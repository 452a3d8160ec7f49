"""Slice geometry of synthetic DICOM series, checked voxel by voxel against the analytic phantom.

Each series stores ``phantom(world position)``; every output voxel must hold the
phantom at the world position its index maps to through the volume's affine.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from dicom_synth import axial, oriented, phantom, write_series
from medconv.errors import GeometryError
from medconv.options import ReadOptions
from medconv.readers.dicom import DicomReader
from medconv.readers.dicom.stack import plan_stack, position_quantum

OBLIQUE_IOP = (math.cos(0.3), math.sin(0.3), 0.0, -math.sin(0.3) * math.cos(0.4), math.cos(0.3) * math.cos(0.4),
               math.sin(0.4))


def read_only_volume(folder, options=ReadOptions()):
    reader = DicomReader(jobs=1)
    sources = [s for s in reader.discover(str(folder)) if not s.info.get("excluded")]
    assert len(sources) == 1, [s.id for s in sources]
    return sources[0], reader.read(sources[0], options)


def voxel_world(volume) -> np.ndarray:
    """LPS position of every voxel, shape (i, j, k, 3)."""
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in volume.shape[:3]], indexing="ij"), axis=-1).astype(float)
    return grid @ volume.affine_lps[:3, :3].T + volume.affine_lps[:3, 3]


def inside_acquired(series, world: np.ndarray) -> np.ndarray:
    """Voxels whose world position lies between two acquired slices and, seen from both, inside them."""
    row, col = np.asarray(series.iop[:3]), np.asarray(series.iop[3:])
    normal = np.cross(row, col)
    d = (series.positions - series.positions[0]) @ normal
    dist = (world - series.positions[0]) @ normal
    ok = (dist >= d.min() - 1e-6) & (dist <= d.max() + 1e-6)
    upper = np.clip(np.searchsorted(d, dist - 1e-6), 1, len(d) - 1)
    for k in (upper - 1, upper):
        rel = world - series.positions[k]
        i = rel @ row / series.pixel_spacing[1]
        j = rel @ col / series.pixel_spacing[0]
        ok &= (i >= -1e-6) & (i <= series.columns - 1 + 1e-6) & (j >= -1e-6) & (j <= series.rows - 1 + 1e-6)
    return ok


def assert_phantom(volume, tolerance=0.5 + 1e-6, mask=None):
    world = voxel_world(volume)
    expected = phantom(world)
    diff = np.abs(np.asarray(volume.array, dtype=np.float64) - expected)
    if mask is not None:
        assert mask.mean() > 0.5, "the comparison region is too small"
        diff = diff[mask]
    assert diff.max() <= tolerance, f"voxel differs from the phantom by {diff.max():.3f}"


@pytest.mark.parametrize("iop, names, numbers", [
    pytest.param((1, 0, 0, 0, 1, 0), "ordered", "spatial", id="axial"),
    pytest.param((1, 0, 0, 0, 0, -1), "shuffled", "random", id="coronal-shuffled-names-random-instance"),
    pytest.param((0, 1, 0, 0, 0, -1), "none", "reversed", id="sagittal-no-suffix-reversed-instance"),
    pytest.param(OBLIQUE_IOP, "shuffled", "reversed", id="oblique-double-angle"),
    pytest.param((-1, 0, 0, 0, 1, 0), "ordered", "spatial", id="axial-flipped-rows"),
])
def test_every_voxel_matches_the_phantom(tmp_path, iop, names, numbers):
    positions = oriented(iop, [0, 1.5, 3.0, 4.5, 6.0, 7.5])
    write_series(tmp_path, positions, iop, names=names, instance_numbers=numbers)
    source, volume = read_only_volume(tmp_path)
    assert volume.shape == (10, 12, 6)
    assert volume.spacing == pytest.approx((0.6, 0.8, 1.5))
    assert volume.array.dtype == np.int16
    assert volume.warnings == ()
    np.testing.assert_allclose(volume.direction[:, 0], iop[:3], atol=1e-6)
    np.testing.assert_allclose(volume.direction[:, 1], iop[3:], atol=1e-6)
    assert_phantom(volume)
    assert source.info["shape"] == [10, 12, 6]


def test_array_is_a_transposed_view_of_one_c_ordered_buffer(tmp_path):
    iop, positions = axial(5)
    write_series(tmp_path, positions, iop)
    _, volume = read_only_volume(tmp_path)
    assert volume.array.flags["F_CONTIGUOUS"]
    assert volume.array.T.flags["C_CONTIGUOUS"]


@pytest.mark.parametrize("distances, flag", [
    pytest.param([0, 2, 4, 8, 10, 12], "gap", id="one-missing-slice"),
    pytest.param([0, 1, 2.5, 3.0, 5.0, 6.0], "uneven", id="uneven-spacing"),
])
def test_gap_and_uneven_spacing_are_resampled_onto_a_regular_grid(tmp_path, distances, flag):
    iop = (1, 0, 0, 0, 1, 0)
    series = write_series(tmp_path, oriented(iop, distances), iop, names="shuffled")
    _, volume = read_only_volume(tmp_path)
    steps = np.diff(distances)
    assert volume.spacing[2] == pytest.approx(min(steps), rel=0.05)
    assert volume.shape[2] == round(distances[-1] / volume.spacing[2]) + 1
    assert any(flag in w or "missing" in w for w in volume.warnings)
    assert flag in volume.meta["geometry_flags"]
    # linear interpolation of a linear phantom: exact up to the rounding of stored and output values
    assert_phantom(volume, tolerance=1.0 + 1e-6, mask=inside_acquired(series, voxel_world(volume)))


@pytest.mark.parametrize("iop, shift", [
    pytest.param((1, 0, 0, 0, 1, 0), (0.0, math.tan(math.radians(15))), id="axial-15deg"),
    pytest.param((1, 0, 0, 0, math.cos(0.3), -math.sin(0.3)), (0.0, -math.tan(math.radians(20))),
                 id="rotated-minus-20deg"),
])
def test_tilt_is_resampled_onto_an_orthogonal_grid(tmp_path, iop, shift):
    series = write_series(tmp_path, oriented(iop, [0, 2, 4, 6, 8, 10, 12], inplane_shift_per_mm=shift), iop,
                          gantry_tilt=15.0, names="shuffled")
    _, volume = read_only_volume(tmp_path)
    assert "tilt" in volume.meta["geometry_flags"]
    assert any("gantry tilt" in w for w in volume.warnings)
    assert np.allclose(volume.direction.T @ volume.direction, np.eye(3), atol=1e-6)
    assert volume.shape[1] > 12  # the grid grows to hold the sheared slab
    assert_phantom(volume, tolerance=1.0 + 1e-6, mask=inside_acquired(series, voxel_world(volume)))


def _far_outside_acquired(series, world: np.ndarray) -> np.ndarray:
    """Voxels more than one pixel outside both acquired slices around them (their value is the fill alone)."""
    row, col = np.asarray(series.iop[:3]), np.asarray(series.iop[3:])
    normal = np.cross(row, col)
    d = (series.positions - series.positions[0]) @ normal
    dist = (world - series.positions[0]) @ normal
    upper = np.clip(np.searchsorted(d, dist - 1e-6), 1, len(d) - 1)
    far = np.ones(world.shape[:-1], dtype=bool)
    for k in (upper - 1, upper):
        rel = world - series.positions[k]
        i = rel @ row / series.pixel_spacing[1]
        j = rel @ col / series.pixel_spacing[0]
        far &= (i < -1 - 1e-6) | (i > series.columns + 1e-6) | (j < -1 - 1e-6) | (j > series.rows + 1e-6)
    return far


@pytest.mark.parametrize("modality, fill", [pytest.param("CT", -1024, id="ct-air"), pytest.param("MR", 0, id="mr")])
def test_voxels_outside_a_tilted_stack_get_the_projects_one_fill_value(tmp_path, modality, fill):
    """The tilt repair fills as --spacing resampling does (-1024 HU for CT, 0 otherwise); it filled with the
    stack's minimum, which for a CT cut through the table is not air."""
    from medconv.transforms.resample import default_fill

    iop = (1, 0, 0, 0, 1, 0)
    series = write_series(tmp_path, oriented(iop, [0, 2, 4, 6, 8, 10, 12], inplane_shift_per_mm=(0.0, 0.5)), iop,
                          modality=modality, function=lambda p: phantom(p) + 2500)  # every acquired value > 0
    _, volume = read_only_volume(tmp_path)
    far = _far_outside_acquired(series, voxel_world(volume))
    assert far.sum() > 50 and default_fill(volume) == fill
    assert volume.array.dtype == np.int16 and np.all(np.asarray(volume.array)[far] == fill)
    inside = inside_acquired(series, voxel_world(volume))
    assert np.asarray(volume.array)[inside].min() > fill  # nothing acquired is the fill


def test_a_fill_the_stored_dtype_cannot_hold_widens_it():
    from medconv.readers.dicom.stack import regularise_stack

    iop = (1, 0, 0, 0, 1, 0)
    plan = plan_stack(oriented(iop, [0, 2, 4, 6], inplane_shift_per_mm=(0.0, 0.5)), iop, (0.8, 0.6), rows=5,
                      columns=4)
    out = regularise_stack(np.full((4, 5, 4), 100, dtype=np.uint16), plan, fill=-1024)
    assert out.dtype == np.int32 and out.min() == -1024 and out.max() == 100


def test_tilt_and_gap_together(tmp_path):
    iop = (1, 0, 0, 0, 1, 0)
    series = write_series(tmp_path, oriented(iop, [0, 2, 4, 8, 10], inplane_shift_per_mm=(0.2, 0.1)), iop,
                          rows=24, columns=20)
    _, volume = read_only_volume(tmp_path)
    assert {"tilt", "gap"} <= set(volume.meta["geometry_flags"])
    assert_phantom(volume, tolerance=1.0 + 1e-6, mask=inside_acquired(series, voxel_world(volume)))


@pytest.mark.parametrize("distances, shift, options, match", [
    pytest.param([0, 2, 4, 6], (0.0, 0.3), ReadOptions(on_tilt="error"), "gantry tilt", id="tilt-refused"),
    pytest.param([0, 2, 4, 8], (0.0, 0.0), ReadOptions(on_uneven="error"), "missing slice", id="gap-refused"),
    pytest.param([0, 1, 3.5, 4], (0.0, 0.0), ReadOptions(on_uneven="error"), "uneven", id="uneven-refused"),
    # pydicom's dicomdirtests CT2: 4 slices of a brain, 1.25 mm apart but one gap of 202.5 mm; resampling
    # would invent 161 slices from two, so even the default policy refuses
    pytest.param([0, 202.5, 203.75, 205], (0.0, 0.0), ReadOptions(), "one gap of 202.5 mm", id="huge-gap-refused"),
])
def test_error_policies_refuse_with_a_reason(tmp_path, distances, shift, options, match):
    iop = (1, 0, 0, 0, 1, 0)
    write_series(tmp_path, oriented(iop, distances, inplane_shift_per_mm=shift), iop)
    reader = DicomReader(jobs=1)
    (source,) = list(reader.discover(str(tmp_path)))
    with pytest.raises(GeometryError, match=match) as info:
        reader.read(source, options)
    assert info.value.path and info.value.hint


def test_duplicate_positions_without_an_index_are_an_error(tmp_path):
    iop = (1, 0, 0, 0, 1, 0)
    write_series(tmp_path, oriented(iop, [0, 2, 2, 4]), iop)
    reader = DicomReader(jobs=1)
    (source,) = list(reader.discover(str(tmp_path)))
    assert "duplicate" in source.info["flags"]
    # one position holds two slices, the others one: not complete volumes either
    with pytest.raises(GeometryError, match=r"1 slice\(s\) repeat a position, but the positions hold different numbers of frames \(\[1, 2\]\)"):
        reader.read(source)


def test_plan_stack_sorts_by_position_not_by_input_order():
    iop = (1, 0, 0, 0, 1, 0)
    positions = np.array([[0, 0, 4.0], [0, 0, -2.0], [0, 0, 1.0], [0, 0, 7.0]])
    plan = plan_stack(positions, iop, (0.5, 0.5), rows=4, columns=4)
    assert list(plan.order) == [1, 2, 0, 3]
    assert plan.spacing[2] == pytest.approx(3.0)
    assert plan.origin == pytest.approx((0, 0, -2.0))
    assert not plan.needs_resample and plan.flags == []


def test_header_tilt_without_sheared_positions_is_only_noted():
    iop = (1, 0, 0, 0, 1, 0)
    plan = plan_stack(oriented(iop, [0, 1, 2]), iop, (1, 1), gantry_tilt=12.0, rows=4, columns=4)
    assert not plan.needs_resample
    assert any("not sheared" in w for w in plan.warnings)


def test_labels_are_resampled_by_nearest_neighbour(tmp_path):
    iop = (1, 0, 0, 0, 1, 0)
    labels = lambda p: 1.0 + (np.floor(p[..., 0] / 2.0) % 3) + 3 * (np.floor(p[..., 2] / 3.0) % 2)  # noqa: E731
    write_series(tmp_path, oriented(iop, [0, 2, 4, 8, 10], inplane_shift_per_mm=(0.13, 0.0)), iop,
                 function=labels, rows=16, columns=16, intercept=0.0)
    reader = DicomReader(jobs=1)
    (source,) = list(reader.discover(str(tmp_path)))
    volume = reader.read(source, ReadOptions(kind="label"))
    assert volume.kind == "label"
    assert {"tilt", "gap"} <= set(volume.meta["geometry_flags"])
    # nearest neighbour invents no value: every output is a label that was stored, or the 0 fill
    values = set(np.unique(volume.array).tolist())
    assert values <= {0, 1, 2, 3, 4, 5, 6} and len(values - {0}) == 6


def test_lone_slice_at_another_orientation_in_a_series_is_a_localizer(tmp_path):
    iop = (1, 0, 0, 0, 1, 0)
    write_series(tmp_path, oriented(iop, [0, 2, 4, 6]), iop, series_uid="2.25.9", seed=1)
    write_series(tmp_path, oriented((0, 1, 0, 0, 0, -1), [0]), (0, 1, 0, 0, 0, -1), series_uid="2.25.9", seed=2,
                 prefix="z")
    reader = DicomReader(jobs=1)
    sources = list(reader.discover(str(tmp_path)))
    reasons = sorted(str(s.info.get("excluded")) for s in sources)
    assert reasons == ["None", "localizer (a lone slice at another orientation than the main stack)"]


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
