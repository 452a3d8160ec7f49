"""RTSTRUCT -> label maps: analytic phantoms, rt-utils and plastimatch as references, bad input."""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from annotation_refs import image_files, reference_for
from annotation_synth import Contour, Roi, circle, dice, sphere_contours, voxel_centres, write_rtstruct
from conftest import corpus_path
from dicom_synth import axial, oriented, truncate, write_series
from medconv.errors import UnreadableFileError, UnsupportedFormatError
from medconv.readers.annotations import AnnotationOptions, read_rtstruct
from medconv.readers.annotations.model import ContourPlacement, OutputRole, RoiStatus

CENTRE = (-20.0, -10.0, 31.0)
RADIUS = 12.0


def _ball(volume, centre, radius, hole=0.0):
    distance = np.linalg.norm(voxel_centres(volume) - np.asarray(centre), axis=-1)
    return (distance <= radius) & (distance > hole)


def _axial_series(tmp_path, positions=None, rows=48, columns=56, name="ct", pixel_spacing=(0.8, 0.7)):
    iop, default = axial(24, 2.0, origin=(-40.0, -28.0, 10.0))
    positions = default if positions is None else positions
    return write_series(tmp_path / name, positions, iop, rows=rows, columns=columns, pixel_spacing=pixel_spacing)


def _read(tmp_path, series, rois, options=AnnotationOptions(), **kwargs):
    path = write_rtstruct(tmp_path / "rs.dcm", series, rois, **kwargs)
    reference = reference_for(series.paths)
    return read_rtstruct(path, reference, options), reference


def test_sphere_matches_the_analytic_ball(tmp_path):
    series = _axial_series(tmp_path)
    result, _ = _read(tmp_path, series, [Roi(1, "Ball", sphere_contours(series, CENTRE, RADIUS))])
    volume = result.output(OutputRole.MAP).volume
    assert volume.kind == "label" and volume.array.dtype == np.uint8
    assert dice(volume.array == 1, _ball(volume, CENTRE, RADIUS)) >= 0.98
    assert result.rois[0].status is RoiStatus.RASTERISED
    assert result.labels[0].as_meta() == {"value": 1, "name": "Ball", "color": [255, 0, 0], "codes": [],
                                          "source": "rs.dcm", "number": 1}
    assert volume.meta["annotates"] == "image" and volume.meta["labels"][0]["name"] == "Ball"


def test_ring_with_a_hole_is_xored(tmp_path):
    series = _axial_series(tmp_path)
    result, _ = _read(tmp_path, series, [Roi(1, "Ring", sphere_contours(series, CENTRE, RADIUS, hole_radius=6.0))])
    volume = result.output(OutputRole.MAP).volume
    truth = _ball(volume, CENTRE, RADIUS, hole=6.0)
    assert dice(volume.array == 1, truth) >= 0.98
    k = int(round((CENTRE[2] - 10.0) / 2.0))
    centre_voxel = np.round(np.linalg.inv(volume.affine_lps) @ np.r_[CENTRE[:2], 10.0 + 2 * k, 1.0]).astype(int)
    assert volume.array[centre_voxel[0], centre_voxel[1], k] == 0  # the hole is empty


def test_oblique_series(tmp_path):
    angle = math.radians(25.0)
    row = (math.cos(angle), math.sin(angle), 0.0)
    col = (0.0, math.cos(math.radians(15.0)), -math.sin(math.radians(15.0)))
    col = tuple(np.asarray(col) - np.dot(col, row) * np.asarray(row))
    col = tuple(np.asarray(col) / np.linalg.norm(col))
    iop = row + col
    positions = oriented(iop, np.arange(22) * 2.0, origin=(-45.0, -40.0, 20.0))
    series = write_series(tmp_path / "oblique", positions, iop, rows=56, columns=56, pixel_spacing=(0.8, 0.8))
    normal = np.cross(row, col)
    centre = positions[0] + 22.0 * np.asarray(row) + 22.0 * np.asarray(col) + 21.0 * normal
    result, _ = _read(tmp_path, series, [Roi(1, "Ball", sphere_contours(series, centre, RADIUS))])
    volume = result.output(OutputRole.MAP).volume
    assert np.abs(volume.direction).max() < 0.99  # really oblique: no axis along a patient axis
    assert dice(volume.array == 1, _ball(volume, centre, RADIUS)) >= 0.98


