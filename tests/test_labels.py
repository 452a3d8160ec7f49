"""Label-mask recognition: documented name patterns per dataset family, content, options, compaction."""

from __future__ import annotations

import numpy as np
import pytest

from medconv.errors import LabelValuesError
from medconv.labels import (KindBasis, compact_labels, decide_kind, distinct_values, is_label_path, kind_decision,
                            looks_like_labels)
from medconv.options import ReadOptions


@pytest.mark.parametrize("relpath, expected", [
    pytest.param("seg-lungs-LUNA16/1.3.6.1.4.1.14519.5.2.1.6279.6001.105756658031515062000744821260.mhd", True,
                 id="luna16-lung-mask"),
    pytest.param("subset0/1.3.6.1.4.1.14519.5.2.1.6279.6001.105756658031515062000744821260.mhd", False,
                 id="luna16-image"),
    pytest.param("liver-seg001.mhd", True, id="sliver07-mask"),
    pytest.param("liver-orig001.mhd", False, id="sliver07-image"),
    pytest.param("masks/LNDb-0001_rad1.mhd", True, id="lndb-mask"),
    pytest.param("data0/LNDb-0001.mhd", False, id="lndb-image"),
    pytest.param("VESSEL12_01-20_Lungmasks/VESSEL12_01.mhd", True, id="vessel12-lung-mask"),
    pytest.param("VESSEL12_01-05/VESSEL12_01.mhd", False, id="vessel12-image"),
    pytest.param("Task06_Lung/labelsTr/lung_001.nii.gz", True, id="msd-label"),
    pytest.param("Task06_Lung/imagesTr/lung_001.nii.gz", False, id="msd-image"),
    pytest.param("volume-0.nii", False, id="lits-image"),
    pytest.param("segmentation-0.nii", True, id="lits-mask"),
    pytest.param("case_00000/segmentation.nii.gz", True, id="kits-mask"),
    pytest.param("case_00000/imaging.nii.gz", False, id="kits-image"),
    pytest.param("brain_label.tif", True, id="label-name"),
    pytest.param("liver_gt.nii.gz", True, id="ground-truth-suffix"),
    pytest.param("gtx/ct.mhd", False, id="gt-inside-a-word"),
    pytest.param("unlabeled/case1.nii.gz", False, id="unlabeled-folder"),
    pytest.param("imagesTs_masked_faces/case1.nii.gz", False, id="masked-images-folder"),
    pytest.param("Task_Segmentation_CT/images/case1.nii.gz", False, id="segmentation-task-folder"),
    pytest.param("derivatives/sub-01/anat/sub-01_dseg.nii.gz", True, id="bids-dseg"),
    pytest.param("sub-01_desc-brain_mask.nii.gz", True, id="bids-mask"),
    pytest.param("Schaefer2018_400Parcels_7Networks.nii.gz", True, id="parcellation"),
    pytest.param("aparc+aseg.nii.gz", True, id="freesurfer-aseg"),
    pytest.param("T1w_unmasked.nii.gz", False, id="unmasked-image"),
])
def test_default_patterns_cover_dataset_families(relpath, expected):
    assert is_label_path(relpath) is expected


def test_patterns_are_case_insensitive_and_configurable():
    assert is_label_path("SEG-LUNGS-luna16/x.mhd")
    assert not is_label_path("masks/a.mhd", patterns=("annotations",))
    assert is_label_path("annotations/a.mhd", patterns=("annotations",))
    assert is_label_path("study/masks/a_rad2.mhd", patterns=("*/masks/*_rad?.mhd",))  # with "/": the whole path
    assert not is_label_path("other/a_rad2.mhd", patterns=("*/masks/*_rad?.mhd",))
    assert is_label_path("a\\b\\liver-seg1.mhd")  # Windows separators


def test_a_label_name_on_image_content_is_refused_with_the_fix():
    ct = np.random.default_rng(1).integers(-1024, 1500, size=(20, 20, 20)).astype(np.int16)
    assert decide_kind("unlabeled/ct.nii.gz", ct)[0] == "intensity"
    with pytest.raises(LabelValuesError, match="says label, but it has negative values") as info:
        decide_kind("labelsTr/ct.nii.gz", ct)
    assert "--kind intensity" in info.value.hint
    assert decide_kind("labelsTr/ct.nii.gz", ct, ReadOptions(kind="intensity"))[0] == "intensity"


