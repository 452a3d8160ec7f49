"""Enhanced multi-frame DICOM (and fragmented JPEG frames) against dcm2niix, nibabel, SimpleITK and a phantom."""

from __future__ import annotations

import gzip
import shutil
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from conftest import corpus_path
from references import assert_same_in_world, run_dcm2niix

from medconv.errors import NotAVolumeError
from medconv.geometry import LPS_TO_RAS
from medconv.readers.dicom import DicomReader
from medconv.readers.dicom.layouts.enhanced import frame_groups
from medconv.source import Source


def _nifti(volume) -> nib.Nifti1Image:
    return nib.Nifti1Image(np.asarray(volume.array), volume.affine_ras)


def _read(paths, **info):
    return DicomReader().read(Source("mf", "dicom", tuple(str(p) for p in paths), info=info))


@pytest.fixture(scope="module")
def philips_dcm2niix(tmp_path_factory):
    """dcm2niix run at test time; ``-p n``: the DICOM RescaleSlope/Intercept, as medconv applies them."""
    source = corpus_path("dcm_qa_enh", "In", "Philips", "IM_0027_fMAP.dcm")
    folder = tmp_path_factory.mktemp("philips")
    (folder / "in").mkdir()
    shutil.copy(source, folder / "in")
    outputs = run_dcm2niix(folder / "in", folder / "out", "-p", "n", "-f", "%v_%p_%s")
    return source, {path.name: path for path in outputs}


@pytest.mark.parametrize("group, reference", [
    pytest.param("T1-M-MAGNITUDE", "Philips_WIP_B0_NS_801_e1.nii", id="magnitude"),
    pytest.param("T1-FIELD_MAP-REAL", "Philips_WIP_B0_NS_801_e2_fieldmaphz.nii", id="field-map-hz"),
])
def test_philips_field_map_groups_match_dcm2niix(philips_dcm2niix, group, reference):
    source, outputs = philips_dcm2niix
    assert frame_groups([source]) == ["T1-M-MAGNITUDE", "T1-FIELD_MAP-REAL"]
    volume = _read([source], frame_group=group)
    assert volume.shape == (64, 64, 32) and volume.array.dtype == np.float32
    assert_same_in_world(_nifti(volume), nib.load(outputs[reference]), value_atol=1e-3)
    # the upstream Ref/ (made with Philips "precise" scaling) agrees on geometry
    stored = nib.load(corpus_path("dcm_qa_enh", "Ref", reference))
    np.testing.assert_allclose(nib.as_closest_canonical(stored).affine,
                               nib.as_closest_canonical(_nifti(volume)).affine, atol=0.01)


def test_philips_without_group_reads_first_and_says_what_was_left(philips_dcm2niix):
    source, _ = philips_dcm2niix
    volume = _read([source])
    assert volume.meta["dicom"]["FrameGroup"] == "T1-M-MAGNITUDE"
    assert any("T1-FIELD_MAP-REAL" in w and "not converted" in w for w in volume.warnings)


def test_siemens_xa_files_pool_into_4d(tmp_path):
    folder = corpus_path("dcm_qa_enh", "In", "Siemens", "XA10")
    files = sorted(folder.glob("*.dcm"))
    volume = _read(reversed(files))
    assert volume.shape == (64, 64, 6, 4)
    assert volume.meta["axis4"] == "time"
    (fresh,) = run_dcm2niix(folder, tmp_path / "out", "-f", "%v_%p_%s")
    assert_same_in_world(_nifti(volume), nib.load(fresh))
    assert_same_in_world(_nifti(volume), nib.load(corpus_path("dcm_qa_enh", "Ref", "Siemens_REST1_w_SMS_PF7-8_6.nii")))