def test_uneven_spacing_uses_the_real_slice_positions(tmp_path):
    # steps 1, 1, 2, 2, 2 ... : medconv resamples the image onto a 1 mm grid
    distances = np.r_[0.0, 1.0, 2.0, np.arange(4.0, 40.0, 2.0)]
    iop, _ = axial(1)
    positions = np.array([[-40.0, -28.0, 10.0 + d] for d in distances])
    series = write_series(tmp_path / "uneven", positions, iop, rows=48, columns=56, pixel_spacing=(0.8, 0.7))
    centre = (-20.0, -10.0, 10.0 + 14.0)
    result, reference = _read(tmp_path, series, [Roi(1, "Ball", sphere_contours(series, centre, 10.0))])
    volume = result.output(OutputRole.MAP).volume
    assert reference.grid.spacing[2] == pytest.approx(1.0)
    placed = [c for c in result.rois[0].contours if c.placement is ContourPlacement.PLACED]
    assert len(placed) == len(result.rois[0].contours)
    for contour in placed:  # each acquired plane lands exactly on its own grid slice
        assert contour.plane_index == pytest.approx(contour.slice_index, abs=1e-3)
    drawn = sorted(c.slice_index for c in placed)
    truth = _ball(volume, centre, 10.0)
    assert dice(volume.array[..., drawn] == 1, truth[..., drawn]) >= 0.98
    # grid slices between two acquired planes have no contour: empty, and said so
    assert result.rois[0].gap_slices == len(set(range(drawn[0], drawn[-1] + 1)) - set(drawn)) > 0
    assert any("not interpolated" in w for w in result.warnings)


def test_contours_leaving_the_field_of_view_are_clipped_and_off_grid_planes_reported(tmp_path):
    series = _axial_series(tmp_path)
    edge_centre = (-40.0 + 2.0, -10.0, 31.0)  # 2 mm inside the first column: most of the ball is outside
    contours = sphere_contours(series, edge_centre, RADIUS)
    above = Contour(circle((-20.0, -10.0, 10.0 + 23 * 2.0 + 3.0), 5.0, (1, 0, 0), (0, 1, 0)))  # beyond the last slice
    result, _ = _read(tmp_path, series, [Roi(1, "Edge", contours + [above])])
    volume = result.output(OutputRole.MAP).volume
    report = result.rois[0]
    assert report.clipped_contours == len(contours)
    assert report.count(ContourPlacement.OFF_GRID) == 1
    assert dice(volume.array == 1, _ball(volume, edge_centre, RADIUS)) >= 0.98
    assert any("clipped" in w for w in result.warnings) and any("beyond" in w for w in result.warnings)


def test_two_overlapping_rois_map_split_and_stack(tmp_path):
    series = _axial_series(tmp_path)
    big, small = (CENTRE, RADIUS), ((-14.0, -6.0, 31.0), 7.0)
    rois = [Roi(1, "Big", sphere_contours(series, *big)), Roi(2, "Small", sphere_contours(series, *small),
                                                                color=(0, 255, 0))]
    result, _ = _read(tmp_path, series, rois)
    volume = result.output(OutputRole.MAP).volume
    truth_big, truth_small = _ball(volume, *big), _ball(volume, *small)
    assert np.logical_and(truth_big, truth_small).any()
    assert dice(volume.array == 2, truth_small) >= 0.98  # the smaller one wins
    assert dice(volume.array > 0, truth_big | truth_small) >= 0.98
    assert any("overlap" in w and "'Big'" in w for w in result.warnings)

    split, _ = _read(tmp_path, series, rois, AnnotationOptions(masks="split"))
    assert [o.suffix for o in split.outputs] == ["_rtstruct-Phantom_1-Big", "_rtstruct-Phantom_2-Small"]
    assert dice(split.outputs[0].volume.array == 1, truth_big) >= 0.98
    assert dice(split.outputs[1].volume.array == 1, truth_small) >= 0.98

    stack, _ = _read(tmp_path, series, rois, AnnotationOptions(masks="stack"))
    stacked = stack.output(OutputRole.STACK).volume
    assert stacked.shape == volume.shape + (2,) and stacked.meta["axis4"] == "channel"
    assert dice(stacked.array[..., 0] == 1, truth_big) >= 0.98
    assert dice(stacked.array[..., 1] == 1, truth_small) >= 0.98


