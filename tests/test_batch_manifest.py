"""The manifest (issue 15 item 6): rows sorted by unit, one form of ``source``, ``output`` = ``name`` + suffix,
the identity columns, and planning that never aborts over a reader's discovery (issue 16 item 1, batch side).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pydicom
import pytest

from batch_trees import write_nifti_tree
from crash_readers import install_crash_reader
from medconv.batch import COLUMNS, RunOptions, UnitJob, discover_sources, make_plan, read_manifest, run_plan
from medconv.cli.main import main


def jsonl_rows(dest: Path) -> list[dict]:
    return [json.loads(line) for line in (dest / "medconv-manifest.jsonl").read_text().splitlines()]


def csv_rows(dest: Path) -> list[dict]:
    with open(dest / "medconv-manifest.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_rows_are_sorted_by_name_and_identical_between_runs(tmp_path):
    write_nifti_tree(tmp_path / "src", n_good=9)  # group0..2 interleaved, plus two broken files
    orders = []
    for run in range(2):
        dest = tmp_path / f"out{run}"
        assert main(["convert", str(tmp_path / "src"), str(dest), "-j", "2", "-q"]) == 1
        names = [row["name"] for row in jsonl_rows(dest)]
        assert names == sorted(names, key=str.casefold)
        assert [row["name"] for row in csv_rows(dest)] == names
        orders.append([row["unit_id"] for row in jsonl_rows(dest)])
    assert orders[0] == orders[1]


def test_source_output_and_name_have_one_form(tmp_path):
    tree = write_nifti_tree(tmp_path / "src", n_good=3)
    dest = tmp_path / "out"
    main(["convert", str(tmp_path / "src"), str(dest), "-j", "1", "-q"])
    rows = {row["unit_id"]: row for row in jsonl_rows(dest)}
    for path in tree["good"] + tree["bad"]:
        unit = path.relative_to(tmp_path / "src").as_posix().split(".")[0]
        row = rows[unit]
        assert row["source"] == str(path.resolve())  # the absolute path of the unit's file
        assert row["name"] == unit
        if row["status"] == "converted":
            assert row["output"] == row["name"] + ".nii.gz" and (dest / row["output"]).is_file()
        else:
            assert row["output"] == ""
    assert list(csv_rows(dest)[0]) == list(COLUMNS)


def test_dicom_series_rows_carry_the_series_folder_and_its_identity(tmp_path):
    dicom_synth = pytest.importorskip("dicom_synth")
    iop, positions = dicom_synth.axial(5)
    first = dicom_synth.write_series(tmp_path / "tcia" / "P1" / "study" / "s2", positions, iop, series_number=2,
                                     description="Lung 1.0/B31f")
    dicom_synth.write_series(tmp_path / "tcia" / "P1" / "study" / "s3", positions, iop, series_number=3, seed=1)
    assert main(["tcia2nii", str(tmp_path / "tcia"), str(tmp_path / "out"), "-q"]) == 0
    rows = jsonl_rows(tmp_path / "out")
    assert len(rows) == 2
    for row in rows:
        folder = Path(row["source"])
        assert folder.is_dir() and folder.parent == (tmp_path / "tcia" / "P1" / "study").resolve()
        header = pydicom.dcmread(next(folder.glob("*")), stop_before_pixels=True)  # the reference: pydicom
        assert row["patient_id"] == header.PatientID and row["modality"] == header.Modality
        assert row["study_uid"] == header.StudyInstanceUID and row["series_uid"] == header.SeriesInstanceUID
        assert row["series_description"] == header.SeriesDescription
        assert row["output"] == row["name"] + ".nii.gz"
    assert any(row["series_uid"] == first.series_uid for row in rows)


def test_a_reader_whose_discovery_raises_becomes_a_failed_row_and_the_plan_goes_on(tmp_path, monkeypatch):
    install_crash_reader(tmp_path / "plugin", monkeypatch)
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a.brk", "bad.brk", "c.crash", "d.crash"):
        (src / name).write_text(name)
    sources = discover_sources(str(src), ["brokendiscovery", "crash"])
    assert [s.id for s in sources] == ["a", "brokendiscovery-discovery-failed", "c", "d"]
    plan = make_plan(sources, str(tmp_path / "out"))
    failed = [unit for unit in plan.units if unit.failure]
    assert len(failed) == 1 and "after 1 unit(s)" in failed[0].failure.reason
    report = run_plan(plan, UnitJob(), RunOptions(jobs=1, progress=False))
    rows = {row["unit_id"]: row for row in read_manifest(str(tmp_path / "out" / "medconv-manifest.jsonl"))}
    assert {k: r["status"] for k, r in rows.items()} == {
        "a": "converted", "brokendiscovery-discovery-failed": "failed", "c": "converted", "d": "converted"}
    row = rows["brokendiscovery-discovery-failed"]
    assert "NotImplementedError: Unknown Value Representation in bad.brk" in row["reason"]
    assert row["error_type"] == "internal" and "Traceback" in row["traceback"]
    assert report.exit_code == 1 and report.internal_errors == 1


def test_a_typed_discovery_error_names_its_file(tmp_path, monkeypatch, capsys):
    install_crash_reader(tmp_path / "plugin", monkeypatch)
    src = tmp_path / "src"
    src.mkdir()
    (src / "typed.brk").write_text("x")
    assert main(["scan", str(src), "--reader", "brokendiscovery"]) == 0
    out = capsys.readouterr().out
    assert "DimSize is inf" in out
    assert main(["convert", str(src), str(tmp_path / "out"), "--reader", "brokendiscovery", "-q"]) == 1
    (row,) = jsonl_rows(tmp_path / "out")
    assert row["source"] == str((src / "typed.brk").resolve()) and row["error_type"] == "unreadable"
    assert f"{src / 'typed.brk'}: the header's DimSize is inf" in row["reason"]
