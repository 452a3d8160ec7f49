"""A run killed with SIGKILL part-way resumes to completion: nothing half-written, nothing redone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from batch_trees import affine_for, temporaries, unit_array, write_nifti_tree
from medconv.batch import read_manifest

TESTS = Path(__file__).resolve().parent

# The run under test, in its own process group so that SIGKILL reaches the workers too.
# Each unit sleeps in a preprocessing step so that the kill lands part-way.
RUN = """
import sys
sys.path.insert(0, {tests!r})
from batch_trees import SlowPreprocessing
from medconv.batch import RunOptions, UnitJob, discover_sources, make_plan, run_plan
plan = make_plan(discover_sources({src!r}, ["nifti"]), {dest!r})
job = UnitJob(fmt="nii.gz", preprocessing=SlowPreprocessing({seconds}))
sys.exit(run_plan(plan, job, RunOptions(jobs=2, progress=False)).exit_code)
"""


def _start(src: Path, dest: Path, seconds: float) -> subprocess.Popen:
    code = RUN.format(tests=str(TESTS), src=str(src), dest=str(dest), seconds=seconds)
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _rows(dest: Path) -> dict[str, dict]:
    return {row["unit_id"]: row for row in read_manifest(str(dest / "medconv-manifest.jsonl"))}


def test_a_killed_run_resumes_to_completion(tmp_path):
    n_units = 24
    write_nifti_tree(tmp_path / "src", n_good=n_units, bad=False, shape=(48, 40, 32))
    dest = tmp_path / "out"
    process = _start(tmp_path / "src", dest, seconds=0.25)
    deadline = time.time() + 60
    while time.time() < deadline and len(_rows(dest)) < 4:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    finished = {unit: row for unit, row in _rows(dest).items() if row["status"] == "converted"}
    assert 4 <= len(finished) < n_units, "the kill must land part-way"
    # every file under a final name is complete: nibabel reads it fully (a killed worker's
    # hidden temporary, ".<hex>.medconv-tmp-case001.nii.gz", is not under a final name)
    for path in (p for p in dest.rglob("*.nii.gz") if not p.name.startswith(".")):
        assert np.asarray(nib.load(str(path)).dataobj).shape == (48, 40, 32)
    stamps = {unit: (dest / row["output"]).stat().st_mtime_ns for unit, row in finished.items()}
    # a worker may have renamed its file into place after the parent's last manifest row
    complete = {f"group{i % 3}/case{i:03d}" for i in range(n_units)
                if (dest / f"group{i % 3}" / f"case{i:03d}.nii.gz").exists()
                and (dest / f"group{i % 3}" / f"case{i:03d}.json").exists()}
    assert set(finished) <= complete

    rerun = _start(tmp_path / "src", dest, seconds=0.0)
    _, errors = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, errors.decode()
    rows = _rows(dest)
    assert len(rows) == n_units and temporaries(dest) == []
    assert {unit for unit, row in rows.items() if row["status"] == "skipped"} == complete
    assert {unit for unit, row in rows.items() if row["status"] == "converted"} == set(rows) - complete
    for unit in finished:
        assert (dest / rows[unit]["output"]).stat().st_mtime_ns == stamps[unit]  # not redone
    for index in range(n_units):
        image = nib.load(str(dest / f"group{index % 3}" / f"case{index:03d}.nii.gz"))
        np.testing.assert_array_equal(np.asarray(image.dataobj), unit_array(index, (48, 40, 32)))
        np.testing.assert_allclose(image.affine, affine_for(index), atol=1e-5)


def test_ctrl_c_stops_cleanly_and_a_rerun_finishes(tmp_path):
    n_units = 20
    write_nifti_tree(tmp_path / "src", n_good=n_units, bad=False)
    dest = tmp_path / "out"
    process = _start(tmp_path / "src", dest, seconds=0.25)
    deadline = time.time() + 60
    while time.time() < deadline and len(_rows(dest)) < 3:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    process.wait(timeout=30)
    assert process.returncode == 130
    done = _rows(dest)
    assert 3 <= len(done) < n_units and temporaries(dest) == []
    assert {row["status"] for row in done.values()} == {"converted"}
    summary = (dest / "medconv-summary.json").read_text()
    assert '"interrupted": true' in summary
    rerun = _start(tmp_path / "src", dest, seconds=0.0)
    rerun.communicate(timeout=120)
    assert rerun.returncode == 0
    rows = _rows(dest)
    assert len(rows) == n_units and temporaries(dest) == []
    assert all(rows[unit]["status"] == "skipped" for unit in done)  # finished ones are not redone
    assert {row["status"] for row in rows.values()} <= {"skipped", "converted"}
