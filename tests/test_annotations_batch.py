"""Annotation units in a whole-dataset run: pairing in discovery, masks beside their images, bad input, resume.

The trees are written by :mod:`annotation_trees` (pydicom, highdicom, XML tag by tag); every
expected mask is computed here from the shapes that were written (an analytic ball, pixel
boxes), at the world position of each written voxel (nibabel's affine), never from medconv.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from annotation_synth import dice
from annotation_trees import BOX, BOX_Z, SPHERE_CENTRE, SPHERE_RADIUS, annotated_tree, box_mask, tree_state
from medconv.cli.main import main


def medconv(*args) -> int:
    return main([str(a) for a in args])


def manifest(dest: Path) -> dict[str, dict]:
    return {row["unit_id"]: row for row in map(json.loads, (dest / "medconv-manifest.jsonl").read_text().splitlines())}


def lps_of_voxels(image) -> np.ndarray:
    """The LPS position of every voxel centre of a NIfTI image, ``(i, j, k, 3)``."""
    index = np.stack(np.meshgrid(*(np.arange(n) for n in image.shape[:3]), indexing="ij"), axis=-1)
    ras = index @ image.affine[:3, :3].T + image.affine[:3, 3]
    return ras * np.array([-1.0, -1.0, 1.0])


def expected_rtstruct(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The analytic Ball and Box at LPS ``points`` (the box's edges lie between voxel centres)."""
    ball = np.linalg.norm(points - np.asarray(SPHERE_CENTRE), axis=-1) <= SPHERE_RADIUS
    (x0, x1), (y0, y1) = BOX
    box = ((points[..., 0] > x0) & (points[..., 0] < x1) & (points[..., 1] > y0) & (points[..., 1] < y1)
           & (points[..., 2] >= BOX_Z[0] - 1e-6) & (points[..., 2] <= BOX_Z[1] + 1e-6))
    return ball, box


def data(path: Path) -> np.ndarray:
    return np.asarray(nib.load(str(path)).dataobj)


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    """The tree without bad objects, converted once: (tree, DST, exit code, manifest)."""
    root = tmp_path_factory.mktemp("good")
    tree = annotated_tree(root / "src", bad=False)
    code = medconv("tcia2nii", root / "src", root / "out", "-q", "-j", "1")
    return tree, root / "out", code, manifest(root / "out")


def _image_row(rows, patient):
    return next(r for r in rows.values() if r["reader"] == "dicom" and r["unit_id"].startswith(patient))


def test_masks_land_beside_their_images_on_the_image_grid(good_run):
    tree, out, code, rows = good_run
    assert code == 0
    chest, lung = _image_row(rows, "P1"), _image_row(rows, "P2")
    annotations = {r["unit_id"]: r for r in rows.values() if r["reader"] == "annotation"}
    assert len(annotations) == 3 and {r["status"] for r in annotations.values()} == {"converted"}
    assert sorted(r["annotates"] for r in annotations.values()) == sorted([chest["unit_id"]] * 2 + [lung["unit_id"]])
    chest_stem = chest["output"][: -len(".nii.gz")]
    chest_image = nib.load(str(out / chest["output"]))
    # RTSTRUCT: one label map, Ball = 1, Box = 2, against the analytic shapes at every written voxel
    rt = nib.load(str(out / f"{chest_stem}_rtstruct-Phantom.nii.gz"))
    np.testing.assert_array_equal(rt.affine, chest_image.affine)
    assert rt.shape == chest_image.shape and rt.get_data_dtype() == np.uint8
    ball, box = expected_rtstruct(lps_of_voxels(rt))
    values = np.asarray(rt.dataobj)
    assert dice(values == 1, ball) >= 0.98 and np.array_equal(values == 2, box)
    table = json.loads((out / f"{chest_stem}_rtstruct-Phantom.json").read_text())["meta"]
    assert [(e["value"], e["name"], e["color"]) for e in table["labels"]] == [(1, "Ball", [255, 0, 0]),
                                                                              (2, "Box", [0, 255, 0])]
    assert table["annotates"] == chest["unit_id"] and table["source_files"] == [str(tree.rtstruct)]
    # SEG: exactly the array highdicom encoded, on the image's grid
    seg = nib.load(str(out / f"{chest_stem}_seg-AI_segmentation.nii.gz"))
    np.testing.assert_array_equal(seg.affine, chest_image.affine)
    np.testing.assert_array_equal(np.asarray(seg.dataobj) == 1, tree.seg_mask)
    seg_table = json.loads((out / f"{chest_stem}_seg-AI_segmentation.json").read_text())["meta"]["labels"]
    assert seg_table[0]["name"] == "Tumour" and seg_table[0]["codes"][1]["meaning"] == "Mass"