def test_a_named_parcellation_with_many_labels_is_a_label():
    atlas = np.random.default_rng(2).integers(0, 401, size=(30, 30, 30)).astype(np.int16)
    assert decide_kind("Schaefer2018_400Parcels.nii.gz", atlas)[0] == "label"


@pytest.mark.parametrize("array, expected", [
    pytest.param(np.array([0, 3, 4, 5, 3], np.uint8), True, id="luna-values"),
    pytest.param(np.array([0, 1], bool), True, id="boolean"),
    pytest.param(np.array([-1, 0, 2], np.int16), True, id="signed-few-values"),
    pytest.param(np.arange(17, dtype=np.uint8), False, id="seventeen-values"),
    pytest.param(np.array([1, 2, 3], np.uint8), False, id="no-background"),
    pytest.param(np.array([0.0, 1.0]), False, id="float-never-by-content"),
    pytest.param(np.array([0, 70000], np.int32), True, id="sparse-wide-range"),
])
def test_looks_like_labels(array, expected):
    assert looks_like_labels(array) is expected


def test_content_check_refutes_ct_from_a_sample_and_counts_masks_exactly():
    rng = np.random.default_rng(0)
    ct = rng.integers(-1024, 2000, size=(64, 64, 40), dtype=np.int16)
    assert distinct_values(ct) is None
    mask = np.zeros((64, 64, 40), np.uint16)
    mask[10, 10, 10] = 9  # one voxel the strided sample misses: the full count finds it
    mask[20:30, 20:30, 5:9] = 2
    np.testing.assert_array_equal(distinct_values(mask.T), [0, 2, 9])


def test_decide_kind_by_option_then_name_never_by_content():
    mask = np.zeros((4, 4, 4), np.uint8)
    ct = np.random.default_rng(1).integers(-1000, 1000, (4, 4, 4)).astype(np.int16)
    assert decide_kind("liver-seg001.mhd", ct, ReadOptions(kind="intensity"))[0] == "intensity"
    assert decide_kind("liver-orig001.mhd", mask, ReadOptions(kind="label"))[0] == "label"
    kind, reason = decide_kind("liver-seg001.mhd", mask + 1)  # no background, but named: still a label
    assert kind == "label" and "liver-seg001.mhd" in reason
    assert decide_kind("liver-orig001.mhd", mask)[0] == "intensity"  # content never makes a label
    quantised_mr = np.resize(np.arange(0, 250, 25, dtype=np.uint8), (6, 6, 6))  # 10 grey levels
    assert decide_kind("mr/t1.nii.gz", quantised_mr)[0] == "intensity"
    with pytest.raises(LabelValuesError, match="not integers"):
        decide_kind("seg/prob.nii", np.array([0.0, 0.25]))
    assert decide_kind("liver-seg001.mhd", None)[0] == "label"  # discovery: the same answer
    assert decide_kind("annot/atlas.nii.gz", None)[0] == "label"
    decision = kind_decision("annot/atlas.nii.gz")
    assert decision.basis is KindBasis.NAME and decision.kind == "label"
    assert kind_decision("x.nii", ReadOptions(kind="label")).basis is KindBasis.OPTION
    assert kind_decision("x.nii").basis is KindBasis.DEFAULT


