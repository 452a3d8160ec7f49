#!/usr/bin/env python
"""Small work has no fixed cost: medconv's default ``--jobs`` against ``--jobs 1`` and dcm2niix (issue 14 item 2).

Usage (from the repository root)::

    .venv/bin/python scripts/bench_small.py               # all workloads, 5 timed repetitions
    .venv/bin/python scripts/bench_small.py --reps 3 --only mr4 --json small.json

Workloads (generated once under ``--work``, default ``./bench-work/small``):

* ``mr4``: one folder holding four small MR series (256x256, 20-30 slices,
  one file per slice, all in one folder as a scanner export), the case of
  issue 14: dcm2niix converts it in about 0.3 s;
* ``ct1``: one 512x512x100 CT series (one unit: workers can never pay off);
* ``tree20``: 20 small LIDC-style CT series (128x128, 20-40 slices);
* ``tree8big``: 8 LIDC-style CT series of 512x512x60-90 (300 MB) to ``.nii.gz``;
* ``tree8npz``: the same to ``.npz`` (single-threaded zlib: where workers can pay off);
* ``luna4``: four LUNA16-style ``.mhd`` volumes (256x256, 40-60 slices).

Each repetition runs every tool once, in rotated order, each in a fresh process
writing into an empty folder (``scripts/bench_measure.py``): medconv with its
default ``--jobs``, with ``--jobs 1`` and with ``--jobs 2``; dcm2niix ``-z y``
(its default gzip mode) on the DICOM workloads. The table gives medians, the
default's ratio to ``--jobs 1`` (target <= 1.10 on every workload) and, for
``mr4``, medconv's default against dcm2niix (target <= 2.0).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
sys.path.insert(0, str(HERE))
from bench_measure import Tool, measure, slug  # noqa: E402  (scripts/ is not a package)

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
#: Target: the default --jobs is never slower than --jobs 1 by more than this ratio.
DEFAULT_VS_ONE_JOB = 1.10
#: Target: the 4-series MR folder in at most this multiple of dcm2niix's wall time.
MR4_VS_DCM2NIIX = 2.0

WORKLOADS = {
    "mr4": dict(kind="mr4", n_series=4, size=256, low=20, high=30, seed=400),
    "ct1": dict(kind="ct", slices=100, size=512, seed=0),
    "tree20": dict(kind="tree", n_series=20, size=128, low=20, high=40, seed=100),
    "tree8big": dict(kind="tree", n_series=8, size=512, low=60, high=90, seed=500),
    "tree8npz": dict(kind="tree", n_series=8, size=512, low=60, high=90, seed=500),
    "luna4": dict(kind="luna", n_images=4, size=256, low=40, high=60, seed=200),
}
DICOM_WORKLOADS = ("mr4", "ct1", "tree20", "tree8big", "tree8npz")
#: Extra medconv flags per workload.
FLAGS = {"tree8npz": ("--format", "npz")}
#: Workloads that share their input folder with another.
SAME_INPUT = {"tree8npz": "tree8big"}


def write_mr_folder(dest: str | os.PathLike, n_series: int = 4, size: int = 256, low: int = 20, high: int = 30,
                    seed: int = 400) -> list[str]:
    """Write ``n_series`` small MR series into one flat folder (as a scanner's export); returns the files.

    Written with pydicom and numpy only. Each series has its own UID, series
    number, description and slice count (uniform in [low, high]); slices are
    axial, 4 mm apart, 0.9375 mm pixels, uint16 stored values of a smooth head-like
    phantom with noise.
    """
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID

    from bench_workloads import _uid, lidc_series_slices

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    descriptions = ("t1_se_tra", "t2_tse_tra", "flair_tra", "pd_tse_tra", "t1_mprage_tra", "dwi_b0")
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    radius = np.hypot((x - size / 2) / (0.38 * size), (y - size / 2) / (0.45 * size))
    files = []
    for index, n_slices in enumerate(lidc_series_slices(n_series, low, high, seed)):
        series_seed = seed + index
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MR_IMAGE_STORAGE
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        ds = Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
        ds.SOPClassUID = MR_IMAGE_STORAGE
        ds.StudyDate = ds.SeriesDate = "20000101"
        ds.StudyTime = "090000"
        ds.SeriesTime = f"09{index:02d}00"
        ds.Modality = "MR"
        ds.Manufacturer = "SIEMENS"
        ds.MagneticFieldStrength = "1.5"
        ds.PatientName = ds.PatientID = "BENCH-MR"
        ds.StudyDescription = "HEAD"
        ds.SeriesDescription = descriptions[index % len(descriptions)]
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "NONE"
        ds.RepetitionTime = str(500 + 1500 * index)
        ds.EchoTime = str(15 + 30 * index)
        ds.SliceThickness = "4"
        ds.SpacingBetweenSlices = "4"
        ds.StudyInstanceUID = _uid(seed, 1)
        ds.SeriesInstanceUID = _uid(series_seed, 2)
        ds.FrameOfReferenceUID = _uid(seed, 3)
        ds.SeriesNumber = index + 2
        ds.AcquisitionNumber = 1
        ds.PatientPosition = "HFS"
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = ds.Columns = size
        ds.PixelSpacing = ["0.9375", "0.9375"]
        ds.BitsAllocated = 16
        ds.BitsStored = 12
        ds.HighBit = 11
        ds.PixelRepresentation = 0
        contrast = 300.0 + 250.0 * index
        for k in range(n_slices):
            z = -60.0 + 4.0 * k
            shrink = 1.0 + 0.3 * abs(k - n_slices / 2) / n_slices
            image = np.where(radius * shrink <= 1, contrast * (1.2 - 0.5 * radius * shrink), 20.0)
            image += rng.standard_normal((size, size), dtype=np.float32) * 12.0
            ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID = _uid(series_seed, 4, k + 1)
            ds.InstanceNumber = k + 1
            ds.ImagePositionPatient = [f"{-size * 0.9375 / 2:.4f}", f"{-size * 0.9375 / 2:.4f}", f"{z:.4f}"]
            ds.SliceLocation = f"{z:.4f}"
            ds.PixelData = np.clip(np.rint(image), 0, 4095).astype(np.uint16).tobytes()
            path = dest / f"MR{index + 2:03d}_{k + 1:04d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            files.append(str(path))
    return files


def make_workload(folder: Path, params: dict) -> None:
    """Generate (or reuse) one workload folder, in this process (the measuring happens in children)."""
    from bench_workloads import MAKERS, ensure

    options = {key: value for key, value in params.items() if key != "kind"}
    maker = write_mr_folder if params["kind"] == "mr4" else MAKERS[params["kind"]]
    ensure(folder, params, lambda dest: maker(dest, **options))


def medconv(command: str, *flags: str):
    binary = str(VENV_BIN / "medconv")
    return lambda src, out: [binary, command, str(src), str(out), "--quiet", *flags]


def tools_for(name: str) -> list[Tool]:
    command = "mhd2nii" if name.startswith("luna") else "tcia2nii"
    extra = FLAGS.get(name, ())
    outputs = ("*.npz",) if "npz" in extra else ("*.nii.gz", "*.nii")
    tools = [
        Tool("medconv default", medconv(command, *extra), is_medconv=True, outputs=outputs),
        Tool("medconv --jobs 1", medconv(command, "--jobs", "1", *extra), is_medconv=True, outputs=outputs),
        Tool("medconv --jobs 2", medconv(command, "--jobs", "2", *extra), is_medconv=True, outputs=outputs),
    ]
    if name in DICOM_WORKLOADS and not extra:
        binary = str(VENV_BIN / "dcm2niix")
        tools.append(Tool("dcm2niix -z y", lambda src, out: [binary, "-z", "y", "-o", str(out), str(src)]))
    return tools


def warm(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            path.read_bytes()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("bench-work") / "small")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--only", action="append", choices=sorted(WORKLOADS), help="run only these workloads")
    parser.add_argument("--json", type=Path, default=None, help="write every run here")
    args = parser.parse_args(argv)
    names = args.only or list(WORKLOADS)
    stamp = time.strftime("%Y-%m-%d %H:%M")
    print(f"# bench_small {stamp} on {platform.node()}: {os.cpu_count()} cores, python {platform.python_version()}",
          flush=True)
    results = {}
    failures = 0
    for name in names:
        folder = args.work / "inputs" / SAME_INPUT.get(name, name)
        subprocess.run([sys.executable, __file__, "--make", str(folder), json.dumps(WORKLOADS[name])], check=True)
        warm(folder)
        tools = tools_for(name)
        runs = {tool.name: [] for tool in tools}
        logs = args.work / "logs" / name
        logs.mkdir(parents=True, exist_ok=True)
        for tool in tools:  # warm-up, untimed
            measure(tool, folder, args.work / "out" / slug(tool.name), -1, logs)
        for rep in range(args.reps):
            order = tools[rep % len(tools):] + tools[: rep % len(tools)]
            for tool in order:
                run = measure(tool, folder, args.work / "out" / slug(tool.name), rep, logs)
                if run.returncode not in (0, 1):
                    print(f"  {tool.name}: exit {run.returncode}: {run.stderr_tail}", flush=True)
                runs[tool.name].append(run)
        medians = {tool: statistics.median(r.wall_s for r in rs) for tool, rs in runs.items()}
        results[name] = {"medians_wall_s": medians, "runs": {t: [asdict(r) for r in rs] for t, rs in runs.items()}}
        ratio = medians["medconv default"] / medians["medconv --jobs 1"]
        verdict = "PASS" if ratio <= DEFAULT_VS_ONE_JOB else "FAIL"
        failures += verdict == "FAIL"
        line = "  ".join(f"{tool} {wall:.2f} s" for tool, wall in medians.items())
        print(f"{name:9s} {line}", flush=True)
        print(f"{'':9s} default / --jobs 1 = {ratio:.2f} (target <= {DEFAULT_VS_ONE_JOB}) {verdict}", flush=True)
        if name == "mr4" and "dcm2niix -z y" in medians:
            peer = medians["medconv default"] / medians["dcm2niix -z y"]
            verdict = "PASS" if peer <= MR4_VS_DCM2NIIX else "FAIL"
            failures += verdict == "FAIL"
            print(f"{'':9s} default / dcm2niix = {peer:.2f} (target <= {MR4_VS_DCM2NIIX}) {verdict}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"date": stamp, "load": os.getloadavg(), "results": results}, indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--make":
        make_workload(Path(sys.argv[2]), json.loads(sys.argv[3]))
        sys.exit(0)
    sys.exit(main())
