"""Manifest statuses: one ``str`` Enum (``medconv.batch.manifest.Status``), the public text docs/batch.md lists.

A run and its rerun over units that convert, fail (a truncated and a garbage NIfTI) and
are excluded (a DICOM structured report from pydicom's test files) write every status;
each row of both manifests must be a member, written as the member's text, and the
documented statuses must be exactly the members. Literal status strings in the package
source are refused too, so that a new status cannot be written without the enum.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

from batch_trees import write_nifti_tree
from conftest import PROJECT_ROOT, corpus_path
from medconv.batch import RunOptions, UnitJob, discover_sources, make_plan, run_plan
from medconv.batch.manifest import Status

DOCS = PROJECT_ROOT / "docs" / "batch.md"
PACKAGE = PROJECT_ROOT / "medconv"


def _manifests(dest: Path) -> tuple[list[dict], list[dict]]:
    rows = [json.loads(line) for line in (dest / "medconv-manifest.jsonl").read_text().splitlines()]
    with open(dest / "medconv-manifest.csv", newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    return rows, table


def _run(src: Path, dest: Path):
    plan = make_plan(discover_sources(str(src), None, str(dest)), str(dest))
    return run_plan(plan, UnitJob(), RunOptions(jobs=1, progress=False, summary=False))


def test_every_status_written_by_a_run_and_its_rerun_is_a_member(tmp_path):
    src, dest = tmp_path / "src", tmp_path / "out"
    write_nifti_tree(src, n_good=3, bad=True)
    (src / "report").mkdir()
    shutil.copy(corpus_path("pydicom_test_files", "test-SR.dcm"), src / "report" / "test-SR.dcm")
    seen = []
    for _ in range(2):  # the rerun skips what the first run converted
        report = _run(src, dest)
        rows, table = _manifests(dest)
        assert [row["status"] for row in table] == [row["status"] for row in rows]  # CSV and JSON: the same text
        assert {row["status"] for row in rows} <= {status.value for status in Status}
        assert sum(report.counts.values()) == len(rows)
        seen.append(sorted(row["status"] for row in rows))
    assert seen[0] == ["converted"] * 3 + ["excluded"] + ["failed"] * 2
    assert seen[1] == ["excluded"] + ["failed"] * 2 + ["skipped"] * 3
    assert {status for statuses in seen for status in statuses} == {status.value for status in Status}
    summary = report.as_dict()
    assert {status.value: summary[status.value] for status in Status} == {
        "converted": 0, "skipped": 3, "failed": 2, "excluded": 1}


def test_docs_list_exactly_the_statuses():
    row = next(line for line in DOCS.read_text(encoding="utf-8").splitlines() if line.startswith("| `status` |"))
    described = row.split("|")[2]
    documented = re.findall(r"`([^`]+)`", re.sub(r"\([^)]*\)", "", described))  # leave out the explanations
    assert sorted(documented) == sorted(status.value for status in Status)


def test_the_package_writes_no_status_as_a_bare_string():
    literal = re.compile(r"""\bstatus=["']|["']status["']\s*:\s*["']""")
    found = [f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()}"
             for path in sorted(PACKAGE.rglob("*.py"))
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
             if literal.search(line)]
    assert found == []


def test_a_member_prints_and_serialises_as_its_text():
    for status in Status:
        assert (str(status), f"{status}", f"{status:<10}".rstrip(), json.dumps(status)) == (
            status.value, status.value, status.value, json.dumps(status.value))