def test_interpolating_an_image_that_looks_like_labels_warns():
    from medconv.transforms import resample
    from medconv.volume import Volume

    atlas = np.zeros((12, 12, 12), np.uint8)
    for value in range(1, 22):  # a 21-label atlas no name called a label map
        atlas[value % 12, :, value // 12] = value
    warned = resample(Volume(atlas, spacing=(1, 1, 1)), 1.5)
    assert any("interpolated (linear) an integer image with only 22 distinct values" in w and "--kind label" in w
               for w in warned.warnings)
    assert not resample(Volume(atlas, spacing=(1, 1, 1)), 1.5, interpolation="nearest").warnings
    assert not [w for w in resample(Volume(atlas, spacing=(1, 1, 1), kind="label"), 1.5).warnings
                if "interpolated" in w]
    ct = np.random.default_rng(0).integers(-1024, 2000, size=(12, 12, 12)).astype(np.int16)
    assert not resample(Volume(ct, spacing=(1, 1, 1)), 1.5).warnings


def test_scan_and_convert_agree_on_the_kind(tmp_path):
    """Every unit's kind in scan (headers and names) is the kind convert writes, or convert refuses it saying why."""
    import json

    import nibabel as nib

    from medconv.cli.main import main

    rng = np.random.default_rng(4)
    files = {
        "annot/atlas.nii.gz": np.resize(np.arange(22, dtype=np.uint8), (8, 8, 8)),  # 21 labels, named by its folder
        "mr/t1_quantised.nii.gz": np.resize(np.arange(0, 250, 25, dtype=np.uint8), (8, 8, 8)),  # 10 grey levels
        "data/roi.nii.gz": np.resize(np.array([0, 1], np.uint8), (8, 8, 8)),  # a mask no name reveals
        "labelsTr/ct.nii.gz": rng.integers(-1024, 1500, (8, 8, 8)).astype(np.int16),  # a CT filed as a label
        "masks/lung.nii.gz": np.resize(np.array([0, 3, 4], np.uint8), (8, 8, 8)),
    }
    for relative, data in files.items():
        (tmp_path / "src" / relative).parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "src" / relative)
    assert main(["scan", str(tmp_path / "src"), "--csv", str(tmp_path / "scan.csv"), "-q"]) == 0
    import csv

    scanned = {row["unit"]: "label" in row["flags"].split(",") for row in csv.DictReader(open(tmp_path / "scan.csv"))}
    assert main(["convert", str(tmp_path / "src"), str(tmp_path / "out"), "-q", "-j", "1"]) == 1
    rows = {json.loads(line)["unit_id"]: json.loads(line) for line in open(tmp_path / "out" / "medconv-manifest.jsonl")}
    for unit, is_label in scanned.items():
        row = rows[unit]
        if row["status"] == "converted":
            assert (row["kind"] == "label") is is_label, unit
        else:
            assert unit == "labelsTr/ct" and is_label and "--kind intensity" in row["reason"]
    assert scanned == {"annot/atlas": True, "mr/t1_quantised": False, "data/roi": False, "labelsTr/ct": True,
                       "masks/lung": True}


@pytest.mark.parametrize("values, dtype, expected", [
    pytest.param([0, 3, 4], np.int16, np.uint8, id="int16-to-uint8"),
    pytest.param([0, 300], np.int32, np.uint16, id="int32-to-uint16"),
    pytest.param([-1, 0, 5], np.int32, np.int8, id="negative-to-int8"),
    pytest.param([0.0, 2.0], np.float32, np.uint8, id="integral-float-to-uint8"),
    pytest.param([0.0, 0.5], np.float32, np.float32, id="fractional-float-kept"),
    pytest.param([0, 1], np.uint8, np.uint8, id="already-compact"),
    pytest.param([False, True], bool, np.uint8, id="bool-to-uint8"),
])
def test_compact_labels(values, dtype, expected):
    array = np.array(values, dtype=dtype)
    compact = compact_labels(array)
    assert compact.dtype == expected
    np.testing.assert_array_equal(compact.astype(np.float64), array.astype(np.float64))


def test_compact_labels_keeps_the_transposed_layout():
    buffer = np.zeros((5, 6, 7), np.int16)
    compact = compact_labels(buffer.T)
    assert compact.dtype == np.uint8 and compact.shape == (7, 6, 5) and compact.flags.f_contiguous


def test_a_bool_array_whose_bytes_are_not_0_and_1_is_compacted_by_value():
    stored = np.array([[0, 255], [1, 0], [7, 255]], np.uint8)
    mask = stored.view(bool)  # True is any non-zero byte here (a view of another array's bytes)
    expected = (stored != 0).astype(np.uint8)  # the reference: what True and False mean
    np.testing.assert_array_equal(compact_labels(mask), expected)
    assert compact_labels(mask).dtype == np.uint8
    np.testing.assert_array_equal(compact_labels(mask.T), expected.T)
    np.testing.assert_array_equal(distinct_values(mask), [0, 1])
    assert distinct_values(np.ones((2, 2), bool)).tolist() == [1]
    from medconv.export.labelmap import present_values

    assert present_values(mask) == [0, 1]