@pytest.mark.filterwarnings("ignore:Invalid value for VR DS")  # the test writes a NaN on purpose
def test_points_open_tiny_nan_and_absurd_rois(tmp_path):
    series = _axial_series(tmp_path)
    z = 10.0 + 2 * 10
    sub_pixel = Contour(circle((-20.13, -10.17, z), 0.1, (1, 0, 0), (0, 1, 0), vertices=6))
    two_points = Contour(np.array([[-20.0, -10.0, z], [-19.0, -10.0, z]]))
    nan = Contour(np.array([[-20.0, -10.0, z], [np.nan, -9.0, z], [-19.0, -9.0, z]]))
    absurd = Contour(np.array([[-20.0, -10.0, z], [-19.0, 4.0e6, z], [-19.0, -9.0, z]]))
    rois = [Roi(1, "Marker", [Contour(np.array([[-20.0, -10.0, z]]), "POINT")]),
            Roi(2, "Line", [Contour(np.array([[-20.0, -10.0, z], [-10.0, -5.0, z]]), "OPEN_PLANAR")]),
            Roi(3, "Tiny", [sub_pixel]), Roi(4, "Pair", [two_points]), Roi(5, "NaN", [nan]),
            Roi(6, "Absurd", [absurd]), Roi(7, "Ball", sphere_contours(series, CENTRE, RADIUS)), Roi(8, "Empty")]
    result, _ = _read(tmp_path, series, rois)
    status = {r.name: r.status for r in result.rois}
    assert status == {"Marker": RoiStatus.POINTS, "Line": RoiStatus.OPEN, "Tiny": RoiStatus.EMPTY,
                      "Pair": RoiStatus.EMPTY, "NaN": RoiStatus.FAILED, "Absurd": RoiStatus.FAILED,
                      "Ball": RoiStatus.RASTERISED, "Empty": RoiStatus.NO_CONTOURS}
    assert [e.name for e in result.labels] == ["Tiny", "Pair", "Ball"]  # consecutive values 1..3
    assert [e.value for e in result.labels] == [1, 2, 3]
    by_name = {r.name: r for r in result.rois}
    assert "NaN" in by_name["NaN"].reason and "absurd" in by_name["Absurd"].reason
    assert by_name["Pair"].count(ContourPlacement.DEGENERATE) == 1
    for name in ("Marker", "Line", "Tiny", "NaN", "Absurd"):
        assert any(repr(name) in w for w in result.warnings), name
    volume = result.output(OutputRole.MAP).volume
    assert set(np.unique(volume.array)) == {0, 3}


def test_bad_files(tmp_path):
    series = _axial_series(tmp_path)
    reference = reference_for(series.paths)
    path = write_rtstruct(tmp_path / "rs.dcm", series, [Roi(1, "Ball", sphere_contours(series, CENTRE, RADIUS))])
    truncate(path, keep=900)
    with pytest.raises(UnreadableFileError) as error:
        read_rtstruct(path, reference)
    assert str(path) in error.value.one_line() and "\n" not in error.value.one_line()
    with pytest.raises(UnsupportedFormatError):
        read_rtstruct(series.paths[0], reference)
    with pytest.raises(UnreadableFileError):
        read_rtstruct(tmp_path / "missing.dcm", reference)


def _without_preamble(path: Path) -> Path:
    """The same RTSTRUCT as an old export writes it: no preamble, no file meta, implicit VR little endian."""
    import pydicom

    dataset = pydicom.dcmread(path)
    del dataset.file_meta
    dataset.preamble = None
    bare = path.with_name("bare_" + path.name)
    pydicom.dcmwrite(bare, dataset, implicit_vr=True, little_endian=True)
    assert bare.read_bytes()[128:132] != b"DICM"
    return bare


def test_rtstruct_without_preamble_is_read(tmp_path):
    # the image reader accepts DICOM without the Part-10 preamble; annotation objects are read the same way
    from medconv.readers.annotations.headers import annotation_kind
    from medconv.readers.annotations.model import AnnotationKind

    series = _axial_series(tmp_path)
    part10 = write_rtstruct(tmp_path / "rs.dcm", series, [Roi(1, "Ball", sphere_contours(series, CENTRE, RADIUS))])
    bare = _without_preamble(part10)
    assert annotation_kind(bare) is AnnotationKind.RTSTRUCT
    volume = read_rtstruct(bare, reference_for(series.paths)).output(OutputRole.MAP).volume
    assert dice(volume.array == 1, _ball(volume, CENTRE, RADIUS)) >= 0.98


def test_pydicom_rtstruct_without_preamble_is_an_rtstruct():
    import pydicom

    from medconv.readers.annotations.headers import annotation_kind, read_header
    from medconv.readers.annotations.model import AnnotationKind

    path = corpus_path("pydicom_test_files", "rtstruct.dcm")
    with pytest.raises(pydicom.errors.InvalidDicomError):
        pydicom.dcmread(path)  # no preamble: pydicom reads it only when forced
    reference = pydicom.dcmread(path, force=True)
    assert annotation_kind(path) is AnnotationKind.RTSTRUCT
    header = read_header(path)
    assert header.referenced_series_uids == {item.SeriesInstanceUID
                                  for frame in reference.ReferencedFrameOfReferenceSequence
                                  for study in frame.RTReferencedStudySequence
                                  for item in study.RTReferencedSeriesSequence}


