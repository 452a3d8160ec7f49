#!/usr/bin/env python
"""The DICOM header scan rate (discovery's per-file cost): headers per second, serial, warm cache.

Usage (from the repository root)::

    .venv/bin/python scripts/bench_dicom_scan.py [--reps 7] [--cpu] [--work /tmp/bench-scan] [--corpus ../shared/corpora]

Two inputs, each scanned ``--reps`` times in this process with
``medconv.readers.dicom.headers.scan_files(paths, jobs=1)`` (the header pass of
discovery, without grouping), best and median rate printed:

* **LIDC**: the 39 real GE CT files of ``lidc`` (512x512, a long header each),
  scanned 20 times over per repetition;
* **sample tree**: ``medconv.sample.write_sample_dataset`` with 20 patients of 40
  slices (written once into ``--work``, reused).

``--cpu`` times with the process's CPU time instead of the wall clock: on a
machine shared with other work it varies less. Run it before and after a change
to the header scan, side by side on one machine; the figures are in docs/dicom.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def rate(paths: list[str], reps: int, clock=time.perf_counter) -> tuple[float, float]:
    """(best, median) headers per second over ``reps`` scans of ``paths``, timed by ``clock``."""
    from medconv.readers.dicom.headers import scan_files

    scan_files(paths, jobs=1)  # warm the page cache and the imports
    rates = []
    for _ in range(reps):
        started = clock()
        result = scan_files(paths, jobs=1)
        rates.append(len(paths) / (clock() - started))
        assert len(result.headers) == len(paths), (len(result.headers), result.unreadable[:3], result.skipped[:3])
    return max(rates), statistics.median(rates)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--cpu", action="store_true", help="time by CPU time, not the wall clock")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-scan"))
    parser.add_argument("--corpus", type=Path, default=HERE.parent.parent / "shared" / "corpora")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE.parent))
    clock = time.process_time if args.cpu else time.perf_counter
    lidc = sorted(str(p) for p in (args.corpus / "lidc").rglob("*.dcm"))
    if lidc:
        best, median = rate(lidc * 20, args.reps, clock)
        print(f"LIDC ({len(lidc)} files x 20)      best {best:7.0f} headers/s   median {median:7.0f}")
    tree = args.work / "sample"
    if not (tree / ".complete").exists():
        from medconv.sample import write_sample_dataset

        write_sample_dataset(tree, patients=20, slices=40, size=64, seed=0)
        (tree / ".complete").write_text("")
    files = sorted(str(p) for p in tree.rglob("*.dcm"))
    best, median = rate(files, args.reps, clock)
    print(f"sample tree ({len(files)} files)    best {best:7.0f} headers/s   median {median:7.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
