"""DICOM SEG -> label maps: dcmqi's reference NRRDs (SimpleITK) and highdicom's own volumes, in world space."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from annotation_refs import image_files, reference_for
from conftest import corpus_path
from dicom_synth import truncate
from medconv.errors import UnreadableFileError, UnsupportedFormatError
from medconv.readers.annotations import AnnotationOptions, OutputRole, RoiStatus, read_seg


def _on_grid(image_path: Path, volume) -> np.ndarray:
    """A reference label image (NRRD) sampled by SimpleITK at ``volume``'s voxel centres (same grid checked)."""
    import SimpleITK as sitk

    image = sitk.ReadImage(str(image_path))
    assert np.allclose(image.GetOrigin(), volume.origin, atol=1e-3)
    assert np.allclose(image.GetSpacing(), volume.spacing, atol=1e-4)
    assert np.allclose(np.reshape(image.GetDirection(), (3, 3)), volume.direction, atol=1e-6)
    grid = sitk.Image([int(n) for n in volume.spatial_shape], sitk.sitkUInt8)
    grid.SetOrigin(volume.origin)
    grid.SetSpacing(volume.spacing)
    grid.SetDirection(tuple(np.ravel(volume.direction)))
    sampled = sitk.Resample(image, grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0, image.GetPixelID())
    return sitk.GetArrayFromImage(sampled).transpose(2, 1, 0)


def _highdicom_on_grid(seg_path: Path, volume, shape) -> np.ndarray:
    """highdicom's own volume of every segment (``(..., segments)``), put on ``volume``'s grid through its affine."""
    import highdicom

    hd = highdicom.seg.segread(str(seg_path)).get_volume(combine_segments=False)
    array = hd.array  # (slices, rows, columns, segments) in highdicom's index order
    index = np.stack(np.meshgrid(*[np.arange(n) for n in array.shape[:3]], indexing="ij"), axis=-1).reshape(-1, 3)
    world = index @ hd.affine[:3, :3].T + hd.affine[:3, 3]
    ours = (world - np.asarray(volume.origin)) @ (np.linalg.inv(volume.affine_lps[:3, :3]).T)
    rounded = np.rint(ours).astype(int)
    assert np.allclose(ours, rounded, atol=1e-3)  # highdicom's voxels sit on our voxel centres
    out = np.zeros(tuple(shape) + (array.shape[3],), dtype=array.dtype)
    out[rounded[:, 0], rounded[:, 1], rounded[:, 2]] = array.reshape(-1, array.shape[3])
    return out


DCMQI = ("annotations", "dcmqi", "segmentations")


@pytest.mark.parametrize("seg, image, nrrds, padding", [
    pytest.param("liver.dcm", "ct-3slice", ["liver_seg.nrrd"], None, id="liver"),
    pytest.param("partial_overlaps.dcm", "ct-3slice",
                 ["partial_overlaps-1.nrrd", "partial_overlaps-2.nrrd", "partial_overlaps-3.nrrd"], None,
                 id="partial-overlaps"),
    pytest.param("sparse-labelmap-noppv.dcm", "24x38x3/image", ["sparse_labelmap_noppv_seg.nrrd"], None,
                 id="labelmap-sparse"),
    pytest.param("sparse-labelmap-ppv5.dcm", "24x38x3/image", ["sparse_labelmap_ppv5_seg.nrrd"], 5,
                 id="labelmap-sparse-padding"),
    pytest.param("23x38x3/seg/label.seg", "23x38x3/image", ["23x38x3/nrrd/label.nrrd"], None, id="23x38x3"),
    pytest.param("24x38x3/seg/label.seg", "24x38x3/image", ["24x38x3/nrrd/label.nrrd"], None, id="24x38x3"),
])
def test_dcmqi_reference_nrrds_voxel_for_voxel(seg, image, nrrds, padding):
    root = corpus_path(*DCMQI)
    reference = reference_for(image_files(root / image))
    result = read_seg(root / seg, reference, AnnotationOptions(masks="split"))
    by_number = {entry.number: output.volume for entry, output in zip(result.labels, result.outputs)}
    assert all(r.status is RoiStatus.RASTERISED for r in result.rois)
    seen = set()
    for nrrd in nrrds:
        truth = _on_grid(root / nrrd, next(iter(by_number.values())))
        for value in np.unique(truth):
            if value == 0 or value == padding:
                continue  # dcmqi writes missing frames of a LABELMAP as its PixelPaddingValue: background here
            ours = by_number[int(value)].array == 1  # dcmqi's label value is the SegmentNumber
            assert np.array_equal(ours, truth == value), (nrrd, value)
            seen.add(int(value))
    assert seen == set(by_number)
    # the map form: one volume, values = consecutive labels, geometry of the image
    mapped = read_seg(root / seg, reference).output(OutputRole.MAP).volume
    assert mapped.kind == "label" and mapped.array.dtype == np.uint8
    assert mapped.meta["annotates"] == reference.unit_id
    assert [row["number"] for row in mapped.meta["labels"]] == sorted(by_number)


@pytest.mark.parametrize("seg, image", [("liver.dcm", "ct-3slice"), ("partial_overlaps.dcm", "ct-3slice"),
                                        ("24x38x3/seg/label.seg", "24x38x3/image")])
def test_highdicom_agrees(seg, image):
    root = corpus_path(*DCMQI)
    reference = reference_for(image_files(root / image))
    result = read_seg(root / seg, reference, AnnotationOptions(masks="stack"))
    stacked = result.output(OutputRole.STACK).volume
    theirs = _highdicom_on_grid(root / seg, stacked, reference.grid.shape)
    assert np.array_equal(stacked.array.astype(bool), theirs.astype(bool))


