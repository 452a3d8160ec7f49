#!/usr/bin/env python
"""Where the fixed cost of one small ``medconv`` run goes: CPU and wall time per stage of a fresh process.

Each repetition runs the command in a fresh interpreter (the venv's python, as the
``medconv`` console script does) writing into an empty folder, and records, from
inside it, CPU time (``time.process_time``) and wall time at each stage boundary:

* ``interpreter``: from the process start to the first line of the driver (Python's
  own start-up and ``site``, the editable install's finder included);
* ``import cli``: ``import medconv.cli.main`` (what ``medconv --help`` pays too);
* ``import batch``: ``medconv.batch.dataset``, which the CLI imports when a dataset
  command runs (imported here first, so that the stages below can be timed);
* ``cli``: from ``main()`` until discovery starts (option parsing, the command's
  module, logging set-up);
* ``discover``, ``plan``, ``run``: ``discover_sources``, ``make_plan``, ``run_plan``
  (``run``: lock, manifest, the units' read + write, summary JSON);
* ``after``: from the end of ``run_plan`` to the end of ``main()`` (the summary);
* ``exit``: the rest of the process's CPU (from ``wait4``: interpreter shutdown,
  garbage collection, threads).

The warm-up run writes the bytecode caches even where ``PYTHONDONTWRITEBYTECODE``
is set (as on the project's machine): otherwise every edited module would be
compiled again in every run (170-220 ms for 32 edited modules, measured
with cProfile), which no installed medconv pays.

It prints the best and the median of every stage over ``--reps`` (stages
are timed within one process, so best-of is meaningful on a shared machine) and
the whole process's wall and CPU times. With ``--importtime`` it also lists the
modules imported by the run with their self times (the best of the repetitions).

Usage (from the repository root)::

    .venv/bin/python scripts/bench_startup.py SRC [--reps 9] [-- tcia2nii flags ...]
    .venv/bin/python scripts/bench_startup.py /tmp/x/in --reps 15 -- --format nii
    .venv/bin/python scripts/bench_startup.py SRC --command mhd2nii --importtime

``SRC`` is any dataset folder (e.g. the one ``scripts/bench_dicom_layouts.py`` or
``scripts/bench_small.py`` writes); the command defaults to ``tcia2nii SRC OUT -q``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGES = ("interpreter", "import cli", "import batch", "cli", "discover", "plan", "run", "after", "exit")

#: Runs in the child: stamps (CPU, wall) at each stage boundary and prints them as JSON on the last line.
DRIVER = r"""
import json, os, sys, time
T0 = float(os.environ["BENCH_T0"])
stamps = [("interpreter", time.process_time(), time.time())]
def stamp(name):
    stamps.append((name, time.process_time(), time.time()))
import medconv.cli.main as cli_main
cli_main.set_process_defaults()  # as main() does for the console script, before numpy is imported below
stamp("import cli")
import medconv.batch.dataset as dataset
stamp("import batch")
def timed(name, function, before=None):
    def wrapper(*args, **kwargs):
        if before:
            stamp(before)
        try:
            return function(*args, **kwargs)
        finally:
            stamp(name)
    return wrapper
dataset.discover_sources = timed("discover", dataset.discover_sources, before="cli")
dataset.make_plan = timed("plan", dataset.make_plan)
dataset.run_plan = timed("run", dataset.run_plan)
code = cli_main.main(sys.argv[1:])
import gc; gc.freeze()  # as main() does before the console script exits
stamp("after")
print("\n" + json.dumps({"code": code, "t0": T0, "stamps": stamps}), flush=True)
"""


def measure(python: str, argv: list[str], importtime: bool) -> tuple[dict[str, tuple[float, float]], float, float, str]:
    """Per-stage (CPU, wall) seconds of one run, and the process's wall and CPU."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.time()
    env = dict(os.environ, BENCH_T0=repr(start))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the warm-up writes the bytecode caches an installed medconv has
    flags = ["-X", "importtime"] if importtime else []
    completed = subprocess.run([python, *flags, "-c", DRIVER, *argv], capture_output=True, text=True, env=env)
    wall = time.time() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if completed.returncode != 0:
        raise SystemExit(f"the run failed ({completed.returncode}):\n{completed.stdout}\n{completed.stderr}")
    record = json.loads(completed.stdout.strip().splitlines()[-1])
    stages: dict[str, tuple[float, float]] = {}
    previous_cpu, previous_wall = 0.0, record["t0"]
    for name, cpu_at, wall_at in record["stamps"]:
        stages[name] = (cpu_at - previous_cpu, wall_at - previous_wall)
        previous_cpu, previous_wall = cpu_at, wall_at
    stages["exit"] = (cpu - previous_cpu, start + wall - previous_wall)
    return stages, wall, cpu, completed.stderr


def import_self_times(stderr: str) -> dict[str, int]:
    """``module -> self microseconds`` from ``-X importtime`` output."""
    found = {}
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if match:
            found[match[4]] = int(match[1])
    return found


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--command", default="tcia2nii")
    parser.add_argument("--python", default=sys.executable, help="the interpreter (default: this one)")
    parser.add_argument("--importtime", action="store_true", help="also list the imported modules' self times")
    args = parser.parse_args(argv)
    out = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    command = [args.command, str(args.src), str(out / "out"), "-q", *extra]
    print(f"# bench_startup {time.strftime('%Y-%m-%d %H:%M')}: medconv {' '.join(command[:1] + ['SRC', 'OUT'] + command[3:])}"
          f" x {args.reps} (+1 warm-up), load {os.getloadavg()[0]:.1f}", flush=True)
    runs = []
    imports: dict[str, int] = {}
    try:
        for rep in range(args.reps + 1):
            shutil.rmtree(out / "out", ignore_errors=True)
            stages, wall, cpu, stderr = measure(args.python, command, args.importtime)
            if rep:  # the first run warms the page cache
                runs.append((stages, wall, cpu))
                for module, micros in import_self_times(stderr).items():
                    imports[module] = min(imports.get(module, micros), micros)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    print(f"{'stage':<14} {'CPU ms best':>12} {'median':>8} {'wall ms best':>13} {'median':>8}")
    for stage in STAGES:
        cpus = [stages[stage][0] * 1000 for stages, _, _ in runs if stage in stages]
        walls = [stages[stage][1] * 1000 for stages, _, _ in runs if stage in stages]
        if cpus:
            print(f"{stage:<14} {min(cpus):>12.1f} {statistics.median(cpus):>8.1f} {min(walls):>13.1f} "
                  f"{statistics.median(walls):>8.1f}")
    walls = [wall for _, wall, _ in runs]
    cpus = [cpu for _, _, cpu in runs]
    print(f"{'process':<14} {min(cpus) * 1000:>12.1f} {statistics.median(cpus) * 1000:>8.1f} "
          f"{min(walls) * 1000:>13.1f} {statistics.median(walls) * 1000:>8.1f}")
    if imports:
        print(f"\n{len(imports)} modules imported; sum of their best self times {sum(imports.values()) / 1000:.1f} ms")
        groups: dict[str, int] = {}
        for module, micros in imports.items():
            parts = module.split(".")
            key = ".".join(parts[:2]) if parts[0] == "medconv" else parts[0]
            groups[key] = groups.get(key, 0) + micros
        for key, micros in sorted(groups.items(), key=lambda item: -item[1])[:30]:
            print(f"  {key:<36} {micros / 1000:7.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
