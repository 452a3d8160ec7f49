#!/usr/bin/env python
"""Which ``WriteOptions.compression_level`` (and how many threads) for medconv's ``.nii.gz``?

Reads the benchmark's 300-slice CT with pydicom (not with medconv's reader: this
measures the writer alone), builds a :class:`medconv.Volume` the way readers do
(the transposed view of a C-ordered ``(k, j, i)`` int16 buffer of Hounsfield
units) and times ``NiftiWriter().write`` for every compression level and for 1
and 2 threads, best of ``--reps``. For comparison it runs dcm2niix ``-z y``
(its default, pigz level 6) and ``-z y -1`` on the same series, and prints the
sizes of zlib levels 1 and 6 of the same bytes (what Python's gzip would give).

Usage::

    .venv/bin/python scripts/bench_compression.py [--ct bench-work/inputs/ct] [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
# The repository first on the path: the venv's editable install of medconv may
# resolve "medconv" as a namespace package when run from outside the repository.
sys.path.insert(0, str(HERE.parent))
FULL_CT = {"kind": "ct", "slices": 300, "size": 512, "seed": 0}


def load_ct(folder: Path):
    """The series as a medconv Volume built from pydicom's pixel data (HU, int16)."""
    import pydicom

    from medconv import Volume

    files = sorted(folder.glob("*.dcm"))
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    order = np.argsort([float(h.ImagePositionPatient[2]) for h in headers])
    first = headers[order[0]]
    buffer = np.empty((len(files), int(first.Rows), int(first.Columns)), dtype=np.int16)
    for k, index in enumerate(order):
        pixels = pydicom.dcmread(files[index]).pixel_array
        np.add(pixels, np.int16(round(float(first.RescaleIntercept))), out=buffer[k], casting="unsafe")
    positions = np.array([[float(v) for v in headers[i].ImagePositionPatient] for i in order])
    step = float(np.median(np.diff(positions[:, 2])))
    row_mm, col_mm = (float(v) for v in first.PixelSpacing)
    return Volume(buffer.transpose(2, 1, 0), spacing=(col_mm, row_mm, abs(step)), origin=tuple(positions[0]),
                  direction=np.diag([1.0, 1.0, 1.0 if step > 0 else -1.0]))


def time_write(volume, path: Path, level: int | None, threads: int, reps: int) -> tuple[float, int]:
    """(best wall seconds, bytes) of NiftiWriter().write at ``level`` with ``threads``."""
    from medconv.options import WriteOptions
    from medconv.writers.nifti import NiftiWriter

    best = float("inf")
    options = WriteOptions(compression_level=level, threads=threads, sidecar=False, overwrite=True)
    for _ in range(reps):
        started = time.perf_counter()
        NiftiWriter().write(volume, path, options)
        best = min(best, time.perf_counter() - started)
    return best, path.stat().st_size


def raw_isal_speeds(data: bytes, reps: int) -> list[str]:
    """Lines: ISA-L alone, in memory (per level, one core) and threaded to /dev/null (1 vs 2 threads)."""
    from isal import igzip, igzip_threaded

    def best(call) -> float:
        times = []
        for _ in range(reps):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
        return min(times)

    lines = []
    for level in range(4):
        seconds = best(lambda: igzip.compress(data, level))
        lines.append(f"- isal.igzip.compress level {level}, one core: {seconds:.3f} s, {len(data) / seconds / 1e6:.0f} MB/s")
    view = memoryview(data)
    for threads in (1, 2):
        def write_threaded():
            with igzip_threaded.open(os.devnull, "wb", compresslevel=1, threads=threads) as stream:
                for start in range(0, len(view), 8 << 20):
                    stream.write(view[start : start + (8 << 20)])
        seconds = best(write_threaded)
        lines.append(f"- igzip_threaded level 1, {threads} thread(s), to /dev/null: {seconds:.3f} s, "
                     f"{len(data) / seconds / 1e6:.0f} MB/s")
    return lines


