"""``medconv scan`` as a user reads it: every flag and note visible at 80 and 100 columns, notes that say what happens."""

from __future__ import annotations

import csv
import json
import math
import re

import pytest

from conftest import corpus_path
from dicom_synth import oriented, write_series
from medconv.cli.main import main
from medconv.cli.scan import COLUMNS

AXIAL = (1, 0, 0, 0, 1, 0)


@pytest.fixture(scope="module")
def flagged_tree(tmp_path_factory):
    """A tilted series, an unevenly spaced one, one with a repeated position (will fail), and a clean one."""
    root = tmp_path_factory.mktemp("scan") / "CT-COLLECTION-WITH-A-LONG-NAME"
    shift = (0.0, math.tan(math.radians(15)))
    write_series(root / "PATIENT-0001" / "tilted", oriented(AXIAL, [0, 2, 4, 6, 8], inplane_shift_per_mm=shift), AXIAL,
                 rows=8, columns=8, series_number=2, description="tilted head", patient_id="PATIENT-0001", seed=1)
    write_series(root / "PATIENT-0001" / "uneven", oriented(AXIAL, [0, 2, 4, 7, 9, 11]), AXIAL, rows=8, columns=8,
                 series_number=3, description="uneven chest", patient_id="PATIENT-0001", seed=2)
    write_series(root / "PATIENT-0002" / "repeated", oriented(AXIAL, [0, 2, 2, 4, 6]), AXIAL, rows=8, columns=8,
                 series_number=4, description="fMRI-like repeats", patient_id="PATIENT-0002", seed=3)
    write_series(root / "PATIENT-0002" / "clean", oriented(AXIAL, [0, 2, 4, 6]), AXIAL, rows=8, columns=8,
                 series_number=5, description="clean", patient_id="PATIENT-0002", seed=4)
    return root


def scan_screen(capsys, monkeypatch, width: int, *args) -> list[str]:
    monkeypatch.setenv("COLUMNS", str(width))
    assert main(["scan", *map(str, args)]) == 0
    return capsys.readouterr().out.splitlines()


def scan_rows(src, tmp_path) -> list[dict]:
    assert main(["scan", str(src), "--csv", str(tmp_path / "scan.csv"), "-q"]) == 0
    with open(tmp_path / "scan.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def squeezed(lines: list[str]) -> str:
    """The screen as one line of words (wrapping undone), table rules and padding removed."""
    return " ".join(" ".join(lines).split())


@pytest.mark.parametrize("width", [80, 100])
def test_every_flag_and_note_is_visible_at_narrow_widths(flagged_tree, capsys, monkeypatch, tmp_path, width):
    rows = scan_rows(flagged_tree, tmp_path)
    capsys.readouterr()
    lines = scan_screen(capsys, monkeypatch, width, flagged_tree)
    assert max(len(line.rstrip()) for line in lines) <= width
    screen = squeezed(lines)
    for row in rows:
        assert row["unit"] in screen
        for flag in filter(None, row["flags"].split(",")):
            assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", screen), (flag, row["unit"])
        assert " ".join(row["note"].split()) in screen, row["unit"]


def test_flagged_units_say_what_will_happen(flagged_tree, tmp_path):
    rows = {row["unit"].split("_")[2]: row for row in scan_rows(flagged_tree, tmp_path)}  # by series number
    assert rows["S2"]["flags"] == "tilt"
    assert rows["S2"]["note"].startswith("gantry tilt: will be resampled onto an orthogonal grid")
    assert "--on-tilt error" in rows["S2"]["note"]
    assert "uneven" in rows["S3"]["flags"] and "--on-uneven error" in rows["S3"]["note"]
    assert rows["S4"]["flags"] == "duplicate,geometry-error"
    assert rows["S4"]["note"].startswith("will fail: 1 slice(s) repeat a position")
    assert rows["S5"]["flags"] == "" and rows["S5"]["note"] == ""
    assert all(row["note"] for row in rows.values() if row["flags"])


def test_scan_of_real_tilted_ct_at_80_columns(capsys, monkeypatch):
    """dcm_qa_ct: GE head with tilt and uneven spacing, Philips tilted phantoms, a localizer, secondary captures."""
    lines = scan_screen(capsys, monkeypatch, 80, corpus_path("dcm_qa_ct"))
    screen = squeezed(lines)
    assert max(len(line.rstrip()) for line in lines) <= 80
    assert "[tilt,uneven]" in screen and screen.count("[tilt]") == 2
    assert screen.count("gantry tilt: will be resampled onto an orthogonal grid") == 3
    assert "excluded: localizer" in screen and screen.count("excluded: secondary capture") == 3


def test_wide_screen_keeps_the_table_and_narrow_drops_low_value_columns_first(capsys, monkeypatch):
    lidc = corpus_path("lidc")
    wide = scan_screen(capsys, monkeypatch, 200, lidc)
    header = next(line for line in wide if line.lstrip().startswith("unit"))
    # the note: its LIDC XML units say which series they annotate (issue 11)
    assert header.split() == ["unit", "reader", "patient", "modality", "size", "spacing", "slices", "files", "note"]
    narrow = scan_screen(capsys, monkeypatch, 80, lidc)
    header = next((line for line in narrow if line.lstrip().startswith("unit")), None)
    if header is not None:  # else the record layout: even the kept columns did not fit
        assert header.split() == ["unit", "size", "spacing", "note"]  # reader, files, slices, patient, modality went first
    assert max(len(line.rstrip()) for line in narrow) <= 80


def test_json_has_every_csv_field(flagged_tree, capsys, tmp_path):
    rows = scan_rows(flagged_tree, tmp_path)
    capsys.readouterr()
    assert main(["scan", str(flagged_tree), "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["unit"] for r in records] == [r["unit"] for r in rows]
    for record, row in zip(records, rows):
        assert set(record) == set(COLUMNS) | {"source", "info"}
        assert record["flags"] == [f for f in row["flags"].split(",") if f]
        assert record["info"] == json.loads(row["info"]) and record["note"] == row["note"]


def test_scan_notes_archives_it_did_not_look_into(flagged_tree, tmp_path, capsys, monkeypatch):
    import shutil

    tree = tmp_path / "tree"
    shutil.copytree(flagged_tree / "PATIENT-0002" / "clean", tree / "clean")
    (tree / "more.zip").write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    screen = squeezed(scan_screen(capsys, monkeypatch, 100, tree))
    assert "note: more.zip is an archive: medconv does not look inside archives" in screen
