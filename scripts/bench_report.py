#!/usr/bin/env python
"""The report of a benchmark run rebuilt from its log, for a run that was stopped before it printed one.

``scripts/benchmark.py`` prints its tables only at the end. Its log (stderr) has
one line per timed run; this script reads those lines back, takes the medians
the same way, runs the same output checks on the outputs the last repetition
left in the work folder, and prints the same Markdown, for the workloads that
finished (a workload counts when every tool has all its repetitions).

Usage::

    .venv/bin/python scripts/bench_report.py bench.log [--work bench-work] [--quick] [--reps 3]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import benchmark  # noqa: E402  (scripts/ is not a package)
from bench_measure import Run, slug  # noqa: E402

RUN = re.compile(r"\] (\S+) rep (\d+): (.+?)\s+([\d.]+) s  cpu\s+([\d.]+) s  rss\s+([\d.]+) MB  out\s+([\d.]+) MB"
                 r"  rc (-?\d+)  load ([\d.]+)")
INPUT = re.compile(r"\] (\S+): (\d+) input files, (\d+) MB read")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log", type=Path)
    parser.add_argument("--work", type=Path, default=Path("bench-work"))
    parser.add_argument("--quick", action="store_true", help="the run was --quick (sizes and verdicts)")
    parser.add_argument("--reps", type=int, required=True, help="the run's timed repetitions per tool")
    args = parser.parse_args()
    sizes = benchmark.QUICK if args.quick else benchmark.FULL
    runs: dict[str, list[Run]] = {}
    inputs: dict[str, tuple[int, float]] = {}
    for line in args.log.read_text().splitlines():
        if match := RUN.search(line):
            name, rep, tool, wall, cpu, rss, out, rc, load = match.groups()
            runs.setdefault(name, []).append(Run(tool.strip(), int(rep), float(wall), float(cpu), float(rss),
                                                 float(out), int(rc), float(load)))
        elif match := INPUT.search(line):
            inputs[match.group(1)] = (int(match.group(2)), float(match.group(3)))
    from bench_checks import check_outputs

    expected = {"tree": sizes.tree["n_series"], "luna": sizes.luna["n_images"],
                "scan": -(-sizes.scan["n_files"] // sizes.scan["slices_per_series"]),
                **{f"scaling-{n}": n for n in sizes.scaling["trees"]}}
    results = {}
    for name, rows in runs.items():
        tools = [t.name for t in benchmark.tools_for(name)]
        if any(sum(1 for r in rows if r.tool == t) < args.reps for t in tools):
            print(f"skipping {name}: not every tool finished {args.reps} repetitions", file=sys.stderr)
            continue
        out_root = args.work.resolve() / "out" / name
        results[name] = {"tools": tools, "medians": benchmark.medians_of(rows),
                         "outputs": {t: out_root / slug(t) for t in tools},
                         "input_files": inputs.get(name, (0, 0.0))[0], "input_mb": inputs.get(name, (0, 0.0))[1]}
        results[name]["problems"] = check_outputs(name, results[name]["outputs"], expected.get(name, 1))
    context = {
        "ct_volume_mb": sizes.ct["slices"] * sizes.ct["size"] ** 2 * 2 / 1e6, "scan_files": sizes.scan["n_files"],
        "ct_desc": f"{sizes.ct['size']}×{sizes.ct['size']}×{sizes.ct['slices']} int16, "
                   f"{sizes.ct['slices'] * sizes.ct['size'] ** 2 * 2 / 1e6:.0f} MB of voxels",
        "scaling_desc": f"LIDC-style, {sizes.scaling['tree']['low']}–{sizes.scaling['tree']['high']} slices of "
                        f"{sizes.scaling['tree']['size']}×{sizes.scaling['tree']['size']} per series",
        "scaling_long_desc": f"{sizes.scaling['long']['size']}×{sizes.scaling['long']['size']} slices",
    }
    print(f"Rebuilt from {args.log} (medians of {args.reps} timed repetitions per tool).\n")
    print(benchmark.markdown(results, context, quick=args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
