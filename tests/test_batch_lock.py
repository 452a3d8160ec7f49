"""One run per destination (issue 16 item 16): a second concurrent run into the same folder refuses to start.

Before, two concurrent runs tore ``medconv-manifest.jsonl`` lines in 8 of 10 trials,
garbled CSV rows in 2 and deleted each other's temporary files in 2.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import socket
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from batch_trees import SlowPreprocessing, temporaries, unit_array, write_nifti_tree
from medconv.batch import RunOptions, UnitJob, discover_sources, make_plan, run_plan
from medconv.batch.lock import LOCK_NAME, DestinationLock
from medconv.batch.manifest import COLUMNS, Status
from medconv.cli.main import main
from medconv.errors import DestinationLockedError

N_UNITS = 5


def _one_run(src: str, dest: str, start, results) -> None:
    """A whole run in a forked process; reports ("ran", exit code) or ("locked", message)."""
    plan = make_plan(discover_sources(src, ["nifti"]), dest)
    start.wait()
    try:
        report = run_plan(plan, UnitJob(preprocessing=SlowPreprocessing(0.05)), RunOptions(jobs=1, progress=False,
                                                                                            summary=False))
        results.put(("ran", report.exit_code))
    except DestinationLockedError as exc:
        results.put(("locked", exc.one_line()))


def assert_manifests_intact(dest: Path) -> list[dict]:
    lines = (dest / "medconv-manifest.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]  # every line parses
    with open(dest / "medconv-manifest.csv", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        table = list(reader)
    assert tuple(header) == COLUMNS
    assert all(len(record) == len(COLUMNS) for record in table)
    assert [record[0] for record in table] == [row["unit_id"] for row in rows]
    assert {row["status"] for row in rows} <= set(Status)
    assert sorted(row["unit_id"] for row in rows) == sorted(f"group{i % 3}/case{i:03d}" for i in range(N_UNITS))
    return rows


@pytest.mark.slow
def test_ten_trials_of_two_concurrent_runs_into_one_destination(tmp_path):
    write_nifti_tree(tmp_path / "src", n_good=N_UNITS, bad=False)
    context = multiprocessing.get_context("fork")  # both start at once, without an interpreter's start-up
    outcomes = []
    for trial in range(10):
        dest = tmp_path / f"out{trial}"
        start, results = context.Barrier(2), context.Queue()
        runs = [context.Process(target=_one_run, args=(str(tmp_path / "src"), str(dest), start, results))
                for _ in range(2)]
        for process in runs:
            process.start()
        for process in runs:
            process.join(timeout=120)
            assert process.exitcode == 0
        got = sorted(results.get(timeout=10) for _ in runs)
        outcomes.append(got)
        assert (got[0][0] == "locked" and got[1] == ("ran", 0)) or got == [("ran", 0), ("ran", 0)]
        if got[0][0] == "locked":
            message = got[0][1]
            assert "another medconv run is writing into this folder" in message and str(dest) in message
            assert f"on {socket.gethostname()}" in message and "wait for it to finish" in message
        rows = assert_manifests_intact(dest)
        assert {row["status"] for row in rows} <= {"converted", "skipped"}
        for index in range(N_UNITS):  # every output is whole and right
            image = nib.load(dest / f"group{index % 3}" / f"case{index:03d}.nii.gz")
            np.testing.assert_array_equal(np.asarray(image.dataobj), unit_array(index))
        assert temporaries(dest) == [] and not (dest / LOCK_NAME).exists()
    assert sum(got[0][0] == "locked" for got in outcomes) >= 8  # they did overlap, and the lock decided


def test_a_live_lock_refuses_with_the_holder_and_what_to_do(tmp_path, capsys):
    write_nifti_tree(tmp_path / "src", n_good=2, bad=False)
    dest = tmp_path / "out"
    dest.mkdir()
    with DestinationLock(str(dest)):
        assert main(["convert", str(tmp_path / "src"), str(dest), "-j", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"medconv: {dest}: another medconv run is writing into this folder (pid {os.getpid()} on ")
    assert f"delete {dest / LOCK_NAME}" in err and len(err.splitlines()) == 1
    assert not (dest / "medconv-manifest.csv").exists()  # nothing was touched
    assert main(["convert", str(tmp_path / "src"), str(dest), "-j", "1", "-q"]) == 0  # released: it runs


def test_a_stale_lock_of_a_dead_run_is_taken_over_and_said(tmp_path, caplog):
    write_nifti_tree(tmp_path / "src", n_good=2, bad=False)
    dest = tmp_path / "out"
    dest.mkdir()
    dead = multiprocessing.get_context("fork").Process(target=os._exit, args=(0,))
    dead.start()
    dead.join()
    (dest / LOCK_NAME).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(),
                                              "started": "2026-11-30T10:00:00+00:00", "command": "medconv convert"}))
    plan = make_plan(discover_sources(str(tmp_path / "src"), ["nifti"]), str(dest))
    with caplog.at_level("INFO", logger="medconv"):
        report = run_plan(plan, UnitJob(), RunOptions(jobs=1, progress=False))
    assert report.exit_code == 0
    assert f"took over the lock left by a run that ended without releasing it (pid {dead.pid}" in caplog.text
    assert not (dest / LOCK_NAME).exists()