def test_fragmented_jpeg_frames_match_dcm2niix(tmp_path):
    """dcm_qa_frag: JPEG lossless frames split over several fragments, read through the DICOM reader."""
    import pydicom

    import medconv

    folder = corpus_path("dcm_qa_frag", "In", "5001_anat-T1w_acq-tfl")
    volume = medconv.read(folder)
    assert volume.shape == (128, 128, 96)
    # dcm2niix measures a 2.000107 mm slice step where the IPPs say 190.0001 mm / 95 = 2.000001 mm:
    # its far end drifts by 0.0101 mm, just over the usual 0.01 mm, hence 0.02 mm here ...
    (fresh,) = run_dcm2niix(folder, tmp_path / "out", "-f", "%p_%s")
    assert_same_in_world(_nifti(volume), nib.load(fresh), atol_mm=0.02)
    assert_same_in_world(_nifti(volume), nib.load(corpus_path("dcm_qa_frag", "Ref", "anat-T1w_acq-tfl_5001.nii")),
                         atol_mm=0.02)
    # ... and the first and last slice centres are exactly where the files' ImagePositionPatient say.
    positions = np.array([pydicom.dcmread(path, stop_before_pixels=True).ImagePositionPatient
                          for path in sorted(folder.glob("*.dcm"))], dtype=float)
    ends = volume.affine_lps @ np.array([[0, 0, 0, 1], [0, 0, 95, 1]], dtype=float).T
    for end in ends[:3].T:
        assert np.min(np.linalg.norm(positions - end, axis=1)) < 1e-4


def test_nibabel_philips_enhanced_geometry():
    import pydicom

    path = corpus_path("nibabel_data", "nibabel", "nicom", "tests", "data", "philips_mprage.dcm.gz")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        from nibabel.nicom import dicomwrappers

        with gzip.open(path) as handle:
            wrapper = dicomwrappers.wrapper_from_data(pydicom.dcmread(handle))
        reference = nib.Nifti1Image(wrapper.get_data(), LPS_TO_RAS @ wrapper.affine)
    volume = _read([path])
    assert volume.shape == (256, 256, 176)
    assert_same_in_world(_nifti(volume), reference, value_atol=1e-3)


def _read_enhanced(paths):
    """The enhanced multi-frame layout on its own (RT dose and cine are set aside by discovery)."""
    from medconv.readers.dicom.assemble import assemble
    from medconv.readers.dicom.grouping import SeriesGroup
    from medconv.readers.dicom.headers import read_header
    from medconv.readers.dicom.layouts.enhanced import plan_enhanced
    from medconv.readers.dicom.plan import PlanFailure

    (outcome,) = plan_enhanced(SeriesGroup([read_header(str(p)) for p in paths], layout="multiframe"))
    if isinstance(outcome, PlanFailure):
        raise outcome.error
    return assemble(outcome)


@pytest.mark.parametrize("name", [
    pytest.param("rtdose.dcm", id="explicit-little"),
    pytest.param("rtdose_expb.dcm", id="explicit-big"),
    pytest.param("rtdose_rle.dcm", id="rle"),
])
def test_rt_dose_matches_simpleitk_times_dose_grid_scaling(name):
    import pydicom
    import SimpleITK as sitk

    path = corpus_path("pydicom_test_files", name)
    volume = _read_enhanced([path])
    reference = sitk.ReadImage(str(corpus_path("pydicom_test_files", "rtdose.dcm")))
    scaling = float(pydicom.dcmread(path, stop_before_pixels=True).DoseGridScaling)
    assert volume.spacing == pytest.approx(reference.GetSpacing())
    assert volume.origin == pytest.approx(reference.GetOrigin())
    np.testing.assert_allclose(volume.direction.T.ravel(), reference.GetDirection(), atol=1e-9)
    expected = sitk.GetArrayFromImage(reference).astype(np.float64) * scaling
    np.testing.assert_allclose(np.asarray(volume.array).T, expected, rtol=1e-6)
    assert volume.meta["units"] == "RELATIVE"


def test_cine_without_positions_is_not_a_volume():
    with pytest.raises(NotAVolumeError, match="without per-frame geometry"):
        _read_enhanced([corpus_path("pydicom_test_files", "examples_ybr_color.dcm")])


# -- synthetic enhanced MR: shuffled frames, 2 time points, per-frame rescale ----------------------------

IOP = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)  # sagittal: rows along A, columns down S
SPACING = (1.5, 2.0)  # row spacing, column spacing
ORIGIN = np.array([-20.0, -30.0, 40.0])
NORMAL = np.cross(IOP[:3], IOP[3:])
STEP = 3.0


def phantom(world: np.ndarray, t: int) -> np.ndarray:
    """Analytic intensity at LPS positions ``(..., 3)`` and time point ``t``."""
    return 100 * t + 2 * world[..., 0] + 3 * world[..., 1] - world[..., 2] + 500


