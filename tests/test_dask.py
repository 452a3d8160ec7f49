"""The same plan on a Dask cluster (one task per unit on distributed) gives the same bytes as a local run."""

from __future__ import annotations

import pytest

from batch_trees import output_bytes, write_nifti_tree
from medconv.batch import RunOptions, UnitJob, discover_sources, make_plan, read_manifest, run_plan
from medconv.cli.main import main
from medconv.errors import UsageError

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        yield local


def test_dask_run_is_byte_identical_to_a_local_run(tmp_path, cluster):
    write_nifti_tree(tmp_path / "src", n_good=8)
    outputs, statuses = [], []
    for backend in ("local", "dask"):
        dest = tmp_path / backend
        plan = make_plan(discover_sources(str(tmp_path / "src"), ["nifti"]), str(dest))
        report = run_plan(plan, UnitJob(fmt="nii.gz"),
                          RunOptions(jobs=1 if backend == "local" else None, backend=backend,
                                     scheduler=cluster.scheduler_address, progress=False))
        outputs.append(output_bytes(dest))
        statuses.append({row["unit_id"]: row["status"] for row in read_manifest(str(dest / "medconv-manifest.jsonl"))})
        assert report.counts == {"converted": 8, "failed": 2}
    assert len(outputs[0]) == 16
    assert outputs[0] == outputs[1]
    assert statuses[0] == statuses[1]


def test_the_cli_finds_the_scheduler_in_the_environment(tmp_path, cluster, monkeypatch):
    write_nifti_tree(tmp_path / "src", n_good=3, bad=False)
    monkeypatch.setenv("MEDCONV_SCHEDULER", cluster.scheduler_address)
    code = main(["convert", str(tmp_path / "src"), str(tmp_path / "out"), "--backend", "dask", "--quiet"])
    assert code == 0
    assert len([p for p in output_bytes(tmp_path / "out") if p.endswith(".nii.gz")]) == 3


def test_dask_without_a_scheduler_is_a_usage_error(tmp_path, monkeypatch):
    write_nifti_tree(tmp_path / "src", n_good=1, bad=False)
    monkeypatch.delenv("MEDCONV_SCHEDULER", raising=False)
    plan = make_plan(discover_sources(str(tmp_path / "src"), ["nifti"]), str(tmp_path / "out"))
    with pytest.raises(UsageError, match="scheduler"):
        run_plan(plan, UnitJob(), RunOptions(backend="dask", progress=False))