# -- references: rt-utils (in the test extra) and plastimatch (when installed) ------------------------------

def _rt_utils_mask(series_folder: Path, rtstruct: Path, name: str) -> np.ndarray:
    """rt-utils' mask for ROI ``name``, as (i, j, k) with k ascending along the normal (as medconv's grid here)."""
    from rt_utils import RTStructBuilder

    builder = RTStructBuilder.create_from(dicom_series_path=str(series_folder), rt_struct_path=str(rtstruct))
    mask = builder.get_roi_mask_by_name(name)  # [row j, column i, slice] (OpenCV's row-major slice)
    return np.transpose(mask, (1, 0, 2))


def test_rt_utils_agrees_on_the_sphere(tmp_path):
    # square pixels: rt-utils 1.2.7 misplaces ROIs when the row and column spacings differ (docs/annotations.md)
    series = _axial_series(tmp_path, rows=64, columns=64, pixel_spacing=(0.7, 0.7))
    result, _ = _read(tmp_path, series, [Roi(1, "Ball", sphere_contours(series, CENTRE, 16.0))])
    ours = result.output(OutputRole.MAP).volume.array == 1
    theirs = _rt_utils_mask(series.folder, tmp_path / "rs.dcm", "Ball")
    assert theirs.shape == ours.shape
    assert dice(ours, theirs) >= 0.97


def test_rt_utils_corpus(tmp_path):
    folder = corpus_path("annotations", "rt-utils", "mock_data")
    reference = reference_for(image_files(folder))
    result = read_rtstruct(folder / "rt.dcm", reference)
    ours = result.output(OutputRole.MAP).volume.array == 1
    assert result.rois[0].status is RoiStatus.RASTERISED and result.rois[0].count(ContourPlacement.PLACED) == 2
    series = tmp_path / "series"
    series.mkdir()
    for name in ("ct_1.dcm", "ct_2.dcm"):
        shutil.copy(folder / name, series / name)
    theirs = _rt_utils_mask(series, folder / "rt.dcm", "ROI-1")
    assert dice(ours, theirs) >= 0.90  # a small ROI (1443 voxels): rt-utils' boundary pixels weigh more

    for name in ("invalid_reference_rt.dcm", "non_existent_reference_rt.dcm"):
        result = read_rtstruct(folder / name, reference)
        assert [r.status for r in result.rois] == [RoiStatus.RASTERISED] * 4
        # each ROI has a contour at z = 70 mm, one step beyond the last slice (65 mm): reported, not drawn
        assert all(r.count(ContourPlacement.OFF_GRID) == 1 and r.count(ContourPlacement.PLACED) == 2
                   for r in result.rois)
    invalid = read_rtstruct(folder / "invalid_reference_rt.dcm", reference)
    assert any("not in the image series" in w for w in invalid.warnings)


@pytest.mark.skipif(shutil.which("plastimatch") is None, reason="plastimatch not installed (apt-get install plastimatch)")
def test_plastimatch_agrees_on_the_sphere_and_ring(tmp_path):
    import SimpleITK as sitk

    series = _axial_series(tmp_path, rows=64, columns=64)
    rois = [Roi(1, "Ball", sphere_contours(series, CENTRE, 16.0)),
            Roi(2, "Ring", sphere_contours(series, (-20.0, -10.0, 45.0), 10.0, hole_radius=5.0))]
    result, _ = _read(tmp_path, series, rois, AnnotationOptions(masks="split"))
    out = tmp_path / "plastimatch"
    subprocess.run(["plastimatch", "convert", "--input", str(tmp_path / "rs.dcm"), "--referenced-ct",
                    str(series.folder), "--output-prefix", str(out), "--prefix-format", "nrrd", "--xor-contours"],
                   check=True, capture_output=True)
    for output, name in zip(result.outputs, ("Ball", "Ring")):
        image = sitk.ReadImage(str(out / f"{name}.nrrd"))
        theirs = sitk.GetArrayFromImage(image).transpose(2, 1, 0) > 0
        assert np.allclose(image.GetOrigin(), output.volume.origin, atol=1e-3)
        assert dice(output.volume.array == 1, theirs) >= 0.97
