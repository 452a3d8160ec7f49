"""Where units run (issue 14 item 2): in this process when the plan is small, workers when they pay off.

The rule's constants are measured (medconv/batch/execution.py, scripts/bench_small.py);
here the rule itself is checked, on plans whose input sizes are set with sparse files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batch_trees import write_nifti_tree
from medconv.batch import UnitJob
from medconv.batch.execution import MIN_BYTES_FOR_WORKERS, Mode, choose_execution, cores, job_for
from medconv.batch.plan import PlannedUnit
from medconv.cli.main import main
from medconv.source import Source
from medconv.transforms.pipeline import Preprocessing


def units_of(tmp_path: Path, sizes: list[int]) -> list[PlannedUnit]:
    units = []
    for index, size in enumerate(sizes):
        path = tmp_path / f"u{index}.raw"
        with open(path, "wb") as handle:
            handle.truncate(size)  # sparse: the size without the bytes
        units.append(PlannedUnit(Source(f"u{index}", "nifti", (str(path),)), str(tmp_path / f"o{index}.nii.gz"),
                                 f"o{index}.nii.gz"))
    return units


def test_a_small_plan_runs_in_this_process(tmp_path, monkeypatch):
    monkeypatch.setattr("medconv.batch.execution.available_memory", lambda: 64 << 30)
    units = units_of(tmp_path, [MIN_BYTES_FOR_WORKERS // 8] * 4)
    execution = choose_execution(units, jobs=None)
    assert execution.mode is Mode.IN_PROCESS and execution.threads == cores()
    assert "less than workers cost to start" in execution.reason


@pytest.mark.skipif(cores() < 2, reason="workers need two cores")
def test_a_large_plan_gets_workers_sharing_the_cores(tmp_path, monkeypatch):
    monkeypatch.setattr("medconv.batch.execution.available_memory", lambda: 64 << 30)
    units = units_of(tmp_path, [MIN_BYTES_FOR_WORKERS // 3] * 4)
    execution = choose_execution(units, jobs=None)
    assert execution.mode is Mode.WORKERS and execution.workers == min(cores(), 4)
    assert execution.workers * execution.threads <= cores()


@pytest.mark.parametrize("n_cores, mode, workers, threads", [
    pytest.param(2, Mode.IN_PROCESS, 1, 2, id="2-cores-one-process"),
    pytest.param(8, Mode.WORKERS, 4, 2, id="8-cores-4-workers"),
])
def test_compressed_output_counts_the_compression_threads_of_each_unit(tmp_path, monkeypatch, n_cores, mode,
                                                                        workers, threads):
    monkeypatch.setattr("medconv.batch.execution.cores", lambda: n_cores)
    monkeypatch.setattr("medconv.batch.execution.available_memory", lambda: 64 << 30)
    units = units_of(tmp_path, [MIN_BYTES_FOR_WORKERS // 2] * 6)
    execution = choose_execution(units, jobs=None, fmt="nii.gz")
    assert (execution.mode, execution.workers, execution.threads) == (mode, workers, threads)
    uncompressed = choose_execution(units, jobs=None, fmt="nii")
    assert uncompressed.mode is Mode.WORKERS and uncompressed.workers == min(n_cores, 6)


@pytest.mark.parametrize("jobs, n_units, mode, workers", [
    pytest.param(1, 5, Mode.IN_PROCESS, 1, id="jobs-1"),
    pytest.param(2, 5, Mode.WORKERS, 2, id="jobs-2"),
    pytest.param(4, 3, Mode.WORKERS, 3, id="never-more-workers-than-units"),
    pytest.param(2, 1, Mode.WORKERS, 1, id="one-unit-asked-for-workers"),
    pytest.param(None, 1, Mode.IN_PROCESS, 1, id="one-unit-by-default"),
])
def test_explicit_jobs_and_single_units(tmp_path, jobs, n_units, mode, workers):
    execution = choose_execution(units_of(tmp_path, [10] * n_units), jobs=jobs)
    assert (execution.mode, execution.workers) == (mode, workers)


def test_threads_follow_the_execution_for_compression_and_resampling(tmp_path):
    execution = choose_execution(units_of(tmp_path, [10] * 4), jobs=2)
    job = job_for(UnitJob(preprocessing=Preprocessing(spacing=1.0)), execution)
    assert job.write_options.threads == execution.threads == max(1, cores() // 2)
    assert job.preprocessing.threads == execution.threads  # SimpleITK gets the same share
    fixed = job_for(UnitJob(preprocessing=Preprocessing(spacing=1.0, threads=1)), execution)
    assert fixed.preprocessing.threads == 1  # a choice made by the caller is kept


def test_the_default_run_of_a_small_tree_starts_no_process(tmp_path, monkeypatch):
    from medconv.guard import GuardedProcess

    started = []
    original = GuardedProcess.start
    monkeypatch.setattr(GuardedProcess, "start", lambda self: (started.append(self.name), original(self))[1])
    write_nifti_tree(tmp_path / "src", n_good=4, bad=False)
    assert main(["convert", str(tmp_path / "src"), str(tmp_path / "out"), "-q"]) == 0
    summary = json.loads((tmp_path / "out" / "medconv-summary.json").read_text())
    assert summary["execution"] == "in-process" and summary["converted"] == 4
    assert started == []
    assert main(["convert", str(tmp_path / "src"), str(tmp_path / "out2"), "-q", "-j", "2"]) == 0
    assert len(started) == 2  # the same tree with --jobs 2: two workers, started once for the run


def test_available_memory_counts_the_page_cache_that_can_be_dropped():
    """Free pages alone are a fraction of it once files were read; psutil is the reference."""
    psutil = pytest.importorskip("psutil")
    from medconv.batch.execution import available_memory

    reference = psutil.virtual_memory().available
    assert abs(available_memory() - reference) < max(256 << 20, reference // 10)


@pytest.mark.skipif(cores() < 2, reason="workers need two cores")
def test_each_worker_is_given_its_share_of_the_cores(tmp_path):
    from batch_trees import ThreadsProbe
    from medconv.batch import RunOptions, discover_sources, make_plan, read_manifest, run_plan

    write_nifti_tree(tmp_path / "src", n_good=4, bad=False)
    plan = make_plan(discover_sources(str(tmp_path / "src"), ["nifti"]), str(tmp_path / "out"))
    report = run_plan(plan, UnitJob(preprocessing=ThreadsProbe()), RunOptions(jobs=2, progress=False, summary=False))
    assert report.execution == "workers"
    rows = read_manifest(str(tmp_path / "out" / "medconv-manifest.jsonl"))
    assert {tuple(row["history"]) for row in rows} == {(f"threads={cores() // 2}",)}


def test_the_share_reaches_a_converter_of_its_own_and_a_choice_is_kept(tmp_path):
    execution = choose_execution(units_of(tmp_path, [10] * 4), jobs=2)
    assert job_for(UnitJob(), execution).threads == execution.threads
    assert job_for(UnitJob(threads=1), execution).write_options.threads == 1
