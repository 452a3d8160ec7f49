"""The fuzz harness's seeded CI sample: MetaImage, NIfTI and TIFF mutants of the corpora end in a typed
error or the reference's volume, never a problem (docs/reliability.md; the long runs are quoted there)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import PROJECT_ROOT, corpus_path

#: Mutants in the sample: enough to reach every seed file's mutators a few times, a few seconds of work.
SAMPLE = 120


@pytest.mark.corpus
@pytest.mark.slow  # 4-8 s: two worker processes start and read 120 mutants
def test_a_seeded_sample_of_mutants_has_no_problem(tmp_path):
    corpora = corpus_path()
    findings = tmp_path / "findings.jsonl"
    completed = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "fuzz_inputs.py"), "--count", str(SAMPLE), "--seconds", "120",
         "--seed", "7", "--formats", "metaimage,nifti,tiff", "--corpora", str(corpora), "--quiet",
         "--findings", str(findings), "--all-findings"],
        capture_output=True, text=True, timeout=300)
    rows = [json.loads(line) for line in findings.read_text().splitlines()]
    problems = [row for row in rows if row["verdict"] not in ("typed-error", "equal", "not-found", "unmodelled", "net")]
    assert completed.returncode == 0 and not problems, completed.stdout + "\n".join(map(json.dumps, problems))
    assert len(rows) == SAMPLE
    verdicts = {(row["format"], row["verdict"]) for row in rows}
    for fmt in ("metaimage", "nifti", "tiff"):  # the sample reaches both outcomes in every format
        assert (fmt, "equal") in verdicts and (fmt, "typed-error") in verdicts, verdicts