def write_enhanced(path: Path, slices: int = 4, rows: int = 5, cols: int = 6, seed: int = 0) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    rng = np.random.default_rng(seed)
    frames = [(t, k) for t in range(2) for k in range(slices)]
    rng.shuffle(frames)
    row_dir, col_dir = np.array(IOP[:3]), np.array(IOP[3:])
    jj, ii = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    pixels, groups = [], []
    for number, (t, k) in enumerate(frames):
        corner = ORIGIN + k * STEP * NORMAL
        world = corner + ii[..., None] * SPACING[1] * row_dir + jj[..., None] * SPACING[0] * col_dir
        slope, intercept = 0.5 + 0.25 * number, -7.0 * number
        pixels.append(np.round((phantom(world, t) - intercept) / slope).astype(np.uint16))
        item = Dataset()
        position, content, transform = Dataset(), Dataset(), Dataset()
        position.ImagePositionPatient = [float(v) for v in corner]
        content.TemporalPositionIndex = t + 1
        content.InStackPositionNumber = k + 1
        transform.RescaleSlope, transform.RescaleIntercept, transform.RescaleType = slope, intercept, "US"
        item.PlanePositionSequence = Sequence([position])
        item.FrameContentSequence = Sequence([content])
        item.PixelValueTransformationSequence = Sequence([transform])
        groups.append(item)
    shared, orientation, measures = Dataset(), Dataset(), Dataset()
    orientation.ImageOrientationPatient = list(IOP)
    measures.PixelSpacing = list(SPACING)
    measures.SliceThickness = STEP
    shared.PlaneOrientationSequence = Sequence([orientation])
    shared.PixelMeasuresSequence = Sequence([measures])
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.Modality = "MR"
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, cols, len(frames)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    ds.PerFrameFunctionalGroupsSequence = Sequence(groups)
    ds.PixelData = np.stack(pixels).astype("<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)


def test_synthetic_enhanced_shuffled_frames_follow_the_phantom(tmp_path):
    path = tmp_path / "enhanced.dcm"
    write_enhanced(path)
    volume = _read([path])
    assert volume.shape == (6, 5, 4, 2)
    assert volume.meta["axis4"] == "time"
    assert volume.array.dtype == np.float32
    affine = volume.affine_lps
    ii, jj, kk = np.meshgrid(*(np.arange(n) for n in volume.shape[:3]), indexing="ij")
    world = (np.stack([ii, jj, kk, np.ones_like(ii)], axis=-1) @ affine.T)[..., :3]
    for t in range(2):
        expected = phantom(world, t)
        # stored values were rounded to the slope's step: the error is at most half a step (slope <= 2.25)
        np.testing.assert_allclose(np.asarray(volume.array[..., t]), expected, atol=1.2)
    np.testing.assert_allclose(volume.spacing, (SPACING[1], SPACING[0], STEP))


# -- discovery: one unit per frame group, pooled files --------------------------------------------------

def test_discovery_converts_both_philips_groups_and_pools_siemens_xa(philips_dcm2niix):
    from medconv.readers.dicom import DicomReader

    _, outputs = philips_dcm2niix
    reader = DicomReader(jobs=1)
    sources = list(reader.discover(corpus_path("dcm_qa_enh", "In")))
    assert len(sources) == 3 and not any(s.info.get("excluded") for s in sources)
    by_group = {s.info.get("frame_group"): s for s in sources}
    for group, reference in (("T1-M-MAGNITUDE", "Philips_WIP_B0_NS_801_e1.nii"),
                             ("T1-FIELD_MAP-REAL", "Philips_WIP_B0_NS_801_e2_fieldmaphz.nii")):
        source = by_group[group]
        assert source.info["series_description"] == f"B0 NS {group}"  # output names stay apart
        assert source.info["shape"] == [64, 64, 32]
        volume = reader.read(source)
        np.testing.assert_allclose(source.info["spacing"], volume.spacing, atol=1e-5)
        assert not any("not converted" in w for w in volume.warnings)
        assert_same_in_world(_nifti(volume), nib.load(outputs[reference]), value_atol=1e-3)
    xa = by_group[None]
    assert len(xa.paths) == 4 and xa.info["shape"] == [64, 64, 6, 4]
    volume = reader.read(xa)
    np.testing.assert_allclose(xa.info["spacing"], volume.spacing, atol=1e-5)
    assert_same_in_world(_nifti(volume), nib.load(corpus_path("dcm_qa_enh", "Ref", "Siemens_REST1_w_SMS_PF7-8_6.nii")))


def _set_series(path: Path, uid: str, number: int = 5) -> None:
    import pydicom

    ds = pydicom.dcmread(path)
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.PatientID = uid, number, "ENH"
    ds.save_as(path, enforce_file_format=True)


@pytest.mark.parametrize("second_slices, units, shape", [
    pytest.param(4, 1, [6, 5, 4, 4], id="same-positions-pool-into-4d"),
    pytest.param(3, 2, None, id="incomplete-pool-splits-per-file"),
])
def test_multiframe_files_of_one_series_pool_only_into_complete_volumes(tmp_path, second_slices, units, shape):
    from medconv.readers.dicom import DicomReader

    write_enhanced(tmp_path / "a.dcm", seed=1)
    write_enhanced(tmp_path / "b.dcm", slices=second_slices, seed=2)
    for name in ("a.dcm", "b.dcm"):
        _set_series(tmp_path / name, "2.25.777")
    reader = DicomReader(jobs=1)
    sources = list(reader.discover(tmp_path))
    assert len(sources) == units
    if shape:
        assert sources[0].info["shape"] == shape
    for source in sources:
        volume = reader.read(source)
        assert list(volume.shape) == source.info["shape"]
        affine = volume.affine_lps
        ii, jj, kk = np.meshgrid(*(np.arange(n) for n in volume.shape[:3]), indexing="ij")
        world = (np.stack([ii, jj, kk, np.ones_like(ii)], axis=-1) @ affine.T)[..., :3]
        for t in range(volume.shape[3]):  # pooled: ordered by TemporalPositionIndex, then file (1, 1, 2, 2)
            expected = phantom(world, t // (volume.shape[3] // 2) if volume.shape[3] == 4 else t)
            np.testing.assert_allclose(np.asarray(volume.array[..., t]), expected, atol=1.2)


# -- Parametric Map (issue 10, fault 9) -------------------------------------------------------------------

@pytest.mark.parametrize("float_pixels", [pytest.param(True, id="float-pixel-data"),
                                          pytest.param(False, id="int16-pixel-data")])
def test_single_frame_parametric_maps_use_their_functional_group_geometry(tmp_path, float_pixels):
    """Fault 9: single-frame Parametric Map files (geometry only in functional groups) were 2D images
    "without patient geometry"; each voxel must be the map's value at its world position."""
    import pydicom

    from dicom_synth import oriented, phantom, write_parametric_map_slices
    from medconv.readers.dicom import DicomReader

    a = 0.2  # oblique sagittal: rows tilted from A towards S, columns from down S towards A
    iop = (0.0, float(np.cos(a)), float(np.sin(a)), 0.0, float(np.sin(a)), -float(np.cos(a)))
    paths = write_parametric_map_slices(tmp_path / "pm", oriented(iop, [0.0, 4.0, 8.0, 12.0]), iop,
                                        float_pixels=float_pixels)
    reader = DicomReader(jobs=1)
    (source,) = reader.discover(str(tmp_path / "pm"))
    assert source.info.get("excluded") is None and source.info["shape"] == [5, 6, 4]
    volume = reader.read(source)
    ii, jj, kk = np.meshgrid(*(np.arange(n) for n in volume.shape), indexing="ij")
    world = (np.stack([ii, jj, kk, np.ones_like(ii)], axis=-1) @ volume.affine_lps.T)[..., :3]
    if float_pixels:
        assert volume.array.dtype == np.float32
        np.testing.assert_allclose(volume.array, phantom(world) / 7.0, rtol=1e-6, atol=1e-4)
    else:
        assert np.abs(volume.array - phantom(world)).max() <= 0.5 + 1e-6
    # and the values are the files' own, as pydicom decodes them (slice k of the volume is file k here)
    for k, path in enumerate(paths):
        np.testing.assert_array_equal(np.asarray(volume.array[:, :, k]).T, pydicom.dcmread(path).pixel_array)


# -- enhanced files are parsed once, without pydicom (issue 10, fault 13) ----------------------------------

def _as_written(source: Path, target: Path, *, implicit: bool = False, undefined_lengths: bool = False) -> Path:
    """``source`` re-encoded: implicit VR, and/or every sequence and item of undefined length."""
    import pydicom

    ds = pydicom.dcmread(source)
    if undefined_lengths:
        for element in ds.iterall():
            if element.VR == "SQ":
                element.is_undefined_length = True
                for item in element.value:
                    item.is_undefined_length_sequence_item = True
    if implicit:
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
        ds.save_as(target, implicit_vr=True, little_endian=True, enforce_file_format=True)
    else:
        ds.save_as(target, enforce_file_format=True)
    return target


def _frame_facts(frames):
    return [(tuple(np.round(f.position, 6)), f.iop, f.pixel_spacing, f.slope, f.intercept, f.rescale_type, f.group,
             str(f.temporal), str(f.echo), f.order, f.diffusion) for f in frames]


@pytest.mark.parametrize("encoding", [pytest.param({}, id="explicit-defined-lengths"),
                                      pytest.param({"undefined_lengths": True}, id="explicit-undefined-lengths"),
                                      pytest.param({"implicit": True}, id="implicit-vr"),
                                      pytest.param({"implicit": True, "undefined_lengths": True},
                                                   id="implicit-undefined-lengths")])
def test_functional_group_walker_reads_what_pydicom_reads(tmp_path, encoding):
    from dicom_synth import oriented, write_enhanced_dwi
    from medconv.readers.dicom.decode import read_datasets
    from medconv.readers.dicom.functional_groups import read_functional_groups
    from medconv.readers.dicom.layouts.enhanced import _frames_of, _timing

    scheme = [(0.0, None, "NONE"), (800.0, (0.0, 0.6, 0.8), "DIRECTIONAL"), (800.0, None, "ISOTROPIC")]
    written = [write_enhanced_dwi(tmp_path / "dwi.dcm", scheme, oriented(IOP, [0.0, 3.0, 6.0]), IOP)]
    write_enhanced(tmp_path / "enhanced.dcm")
    written.append(tmp_path / "enhanced.dcm")
    written += sorted(corpus_path("dcm_qa_enh", "In").rglob("*.dcm"))  # Siemens XA10, Philips field map
    for index, source in enumerate(written):
        path = str(_as_written(source, tmp_path / f"re{index}.dcm", **encoding))
        raw = read_functional_groups(path)
        assert raw is not None, source
        (parsed,) = read_datasets([path])
        assert _frame_facts(_frames_of([raw], [path])) == _frame_facts(_frames_of([parsed], [path])), source
        assert _timing(raw) == _timing(parsed) and (raw.Rows, raw.Columns) == (parsed.Rows, parsed.Columns)


@pytest.mark.parametrize("distances, in_place", [([0.0, 3.0, 6.0], True), ([6.0, 3.0, 0.0], False)],
                         ids=["file-order", "reversed"])
def test_enhanced_series_values_whether_read_in_place_or_gathered(tmp_path, monkeypatch, distances, in_place):
    """One file per time point (Siemens XA): frames stored in output order are read straight into the
    volume, frames stored the other way round are decoded and gathered; either way each voxel holds the
    analytic value written at its world position (LPS, from the volume's affine) and time point."""
    import medconv.readers.dicom.layouts as layouts
    from dicom_synth import oriented, write_enhanced_dwi

    iop = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    for t in range(3):
        write_enhanced_dwi(tmp_path / "in" / f"6_{t + 1}.dcm", [(0.0, None, "NONE")], oriented(iop, distances),
                           iop, function=lambda p, t=t: 1000 + 2 * p[..., 0] + 4 * p[..., 1] + 3 * p[..., 2] + 10 * t,
                           seed=t, extra={"SeriesInstanceUID": "2.25.6061", "InstanceNumber": t + 1,
                                          "AcquisitionNumber": t + 1})
    used = []
    original = layouts._read_in_place
    monkeypatch.setattr(layouts, "_read_in_place", lambda *a: used.append(original(*a)) or used[-1])
    reader = DicomReader(jobs=1)
    (source,) = reader.discover(str(tmp_path / "in"))
    volume = reader.read(source)
    assert [stack is not None for stack in used] == [in_place]
    array = np.asarray(volume.array)
    assert array.shape == (5, 6, 3, 3)
    ii, jj, kk = np.meshgrid(*[np.arange(n) for n in array.shape[:3]], indexing="ij")
    world = np.stack([ii, jj, kk, np.ones_like(ii)], axis=-1) @ volume.affine_lps.T
    expected = 1000 + 2 * world[..., 0] + 4 * world[..., 1] + 3 * world[..., 2]
    for t in range(3):
        np.testing.assert_allclose(array[..., t], expected + 10 * t, atol=1e-6)


def test_frame_order_of_one_plan_is_never_given_for_another(tmp_path):
    """order_frames keeps the last plan's order: asked about plans A, B, A, each answer is that plan's own
    (recomputed from scratch for comparison), and the two series' orders differ."""
    from dicom_synth import oriented, write_enhanced_dwi
    from medconv.readers.dicom import order

    iop = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    plans = []
    for name, times, distances in (("a", 3, [0.0, 3.0]), ("b", 2, [6.0, 3.0, 0.0])):
        for t in range(times):
            write_enhanced_dwi(tmp_path / name / f"{t + 1}.dcm", [(0.0, None, "NONE")], oriented(iop, distances),
                               iop, seed=t, extra={"SeriesInstanceUID": f"2.25.{len(name) + 70 + times}",
                                                   "InstanceNumber": t + 1, "AcquisitionNumber": t + 1})
        reader = DicomReader(jobs=1)
        (source,) = reader.discover(str(tmp_path / name))
        plans.append(reader.plan(source))
    a, b = plans
    answers = [order.order_frames(plan) for plan in (a, b, a, a, b)]
    assert answers == [order._order_frames(plan) for plan in (a, b, a, a, b)]
    assert (answers[0].count, answers[1].count) == (3, 2) and answers[0] != answers[1]


def test_functional_groups_of_a_series_read_with_one_memo_are_each_files_own(tmp_path):
    """One ItemMemo for the files of a series (items repeated from file to file parsed once): every file's
    frame facts are pydicom's for that file, whatever order, encoding (explicit, implicit, undefined lengths)
    and content (positions and times differ between the files) the files come in."""
    from dicom_synth import oriented, write_enhanced_dwi
    from medconv.readers.dicom.decode import read_datasets
    from medconv.readers.dicom.functional_groups import ItemMemo, read_functional_groups
    from medconv.readers.dicom.layouts.enhanced import _frames_of

    iop = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    sources = []
    for t, distances in enumerate(([0.0, 3.0, 6.0], [0.0, 3.0, 6.0], [1.5, 4.5, 7.5])):
        sources.append(write_enhanced_dwi(tmp_path / f"{t}.dcm", [(0.0, None, "NONE"), (800.0, (0.0, 0.6, 0.8),
                                                                 "DIRECTIONAL")], oriented(iop, distances), iop,
                                          seed=t, extra={"InstanceNumber": t + 1}))
    encodings = [{}, {"implicit": True}, {"undefined_lengths": True}, {"implicit": True, "undefined_lengths": True}]
    paths = [str(_as_written(source, tmp_path / f"re{index}-{n}.dcm", **encoding))
             for index, source in enumerate(sources) for n, encoding in enumerate(encodings)]
    for order in (paths, paths[::-1]):
        memo = ItemMemo()
        for path in order:
            raw = read_functional_groups(path, -1, memo)
            (parsed,) = read_datasets([path])
            assert _frame_facts(_frames_of([raw], [path])) == _frame_facts(_frames_of([parsed], [path])), path
        assert any(len(items) > 1 for items in memo.items.values())  # items were shared


def test_enhanced_series_is_discovered_and_read_without_pydicom_parsing_a_file(tmp_path, monkeypatch):
    """Fault 13: the files were parsed at planning, reading and decoding; now the header scan, the functional
    group walker and the pixel offset do it all: pydicom never parses one of these files."""
    import pydicom

    from dicom_synth import oriented, write_enhanced_dwi
    from medconv.readers.dicom import DicomReader

    for t in range(3):  # Siemens XA style: one enhanced file per time point
        write_enhanced_dwi(tmp_path / "in" / f"6_{t + 1}.dcm", [(0.0, None, "NONE")], oriented(IOP, [0.0, 3.0]),
                           IOP, function=lambda p, t=t: 2000 + p[..., 0] + 10 * t, seed=t,
                           extra={"SeriesInstanceUID": "2.25.6060", "InstanceNumber": t + 1,
                                  "AcquisitionNumber": t + 1})
    reader = DicomReader(jobs=1)
    calls = []
    original = pydicom.dcmread
    monkeypatch.setattr(pydicom, "dcmread", lambda *a, **k: calls.append(a) or original(*a, **k))
    (source,) = reader.discover(str(tmp_path / "in"))
    volume = reader.read(source)
    assert calls == []
    assert volume.shape == (5, 6, 2, 3)
    assert [float(np.asarray(volume.array)[0, 0, 0, t]) for t in range(3)] == pytest.approx(
        [float(np.asarray(volume.array)[0, 0, 0, 0]) + 10 * t for t in range(3)])
