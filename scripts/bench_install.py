#!/usr/bin/env python
"""What ``pip install .`` costs: venv size, package count, start-up and import time (issue 14, item 2).

Usage (from the repository root)::

    .venv/bin/python scripts/bench_install.py                    # clone HEAD, make a fresh venv, measure it
    .venv/bin/python scripts/bench_install.py --source /work/main  # another checkout (e.g. before a change)
    .venv/bin/python scripts/bench_install.py --venv /tmp/venv-x   # measure an existing venv, install nothing

Steps: ``git clone`` the source into a temporary folder (so only committed files
count, as from a clean clone), ``python -m venv`` + ``pip install CLONE`` (no
extras), then

* ``du -sb`` of the venv and the number of installed distributions
  (``pip list``), and whether dicom2nifti, scipy and python-gdcm are among them;
* wall time of ``medconv --help`` (interpreter start, click, medconv's CLI
  imports), median of ``--reps`` runs after one warm-up;
* wall time of ``medconv tcia2nii SERIES OUT --format nii.gz`` on a small
  generated CT series (16 slices of 128x128: start-up and imports dominate),
  median likewise;
* ``python -X importtime`` of that conversion: the import time of each
  package it loads (the modules' own times summed per top-level package,
  microseconds, one run).
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

HERE = Path(__file__).resolve().parent
HEAVY = ("dicom2nifti", "scipy", "python-gdcm")


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs)


def make_venv(source: Path, work: Path) -> Path:
    clone = work / "clone"
    run(["git", "clone", "-q", str(source), str(clone)])
    venv = work / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "pip"), "install", "-q", str(clone)])
    return venv


def timed(argv: list[str], reps: int, cwd: Path) -> list[float]:
    subprocess.run(argv, check=True, capture_output=True, cwd=cwd)  # warm-up: page cache, .pyc files
    times = []
    for _ in range(reps):
        out = cwd / "out"
        shutil.rmtree(out, ignore_errors=True)
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, cwd=cwd)
        times.append(time.perf_counter() - started)
    return times


def import_times(python: Path, series: Path, out: Path) -> dict[str, int]:
    """Import time (us) of each top-level package a conversion loads: its modules' own times (``-X importtime``)."""
    code = ("import sys; from medconv.cli.main import main; sys.argv = ['medconv', 'tcia2nii', sys.argv[1], "
            "sys.argv[2], '--format', 'nii.gz', '-q']; main()")
    shutil.rmtree(out, ignore_errors=True)
    done = subprocess.run([str(python), "-X", "importtime", "-c", code, str(series), str(out)],
                          capture_output=True, text=True)
    totals: dict[str, int] = {}
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|\s*(\S+)", line)
        if match:
            name = match.group(3).split(".")[0]
            totals[name] = totals.get(name, 0) + int(match.group(1))
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=HERE.parent, help="checkout to clone (default: this one)")
    parser.add_argument("--venv", type=Path, help="measure this existing venv instead of making one")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="medconv-install-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        venv = args.venv or make_venv(args.source.resolve(), work)
        install_s = time.perf_counter() - started
        python = venv / "bin" / "python"
        size = int(run(["du", "-sb", str(venv)]).stdout.split()[0])
        listed = json.loads(run([str(venv / "bin" / "pip"), "list", "--format", "json"]).stdout)
        names = sorted(p["name"].lower() for p in listed if p["name"].lower() not in ("pip", "setuptools"))
        series = work / "series"
        subprocess.run([str(python), str(HERE / "bench_workloads.py"), str(series),
                        json.dumps({"kind": "ct", "slices": 16, "size": 128, "seed": 1})], check=True,
                       env={**os.environ, "PYTHONPATH": ""})
        help_s = timed([str(venv / "bin" / "medconv"), "--help"], args.reps, work)
        convert_s = timed([str(venv / "bin" / "medconv"), "tcia2nii", str(series), "out", "--format", "nii.gz",
                           "--jobs", "1", "-q"], args.reps, work)
        imports = import_times(python, series, work / "out-importtime")
    result = {
        "source": str(args.venv or args.source), "install_s": round(install_s, 1),
        "venv_mb": round(size / 1e6, 1), "packages": len(names), "heavy_installed": [n for n in HEAVY if n in names],
        "help_s_median": round(statistics.median(help_s), 3), "help_s": [round(t, 3) for t in help_s],
        "convert_s_median": round(statistics.median(convert_s), 3), "convert_s": [round(t, 3) for t in convert_s],
        "import_us_top": dict(list(imports.items())[:12]), "distributions": names,
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
