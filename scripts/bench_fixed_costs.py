#!/usr/bin/env python
"""The fixed cost of a small job, side by side: dcm2niix, a baseline medconv and this checkout's medconv.

For the two small-job targets (issue 10 fault 13: a 20-file enhanced series in
<= 2x dcm2niix; issue 14 item 2: a 4-series MR folder in <= 2x dcm2niix), where
medconv's time is mostly start-up, imports and per-run work rather than voxels.
Each round runs every tool once, in rotated order, each in a fresh process into
an empty folder (``scripts/bench_measure.py``: wall time, and CPU time from
wait4, which the load of a shared machine barely moves); the first round only
warms the caches. It prints the median and best of both per tool and the
medians' ratios to dcm2niix.

* ``dcm2niix -b y -z n`` (``--nii``) or ``-z y``, the test extra's binary;
* ``medconv tcia2nii SRC OUT -q`` (``--format nii`` with ``--nii``) from this
  checkout, and, with ``--baseline DIR``, from the package in DIR (put first on
  ``PYTHONPATH``; same interpreter and dependencies).

Compile both packages first: where ``PYTHONDONTWRITEBYTECODE`` is set (the
project's machine) an edited module is otherwise compiled in every run::

    git archive main | (mkdir -p /tmp/base && tar -x -C /tmp/base)
    .venv/bin/python -m compileall -q medconv /tmp/base/medconv
    .venv/bin/python scripts/bench_fixed_costs.py /tmp/x/in --nii --baseline /tmp/base --reps 9
    .venv/bin/python scripts/bench_fixed_costs.py bench-work/small/inputs/mr4 --baseline /tmp/base
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_measure import Tool, measure  # noqa: E402  (scripts/ is not a package)


def tools(python: str, nii: bool, baseline: Path | None) -> list[Tool]:
    """dcm2niix, the baseline medconv (if any) and this checkout's medconv."""
    dcm2niix = str(Path(python).parent / "dcm2niix")
    medconv_flags = ["-q"] + (["--format", "nii"] if nii else [])
    found = [Tool("dcm2niix", lambda src, out: [dcm2niix, "-b", "y", "-z", "n" if nii else "y", "-o", str(out),
                                                 str(src)])]
    if baseline is not None:
        found.append(Tool("medconv baseline", lambda src, out: [
            "env", f"PYTHONPATH={baseline}", python, "-m", "medconv", "tcia2nii", str(src), str(out / "o"),
            *medconv_flags], is_medconv=True))
    found.append(Tool("medconv", lambda src, out: [python, "-m", "medconv", "tcia2nii", str(src), str(out / "o"),
                                                   *medconv_flags], is_medconv=True))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--nii", action="store_true", help="uncompressed output (dcm2niix -z n, --format nii)")
    parser.add_argument("--baseline", type=Path, help="a folder holding another medconv package to compare")
    args = parser.parse_args(argv)
    measured = tools(sys.executable, args.nii, args.baseline.resolve() if args.baseline else None)
    walls: dict[str, list[float]] = {tool.name: [] for tool in measured}
    cpus: dict[str, list[float]] = {tool.name: [] for tool in measured}
    loads = []
    with tempfile.TemporaryDirectory(prefix="bench-fixed-") as work:
        for round_ in range(args.reps + 1):
            shift = round_ % len(measured)
            for tool in measured[shift:] + measured[:shift]:
                run = measure(tool, args.src, Path(work) / "out", round_, Path(work))
                if run.returncode != 0:
                    raise SystemExit(f"{tool.name} failed ({run.returncode}): {run.stderr_tail}")
                if round_:  # the first round warms the page cache
                    walls[tool.name].append(run.wall_s)
                    cpus[tool.name].append(run.cpu_s)
                    loads.append(run.load1)
    wall0, cpu0 = statistics.median(walls["dcm2niix"]), statistics.median(cpus["dcm2niix"])
    print(f"# {args.src}: {args.reps} interleaved rounds, load average {min(loads):.1f}-{max(loads):.1f}")
    print(f"{'tool':<17} {'wall median':>11} {'best':>7} {'ratio':>6} {'CPU median':>11} {'best':>7} {'ratio':>6}")
    for tool in measured:
        wall, cpu = statistics.median(walls[tool.name]), statistics.median(cpus[tool.name])
        print(f"{tool.name:<17} {wall:>10.3f}s {min(walls[tool.name]):>6.3f}s {wall / wall0:>5.2f}x "
              f"{cpu:>10.3f}s {min(cpus[tool.name]):>6.3f}s {cpu / cpu0:>5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