def test_lidc_readers_consensus_and_characteristics(good_run):
    tree, out, code, rows = good_run
    lung = _image_row(rows, "P2")
    stem = lung["output"][: -len(".nii.gz")]
    image = nib.load(str(out / lung["output"]))
    first = [n for n in tree.lidc_nodules if n.nodule_id == "Nodule 001"]  # readers 1-3 marked the same nodule
    second = [n for n in tree.lidc_nodules if n.nodule_id == "Nodule 002"]  # reader 1 only, higher up
    for session in (1, 2, 3, 4):
        reader = nib.load(str(out / f"{stem}_lidc-reader{session}.nii.gz"))
        np.testing.assert_array_equal(reader.affine, image.affine)
        expected = box_mask(tree.lung, [n for n in first if n.session == session]).astype(np.uint8)
        expected[box_mask(tree.lung, [n for n in second if n.session == session])] = 2
        np.testing.assert_array_equal(np.asarray(reader.dataobj), expected)
    votes = sum(box_mask(tree.lung, [n]).astype(int) for n in first)
    consensus = np.where(votes >= 2, 1, 0)  # >= half of the 3 readers of nodule 1
    consensus[box_mask(tree.lung, second)] = 2  # nodule 2: its one reader is all of them
    np.testing.assert_array_equal(data(out / f"{stem}_lidc-consensus50.nii.gz"), consensus)
    with open(out / f"{stem}_lidc-characteristics.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    marks = [(row["session"], row["mark_id"], row["kind"], row["nodule"]) for row in table]
    assert sorted(marks) == [("1", "Nodule 001", "nodule", "1"), ("1", "Nodule 002", "nodule", "2"),
                             ("2", "Nodule 001", "nodule", "1"), ("3", "Nodule 001", "nodule", "1"),
                             ("4", "_Non-nodule 001", "non-nodule", "")]
    assert table[0]["malignancy"] == "3" and table[0]["subtlety"] == "3"
    record = json.loads((out / f"{stem}_lidc.json").read_text())["meta"]
    assert set(record["outputs"]) == {f"{Path(stem).name}_lidc-{name}" for name in (
        "consensus50.nii.gz", "consensus50.json", "reader1.nii.gz", "reader1.json", "reader2.nii.gz", "reader2.json",
        "reader3.nii.gz", "reader3.json", "reader4.nii.gz", "reader4.json", "characteristics.csv")}


def test_bad_annotations_fail_alone_and_nothing_is_written_outside_dst(tmp_path, capsys):
    tree = annotated_tree(tmp_path / "src")
    before, around = tree_state(tmp_path / "src"), sorted(p.name for p in tmp_path.iterdir())
    assert medconv("tcia2nii", tmp_path / "src", tmp_path / "out", "-j", "2") == 1
    err = capsys.readouterr().err
    rows = manifest(tmp_path / "out")
    assert tree_state(tmp_path / "src") == before and sorted(p.name for p in tmp_path.iterdir()) == sorted(around + ["out"])
    by_file = {r["source"]: r for r in rows.values() if r["reader"] == "annotation"}
    expected = {"missing-series": "2.25.404", "truncated": "RTSTRUCT", "nan": "NaN", "absurd": "absurd",
                "not-lidc": "not a LIDC-IDRI reading", "truncated-xml": "not well-formed"}
    for name, says in expected.items():
        row = by_file[str(tree.bad[name])]
        assert row["status"] == "failed" and row["output"] == "", name
        assert str(tree.bad[name]) in row["reason"] and says in row["reason"] and "\n" not in row["reason"], name
        assert row["unit_id"] in err or "more (see the manifest)" in err
    idri = by_file[str(tree.set_aside["idri"])]
    assert idri["status"] == "excluded" and "IdriReadMessage" in idri["reason"]
    # the images and the good annotations still convert; a failed unit leaves no file
    assert {r["status"] for r in rows.values() if r["reader"] == "dicom"} == {"converted"}
    others = {str(p) for p in list(tree.bad.values()) + list(tree.set_aside.values())}
    good = [r for r in rows.values() if r["reader"] == "annotation" and r["source"] not in others]
    assert len(good) == 3 and {r["status"] for r in good} == {"converted"}
    written = {p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    listed = {name for r in rows.values() for name in (r["output"] if isinstance(r["output"], list) else [r["output"]])}
    sidecars = {name[: -len(".nii.gz")] + ".json" for name in listed if name.endswith(".nii.gz")}
    assert written - listed - sidecars == {"medconv-manifest.csv", "medconv-manifest.jsonl", "medconv-summary.json"}


def test_an_annotation_whose_image_unit_fails_fails_too_and_leaves_nothing(tmp_path):
    """Its grid comes from the image's headers, which read well; the image's pixels do not (a cut slice)."""
    from dicom_synth import truncate

    tree = annotated_tree(tmp_path / "src", bad=False)
    cut = sorted(tree.chest.folder.glob("*.dcm"))[5]
    truncate(cut, keep=cut.stat().st_size - 200)
    out = tmp_path / "out"
    assert medconv("tcia2nii", tmp_path / "src", out, "-q", "-j", "2", "--preview") == 1
    rows = manifest(out)
    chest = _image_row(rows, "P1")
    assert chest["status"] == "failed" and "truncated" in chest["reason"]
    on_chest = [r for r in rows.values() if r["annotates"] == chest["unit_id"]]
    assert len(on_chest) == 2
    for row in on_chest:
        assert row["status"] == "failed" and row["output"] == "" and row["error_type"] == "annotation-reference"
        assert row["reason"].startswith(row["source"]) and chest["unit_id"] in row["reason"] and "truncated" in row["reason"]
    assert not list(out.rglob("P1/*")) and not list(out.rglob("*P1*/*"))  # no mask, record or preview of them
    assert list((out / "_preview").rglob("*lidc*.png"))  # the lung's annotation keeps its picture
    lung = [r for r in rows.values() if r["unit_id"].startswith("P2")]
    assert {r["status"] for r in lung} == {"converted"} and len(lung) == 2


def _masks_of(out: Path, rows: dict, image_row: dict) -> dict[str, list[Path]]:
    """The files each annotation unit on ``image_row`` lists in its row, by unit id."""
    return {r["unit_id"]: [out / name for name in r["output"]] for r in rows.values()
            if r["annotates"] == image_row["unit_id"]}


def test_a_rerun_withdraws_masks_it_skips_when_their_image_is_gone_and_fails_again(tmp_path):
    """Masks from an earlier run whose image output is gone and whose image unit fails in the rerun lie beside
    no image: they are withdrawn and their rows say why, not recorded as skipped."""
    from dicom_synth import truncate

    tree = annotated_tree(tmp_path / "src", bad=False)
    out = tmp_path / "out"
    assert medconv("tcia2nii", tmp_path / "src", out, "-q", "-j", "1") == 0
    first = manifest(out)
    chest = _image_row(first, "P1")
    masks = _masks_of(out, first, chest)
    assert len(masks) == 2 and all(path.is_file() for paths in masks.values() for path in paths)
    (out / chest["output"]).unlink()  # the image output is gone (deleted, or a run killed before it was renamed)
    cut = sorted(tree.chest.folder.glob("*.dcm"))[5]
    truncate(cut, keep=cut.stat().st_size - 200)  # and the image unit now fails
    assert medconv("tcia2nii", tmp_path / "src", out, "-q", "-j", "1") == 1
    rows = manifest(out)
    assert rows[chest["unit_id"]]["status"] == "failed" and "truncated" in rows[chest["unit_id"]]["reason"]
    for unit_id, paths in masks.items():
        row = rows[unit_id]
        assert row["status"] == "failed" and row["error_type"] == "annotation-reference", row
        assert chest["unit_id"] in row["reason"] and "truncated" in row["reason"] and "earlier run" in row["reason"]
        assert not any(path.exists() for path in paths)
    assert {r["status"] for r in rows.values() if r["unit_id"].startswith("P2")} == {"skipped"}


def test_an_overwrite_rerun_whose_image_fails_keeps_masks_beside_the_image_it_keeps(tmp_path):
    """The image's earlier output (same files, same options) stays when its --overwrite rerun fails; the masks
    drawn for the rerun lie on its grid, so they stay too (nibabel: same affine and shape)."""
    from dicom_synth import truncate

    tree = annotated_tree(tmp_path / "src", bad=False)
    out = tmp_path / "out"
    assert medconv("tcia2nii", tmp_path / "src", out, "-q", "-j", "1") == 0
    chest = _image_row(manifest(out), "P1")
    cut = sorted(tree.chest.folder.glob("*.dcm"))[5]
    truncate(cut, keep=cut.stat().st_size - 200)
    assert medconv("tcia2nii", tmp_path / "src", out, "-q", "-j", "1", "--overwrite") == 1
    rows = manifest(out)
    assert rows[chest["unit_id"]]["status"] == "failed"
    image = nib.load(str(out / chest["output"]))  # kept from the first run
    masks = _masks_of(out, rows, chest)
    assert len(masks) == 2
    for unit_id, paths in masks.items():
        assert rows[unit_id]["status"] == "converted", rows[unit_id]
        for path in (p for p in paths if p.name.endswith(".nii.gz")):
            mask = nib.load(str(path))
            np.testing.assert_array_equal(mask.affine, image.affine)
            assert mask.shape[:3] == image.shape[:3]


def test_masks_follow_the_image_through_reorientation_and_resampling(tmp_path):
    tree = annotated_tree(tmp_path / "src", bad=False)
    assert medconv("tcia2nii", tmp_path / "src", tmp_path / "out", "-q", "-j", "1", "--orient", "RAS",
                   "--spacing", "1", "--window", "lung") == 0
    rows = manifest(tmp_path / "out")
    for row in (r for r in rows.values() if r["reader"] == "annotation"):
        image_row = rows[row["annotates"]]
        image = nib.load(str(tmp_path / "out" / image_row["output"]))
        assert nib.aff2axcodes(image.affine) == ("R", "A", "S")
        for name in (n for n in row["output"] if n.endswith(".nii.gz")):
            mask = nib.load(str(tmp_path / "out" / name))
            np.testing.assert_array_equal(mask.affine, image.affine)
            assert mask.shape == image.shape and mask.get_data_dtype().kind == "u", name
            history = json.loads((tmp_path / "out" / name.replace(".nii.gz", ".json")).read_text())["history"]
            assert history[-1] == "window: skipped (label)" and "nearest" in history[1], name  # never windowed
    chest = rows[next(r["annotates"] for r in rows.values() if r["unit_id"].endswith("_rtstruct-Phantom"))]
    mask = nib.load(str(tmp_path / "out" / chest["output"].replace(".nii.gz", "_rtstruct-Phantom.nii.gz")))
    ball, box = expected_rtstruct(lps_of_voxels(mask))
    values = np.asarray(mask.dataobj)
    assert dice(values == 1, ball) >= 0.9 and dice(values == 2, box) >= 0.85  # nearest neighbour onto 1 mm


def test_layouts_resume_and_redo(tmp_path):
    tree = annotated_tree(tmp_path / "src", bad=False)
    out = tmp_path / "out"
    assert medconv("tcia2nii", tmp_path / "src", out, "-q", "-j", "1", "--masks", "split") == 0
    rows = manifest(out)
    rt = next(r for r in rows.values() if r["unit_id"].endswith("_rtstruct-Phantom"))
    stem = rows[rt["annotates"]]["output"][: -len(".nii.gz")]
    ball, box = out / f"{stem}_rtstruct-Phantom_1-Ball.nii.gz", out / f"{stem}_rtstruct-Phantom_2-Box.nii.gz"
    assert set(np.unique(data(ball))) == {0, 1} and set(np.unique(data(box))) == {0, 1}
    assert json.loads(ball.with_suffix("").with_suffix(".json").read_text())["meta"]["labels"][0]["name"] == "Ball"
    assert not (out / f"{stem}_rtstruct-Phantom.nii.gz").exists()
    # a rerun resumes every unit
    assert medconv("tcia2nii", tmp_path / "src", out, "-q", "-j", "1", "--masks", "split") == 0
    assert {r["status"] for r in manifest(out).values()} == {"skipped"}
    # other annotation options: the images are still done, the masks were made otherwise (no silent reuse)
    assert medconv("tcia2nii", tmp_path / "src", out, "-q", "-j", "1", "--masks", "stack") == 1
    rows = manifest(out)
    assert {r["status"] for r in rows.values() if r["reader"] == "dicom"} == {"skipped"}
    assert {r["error_type"] for r in rows.values() if r["reader"] == "annotation"} == {"output-exists"}
    assert medconv("tcia2nii", tmp_path / "src", out, "-q", "-j", "1", "--masks", "stack", "--overwrite") == 0
    stack = nib.load(str(out / f"{stem}_rtstruct-Phantom_stack.nii.gz"))
    assert stack.shape[3] == 2 and not ball.exists() and not box.exists()  # the split files of the earlier layout
    # an interrupted unit (its record missing) is redone; the others are skipped
    (out / f"{stem}_rtstruct-Phantom.json").unlink()
    assert medconv("tcia2nii", tmp_path / "src", out, "-q", "-j", "1", "--masks", "stack") == 0
    statuses = {r["unit_id"]: r["status"] for r in manifest(out).values()}
    assert statuses.pop(rt["unit_id"]) == "converted" and set(statuses.values()) == {"skipped"}


def test_split_then_map_names_the_existing_record_and_overwrite_leaves_only_the_map(tmp_path):
    annotated_tree(tmp_path / "src", bad=False)
    out = tmp_path / "out"
    assert medconv("tcia2nii", tmp_path / "src", out, "-q", "-j", "1", "--masks", "split") == 0
    split = sorted(p.name for p in out.rglob("*_rtstruct-Phantom*"))
    assert len(split) == 5  # two masks, their sidecars, the record
    assert medconv("tcia2nii", tmp_path / "src", out, "-q", "-j", "1", "--masks", "map") == 1
    rt = next(r for r in manifest(out).values() if r["unit_id"].endswith("_rtstruct-Phantom"))
    named = rt["reason"].split(": ", 1)[0]
    assert rt["error_type"] == "output-exists" and "--overwrite" in rt["reason"] and Path(named).is_file()
    assert sorted(p.name for p in out.rglob("*_rtstruct-Phantom*")) == split  # nothing removed without --overwrite
    assert medconv("tcia2nii", tmp_path / "src", out, "-q", "-j", "1", "--masks", "map", "--overwrite") == 0
    rt = next(r for r in manifest(out).values() if r["unit_id"].endswith("_rtstruct-Phantom"))
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*_rtstruct-Phantom*")}
    assert on_disk == set(rt["output"]) and len(on_disk) == 2  # the map and its record: no stale split mask


def test_no_annotations_excludes_them(tmp_path):
    annotated_tree(tmp_path / "src")
    assert medconv("tcia2nii", tmp_path / "src", tmp_path / "out", "-q", "-j", "1", "--no-annotations") == 0
    rows = manifest(tmp_path / "out")
    annotations = [r for r in rows.values() if r["reader"] == "annotation"]
    assert len(annotations) == 10 and {r["status"] for r in annotations} == {"excluded"}
    assert all("--no-annotations" in r["reason"] for r in annotations)
    assert not list((tmp_path / "out").rglob("*_rtstruct-*")) and not list((tmp_path / "out").rglob("*_lidc*"))


def test_scan_and_dry_run_show_the_pairing(tmp_path, capsys):
    tree = annotated_tree(tmp_path / "src")
    assert medconv("scan", tmp_path / "src", "--json") == 0
    records = {r["source"]: r for r in json.loads(capsys.readouterr().out)}
    chest = next(r["unit"] for r in records.values() if r["info"].get("series_description") == "chest")
    rt = records[str(tree.rtstruct)]
    assert rt["note"].startswith(f"annotates {chest} (series-uid") and "2 ROI(s)" in rt["note"]
    assert rt["info"]["roi_names"] == ["Ball", "Box"] and rt["info"]["referenced_series"] == [tree.chest.series_uid]
    assert records[str(tree.seg)]["note"].endswith("(series-uid, 1 segment(s), 6 frame(s))")  # mask on slices 3-8
    missing = records[str(tree.bad["missing-series"])]
    assert missing["note"].startswith("will fail: ") and "2.25.404" in missing["note"]
    assert medconv("tcia2nii", tmp_path / "src", tmp_path / "out", "--dry-run") == 0
    shown = capsys.readouterr().out
    assert f"annotates {chest}" in " ".join(shown.split()) and "will fail" in shown
    assert not (tmp_path / "out").exists()


def test_dry_run_on_an_80_column_terminal_gives_each_unit_its_own_lines(tmp_path, monkeypatch, capsys):
    import rich.console

    annotated_tree(tmp_path / "src", bad=False)
    monkeypatch.setattr(rich.console.Console, "is_terminal", property(lambda self: True))
    monkeypatch.setenv("COLUMNS", "80")
    assert medconv("tcia2nii", tmp_path / "src", tmp_path / "out", "--dry-run") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and max(map(len, lines)) <= 80 and not any("\u2502" in line for line in lines)  # no folded table
    rows = {line for line in lines if not line.startswith(" ")}
    rt = next(line for line in rows if line.endswith("_rtstruct-Phantom"))
    status = lines[lines.index(rt) + 2:lines.index(rt) + 4]
    assert " ".join(" ".join(status).split()).startswith("annotation, 1 file(s); to do; annotates P1_")
    assert not (tmp_path / "out").exists()


def test_an_annotation_matching_two_units_of_one_series_fails_alone(tmp_path):
    from annotation_synth import Contour, Roi, circle, write_rtstruct
    from dicom_synth import axial, write_series

    iop, positions = axial(4, 2.0)
    first = write_series(tmp_path / "src" / "a", positions, iop, series_uid="2.25.555", series_number=2, seed=1)
    write_series(tmp_path / "src" / "b", positions + (0, 0, 50), iop, series_uid="2.25.555", series_number=3, seed=2)
    roi = Roi(1, "Spot", [Contour(circle((-38.0, -28.0, 12.0), 1.5, (1, 0, 0), (0, 1, 0)))])
    rt = write_rtstruct(tmp_path / "src" / "rt" / "rs.dcm", None, [roi], referenced_series_uid=first.series_uid)
    assert medconv("tcia2nii", tmp_path / "src", tmp_path / "out", "-q", "-j", "1") == 1
    rows = manifest(tmp_path / "out")
    (row,) = [r for r in rows.values() if r["reader"] == "annotation"]
    assert row["status"] == "failed" and str(rt) in row["reason"] and "matches 2 image units" in row["reason"]
    assert [r["status"] for r in rows.values() if r["reader"] == "dicom"] == ["converted", "converted"]


def test_info_describes_annotation_objects(tmp_path, capsys):
    tree = annotated_tree(tmp_path / "src", bad=False)
    assert medconv("info", tree.rtstruct) == 0
    text = capsys.readouterr().out
    assert "Ball: " in text and "Box: " in text and tree.chest.series_uid in text and "annotates" in text
    assert medconv("info", tree.lidc, "--json") == 0
    described = json.loads(capsys.readouterr().out)
    assert described["kind"] == "lidc-xml" and [s["nodules"] for s in described["sessions"]] == [2, 1, 1, 0]
    assert described["annotates"].startswith("P2_") and described["pairing"] == "series-uid"
    assert medconv("info", tree.seg, "--json") == 0
    described = json.loads(capsys.readouterr().out)
    assert described["segments"] == [{"number": 1, "name": "Tumour", "frames": 6}]


def test_read_annotations_returns_label_volumes_with_their_table(tmp_path):
    import medconv as api

    tree = annotated_tree(tmp_path / "src", bad=False)
    result = api.read_annotations(tree.rtstruct)  # its image found beside it and paired
    (output,) = result.outputs
    ball, box = expected_rtstruct(lps_of_voxels(nib.Nifti1Image(output.volume.array, output.volume.affine_ras)))
    assert dice(output.volume.array == 1, ball) >= 0.98 and np.array_equal(output.volume.array == 2, box)
    assert [entry["name"] for entry in output.volume.meta["labels"]] == ["Ball", "Box"]
    split = api.read_annotations(tree.lidc, tree.lung.folder, api.AnnotationOptions(masks="split", consensus=1.0))
    assert split.outputs[0].suffix == "_lidc-consensus100_1-nodule-01" and split.rows


def test_an_interrupted_annotation_unit_leaves_no_temporary_behind(tmp_path):
    from medconv.atomic import temporary_name

    annotated_tree(tmp_path / "src", bad=False)
    out = tmp_path / "out"
    assert medconv("tcia2nii", tmp_path / "src", out, "-q", "-j", "1") == 0
    rows = manifest(out)
    lidc = next(r for r in rows.values() if r["unit_id"].endswith("_lidc"))
    reader = out / next(n for n in lidc["output"] if n.endswith("reader2.nii.gz"))
    stray = Path(temporary_name(str(reader)))  # what a killed run leaves while writing one of its masks
    stray.write_bytes(b"partial")
    unrelated = reader.parent / "notes.medconv-tmp-other.txt"
    unrelated.write_bytes(b"keep")
    assert medconv("tcia2nii", tmp_path / "src", out, "-q", "-j", "1") == 0
    assert not stray.exists() and unrelated.exists()


def test_fractional_seg_threshold_and_keep_from_the_command_line(tmp_path, capsys):
    from annotation_trees import write_binary_seg
    from dicom_synth import axial, write_series

    iop, positions = axial(5, 2.0)
    series = write_series(tmp_path / "src" / "ct", positions, iop, rows=14, columns=12, series_number=2, seed=3)
    fractions = np.random.default_rng(8).random((12, 14, 5)).astype(np.float32)
    write_binary_seg(tmp_path / "src" / "seg" / "prob.dcm", series, fractions, label="Probability",
                     description="AI probability")
    stored = np.rint(fractions * 255) / 255  # what the file holds
    assert medconv("tcia2nii", tmp_path / "src", tmp_path / "t", "-q", "-j", "1", "--fractional", "0.7") == 0
    (mask,) = (tmp_path / "t").rglob("*_seg-AI_probability.nii.gz")
    np.testing.assert_array_equal(data(mask) == 1, stored >= 0.7)
    assert medconv("tcia2nii", tmp_path / "src", tmp_path / "k", "-q", "-j", "1", "--fractional", "keep",
                   "--masks", "split") == 0
    (kept,) = (tmp_path / "k").rglob("*_seg-AI_probability_1-Probability.nii.gz")
    assert nib.load(str(kept)).get_data_dtype() == np.float32
    np.testing.assert_allclose(data(kept), stored, atol=1e-6)
    capsys.readouterr()
    assert medconv("tcia2nii", tmp_path / "src", tmp_path / "m", "--fractional", "keep") == 2  # one map cannot
    assert "--fractional keep needs --masks split or --masks stack" in capsys.readouterr().err
