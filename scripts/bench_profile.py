#!/usr/bin/env python
"""Where does medconv spend its time? Stage timings and cProfile summaries.

Two measurements on the benchmark's workloads (made by scripts/benchmark.py or
scripts/bench_workloads.py in ``bench-work/inputs``):

* ``series``: one CT series converted in this process, stage by stage without a
  profiler (imports, discovery = header pass, read = headers + pixels, write
  ``.nii.gz`` and ``.nii``), best of ``--reps``; then once under cProfile, whose
  top functions are printed. cProfile inflates pure-Python work (pydicom's
  element conversion) several times more than C work (ISA-L, file reads), so
  trust the stage timings for proportions and the profile for *which* calls.
* ``scan``: the DICOM header pass (``scan_files`` in one process, so the
  profile sees every file) on the first ``--files`` files of the scan tree:
  milliseconds per file for a bare ``pydicom.dcmread`` of the header, for
  medconv's ``read_header`` and for ``scan_one``, then a cProfile summary.

* ``prep``: ``--spacing 1`` (and ``--window lung --scale unit``) on the CT, in
  this process: the previous implementation's stages (SimpleITK
  ``DiscreteGaussianImageFilter``, ``ResampleImageFilter``, numpy rounding, the
  window on the whole array) against ``Preprocessing`` as it is now, best of
  ``--reps`` (each stage timed alone), then a cProfile of the current path with
  one thread (so that the profile sees where the work is).

Usage::

    .venv/bin/python scripts/bench_profile.py series [--ct bench-work/inputs/ct]
    .venv/bin/python scripts/bench_profile.py prep [--ct bench-work/inputs/ct] [--reps 3]
    .venv/bin/python scripts/bench_profile.py scan [--tree bench-work/inputs/scan] [--files 3000]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

T_START = time.perf_counter()
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the repository, not a possibly stale editable install


#: Tags a header pass needs (grouping, geometry, naming), for the bare-pydicom baseline.
BASELINE_KEYWORDS = (
    "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "PatientID",
    "StudyDate", "SeriesDescription", "SeriesNumber", "Modality", "ImageType", "ImageOrientationPatient",
    "ImagePositionPatient", "PixelSpacing", "Rows", "Columns", "NumberOfFrames", "SamplesPerPixel",
    "PhotometricInterpretation", "BitsAllocated", "AcquisitionNumber", "InstanceNumber", "EchoNumbers",
)


def top(profile: cProfile.Profile, sort: str, limit: int) -> str:
    stream = io.StringIO()
    pstats.Stats(profile, stream=stream).strip_dirs().sort_stats(sort).print_stats(limit)
    return stream.getvalue()


def profile_series(ct: Path, reps: int) -> None:
    import isal.igzip_threaded  # noqa: F401  (the imports a conversion needs, timed as one stage)
    import nibabel  # noqa: F401
    import numpy  # noqa: F401
    import pydicom  # noqa: F401

    from medconv.options import ReadOptions, WriteOptions
    from medconv.readers.dicom.reader import DicomReader
    from medconv.writers.nifti import NiftiWriter

    imports = time.perf_counter() - T_START
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory(dir=ct.parent) as tmp:
        def convert_once() -> dict[str, float]:
            reader = DicomReader(jobs=1)
            times = {}
            started = time.perf_counter()
            sources = list(reader.discover(str(ct)))
            times["discover (header pass)"] = time.perf_counter() - started
            started = time.perf_counter()
            volume = reader.read(sources[0], ReadOptions())
            times["read (headers + pixels)"] = time.perf_counter() - started
            for suffix in (".nii.gz", ".nii"):
                started = time.perf_counter()
                NiftiWriter().write(volume, os.path.join(tmp, "ct" + suffix), WriteOptions(overwrite=True, sidecar=False))
                times[f"write {suffix}"] = time.perf_counter() - started
            return times

        for _ in range(reps):
            for stage, seconds in convert_once().items():
                best[stage] = min(best.get(stage, float("inf")), seconds)
        print(f"One series, {ct} (best of {reps}, load average {os.getloadavg()[0]:.2f}):\n")
        print("| stage | seconds |\n|---|---:|")
        print(f"| imports (numpy, pydicom, nibabel, isal, medconv) | {imports:.3f} |")
        for stage, seconds in best.items():
            print(f"| {stage} | {seconds:.3f} |")
        profile = cProfile.Profile()
        profile.enable()
        convert_once()
        profile.disable()
    print("\ncProfile of one conversion (discover + read + both writes), by cumulative time:\n")
    print(top(profile, "cumulative", 30))
    print("by own time:\n")
    print(top(profile, "tottime", 20))


def profile_prep(ct: Path, reps: int) -> None:
    import dataclasses

    import numpy as np
    import SimpleITK as sitk

    import medconv
    from medconv.sitk_bridge import from_sitk, to_sitk
    from medconv.transforms import Preprocessing, window
    from medconv.transforms.resample import antialias_sigmas, grid_for_spacing
    from medconv.transforms.separable import available_threads

    volume = medconv.read(str(ct))
    grid = grid_for_spacing(volume, (1.0, 1.0, 1.0))
    sigmas = antialias_sigmas(volume, grid)
    threads = available_threads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    state: dict = {}

    def old_cast():
        state["image"] = sitk.Cast(to_sitk(volume), sitk.sitkFloat32)

    def old_gaussian():
        smoother = sitk.DiscreteGaussianImageFilter()
        smoother.SetVariance([s * s for s in sigmas])
        smoother.SetMaximumKernelWidth(128)
        smoother.SetMaximumError(0.01)
        smoother.SetUseImageSpacing(True)
        state["smoothed"] = smoother.Execute(state["image"])

    def old_resample():
        state["resampled"] = sitk.Resample(state["smoothed"], list(grid.shape), sitk.Transform(), sitk.sitkLinear,
                                           grid.origin, grid.spacing, grid.direction, -1024.0, sitk.sitkFloat32)

    def old_round():
        values = from_sitk(state["resampled"]).array
        state["float"] = volume.replace(array=values, spacing=grid.spacing, origin=grid.origin,
                                        direction=grid.direction_matrix)
        np.clip(np.trunc(values + np.copysign(0.5, values)), -32768, 32767).astype(np.int16)

    def old_window():
        window(state["float"], preset="lung", scale="unit")

    spacing = Preprocessing.from_options(spacing="1")
    windowed = Preprocessing.from_options(spacing="1", window="lung", scale="unit")
    stages = [("previous: to SimpleITK, cast to float32", old_cast),
              ("previous: DiscreteGaussianImageFilter (sigma %s mm)" % ", ".join(f"{s:.3f}" for s in sigmas),
               old_gaussian),
              ("previous: ResampleImageFilter, linear, to 1 mm", old_resample),
              ("previous: back to numpy, round to int16", old_round),
              ("previous: window lung, scale unit, whole array", old_window),
              ("now: Preprocessing(spacing=1)", lambda: spacing(volume)),
              ("now: Preprocessing(spacing=1, window=lung, scale=unit)", lambda: windowed(volume))]
    best = {name: float("inf") for name, _ in stages}
    for _ in range(reps):
        for name, stage in stages:
            started = time.perf_counter()
            stage()
            best[name] = min(best[name], time.perf_counter() - started)
    print(f"Preprocessing {ct} {volume.shape} -> {grid.shape}, {threads} threads, best of {reps} "
          f"(load average {os.getloadavg()[0]:.2f}):\n")
    print("| stage | seconds |\n|---|---:|")
    for name, _ in stages:
        print(f"| {name} | {best[name]:.3f} |")
    previous = sum(v for k, v in best.items() if k.startswith("previous") and "window" not in k)
    print(f"| previous, --spacing 1 in all | {previous:.3f} |")
    one = dataclasses.replace(windowed, threads=1)
    profile = cProfile.Profile()
    profile.enable()
    one(volume)
    profile.disable()
    print("\ncProfile of Preprocessing(spacing=1, window=lung, scale=unit) on one thread, by own time:\n")
    print(top(profile, "tottime", 15))


def profile_scan(tree: Path, n_files: int) -> None:
    import pydicom

    from medconv.readers.dicom import headers

    paths = sorted(str(p) for p in tree.rglob("*.dcm"))[:n_files]
    for path in paths:  # warm the page cache
        with open(path, "rb") as stream:
            stream.read()
    keywords = getattr(headers, "SCAN_KEYWORDS", None) or BASELINE_KEYWORDS
    tags = [pydicom.tag.Tag(k) for k in keywords]
    cases = {
        f"pydicom.dcmread(stop_before_pixels, {len(tags)} specific_tags)":
            lambda p: pydicom.dcmread(p, stop_before_pixels=True, specific_tags=tags),
        "headers.read_header": headers.read_header,
        "headers.scan_one (classify + read_header)": headers.scan_one,
    }
    print(f"Header pass, {len(paths)} files of {tree}, one process (load average {os.getloadavg()[0]:.2f}):\n")
    print("| call per file | ms/file | files/s on one core |\n|---|---:|---:|")
    for label, call in cases.items():
        started = time.perf_counter()
        for path in paths:
            call(path)
        seconds = time.perf_counter() - started
        print(f"| {label} | {seconds / len(paths) * 1e3:.3f} | {len(paths) / seconds:.0f} |")
    profile = cProfile.Profile()
    profile.enable()
    headers.scan_files(paths, jobs=1)
    profile.disable()
    print("\ncProfile of scan_files(jobs=1), by own time:\n")
    print(top(profile, "tottime", 20))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("series", "scan", "prep"))
    parser.add_argument("--ct", type=Path, default=Path("bench-work/inputs/ct"))
    parser.add_argument("--tree", type=Path, default=Path("bench-work/inputs/scan"))
    parser.add_argument("--files", type=int, default=3000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    if args.what == "series":
        profile_series(args.ct, args.reps)
    elif args.what == "prep":
        profile_prep(args.ct, args.reps)
    else:
        profile_scan(args.tree, args.files)
    return 0


if __name__ == "__main__":
    sys.exit(main())