def dcm2niix_size(folder: Path, out: Path, *flags: str) -> tuple[float, int]:
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*"):
        old.unlink()
    started = time.perf_counter()
    subprocess.run([str(Path(sys.executable).parent / "dcm2niix"), *flags, "-b", "n", "-o", str(out), str(folder)],
                   check=True, capture_output=True)
    wall = time.perf_counter() - started
    return wall, sum(p.stat().st_size for p in out.glob("*.nii*"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ct", type=Path, default=Path("bench-work/inputs/ct"))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--levels", default="default,0,1,4,7",
                        help="WriteOptions.compression_level values (0-9, or 'default' for None); "
                             "isal_level maps them onto ISA-L 0-3")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    subprocess.run([sys.executable, str(HERE / "bench_workloads.py"), str(args.ct), json.dumps(FULL_CT)], check=True)
    volume = load_ct(args.ct)
    raw_mb = volume.array.nbytes / 1e6
    from medconv.writers.nifti import isal_level

    rows = []
    with tempfile.TemporaryDirectory(dir=args.ct.parent) as tmp:
        tmp = Path(tmp)
        ref_wall, ref_bytes = dcm2niix_size(args.ct, tmp / "d_default", "-z", "y")
        fast_wall, fast_bytes = dcm2niix_size(args.ct, tmp / "d_fast", "-z", "y", "-1")
        data = np.ascontiguousarray(volume.array.T).tobytes()
        zlib_sizes = {lvl: len(zlib.compress(data, lvl)) for lvl in (1, 6)}
        isal_lines = raw_isal_speeds(data, args.reps)
        for level in (None if v.strip() == "default" else int(v) for v in args.levels.split(",")):
            for threads in (1, 2):
                wall, size = time_write(volume, tmp / f"l{level}.nii.gz", level, threads, args.reps)
                rows.append({"level": level, "isal_level": isal_level(level), "threads": threads, "wall_s": wall,
                             "mb": size / 1e6, "ratio_to_dcm2niix_default": size / ref_bytes})
        stored = volume.replace(array=(np.asarray(volume.array.T) + np.int16(1024)).T)  # what dcm2niix stores
        stored_rows = []
        for level in (1, 4, 7):
            wall, size = time_write(stored, tmp / f"s{level}.nii.gz", level, 2, 1)
            stored_rows.append({"level": level, "mb": size / 1e6, "ratio_to_dcm2niix_default": size / ref_bytes})
    print(f"volume {volume.shape} int16, {raw_mb:.1f} MB of voxels; load average {os.getloadavg()[0]:.2f}; "
          f"best of {args.reps}\n")
    print(f"dcm2niix -z y (default): {ref_bytes / 1e6:.1f} MB in {ref_wall:.2f} s (whole conversion); "
          f"-z y -1: {fast_bytes / 1e6:.1f} MB in {fast_wall:.2f} s")
    print(f"zlib level 1: {zlib_sizes[1] / 1e6:.1f} MB; zlib level 6: {zlib_sizes[6] / 1e6:.1f} MB "
          f"(raw deflate of the same bytes)\n")
    print("ISA-L alone on the same bytes:\n")
    print("\n".join(isal_lines) + "\n")
    print("| compression_level | ISA-L level | threads | write s (best) | MB/s in | size MB | × dcm2niix default |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {'default (None)' if r['level'] is None else r['level']} | {r['isal_level']} | {r['threads']} | {r['wall_s']:.3f} | {raw_mb / r['wall_s']:.0f} "
              f"| {r['mb']:.1f} | {r['ratio_to_dcm2niix_default']:.3f} |")
    print("\nSame volume as stored values (HU + 1024, what dcm2niix writes with scl_inter = -1024), 2 threads:\n")
    for r in stored_rows:
        print(f"- compression_level {r['level']}: {r['mb']:.1f} MB, {r['ratio_to_dcm2niix_default']:.3f}× dcm2niix default")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "stored_rows": stored_rows, "dcm2niix_default_bytes": ref_bytes,
                                         "dcm2niix_fast_bytes": fast_bytes, "zlib": zlib_sizes}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
