"""How long ``medconv --help`` and each command's ``--help`` take, as a user runs them.

Each command line runs as a fresh process (the console script's interpreter), a
few times interleaved, and the best and median wall times are printed. Help must
stay fast: it is the first thing a new user runs.

    python scripts/bench_cli_startup.py            # the installed 'medconv' on PATH
    python scripts/bench_cli_startup.py --runs 15 --medconv .venv/bin/medconv
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

COMMAND_LINES = (
    ("--help",),
    ("tcia2nii", "--help"),
    ("mhd2nii", "--help"),
    ("convert", "--help"),
    ("scan", "--help"),
)


def wall_time(argv: list[str]) -> float:
    """Seconds one run of ``argv`` takes, output discarded; fails loudly on a non-zero exit."""
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="runs of each command line (interleaved)")
    parser.add_argument("--medconv", default=shutil.which("medconv") or "medconv", help="the medconv executable")
    args = parser.parse_args()
    times: dict[tuple[str, ...], list[float]] = {line: [] for line in COMMAND_LINES}
    wall_time([args.medconv, "--help"])  # warm the file cache
    for _ in range(args.runs):
        for line in COMMAND_LINES:
            times[line].append(wall_time([args.medconv, *line]))
    print(f"{'command':<24} {'best s':>8} {'median s':>9}   ({args.runs} runs each, python {sys.version.split()[0]})")
    for line, values in times.items():
        print(f"{'medconv ' + ' '.join(line):<24} {min(values):>8.3f} {statistics.median(values):>9.3f}")


if __name__ == "__main__":
    main()
