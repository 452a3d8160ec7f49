"""Faults of the machine are the user's to fix, said in one line: never "internal error ... a bug" (issue 16 item 15).

Permission denied, a full disk, a read-only disk and a file where a folder is
needed are made for real (``tests/sandbox.py``); each run is checked for its exit
code, its one line naming the path and what to do, a manifest that is true, and
outputs under final names that are complete (nibabel reads them).
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from batch_trees import temporaries, unit_array, write_nifti_tree
from medconv.batch import RunOptions, UnitJob, discover_sources, make_plan, read_manifest, run_plan
from medconv.cli.main import main
from sandbox import on_read_only_disk, on_small_disk, without_privileges

MEDCONV = str(Path(sys.executable).parent / "medconv")
SHAPE = (40, 40, 30)  # 96 kB per uncompressed output: a few fill a small disk


def rows(manifest: Path) -> dict[str, dict]:
    return {row["unit_id"]: row for row in read_manifest(str(manifest))}


def assert_user_error(done, *expected: str) -> None:
    """One line (or a summary), naming what is expected; never an internal error or a traceback."""
    assert "internal error" not in done.stderr and "a bug" not in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    for text in expected:
        assert text in done.stderr, done.stderr


def assert_outputs_complete(dest: Path) -> int:
    """Every output under a final name is whole (nibabel reads it); returns how many there are."""
    outputs = sorted(dest.rglob("case*.nii"))
    for path in outputs:
        index = int(path.stem.replace("case", ""))
        np.testing.assert_array_equal(np.asarray(nib.load(path).dataobj), unit_array(index, SHAPE))
    assert temporaries(dest) == []
    return len(outputs)


@pytest.fixture
def tree(tmp_path) -> Path:
    write_nifti_tree(tmp_path / "src", n_good=6, bad=False, shape=SHAPE)
    return tmp_path / "src"


def test_a_destination_without_write_permission_cannot_start(tree, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        inside = without_privileges([MEDCONV, "convert", str(tree), str(locked / "out"), "-j", "1"])
        there = without_privileges([MEDCONV, "convert", str(tree), str(locked), "-j", "1"])
    finally:
        locked.chmod(0o755)
    assert inside.returncode == 2 and there.returncode == 2
    assert_user_error(inside, f"{locked / 'out'}: permission denied", "choose a destination folder you can write to")
    assert_user_error(there, f"{locked}: cannot write into this folder: permission denied")
    assert len(inside.stderr.strip().splitlines()) == 1
    assert os.listdir(locked) == []


def test_a_read_only_subfolder_fails_its_units_only(tree, tmp_path):
    dest = tmp_path / "out"
    (dest / "group1").mkdir(parents=True)
    (dest / "group1").chmod(0o555)
    try:
        done = without_privileges([MEDCONV, "convert", str(tree), str(dest), "-j", "1", "-f", "nii"])
    finally:
        (dest / "group1").chmod(0o755)
    assert done.returncode == 1
    assert_user_error(done, "permission denied")
    found = rows(dest / "medconv-manifest.jsonl")
    assert {unit: row["error_type"] for unit, row in found.items() if row["status"] == "failed"} == {
        "group1/case001": "permission", "group1/case004": "permission"}
    assert str(dest / "group1") in found["group1/case001"]["reason"]
    assert assert_outputs_complete(dest) == 4


def test_an_unreadable_input_fails_its_unit_naming_the_file(tree, tmp_path):
    secret = tree / "group2" / "case002.nii.gz"
    secret.chmod(0o000)
    try:
        done = without_privileges([MEDCONV, "convert", str(tree), str(tmp_path / "out"), "-j", "1", "-f", "nii"])
    finally:
        secret.chmod(0o644)
    assert done.returncode == 1
    assert_user_error(done, "group2/case002: permission denied")  # the summary names the unit
    found = rows(tmp_path / "out" / "medconv-manifest.jsonl")
    assert found["group2/case002"]["reason"].startswith(f"{secret}: permission denied")  # the manifest, the file
    assert found["group2/case002"]["error_type"] == "permission"
    assert [row["status"] for row in found.values()].count("converted") == 5


def test_a_file_where_the_destination_folder_should_be(tree, tmp_path, capsys):
    (tmp_path / "notes").write_text("not a folder")
    assert main(["convert", str(tree), str(tmp_path / "notes"), "-j", "1"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"medconv: {tmp_path / 'notes'}: a file is in the way where a folder is needed "
                           "(rename or remove that file, or choose another destination)")


def test_a_file_where_an_output_subfolder_should_be(tree, tmp_path, capsys):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "group0").write_text("in the way")
    assert main(["convert", str(tree), str(dest), "-j", "1", "-f", "nii"]) == 1
    found = rows(dest / "medconv-manifest.jsonl")
    assert found["group0/case000"]["error_type"] == "not-a-folder"
    assert str(dest / "group0") in found["group0/case000"]["reason"]
    assert "internal" not in capsys.readouterr().err


def test_a_full_disk_stops_the_run_with_a_true_manifest(tree, tmp_path):
    disk = tmp_path / "disk"
    manifest = tmp_path / "records" / "manifest.csv"  # on another disk: every row can be written
    done = on_small_disk([MEDCONV, "convert", str(tree), str(disk / "out"), "-j", "1", "-f", "nii",
                          "--manifest", str(manifest)], disk, kilobytes=250)
    assert done.returncode == 1
    assert_user_error(done, "no space left on the device", "free some space, then rerun the same command")
    found = rows(manifest.with_suffix(".jsonl"))
    assert len(found) == 6
    statuses = [row["status"] for row in found.values()]
    full = [row for row in found.values() if row["error_type"] == "disk-full"]
    assert statuses.count("converted") == 2 and len(full) == 4  # the unit that hit it, and those not started
    assert sum("not converted: the run stopped" in row["reason"] for row in full) == 3
    first = next(row for row in full if "not converted" not in row["reason"])
    assert first["reason"].startswith(str(disk / "out")) and first["output"] == ""


def test_a_full_disk_with_the_manifest_on_it(tree, tmp_path):
    disk = tmp_path / "disk"
    done = on_small_disk([MEDCONV, "convert", str(tree), str(disk / "out"), "-j", "2", "-f", "nii"], disk,
                         kilobytes=250)
    assert done.returncode == 1
    assert_user_error(done, "no space left on the device")


def test_a_read_only_disk_cannot_start(tree, tmp_path):
    disk = tmp_path / "ro"
    done = on_read_only_disk([MEDCONV, "convert", str(tree), str(disk / "out"), "-j", "1"], disk)
    assert done.returncode == 2
    assert_user_error(done, f"{disk / 'out'}: the file system is read-only",
                      "choose a destination folder on a writable disk")


def test_a_manifest_that_cannot_be_written_says_so(tree, tmp_path):
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    shelf.chmod(0o555)
    try:
        done = without_privileges([MEDCONV, "convert", str(tree), str(tmp_path / "out"), "-j", "1",
                                   "--manifest", str(shelf / "m.csv")])
    finally:
        shelf.chmod(0o755)
    assert done.returncode == 2
    assert_user_error(done, "the manifest cannot be written: cannot write into this folder: permission denied",
                      "give --manifest a path you can write to")


class _FillsUp:
    """A manifest file object whose writes fail with ENOSPC after ``allowed`` writes (the disk filling mid-run)."""

    def __init__(self, handle, allowed: int):
        self.handle, self.allowed = handle, allowed

    def write(self, text):
        self.allowed -= 1
        if self.allowed < 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.handle.write(text)

    def __getattr__(self, name):
        return getattr(self.handle, name)


def test_a_manifest_failing_mid_run_stops_the_run_and_says_so(tree, tmp_path, monkeypatch):
    from medconv.batch import manifest as manifest_module

    original = manifest_module.ManifestWriter.__init__

    def failing_after_three_rows(self, csv_path, jsonl_path):
        original(self, csv_path, jsonl_path)
        self._jsonl_handle = _FillsUp(self._jsonl_handle, allowed=3)

    monkeypatch.setattr(manifest_module.ManifestWriter, "__init__", failing_after_three_rows)
    plan = make_plan(discover_sources(str(tree), ["nifti"]), str(tmp_path / "out"), fmt="nii")
    report = run_plan(plan, UnitJob(fmt="nii"), RunOptions(jobs=1, progress=False))
    assert report.exit_code == 1 and report.done == 3
    assert "the manifest cannot be written: no space left on the device" in report.manifest_error
    assert str(tmp_path / "out" / "medconv-manifest.csv") in report.manifest_error
    assert len(read_manifest(str(tmp_path / "out" / "medconv-manifest.jsonl"))) == 3  # what it could record is true
    assert temporaries(tmp_path / "out") == []
