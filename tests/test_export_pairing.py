"""Pairing rules on the layouts of the datasets medconv targets: cases, channels, and typed reasons for the rest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from export_synth import save_nifti, write_task01
from medconv.batch import discover_sources
from medconv.errors import UsageError
from medconv.export import ExportOptions, PAIRING_RULES, UnpairedReason, find_cases
from medconv.export.run import label_table_for
from medconv.options import ReadOptions
from medconv.source import Source


def _touch(root: Path, *names: str, shape=(4, 4, 3)) -> None:
    for name in names:
        save_nifti(np.zeros(shape, np.int16), np.eye(4), root / name)


def _pair(root: Path, **kwargs):
    return find_cases(root, discover_sources(str(root), None), **kwargs)


def test_rules_are_tried_in_a_documented_order():
    assert list(PAIRING_RULES) == ["msd", "luna16", "sliver07", "lits", "annotations", "case-folders"]


def test_msd_4d_images_split_by_modality(tmp_path):
    pairing = _pair(write_task01(tmp_path / "Task01", train=2, test=1))
    assert pairing.rule == "msd" and pairing.channel_names == ("FLAIR", "T1w", "t1gd", "T2w")
    assert [case.case_id for case in pairing.training] == ["BRATS_001", "BRATS_002"]
    assert [case.case_id for case in pairing.test] == ["BRATS_003"]
    case = pairing.training[0]
    assert [c.volume_index for c in case.channels] == [0, 1, 2, 3]
    assert {c.source.id for c in case.channels} == {"imagesTr/BRATS_001"}
    assert case.label.source.id == "labelsTr/BRATS_001" and pairing.labels_declared
    assert pairing.label_names[3] == "enhancing tumour"


def test_msd_image_with_too_few_volumes_is_a_bad_channels_problem(tmp_path):
    root = write_task01(tmp_path / "Task01", train=2, test=0)
    save_nifti(np.zeros((4, 4, 3, 3), np.float32), np.eye(4), root / "imagesTr" / "BRATS_002.nii.gz")
    pairing = _pair(root)
    assert [case.case_id for case in pairing.cases] == ["BRATS_001"]
    reasons = {item.reason for item in pairing.errors}
    assert UnpairedReason.BAD_CHANNELS in reasons and UnpairedReason.LABEL_WITHOUT_IMAGE in reasons
    bad = next(item for item in pairing.errors if item.reason is UnpairedReason.BAD_CHANNELS)
    assert "holds 3 volume(s) but the dataset has 4 channel(s)" in bad.message


def test_nnunet_raw_input_with_channel_suffixes(tmp_path):
    root = tmp_path / "Dataset002_Heart"
    _touch(root, "imagesTr/la_003_0000.nii.gz", "imagesTr/la_003_0001.nii.gz", "labelsTr/la_003.nii.gz",
           "imagesTr/la_004_0000.nii.gz", "labelsTr/la_004.nii.gz", "imagesTs/la_001_0000.nii.gz",
           "imagesTs/la_001_0001.nii.gz")
    (root / "dataset.json").write_text(json.dumps({"channel_names": {"0": "MRI", "1": "T2"},
                                                   "labels": {"background": 0, "left atrium": 1}}))
    pairing = _pair(root)
    assert pairing.channel_names == ("MRI", "T2") and pairing.label_names == {0: "background", 1: "left atrium"}
    assert [c.case_id for c in pairing.cases] == ["la_001", "la_003"]
    missing = pairing.errors[0]
    assert missing.reason is UnpairedReason.MISSING_CHANNEL and missing.case_id == "la_004"
    assert "channel 'T2' is missing" in missing.message


def test_lits_and_kits_layouts(tmp_path):
    _touch(tmp_path / "lits", "volume-0.nii", "segmentation-0.nii", "volume-1.nii", "volume-2.nii",
           "segmentation-3.nii")
    lits = _pair(tmp_path / "lits")
    assert lits.rule == "lits" and [c.case_id for c in lits.training] == ["case_0"]
    assert [c.case_id for c in lits.test] == ["case_1", "case_2"]
    assert [(e.reason, e.case_id) for e in lits.errors] == [(UnpairedReason.LABEL_WITHOUT_IMAGE, "case_3")]
    assert lits.label_names == {1: "liver", 2: "tumor"} and not lits.labels_declared  # names for what is found
    _touch(tmp_path / "kits", "case_00000/imaging.nii.gz", "case_00000/segmentation.nii.gz",
           "case_00001/imaging.nii.gz", "case_00001/segmentation.nii.gz", "case_00210/imaging.nii.gz")
    kits = _pair(tmp_path / "kits")
    assert kits.rule == "case-folders" and kits.channel_names == ("imaging",)
    assert [c.case_id for c in kits.training] == ["case_00000", "case_00001"]
    assert [c.case_id for c in kits.test] == ["case_00210"]


def test_pairs_table_lists_any_dataset(tmp_path):
    _touch(tmp_path / "src", "scans/p1.nii.gz", "scans/p1_pet.nii.gz", "masks/p1_gtv.nii.gz", "scans/p2.nii.gz",
           "scans/p2_pet.nii.gz", "notes/other.nii.gz")
    table = tmp_path / "pairs.csv"
    table.write_text("case,channel,path\np1,CT,scans/p1.nii.gz\np1,PET,scans/p1_pet.nii.gz\n"
                     "p1,label,masks/p1_gtv.nii.gz\np2,CT,scans/p2.nii.gz\np2,PET,scans/p2_pet.nii.gz\n"
                     "p3,CT,scans/missing.nii.gz\n")
    pairing = _pair(tmp_path / "src", pairs=table)
    assert pairing.rule == "pairs" and pairing.channel_names == ("CT", "PET")
    assert [c.case_id for c in pairing.training] == ["p1"] and [c.case_id for c in pairing.test] == ["p2"]
    assert pairing.training[0].label.source.id == "masks/p1_gtv"
    reasons = {(item.reason, item.name) for item in pairing.unpaired}
    assert (UnpairedReason.NOT_FOUND, "p3") in reasons
    assert (UnpairedReason.NOT_A_CHANNEL, "notes/other") in reasons
    table.write_text("case,path\np1,x\n")
    with pytest.raises(UsageError, match="no column channel"):
        _pair(tmp_path / "src", pairs=table)


def _dicom_like(unit: str, patient: str, series: int, **info) -> Source:
    return Source(unit, "fake", (f"/data/{unit}/1.dcm",), "/data",
                  {"patient_id": patient, "series_number": series, "modality": "CT", **info})


def test_annotation_units_pair_with_the_image_they_reference_and_map_labels_by_name():
    ct1, ct2 = _dicom_like("ct1", "P1", 3), _dicom_like("ct2", "P2", 3)
    ct2b, scout = _dicom_like("ct2b", "P2", 4), _dicom_like("scout", "P2", 1, excluded="localizer")
    rt1 = Source("rt1", "fake", ("/data/rt1.dcm",), "/data",
                 {"annotates": "ct1", "labels": [{"value": 1, "name": "GTV"}, {"value": 2, "name": "Lung"}]})
    rt2 = Source("rt2", "fake", ("/data/rt2.dcm",), "/data",
                 {"annotates": "ct2", "labels": [{"value": 1, "name": "Lung"}, {"value": 2, "name": "GTV"}]})
    orphan = Source("rt9", "fake", ("/data/rt9.dcm",), "/data", {"annotates": "ct-absent"})
    pairing = find_cases("/data", [ct1, ct2, ct2b, scout, rt1, rt2, orphan])
    assert pairing.rule == "annotations" and pairing.channel_names == ("CT",)
    assert [case.case_id for case in pairing.cases] == ["P1", "P2"]
    assert pairing.cases[1].channels[0].source.id == "ct2" and pairing.cases[1].label.source.id == "rt2"
    reasons = {item.name: item.reason for item in pairing.unpaired}
    assert reasons == {"ct2b": UnpairedReason.NO_ANNOTATION, "scout": UnpairedReason.NOT_AN_IMAGE,
                       "rt9": UnpairedReason.LABEL_WITHOUT_IMAGE}
    table, _ = label_table_for(pairing, ExportOptions(), ReadOptions(), None, 1)
    assert table.names_by_value() == {0: "background", 1: "GTV", 2: "Lung"}
    assert table.mapping(pairing.cases[0].label.names) == {0: 0, 1: 1, 2: 2}
    assert table.mapping(pairing.cases[1].label.names) == {0: 0, 1: 2, 2: 1}  # rt2 numbers them the other way


def test_two_annotated_series_of_one_patient_get_series_numbers():
    images = [_dicom_like("a", "P1", 3), _dicom_like("b", "P1", 5)]
    notes = [Source(f"rt-{s.id}", "fake", (f"/data/rt-{s.id}.dcm",), "/data", {"annotates": s.id}) for s in images]
    pairing = find_cases("/data", images + notes)
    assert [case.case_id for case in pairing.cases] == ["P1_3", "P1_5"]


def test_annotation_units_export_end_to_end_with_labels_matched_by_name(tmp_path, monkeypatch):
    """Two structure sets numbering GTV and Lung differently become one table; each mask lands on its image."""
    import nibabel as nib

    from export_synth import affine_for
    from medconv.batch import RunOptions
    from medconv.export import export_dataset
    from medconv.registry import PluginSpec, readers
    from nnunet_reference import nnunet_problems

    monkeypatch.setattr(readers, "_builtins", readers._builtins + (
        PluginSpec("fakeannot", "export_annotation_reader:FakeAnnotationReader"),))
    readers.refresh()
    src = tmp_path / "TCIA"
    numbering = {"P1": {1: "GTV", 2: "Lung"}, "P2": {1: "Lung", 2: "GTV"}}
    masks = {}
    for number, (patient, table) in enumerate(numbering.items()):
        affine = affine_for(number)
        save_nifti(np.full((6, 5, 4), -500, np.int16), affine, src / patient / "ct.nii.gz")
        mask = np.zeros((6, 5, 4), np.uint8)
        mask[1:3, 1:3, 1] = [k for k, v in table.items() if v == "GTV"][0]
        mask[4, :, 2] = [k for k, v in table.items() if v == "Lung"][0]
        np.save(src / patient / "rt.npy", mask)
        masks[patient] = mask
        (src / patient / "rt.annotation.json").write_text(json.dumps({
            "annotates": f"{patient}/ct", "image_file": f"{patient}/ct.nii.gz", "mask": "rt.npy",
            "labels": [{"value": k, "name": v} for k, v in table.items()]}))
    try:
        result = export_dataset(src, tmp_path / "raw", ExportOptions(format="nnunet", dataset_id=700, name="RT"),
                                run_options=RunOptions(jobs=1, progress=False, summary=False))
    finally:
        readers.refresh()
    assert result.pairing.rule == "annotations" and result.exit_code == 0
    folder = Path(result.dataset_dir)
    assert nnunet_problems(str(folder)) == []
    assert json.loads((folder / "dataset.json").read_text())["labels"] == {"background": 0, "GTV": 1, "Lung": 2}
    for patient, table in numbering.items():  # NIfTI images carry no patient id: the case is the image unit's id
        ours = np.asanyarray(nib.load(str(folder / "labelsTr" / f"{patient}_ct.nii.gz")).dataobj)
        by_name = {"GTV": 1, "Lung": 2}
        expected = np.vectorize(lambda v: by_name[table[v]] if v else 0)(masks[patient])
        np.testing.assert_array_equal(ours, expected)
        np.testing.assert_array_equal(nib.load(str(folder / "labelsTr" / f"{patient}_ct.nii.gz")).affine,
                                      nib.load(str(src / patient / "ct.nii.gz")).affine)
