"""The dataset commands as a user runs them: convert, tcia2nii, mhd2nii, scan, --dry-run, --preview, exit codes."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from batch_trees import unit_array, write_nifti_tree
from medconv.cli.main import main
from medconv.layout import DICOM_TEMPLATE


def medconv(*args) -> int:
    return main([str(a) for a in args])


def manifest(dest: Path) -> dict[str, dict]:
    lines = (dest / "medconv-manifest.jsonl").read_text().splitlines()
    return {row["unit_id"]: row for row in map(json.loads, lines)}


def test_convert_a_tree_reports_failures_with_exit_code_1(tmp_path, capsys):
    write_nifti_tree(tmp_path / "src", n_good=4)
    assert medconv("convert", tmp_path / "src", tmp_path / "out", "-j", "2") == 1
    err = capsys.readouterr().err
    assert re.search(r"converted\s+4\b", err) and re.search(r"failed\s+2\b", err)
    assert "broken/garbage" in err and "medconv-manifest.csv" in err
    rows = manifest(tmp_path / "out")
    assert [r["status"] for r in rows.values()].count("converted") == 4


def test_convert_clean_tree_exits_0_and_rerun_skips(tmp_path):
    write_nifti_tree(tmp_path / "src", n_good=3, bad=False)
    assert medconv("convert", tmp_path / "src", tmp_path / "out", "--quiet") == 0
    assert medconv("convert", tmp_path / "src", tmp_path / "out", "--quiet") == 0
    assert {r["status"] for r in manifest(tmp_path / "out").values()} == {"skipped"}


def test_convert_one_file_to_one_file(tmp_path):
    write_nifti_tree(tmp_path / "src", n_good=1, bad=False)
    source = tmp_path / "src" / "group0" / "case000.nii.gz"
    assert medconv("convert", source, tmp_path / "one.nii", "--no-sidecar") == 0
    np.testing.assert_array_equal(np.asarray(nib.load(str(tmp_path / "one.nii")).dataobj), unit_array(0))
    assert not (tmp_path / "one.json").exists()
    assert medconv("convert", source, tmp_path / "one.nii") == 1  # exists: one line, exit 1


def test_convert_applies_the_preprocessing_options(tmp_path):
    write_nifti_tree(tmp_path / "src", n_good=2, bad=False)
    assert medconv("convert", tmp_path / "src", tmp_path / "out", "--orient", "LPS", "--dtype", "float32", "-q") == 0
    image = nib.load(str(tmp_path / "out" / "group0" / "case000.nii.gz"))
    assert nib.aff2axcodes(image.affine) == ("L", "P", "S") and image.get_data_dtype() == np.float32
    assert manifest(tmp_path / "out")["group0/case000"]["history"]


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, capsys):
    write_nifti_tree(tmp_path / "src", n_good=2)
    assert medconv("convert", tmp_path / "src", tmp_path / "out", "--dry-run", "--name", "{stem}") == 0
    out = capsys.readouterr().out
    assert "case000.nii.gz" in out and "garbage.nii.gz" in out and "4 unit(s)" in out
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, code", [
    pytest.param(["--name", "fixed"], 2, id="template-without-field"),
    pytest.param(["--jobs", "-1"], 2, id="negative-jobs"),
    pytest.param(["--backend", "dask"], 2, id="dask-without-scheduler"),
])
def test_usage_errors_exit_2(tmp_path, args, code, monkeypatch):
    monkeypatch.delenv("MEDCONV_SCHEDULER", raising=False)
    write_nifti_tree(tmp_path / "src", n_good=1, bad=False)
    assert medconv("convert", tmp_path / "src", tmp_path / "out", *args) == code


def test_nothing_found_exits_3(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert medconv("convert", tmp_path / "empty", tmp_path / "out") == 3
    assert medconv("scan", tmp_path / "empty") == 3
    assert "Traceback" not in capsys.readouterr().err


def test_tcia2nii_names_series_and_excludes_non_images(tmp_path):
    dicom_synth = pytest.importorskip("dicom_synth")
    src = tmp_path / "tcia"
    iop, positions = dicom_synth.axial(6)
    first = dicom_synth.write_series(src / "P1" / "s2", positions, iop, series_number=2, description="Lung 1.0/B31f")
    dicom_synth.write_series(src / "P1" / "s3", positions, iop, series_number=3, seed=1)
    dicom_synth.write_rtstruct(src / "P1" / "rt" / "rt.dcm", first)
    dicom_synth.write_junk(src / "junk")
    assert medconv("tcia2nii", src, tmp_path / "out", "-q", "--no-annotations") == 0  # the RTSTRUCT: excluded
    rows = manifest(tmp_path / "out")
    converted = sorted(r["output"] for r in rows.values() if r["status"] == "converted")
    assert converted == ["SYNTH-001/20000101_2_CT_Lung_1.0_B31f.nii.gz", "SYNTH-001/20000101_3_CT_synthetic.nii.gz"]
    assert DICOM_TEMPLATE.startswith("{patient_id}/")
    assert [r["status"] for r in rows.values()].count("excluded") == 1
    # voxel values against the analytic phantom at each voxel's world position (LPS)
    image = nib.load(str(tmp_path / "out" / converted[0]))
    data = np.asarray(image.dataobj)
    ijk = np.stack(np.meshgrid(*(np.arange(n) for n in data.shape), indexing="ij"), axis=-1).reshape(-1, 3)
    ras = ijk @ image.affine[:3, :3].T + image.affine[:3, 3]
    lps = ras * np.array([-1, -1, 1])
    np.testing.assert_allclose(data.reshape(-1), np.rint(dicom_synth.phantom(lps)), atol=1)


def test_mhd2nii_keeps_names_and_explains_broken_files(tmp_path):
    synth = pytest.importorskip("metaimage_synth")
    import SimpleITK as sitk

    written = synth.write_luna_tree(tmp_path / "luna", n_images=2)
    synth.write_problem_cases(tmp_path / "luna" / "problems")
    assert medconv("mhd2nii", tmp_path / "luna", tmp_path / "out", "-q", "-j", "2") == 1
    rows = manifest(tmp_path / "out")
    assert rows["problems/missing"]["status"] == "failed" and "missing.raw" in rows["problems/missing"]["reason"]
    assert rows["problems/truncated"]["status"] == "failed"
    for header in written["images"] + written["masks"]:
        relative = header.relative_to(tmp_path / "luna").with_suffix("").as_posix()
        assert rows[relative]["status"] == "converted"
        output = tmp_path / "out" / (relative + ".nii.gz")
        reference = sitk.ReadImage(str(header))  # SimpleITK reads the input, nibabel the output
        np.testing.assert_array_equal(np.asarray(nib.load(str(output)).dataobj).T, sitk.GetArrayFromImage(reference))
    masks = [r for r in rows.values() if r["unit_id"].startswith("seg-lungs")]
    assert {r["kind"] for r in masks} == {"label"}


def test_scan_lists_units_and_writes_csv(tmp_path, capsys):
    synth = pytest.importorskip("metaimage_synth")
    synth.write_luna_tree(tmp_path / "luna", n_images=2)
    assert medconv("scan", tmp_path / "luna", "--csv", tmp_path / "scan.csv") == 0
    out = capsys.readouterr().out
    assert "4 unit(s)" in out and "24x20x12" in out
    with open(tmp_path / "scan.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 and {r["reader"] for r in rows} == {"metaimage"}
    assert [r["flags"] for r in rows].count("label") == 2
    assert not any(p.suffix == ".gz" for p in tmp_path.rglob("*"))  # nothing converted


def test_preview_writes_pictures_and_a_contact_sheet_with_overlays(tmp_path):
    synth = pytest.importorskip("metaimage_synth")
    synth.write_luna_tree(tmp_path / "luna", n_images=2)
    assert medconv("mhd2nii", tmp_path / "luna", tmp_path / "out", "--preview", "-q") == 0
    preview = tmp_path / "out" / "_preview"
    pngs = sorted(p.relative_to(preview).as_posix() for p in preview.rglob("*.png"))
    assert len([p for p in pngs if p.endswith(".overlay.png")]) == 2  # each image with its lung mask
    assert len([p for p in pngs if not p.endswith(".overlay.png")]) == 4
    index = (preview / "index.html").read_text()
    assert index.count("<figure>") == 4 and ".overlay.png" in index
    rows = manifest(tmp_path / "out")
    assert all(not r["output"].startswith("_preview") for r in rows.values())
    # the preview folder holds nothing a later 'medconv convert out/ ...' would take for an image
    from medconv.batch import discover_sources

    assert discover_sources(str(preview), None) == []


@pytest.mark.corpus
def test_tcia2nii_on_real_lidc_matches_dcm2niix_series_by_series(tmp_path):
    from conftest import corpus_path
    from references import assert_same_in_world, run_dcm2niix

    lidc = corpus_path("lidc")
    before = sorted(p.stat().st_mtime_ns for p in lidc.rglob("*") if p.is_file())
    assert medconv("tcia2nii", lidc, tmp_path / "out", "-q", "-j", "2") == 0
    rows = {unit: row for unit, row in manifest(tmp_path / "out").items() if row["reader"] == "dicom"}
    assert len(rows) == 3 and {r["status"] for r in rows.values()} == {"converted"}  # (and 2 LIDC XML units)
    for row in rows.values():
        ours = nib.load(str(tmp_path / "out" / row["output"]))
        assert row["output"].split("/")[0].startswith("LIDC-IDRI-000")
        references = run_dcm2niix(Path(row["source"]), tmp_path / "ref" / row["unit_id"])
        assert len(references) == 1
        assert_same_in_world(ours, nib.load(str(references[0])))
    assert sorted(p.stat().st_mtime_ns for p in lidc.rglob("*") if p.is_file()) == before


def test_one_file_giving_several_units_converts_them_all(tmp_path):
    """A Philips enhanced file holds a magnitude and a field map: both are units of the same file."""
    from conftest import corpus_path
    from references import run_dcm2niix

    enhanced = corpus_path("dcm_qa_enh")
    assert medconv("tcia2nii", str(enhanced), str(tmp_path / "out"), "--jobs", "1", "--quiet") == 0
    rows = manifest(tmp_path / "out")
    field_maps = [row for row in rows.values() if "FIELD_MAP" in row["output"]]
    magnitudes = [row for row in rows.values() if "MAGNITUDE" in row["output"]]
    assert len(field_maps) == 1 and len(magnitudes) == 1
    assert all(row["status"] == "converted" for row in field_maps + magnitudes)
    # dcm2niix also writes two images for that file (plus the Siemens 4D series)
    assert len(run_dcm2niix(enhanced, tmp_path / "ref")) >= 3


def test_summary_without_a_terminal_is_plain_lines_and_rich_is_not_imported(tmp_path):
    """A log file gets unstyled lines; rich (start-up cost) is imported only for a terminal."""
    import subprocess
    import sys

    write_nifti_tree(tmp_path / "src", n_good=2, bad=False)
    script = ("import sys; from medconv.cli.main import main; code = main(sys.argv[1:]); "
              "print('rich imported:', 'rich' in sys.modules); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", script, "convert", str(tmp_path / "src"), str(tmp_path / "out"),
                           "-j", "1"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "rich imported: False" in done.stdout
    assert re.search(r"^converted\s+2$", done.stderr, re.MULTILINE)
    assert "[" not in done.stderr  # no markup left over


def test_a_series_folder_to_a_file_name_writes_that_file(tmp_path, capsys):
    from conftest import corpus_path

    series = sorted(p.parent for p in corpus_path("lidc").rglob("*.dcm"))[0]
    assert medconv("convert", str(series), str(tmp_path / "ct.nii.gz")) == 0
    assert (tmp_path / "ct.nii.gz").is_file()
    assert nib.load(tmp_path / "ct.nii.gz").shape[:2] == (512, 512)
    capsys.readouterr()
    assert medconv("convert", str(corpus_path("lidc")), str(tmp_path / "all.nii.gz")) == 2
    assert "holds 3 images" in capsys.readouterr().err
    assert not (tmp_path / "all.nii.gz").exists()
