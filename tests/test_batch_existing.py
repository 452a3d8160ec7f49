"""Outputs that already exist: resume only what this run would write; never hide or clobber anything else."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import nibabel as nib
import numpy as np

from batch_trees import write_nifti_tree
from medconv.batch import RunOptions, UnitJob, discover_sources, make_plan, run_plan
from medconv.batch.plan import PlannedUnit
from medconv.cli.main import main
from medconv.options import ReadOptions


def rows(dest: Path) -> dict[str, dict]:
    lines = (dest / "medconv-manifest.jsonl").read_text().splitlines()
    return {row["unit_id"]: row for row in map(json.loads, lines)}


def test_a_different_source_under_the_same_name_is_not_skipped(tmp_path):
    for site, value in (("siteA", 1), ("siteB", 2)):
        path = tmp_path / site / "imagesTr" / "case_001.nii.gz"
        path.parent.mkdir(parents=True)
        nib.save(nib.Nifti1Image(np.full((4, 4, 4), value, np.int16), np.eye(4)), path)
    dest = tmp_path / "out"
    assert main(["convert", str(tmp_path / "siteA"), str(dest), "--quiet", "--jobs", "1"]) == 0
    assert main(["convert", str(tmp_path / "siteB"), str(dest), "--quiet", "--jobs", "1"]) == 1
    (row,) = rows(dest).values()
    assert row["status"] == "failed" and "made from other files" in row["reason"]
    # siteA's output is intact, not overwritten by siteB
    assert np.asarray(nib.load(dest / "imagesTr" / "case_001.nii.gz").dataobj).max() == 1


def test_a_rerun_with_other_options_is_not_silently_skipped(tmp_path):
    write_nifti_tree(tmp_path / "src", n_good=3, bad=False)
    dest = tmp_path / "out"
    assert main(["convert", str(tmp_path / "src"), str(dest), "--quiet", "--jobs", "1"]) == 0
    assert main(["convert", str(tmp_path / "src"), str(dest), "--quiet", "--jobs", "1", "--orient", "LPS"]) == 1
    assert {row["status"] for row in rows(dest).values()} == {"failed"}
    assert all("other options" in row["reason"] for row in rows(dest).values())
    assert main(["convert", str(tmp_path / "src"), str(dest), "--quiet", "--jobs", "1", "--orient", "LPS",
                 "--overwrite"]) == 0
    assert main(["convert", str(tmp_path / "src"), str(dest), "--quiet", "--jobs", "1", "--orient", "LPS"]) == 0
    assert {row["status"] for row in rows(dest).values()} == {"skipped"}


def test_a_sidecar_never_replaces_a_foreign_json_file(tmp_path):
    bids = tmp_path / "bids"
    bids.mkdir()
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.int16), np.eye(4)), bids / "sub-01_T1w.nii.gz")
    (bids / "sub-01_T1w.json").write_text('{"EchoTime": 0.003}')
    before = hashlib.md5((bids / "sub-01_T1w.json").read_bytes()).hexdigest()
    assert main(["convert", str(bids), str(bids), "--format", "npz", "--quiet"]) == 1
    assert hashlib.md5((bids / "sub-01_T1w.json").read_bytes()).hexdigest() == before
    assert not (bids / "sub-01_T1w.npz").exists()


def test_earlier_outputs_inside_the_dataset_are_not_inputs(tmp_path):
    write_nifti_tree(tmp_path / "data", n_good=2, bad=False)
    first = tmp_path / "data" / "nii"
    assert main(["convert", str(tmp_path / "data"), str(first), "--quiet", "--jobs", "1"]) == 0
    second = tmp_path / "data" / "nii_lps"
    assert main(["convert", str(tmp_path / "data"), str(second), "--quiet", "--jobs", "1", "--orient", "LPS"]) == 0
    assert len(rows(second)) == 2
    assert not (second / "nii").exists()


def test_a_folder_name_that_is_not_utf8_is_converted_and_recorded(tmp_path):
    import os

    folder = os.path.join(os.fsencode(tmp_path / "src"), b"S\xe9rie")
    os.makedirs(folder)
    nib.save(nib.Nifti1Image(np.arange(27, dtype=np.int16).reshape(3, 3, 3), np.eye(4)),
             os.fsdecode(os.path.join(folder, b"x.nii.gz")))
    dest = tmp_path / "out"
    assert main(["convert", str(tmp_path / "src"), str(dest), "--quiet", "--jobs", "1"]) == 0
    (row,) = rows(dest).values()
    assert row["status"] == "converted"
    assert "S\\udce9rie" in (dest / "medconv-manifest.csv").read_text(encoding="utf-8")
    assert main(["scan", str(tmp_path / "src"), "--csv", str(tmp_path / "scan.csv"), "--quiet"]) == 0


def test_name_templates_with_folders_work_and_misspelt_fields_are_refused(tmp_path, capsys):
    write_nifti_tree(tmp_path / "src", n_good=2, bad=False)
    dest = tmp_path / "out"
    assert main(["convert", str(tmp_path / "src"), str(dest), "--quiet", "--name", "{parent}/{stem}_{ext}"]) == 0
    assert sorted(p.name for p in dest.rglob("*.nii.gz")) == sorted(
        f"{p.name.split('.')[0]}_nii.gz.nii.gz" for p in (tmp_path / "src").rglob("*.nii.gz"))
    capsys.readouterr()
    assert main(["convert", str(tmp_path / "src"), str(tmp_path / "o2"), "--name", "{parent}/{stemm}"]) == 2
    assert "{stemm}" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "src"), str(tmp_path / "o3"), "--name", "/abs/{stem}"]) == 2


def test_the_summary_names_units_converted_with_warnings():
    import io

    from medconv.batch.progress import PlainConsole
    from medconv.batch.report import Report

    report = Report(total=2)
    report.add({"unit_id": "a", "status": "converted", "warnings": []})
    report.add({"unit_id": "b", "status": "converted", "warnings": ["gantry tilt 15 deg: resampled", "other"]})
    stream = io.StringIO()
    report.render(PlainConsole(stream))
    text = stream.getvalue()
    assert "converted with warnings (1):" in text
    assert "b: gantry tilt 15 deg: resampled (+1 more)" in text
    assert report.as_dict()["converted_with_warnings"] == 1


@dataclasses.dataclass(frozen=True)
class _LaterReadOptions(ReadOptions):
    """ReadOptions as a later version might have them: one more field, with a default."""

    denoise: bool = False


def _run(src: Path, dest: Path, read_options: ReadOptions) -> dict[str, dict]:
    plan = make_plan(discover_sources(str(src), ["nifti"]), str(dest))
    run_plan(plan, UnitJob(read_options=read_options), RunOptions(jobs=1, progress=False, summary=False))
    return rows(dest)


def test_an_output_made_with_default_options_resumes_after_a_new_defaulted_field(tmp_path):
    write_nifti_tree(tmp_path / "src", n_good=2, bad=False)
    dest = tmp_path / "out"
    assert {row["status"] for row in _run(tmp_path / "src", dest, ReadOptions()).values()} == {"converted"}
    assert {row["status"] for row in _run(tmp_path / "src", dest, _LaterReadOptions()).values()} == {"skipped"}
    # the new field set to other than its default is another choice: not silently skipped
    changed = _run(tmp_path / "src", dest, _LaterReadOptions(denoise=True))
    assert all(row["status"] == "failed" and "other options" in row["reason"] for row in changed.values())


def test_limits_that_only_refuse_a_unit_do_not_change_its_fingerprint(tmp_path):
    write_nifti_tree(tmp_path / "src", n_good=2, bad=False)
    dest = tmp_path / "out"
    _run(tmp_path / "src", dest, ReadOptions())
    again = _run(tmp_path / "src", dest, ReadOptions(max_voxels=10**9, follow_outside=True))
    assert {row["status"] for row in again.values()} == {"skipped"}


def test_write_options_enter_the_fingerprint_only_where_they_change_the_values(tmp_path):
    from medconv.batch.unit import unit_fingerprint
    from medconv.options import WriteOptions
    from medconv.source import Source

    path = tmp_path / "a.nii.gz"
    path.write_bytes(b"")
    unit = PlannedUnit(Source("a", "nifti", (str(path),)), str(tmp_path / "o.png"), "o.png")
    default = unit_fingerprint(unit, UnitJob(fmt="png"))
    how_stored = WriteOptions(compression_level=1, threads=3, npz_compressed=False, overwrite=True)
    assert unit_fingerprint(unit, UnitJob(fmt="png", write_options=how_stored)) == default
    assert unit_fingerprint(unit, UnitJob(fmt="png", write_options=WriteOptions(png_depth=16))) != default


def test_summary_lines_name_a_long_unit_id_shortly_and_the_manifest_keeps_all(tmp_path):
    import io

    from medconv.batch.progress import PlainConsole
    from medconv.batch.report import Report

    uid = "1.3.6.1.4.1.14519.5.2.1.6279.6001.105756658031515062000744821260"
    header = tmp_path / "LUNA16" / "subset0" / f"{uid}.mhd"
    series = tmp_path / "LIDC" / "series"
    rows_in = [
        {"unit_id": f"subset0/{uid}", "status": "failed", "source": str(header),
         "reason": f"{header}: the data file is too short (download it again)"},
        {"unit_id": "LIDC-0001_S3_CT", "status": "failed", "source": str(series),
         "reason": f"{series / '1-007.dcm'}: truncated (download the series again)"},
        {"unit_id": "plain", "status": "failed", "source": str(series), "reason": "internal error: KeyError: 'x'"},
    ]
    report = Report(total=3)
    for row in rows_in:
        report.add(dict(row))
    stream = io.StringIO()
    report.render(PlainConsole(stream))
    lines = [line for line in stream.getvalue().splitlines() if line.startswith("  ")]
    shown, reason = lines[0].strip().split(": ", 1)
    assert reason == "the data file is too short (download it again)"  # its own file: the id says which
    assert shown.startswith("subset0/") and "..." in shown and shown.endswith(uid[-16:]) and len(shown) <= 28
    assert len(lines[0]) <= 80
    assert lines[1] == "  LIDC-0001_S3_CT: 1-007.dcm: truncated (download the series again)"
    assert lines[2] == "  plain: internal error: KeyError: 'x'"
    assert rows_in[0]["reason"].startswith(str(header))  # the rows themselves (the manifest's) are untouched
