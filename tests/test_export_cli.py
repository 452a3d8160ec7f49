"""``medconv export`` and the ``medconv scan`` cases section, through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

from export_synth import write_task01, write_task03
from medconv.batch.report import short_name
from medconv.cli.main import main
from test_export_problems import _broken_luna


def test_export_nnunet_prints_one_line_per_bad_case_and_exits_1(tmp_path, capsys):
    cases = _broken_luna(tmp_path / "LUNA16")
    code = main(["export", "nnunet", str(tmp_path / "LUNA16"), str(tmp_path / "raw"), "--id", "600", "--name", "Lungs",
                 "--label", "lung=3,4", "--label", "trachea=5", "-j", "1"])
    assert code == 1
    err = capsys.readouterr().err
    failed = [line.strip() for line in err.splitlines() if line.startswith("  ") and ":" in line]
    for key in ("duplicate", "shifted", "stray"):  # each case named by its id, shortened to stay readable
        lines = [line for line in failed if line.startswith(short_name(cases[key].stem) + ":")]
        assert len(lines) == 1 and lines[0].endswith(")"), (key, err)
    assert "converted  1" in err and "failed     3" in err
    assert "dataset: " in err and "checked: no problem" in err
    assert (tmp_path / "raw" / "Dataset600_Lungs" / "labelsTr" / f"{cases['good'].stem}.nii.gz").is_file()


def test_export_check_reports_a_damaged_dataset(tmp_path, capsys):
    src = write_task03(tmp_path / "Task03_Liver", train=2)
    assert main(["export", "nnunet", str(src), str(tmp_path / "raw"), "--id", "503", "-q", "-j", "1"]) == 0
    folder = tmp_path / "raw" / "Dataset503_Liver"
    assert main(["export", "check", str(folder)]) == 0
    (folder / "imagesTr" / "liver_1_0000.nii.gz").unlink()
    capsys.readouterr()
    assert main(["export", "check", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "check: dataset.json says numTraining 2, imagesTr holds 1 case(s)" in out
    assert "check: case liver_1: labelsTr/liver_1.nii.gz has no images in imagesTr/" in out
    assert out.strip().endswith("2 problem(s)")


def test_dry_run_shows_the_cases_and_writes_nothing(tmp_path, capsys):
    src = write_task01(tmp_path / "Task01_BrainTumour", train=2, test=1)
    assert main(["export", "msd", str(src), str(tmp_path / "msd"), "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert "cases: 3 (2 with a label map, 1 without) by rule msd; channels: FLAIR, T1w, t1gd, T2w" in err
    assert "labels: 0 background, 1 edema, 2 non-enhancing tumor, 3 enhancing tumour" in err
    assert not (tmp_path / "msd").exists()


def test_nnunet_needs_an_id_and_options_are_checked(tmp_path, capsys):
    src = write_task03(tmp_path / "Task03_Liver", train=1)
    assert main(["export", "nnunet", str(src), str(tmp_path / "raw")]) == 2
    err = capsys.readouterr().err
    assert "--id" in err and err.count("\n") == 1
    assert main(["export", "nnunet", str(src), str(tmp_path / "raw"), "--id", "5", "--label", "x"]) == 2
    assert "is not NAME=VALUES" in capsys.readouterr().err
    assert main(["export", "nnunet", str(src), str(tmp_path / "raw"), "--id", "5", "--channel-names", "CT,PET"]) == 2
    assert "--channel-names gives 2 name(s), the dataset has 1 channel(s) (CT)" in capsys.readouterr().err


def test_scan_shows_the_cases_and_what_is_unpaired(tmp_path, capsys):
    cases = _broken_luna(tmp_path / "LUNA16")
    assert main(["scan", str(tmp_path / "LUNA16")]) == 0
    out = capsys.readouterr().out
    assert "cases: 3 (3 with a label map, 0 without) by rule luna16; channels: CT" in out
    assert f"problem: {cases['duplicate'].stem}: 2 images claim case id" in " ".join(out.split())


def test_channel_names_rename_for_nnunet_normalisation(tmp_path):
    src = write_task03(tmp_path / "Task03_Liver", train=1)
    code = main(["export", "nnunet", str(src), str(tmp_path / "raw"), "--id", "510", "--name", "Liv",
                 "--channel-names", "CTscan", "-q", "-j", "1"])
    assert code == 0
    dataset = json.loads((tmp_path / "raw" / "Dataset510_Liv" / "dataset.json").read_text())
    assert dataset["channel_names"] == {"0": "CTscan"}
    summary = json.loads((tmp_path / "raw" / "Dataset510_Liv" / "dataset_summary.json").read_text())
    assert any("looks like CT in Hounsfield units" in note for note in summary["notes"])