def test_overlapping_segments_in_one_map_warn():
    root = corpus_path(*DCMQI)
    reference = reference_for(image_files(root / "ct-3slice"))
    result = read_seg(root / "partial_overlaps.dcm", reference)
    assert any("overlap" in w for w in result.warnings)


def test_bad_seg_files(tmp_path):
    root = corpus_path(*DCMQI)
    reference = reference_for(image_files(root / "ct-3slice"))
    cut = tmp_path / "liver.dcm"
    cut.write_bytes((root / "liver.dcm").read_bytes())
    truncate(cut, keep=cut.stat().st_size - 5000)
    with pytest.raises(UnreadableFileError) as error:
        read_seg(cut, reference)
    assert str(cut) in error.value.one_line()
    with pytest.raises(UnsupportedFormatError):
        read_seg(root / "ct-3slice" / "01.dcm", reference)


def _fractional_seg(tmp_path, omit_first=True):
    """A FRACTIONAL SEG made by highdicom on a synthetic series, from a known fraction array."""
    import highdicom
    import pydicom
    from highdicom.sr.coding import CodedConcept

    from dicom_synth import axial, write_series

    iop, positions = axial(6, 2.0)
    series = write_series(tmp_path / "ct", positions, iop, rows=20, columns=16, pixel_spacing=(0.8, 0.6))
    images = [pydicom.dcmread(p) for p in series.paths]
    for image in images:  # Type 2 patient / study attributes highdicom copies
        for keyword in ("PatientBirthDate", "PatientSex", "StudyTime", "ReferringPhysicianName", "StudyID",
                        "AccessionNumber"):
            setattr(image, keyword, "")
    rng = np.random.default_rng(5)
    fractions = rng.random((6, 20, 16)).astype(np.float32)  # (frames, rows, columns) as highdicom takes them
    if omit_first:
        fractions[0] = 0.0  # an empty frame: highdicom omits it, the reader must give background there
    description = highdicom.seg.SegmentDescription(
        segment_number=1, segment_label="Lesion",
        segmented_property_category=CodedConcept("49755003", "SCT", "Morphologically Altered Structure"),
        segmented_property_type=CodedConcept("4147007", "SCT", "Mass"),
        algorithm_type=highdicom.seg.SegmentAlgorithmTypeValues.MANUAL)
    seg = highdicom.seg.Segmentation(
        source_images=images, pixel_array=fractions, segmentation_type="FRACTIONAL",
        segment_descriptions=[description], series_instance_uid=highdicom.UID(), series_number=5,
        sop_instance_uid=highdicom.UID(), instance_number=1, manufacturer="medconv-tests",
        manufacturer_model_name="synthetic", software_versions="0", device_serial_number="0",
        max_fractional_value=255)
    path = tmp_path / "fractional.dcm"
    seg.save_as(path)
    # what the file stores: fractions quantised to 1/255
    stored = np.rint(fractions * 255) / 255
    return path, series, stored.transpose(2, 1, 0)  # (i, j, k)


def test_fractional_threshold_and_keep(tmp_path):
    path, series, stored = _fractional_seg(tmp_path)
    reference = reference_for(series.paths)
    binary = read_seg(path, reference).output(OutputRole.MAP).volume
    assert np.array_equal(binary.array == 1, stored >= 0.5)
    assert not binary.array[..., 0].any()  # the omitted frame is background
    kept = read_seg(path, reference, AnnotationOptions(masks="split", fractional="keep")).outputs[0].volume
    assert kept.array.dtype == np.float32
    assert np.allclose(kept.array, stored, atol=1e-6)
    high = read_seg(path, reference, AnnotationOptions(fractional_threshold=0.8)).outputs[0].volume
    assert np.array_equal(high.array == 1, stored >= 0.8)


def test_frames_off_the_pixel_grid_take_the_nearest_pixel(tmp_path):
    from medconv.image_reference import ImageReference
    from medconv.transforms.resample import Grid

    path, series, stored = _fractional_seg(tmp_path, omit_first=False)
    coarse = reference_for(series.paths)
    spacing = np.asarray(coarse.grid.spacing) * (0.5, 0.5, 1.0)
    origin = np.asarray(coarse.grid.origin) - 0.25 * np.asarray(coarse.grid.spacing) * (1, 1, 0)
    fine = ImageReference("fine", coarse.series_uid, coarse.study_uid, coarse.frame_of_reference_uid, "CT",
                          Grid((32, 40, 6), tuple(spacing), tuple(origin), coarse.grid.direction), coarse.instances)
    result = read_seg(path, fine)
    expected = np.repeat(np.repeat(stored >= 0.5, 2, axis=0), 2, axis=1)
    assert np.array_equal(result.outputs[0].volume.array == 1, expected)
    assert any("nearest pixel" in w for w in result.warnings)


def test_a_seg_with_a_corrupt_orientation_fails_naming_it(tmp_path):
    """SEG frames go through the image stacks' orientation rule (stack.orientation_direction): a row vector of
    length 0.99 is refused, not used as a 0.99-pixel step."""
    import pydicom

    from medconv.errors import InvalidAnnotationError

    path, series, _ = _fractional_seg(tmp_path)
    ds = pydicom.dcmread(path)
    orientation = ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0]
    iop = [float(v) for v in orientation.ImageOrientationPatient]
    orientation.ImageOrientationPatient = [f"{v:.6f}" for v in [*(np.array(iop[:3]) * 0.99), *iop[3:]]]
    ds.save_as(path)
    with pytest.raises(InvalidAnnotationError) as error:
        read_seg(path, reference_for(series.paths))
    line = error.value.one_line()
    assert str(path) in line and "row vector has length 0.99" in line
