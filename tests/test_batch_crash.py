"""Crash containment in a batch: a unit that kills its process fails alone; every unit has a manifest row.

Issue 16 items 2-4: a SIGABRT from GDCM, a Rust panic, a runaway allocation or a
decoder that never ends used to take the run down (``TerminatedWorkerError``, a
raw traceback, exit 134) with no manifest row for the bad unit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from batch_trees import write_nifti_tree
from crash_readers import install_crash_reader
from medconv.batch import RunOptions, UnitJob, discover_sources, make_plan, read_manifest, run_plan

VENV_BIN = Path(sys.executable).parent


def rows(dest: Path) -> dict[str, dict]:
    return {row["unit_id"]: row for row in read_manifest(str(dest / "medconv-manifest.jsonl"))}


def crash_tree(root: Path, names: list[str]) -> Path:
    root.mkdir(parents=True)
    for name in names:
        (root / f"{name}.crash").write_text(name)
    return root


def run_crash_plan(src: Path, dest: Path, **options):
    plan = make_plan(discover_sources(str(src), ["crash"]), str(dest))
    return plan, run_plan(plan, UnitJob(), RunOptions(progress=False, **options))


@pytest.mark.slow  # the hang takes its 8 s time limit (long enough for a worker's first unit on a busy machine)
def test_workers_contain_signals_panics_memory_and_hangs(tmp_path, monkeypatch):
    install_crash_reader(tmp_path / "plugin", monkeypatch)
    names = ["abort", "segfault", "panic", "allocate", "hang", "ok-1", "ok-2", "ok-3", "ok-4"]
    src = crash_tree(tmp_path / "src", names)
    plan, report = run_crash_plan(src, tmp_path / "out", jobs=2, unit_memory=512 << 20, unit_seconds=8)
    found = rows(tmp_path / "out")
    assert set(found) == set(names) and report.done == report.total == len(names)
    assert report.exit_code == 1
    assert "signal 6, SIGABRT" in found["abort"]["reason"] and found["abort"]["error_type"] == "crashed"
    assert "abort" in found["abort"]["reason"]  # where it crashed, from faulthandler
    assert "signal 11, SIGSEGV" in found["segfault"]["reason"]
    assert "PanicException: index out of bounds" in found["panic"]["reason"]
    assert found["panic"]["error_type"] == "crashed"
    assert found["allocate"]["error_type"] == "memory" and "out of memory" in found["allocate"]["reason"]
    assert "time limit (8 s)" in found["hang"]["reason"]
    for name in names:
        assert str(src / f"{name}.crash") in found[name]["reason"] or name.startswith("ok")
    for index in range(1, 5):  # the units after the crashes ran on replacement workers
        row = found[f"ok-{index}"]
        assert row["status"] == "converted"
        np.testing.assert_array_equal(np.asarray(nib.load(tmp_path / "out" / row["output"]).dataobj),
                                      np.full((4, 3, 2), len(f"ok-{index}"), np.int16))
    log = (tmp_path / "out" / "medconv-errors.log").read_text()
    assert "Fatal Python error: Aborted" in log  # the dead worker's last output, for the record


def test_in_process_contains_panics_memory_and_guarded_decoder_crashes(tmp_path, monkeypatch):
    install_crash_reader(tmp_path / "plugin", monkeypatch)
    names = ["panic", "guarded-abort", "ok-1", "ok-2"]
    src = crash_tree(tmp_path / "src", names)
    plan, report = run_crash_plan(src, tmp_path / "out", jobs=1)
    found = rows(tmp_path / "out")
    assert set(found) == set(names)
    assert found["panic"]["error_type"] == "crashed" and "PanicException" in found["panic"]["reason"]
    guarded = found["guarded-abort"]
    assert guarded["error_type"] == "decoder-crashed"
    assert "decoder crashed (signal 6, SIGABRT) in JPEG-LS decoding" in guarded["reason"]
    assert {found["ok-1"]["status"], found["ok-2"]["status"]} == {"converted"}


def _corrupt_dicom_tree(root: Path) -> Path:
    """A JPEG-LS slice with Rows 32768 (GDCM aborts), a corrupt RLE frame (Rust panics), and a good CT slice."""
    from conftest import corpus_path
    from test_guard import corrupt_rle

    import pydicom

    corpus = corpus_path("pydicom_test_files")
    dataset = pydicom.dcmread(corpus / "MR_small_jpeg_ls_lossless.dcm")
    dataset.Rows = 32768
    (root / "a").mkdir(parents=True)
    dataset.save_as(root / "a" / "rows32768.dcm")
    (root / "b").mkdir()
    (root / "b" / "rle_panic.dcm").write_bytes(corrupt_rle(corpus / "MR_small_RLE.dcm"))
    (root / "c").mkdir()
    (root / "c" / "ct.dcm").write_bytes((corpus / "CT_small.dcm").read_bytes())
    return root


@pytest.mark.corpus
def test_tcia2nii_with_two_workers_survives_gdcm_aborting_and_rust_panicking(tmp_path):
    src = _corrupt_dicom_tree(tmp_path / "src")
    done = subprocess.run([str(VENV_BIN / "medconv"), "tcia2nii", str(src), str(tmp_path / "out"), "-j", "2",
                           "--include-2d"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    found = list(rows(tmp_path / "out").values())
    assert len(found) == 3
    by_file = {Path(row["source"]).name: row for row in found}
    assert by_file["rows32768.dcm"]["error_type"] == "decoder-crashed"  # the DICOM reader's guarded decode
    assert "signal 6, SIGABRT" in by_file["rows32768.dcm"]["reason"]
    assert "gdcm" in by_file["rows32768.dcm"]["reason"].lower()
    assert "PanicException" in by_file["rle_panic.dcm"]["reason"]
    assert by_file["ct.dcm"]["status"] == "converted"


@pytest.mark.corpus
def test_tcia2nii_in_one_process_survives_gdcm_aborting_and_a_rust_panic(tmp_path):
    """The DICOM reader decodes compressed transfer syntaxes in a guarded helper (issue 16 items 2-3)."""
    src = _corrupt_dicom_tree(tmp_path / "src")
    done = subprocess.run([str(VENV_BIN / "medconv"), "tcia2nii", str(src), str(tmp_path / "out"), "-j", "1",
                           "--include-2d"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    found = {Path(row["source"]).name: row for row in rows(tmp_path / "out").values()}
    assert found["rows32768.dcm"]["error_type"] == "decoder-crashed"
    assert "decoder crashed (signal 6, SIGABRT) in JPEG-LS" in found["rows32768.dcm"]["reason"]
    assert found["rle_panic.dcm"]["error_type"] == "decoder-crashed"
    assert "PanicException" in found["rle_panic.dcm"]["reason"] and found["ct.dcm"]["status"] == "converted"


def test_workers_never_import_from_the_folder_medconv_is_started_from(tmp_path):
    """A json.py or numpy.py where medconv is run must not run in its workers (issue 16 item 4)."""
    write_nifti_tree(tmp_path / "src", n_good=4, bad=False)
    hostile = tmp_path / "downloads"
    hostile.mkdir()
    marker = tmp_path / "planted-code-ran"
    for module in ("json", "numpy", "nibabel", "isal"):
        (hostile / f"{module}.py").write_text(f"open({str(marker)!r}, 'a').write('{module}\\n')\n"
                                              "raise SystemExit('planted module imported')\n")
    done = subprocess.run([str(VENV_BIN / "medconv"), "convert", str(tmp_path / "src"), str(tmp_path / "out"),
                           "--jobs", "2", "--quiet"], cwd=hostile, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not marker.exists(), marker.read_text()
    assert {row["status"] for row in rows(tmp_path / "out").values()} == {"converted"}
    summary = json.loads((tmp_path / "out" / "medconv-summary.json").read_text())
    assert summary["execution"] == "workers"
    assert sorted(p.name for p in hostile.iterdir()) == sorted(f"{m}.py" for m in ("json", "numpy", "nibabel", "isal"))


@pytest.mark.slow
def test_a_unit_that_kills_every_dask_worker_fails_alone(tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    install_crash_reader(tmp_path / "plugin", monkeypatch)
    src = crash_tree(tmp_path / "src", ["abort", "ok-1", "ok-2"])
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 1}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        plan, report = run_crash_plan(src, tmp_path / "out", backend="dask", scheduler=cluster.scheduler_address)
    found = rows(tmp_path / "out")
    assert set(found) == {"abort", "ok-1", "ok-2"} and report.done == 3
    assert found["abort"]["error_type"] == "crashed" and "Dask lost every worker that tried it" in found["abort"]["reason"]
    assert found["ok-1"]["status"] == found["ok-2"]["status"] == "converted"


def test_a_run_that_dies_in_its_own_process_is_named_by_the_next_run(tmp_path, monkeypatch):
    """An unguarded native abort in the main process ends that run; the lock file says which unit it was on.

    (A reader plugin that aborts outside any guard: the DICOM reader guards its compressed decodes.)
    """
    import os

    install_crash_reader(tmp_path / "plugin", monkeypatch)
    src = crash_tree(tmp_path / "src", ["abort", "ok-1"])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "plugin"), str(Path(__file__).parent)])}
    command = [str(VENV_BIN / "medconv"), "convert", str(src), str(tmp_path / "out"), "--reader", "crash"]
    died = subprocess.run(command + ["-j", "1"], capture_output=True, text=True, timeout=300, env=env)
    assert died.returncode in (-6, 134)  # SIGABRT: an uncaught C++ exception, nothing Python can catch
    rerun = subprocess.run(command + ["-j", "2"], capture_output=True, text=True, timeout=300, env=env)
    assert rerun.returncode == 1
    crashed = next(row for row in rows(tmp_path / "out").values() if row["error_type"] == "crashed")
    assert f"note: the last run into {tmp_path / 'out'} ended while converting {crashed['unit_id']}" in rerun.stderr


def test_work_beside_the_conversion_runs_in_guarded_workers_a_death_failing_its_call_alone(monkeypatch):
    """map_in_workers (the export's label survey and check): outcomes in order, a crash is one Died."""
    import crash_readers
    from medconv.batch.pool import map_in_workers
    from medconv.guard import Died, Raised, Returned

    monkeypatch.syspath_prepend(str(Path(crash_readers.__file__).parent))  # the workers import crash_readers
    calls = [(crash_readers.echo, 1), (crash_readers.abort,), (crash_readers.echo, 3), (crash_readers.echo, 4)]
    outcomes = map_in_workers(_call, calls, jobs=2)
    assert [type(o) for o in outcomes] == [Returned, Died, Returned, Returned]
    assert [o.value for o in outcomes if isinstance(o, Returned)] == [1, 3, 4]
    assert outcomes[1].death.signal == 6
    here = map_in_workers(_call, [(crash_readers.echo, 1), (crash_readers.fail_with_value_error,)], jobs=1)
    assert isinstance(here[0], Returned) and isinstance(here[1], Raised)
    assert isinstance(here[1].error, ValueError)


def _call(fn, *args):
    return fn(*args)
