#!/usr/bin/env python
"""medconv against dcm2niix, dicom2nifti and SimpleITK, side by side, in one run (issues 7 and 14).

Usage (from the repository root)::

    .venv/bin/python scripts/benchmark.py --quick              # a few minutes, small workloads, no verdicts
    .venv/bin/python scripts/benchmark.py --json bench.json    # the full benchmark (~25 minutes)

Workloads: ``ct`` (one CT series to NIfTI), ``prep`` (the same series resampled
to 1 mm, and windowed), ``tree`` (a LIDC-style tree), ``luna`` (MetaImage),
``scan`` (the header pass), ``scaling`` (LIDC-style trees of 5, 20 and 80 series
and one 1,000-slice series, against dcm2niix run two at a time), and ``small``
(scripts/bench_small.py's small-folder workload, when that script exists).

What it does, per workload (see scripts/bench_workloads.py):

* generates the input once in the work folder (default ``./bench-work``; reused
  while its parameters match) and reads every input file once, so that every
  run sees a warm page cache;
* runs every tool once untimed (warm-up), then ``--reps`` timed repetitions,
  interleaved: each repetition runs every tool once, the tool order rotated by
  one each repetition, each run a fresh subprocess writing into an empty folder;
* measures wall time, CPU time (user + sys of the process tree, from wait4),
  peak RSS of the whole process tree (psutil, summed over the process and all
  its descendants every 20 ms, and never below wait4's ``ru_maxrss``) and the
  size of the image files written;
* checks that the outputs agree (same voxels at the same RAS positions as
  dcm2niix's / SimpleITK's output on a few slices), so a fast wrong result
  cannot pass;
* prints a Markdown table of medians, medconv's ratio to every peer and
  PASS/FAIL for every target of issues 7 and 14; ``--json PATH`` keeps everything.
  ``--quick`` runs the same tools on small inputs: a smoke test of the harness,
  the tools and the output checks. Its times are dominated by start-up, so it
  judges no target (each says "judged on the full run").

Peak RSS summed over processes counts shared pages (libraries, the page of
numpy each worker maps) once per process, so it slightly overstates
multi-process tools; it is exact for single-process ones.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENV_BIN = Path(sys.executable).parent
sys.path.insert(0, str(HERE))
from bench_measure import Run, Tool, measure, slug  # noqa: E402  (scripts/ is not a package)

# --------------------------------------------------------------------------------------------
# workloads


@dataclass(frozen=True)
class Sizes:
    """Workload sizes for one mode."""

    ct: dict
    tree: dict
    luna: dict
    scan: dict
    scaling: dict  # trees: series counts of the LIDC-style trees; tree: their generator; long: the long series
    reps: dict  # timed repetitions per workload


FULL = Sizes(
    ct=dict(slices=300, size=512, seed=0),
    tree=dict(n_series=20, size=512, low=100, high=300, seed=100),
    luna=dict(n_images=10, size=512, low=100, high=300, seed=200),
    scan=dict(n_files=30000, size=64, slices_per_series=300, seed=300),
    scaling=dict(trees=(5, 20, 80), tree=dict(size=512, low=40, high=80, seed=500),
                 long=dict(slices=1000, size=512, seed=600)),
    reps=dict(ct=5, prep=5, tree=3, luna=3, scan=3, scaling=3, small=5),
)
QUICK = Sizes(
    ct=dict(slices=100, size=256, seed=0),
    tree=dict(n_series=20, size=128, low=20, high=40, seed=100),
    luna=dict(n_images=4, size=128, low=30, high=60, seed=200),
    scan=dict(n_files=3000, size=64, slices_per_series=300, seed=300),
    scaling=dict(trees=(5, 20, 80), tree=dict(size=64, low=8, high=16, seed=500),
                 long=dict(slices=1000, size=64, seed=600)),
    reps=dict(ct=3, prep=3, tree=3, luna=3, scan=3, scaling=2, small=3),
)
WORKLOADS = ("ct", "prep", "tree", "luna", "scan", "scaling", "small")


def scaling_names(sizes: Sizes) -> list[str]:
    """The measured sub-workloads of ``scaling``: one per tree size, then the long series."""
    return [f"scaling-{n}" for n in sizes.scaling["trees"]] + [f"scaling-long{sizes.scaling['long']['slices']}"]


def make_workloads(work: Path, sizes: Sizes, which: list[str], suffix: str = "") -> dict[str, Path]:
    """Generate (or reuse) the input folders; returns name -> folder.

    Generation runs in a child process so that this (measuring) process never
    loads numpy or pydicom and stays small (see bench_measure).
    """
    folders = {}

    def make(name: str, folder_name: str, params: dict) -> Path:
        started = time.perf_counter()
        folder = work / "inputs" / (folder_name + suffix)
        subprocess.run([sys.executable, str(HERE / "bench_workloads.py"), str(folder), json.dumps(params)],
                       check=True)
        log(f"workload {name}: {folder} ready ({time.perf_counter() - started:.1f} s)")
        return folder

    for name in which:
        if name == "small":
            continue  # scripts/bench_small.py makes and times its own folders
        if name == "prep":  # the same series as ct
            folders[name] = make(name, "ct", {"kind": "ct", **sizes.ct})
        elif name == "scaling":
            largest = max(sizes.scaling["trees"])
            big = make(name, f"scaling-{largest}", {"kind": "tree", "n_series": largest, **sizes.scaling["tree"]})
            for n in sizes.scaling["trees"]:
                folders[f"scaling-{n}"] = big if n == largest else make(
                    name, f"scaling-{n}", {"kind": "link_tree", "source": str(big), "n_series": n})
            long = sizes.scaling["long"]
            folders[f"scaling-long{long['slices']}"] = make(name, f"scaling-long{long['slices']}",
                                                            {"kind": "ct", **long})
        else:
            folders[name] = make(name, name, {"kind": name, **getattr(sizes, name)})
    return folders


def input_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def warm_page_cache(folder: Path) -> int:
    """Read every file under ``folder`` once; returns the bytes read."""
    total = 0
    for path in input_files(folder):
        with open(path, "rb") as stream:
            while chunk := stream.read(1 << 22):
                total += len(chunk)
    return total


# --------------------------------------------------------------------------------------------
# tools


def dcm2niix(*flags: str):
    binary = str(VENV_BIN / "dcm2niix")
    return lambda src, out: [binary, *flags, "-o", str(out), str(src)]


def peer(kind: str):
    """A Python peer (scripts/bench_peers.py) run in a fresh interpreter."""
    return lambda src, out: [sys.executable, str(HERE / "bench_peers.py"), kind, str(src), str(out)]


def medconv(command: str, *flags: str):
    binary = str(VENV_BIN / "medconv")
    return lambda src, out: [binary, command, str(src), str(out), *flags]


def medconv_available(command: str) -> bool:
    """True if ``medconv COMMAND --help`` works (the command has landed)."""
    try:
        done = subprocess.run([str(VENV_BIN / "medconv"), command, "--help"], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def tools_for(workload: str) -> list[Tool]:
    if workload == "ct":
        if medconv_available("tcia2nii"):
            mc_gz = medconv("tcia2nii", "--jobs", "1", "--format", "nii.gz")
            mc_nii = medconv("tcia2nii", "--jobs", "1", "--format", "nii")
        else:  # before the command lands: the library path, in a child process
            log("medconv tcia2nii is not available: timing medconv.read + medconv.write instead")
            mc_gz, mc_nii = peer("medconv-lib-gz"), peer("medconv-lib-nii")
        return [
            Tool("medconv .nii.gz", mc_gz, is_medconv=True),
            Tool("medconv .nii", mc_nii, is_medconv=True),
            Tool("dcm2niix -z y", dcm2niix("-z", "y")),
            Tool("dcm2niix -z y -1", dcm2niix("-z", "y", "-1")),
            Tool("dcm2niix -z n", dcm2niix("-z", "n")),
            Tool("dicom2nifti", peer("dicom2nifti")),
            Tool("SimpleITK", peer("sitk-series")),
        ]
    if workload == "tree":
        return [
            Tool("medconv --jobs 1", medconv("tcia2nii", "--jobs", "1", "--format", "nii.gz"), is_medconv=True),
            Tool("medconv --jobs 2", medconv("tcia2nii", "--jobs", "2", "--format", "nii.gz"), is_medconv=True),
            Tool("dcm2niix -z y", dcm2niix("-z", "y")),
        ]
    if workload == "luna":
        return [
            Tool("medconv mhd2nii --jobs 1", medconv("mhd2nii", "--jobs", "1", "--format", "nii.gz"), is_medconv=True),
            Tool("medconv mhd2nii --jobs 2", medconv("mhd2nii", "--jobs", "2", "--format", "nii.gz"), is_medconv=True),
            Tool("SimpleITK", peer("sitk-files")),
        ]
    if workload == "prep":
        flags = ("--jobs", "1", "--format", "nii.gz", "--spacing", "1")
        return [
            Tool("medconv --spacing 1", medconv("tcia2nii", *flags), is_medconv=True),
            Tool("medconv --spacing 1 --window lung --scale unit",
                 medconv("tcia2nii", *flags, "--window", "lung", "--scale", "unit"), is_medconv=True),
            Tool("SimpleITK script", peer("sitk-preprocess")),
        ]
    if workload.startswith("scaling-"):
        return [
            Tool("medconv", medconv("tcia2nii", "--format", "nii.gz"), is_medconv=True),
            Tool("dcm2niix -z y ×2", peer("dcm2niix-parallel")),
        ]
    if workload == "scan":
        return [Tool("medconv scan", lambda src, out: [str(VENV_BIN / "medconv"), "scan", str(src), "--quiet",
                                                       "--csv", str(out / "scan.csv")], is_medconv=True, outputs=())]
    raise ValueError(workload)


# --------------------------------------------------------------------------------------------
# targets of issue 7


@dataclass(frozen=True)
class Target:
    workload: str
    text: str
    tool: str
    metric: str  # wall_s | peak_rss_mb | output_mb
    reference: str | None  # another tool, "volume_mb", "files_per_s", or None for an absolute bound
    bound: float  # ratio (or absolute value) that must not be exceeded; negative: must be at least -bound

    def evaluate(self, medians: dict[str, dict], context: dict) -> tuple[float | None, bool | None]:
        if self.tool not in medians or medians[self.tool].get("failed"):
            return None, None
        value = medians[self.tool][self.metric]
        if self.reference is None:
            return value, value <= self.bound
        if self.reference == "files_per_s":
            rate = context["scan_files"] / value
            return rate, rate >= -self.bound
        if self.reference == "volume_mb":
            ratio = value / context["ct_volume_mb"]
            return ratio, ratio <= self.bound
        if self.reference not in medians or medians[self.reference].get("failed"):
            return None, None
        ratio = value / medians[self.reference][self.metric]
        if self.bound < 0:  # speed-up: reference / tool must be at least -bound
            speedup = 1 / ratio
            return speedup, speedup >= -self.bound
        return ratio, ratio <= self.bound


TARGETS = [
    Target("ct", "CT .nii.gz wall ≤ 1.0× dcm2niix -z y -1", "medconv .nii.gz", "wall_s", "dcm2niix -z y -1", 1.0),
    Target("ct", "CT .nii.gz wall ≤ 0.5× dcm2niix -z y (default)", "medconv .nii.gz", "wall_s", "dcm2niix -z y", 0.5),
    Target("ct", "CT .nii.gz wall ≤ 0.25× dicom2nifti", "medconv .nii.gz", "wall_s", "dicom2nifti", 0.25),
    Target("ct", "CT .nii.gz wall ≤ 0.5× SimpleITK", "medconv .nii.gz", "wall_s", "SimpleITK", 0.5),
    Target("ct", "CT .nii.gz size ≤ 1.05× dcm2niix -z y", "medconv .nii.gz", "output_mb", "dcm2niix -z y", 1.05),
    Target("ct", "CT .nii wall ≤ 3× dcm2niix -z n", "medconv .nii", "wall_s", "dcm2niix -z n", 3.0),
    Target("ct", "CT .nii.gz peak RSS ≤ 2× the int16 volume", "medconv .nii.gz", "peak_rss_mb", "volume_mb", 2.0),
    Target("tree", "tree: --jobs 2 ≥ 1.8× faster than --jobs 1", "medconv --jobs 2", "wall_s", "medconv --jobs 1", -1.8),
    Target("tree", "tree: --jobs 2 ≥ 2× faster than dcm2niix -z y", "medconv --jobs 2", "wall_s", "dcm2niix -z y", -2.0),
    Target("luna", "MetaImage tree wall ≤ 0.5× SimpleITK (medconv --jobs 1)", "medconv mhd2nii --jobs 1", "wall_s",
           "SimpleITK", 0.5),
    Target("scan", "scan ≥ 1,500 files/s (warm cache)", "medconv scan", "wall_s", "files_per_s", -1500),
    Target("prep", "CT --spacing 1 wall ≤ 1.5 s", "medconv --spacing 1", "wall_s", None, 1.5),
    Target("prep", "CT --spacing 1 --window lung --scale unit wall ≤ 0.5× the SimpleITK script",
           "medconv --spacing 1 --window lung --scale unit", "wall_s", "SimpleITK script", 0.5),
    Target("prep", "CT --spacing 1 peak RSS ≤ 3× the int16 volume", "medconv --spacing 1", "peak_rss_mb",
           "volume_mb", 3.0),
    Target("prep", "CT --spacing 1 --window lung --scale unit peak RSS ≤ 3× the int16 volume",
           "medconv --spacing 1 --window lung --scale unit", "peak_rss_mb", "volume_mb", 3.0),
]


@dataclass(frozen=True)
class ScalingTarget:
    """A target over the scaling sub-workloads: medconv's ``metric`` at ``larger`` series ≤ ``bound`` × at ``smaller``."""

    text: str
    metric: str  # s_per_mb (wall) | cpu_s_per_mb | peak_rss_mb
    larger: int
    smaller: int
    bound: float

    def evaluate(self, results: dict, context: dict) -> tuple[float | None, bool | None]:
        values = []
        for n in (self.larger, self.smaller):
            result = results.get(f"scaling-{n}")
            medians = (result or {}).get("medians", {}).get("medconv", {})
            if not medians or medians.get("failed"):
                return None, None
            if self.metric in ("s_per_mb", "cpu_s_per_mb"):
                value = medians["wall_s" if self.metric == "s_per_mb" else "cpu_s"] / result["input_mb"]
            else:
                value = medians[self.metric]
            values.append(value)
        ratio = values[0] / values[1]
        return ratio, ratio <= self.bound


SCALING_TARGETS = [
    ScalingTarget("scaling: time linear in the data (wall s/MB at 80 series ≤ 1.15× at 20)", "s_per_mb", 80, 20,
                  1.15),
    # CPU time is the cost itself and barely moves with other processes' load, which inflates wall time
    ScalingTarget("scaling: CPU linear in the data (CPU s/MB at 80 series ≤ 1.15× at 20)", "cpu_s_per_mb", 80, 20,
                  1.15),
    ScalingTarget("scaling: peak RSS flat in the series count (80 series ≤ 1.25× 5 series)", "peak_rss_mb", 80, 5,
                  1.25),
]


# --------------------------------------------------------------------------------------------
# the run


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def medians_of(runs: list[Run]) -> dict[str, dict]:
    by_tool: dict[str, list[Run]] = {}
    for run in runs:
        by_tool.setdefault(run.tool, []).append(run)
    result = {}
    for tool, rows in by_tool.items():
        ok = [r for r in rows if r.returncode == 0]
        if not ok:
            result[tool] = {"failed": True, "n": 0}
            continue
        result[tool] = {
            "n": len(ok),
            "wall_s": statistics.median(r.wall_s for r in ok),
            "wall_min_s": min(r.wall_s for r in ok),
            "wall_max_s": max(r.wall_s for r in ok),
            "cpu_s": statistics.median(r.cpu_s for r in ok),
            "peak_rss_mb": statistics.median(r.peak_rss_mb for r in ok),
            "output_mb": statistics.median(r.output_mb for r in ok),
            "failed_runs": len(rows) - len(ok),
        }
    return result


def run_workload(name: str, src: Path, work: Path, reps: int, warmup: bool) -> dict:
    tools = tools_for(name)
    bytes_read = warm_page_cache(src)
    log(f"{name}: {len(input_files(src))} input files, {bytes_read / 1e6:.0f} MB read to warm the page cache")
    out_root = work / "out" / name
    log_dir = work / "logs" / name
    log_dir.mkdir(parents=True, exist_ok=True)
    if warmup:
        for tool in tools:
            run = measure(tool, src, out_root / slug(tool.name), 0, log_dir)
            log(f"{name}: warm-up {tool.name}: {run.wall_s:.2f} s (rc {run.returncode})")
    runs = []
    for rep in range(1, reps + 1):
        shift = (rep - 1) % len(tools)
        for tool in tools[shift:] + tools[:shift]:
            run = measure(tool, src, out_root / slug(tool.name), rep, log_dir)
            runs.append(run)
            log(f"{name} rep {rep}: {tool.name:26s} {run.wall_s:7.2f} s  cpu {run.cpu_s:6.2f} s  "
                f"rss {run.peak_rss_mb:6.0f} MB  out {run.output_mb:7.1f} MB  rc {run.returncode}  load {run.load1:.2f}")
            if run.returncode:
                log(f"  {tool.name} failed: {run.stderr_tail.strip()[-300:]}")
    return {"tools": [t.name for t in tools], "runs": [asdict(r) for r in runs], "medians": medians_of(runs),
            "outputs": {t.name: out_root / slug(t.name) for t in tools}, "input_mb": bytes_read / 1e6,
            "input_files": len(input_files(src))}


def title(name: str, context: dict, result: dict) -> str:
    fixed = {
        "ct": f"One CT series ({context.get('ct_desc', '')})",
        "prep": f"Preprocessing one CT series: resample to 1 mm, window ({context.get('ct_desc', '')})",
        "tree": f"LIDC-style tree ({context.get('tree_desc', '')})",
        "luna": f"LUNA16-style MetaImage tree ({context.get('luna_desc', '')})",
        "scan": f"Header pass ({context.get('scan_desc', '')})",
    }
    if name in fixed:
        return fixed[name]
    if "-long" in name:
        return (f"Scaling: one {name.split('-long')[1]}-slice series ({result.get('input_files', 0)} files, "
                f"{result.get('input_mb', 0):.1f} MB, {context.get('scaling_long_desc', '')})")
    return (f"Scaling: {name.split('-')[1]} series ({result.get('input_files', 0)} files, "
            f"{result.get('input_mb', 0):.1f} MB, {context.get('scaling_desc', '')})")


def scaling_table(results: dict) -> list[str]:
    """One row per scaling sub-workload: time, peak memory and throughput of medconv and of dcm2niix ×2."""
    names = [n for n in results if n.startswith("scaling-")]
    if not names:
        return []
    lines = ["### Scaling: how cost grows with the data", "",
             "| input | files | MB | medconv s | CPU s | peak RSS MB | MB/s | dcm2niix ×2 s | CPU s | "
             "peak RSS MB | MB/s | wall ratio |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in names:
        result = results[name]
        ours, peer_ = result["medians"].get("medconv", {}), result["medians"].get("dcm2niix -z y ×2", {})
        if ours.get("failed") or peer_.get("failed") or not ours or not peer_:
            lines.append(f"| {name} | {result['input_files']} | {result['input_mb']:.0f} | FAILED | | | | | | | | |")
            continue
        mb = result["input_mb"]
        label = name.replace("scaling-long", "1 series of ").replace("scaling-", "") + \
            (" slices" if "long" in name else " series")
        lines.append(f"| {label} | {result['input_files']} | {mb:.1f} | {ours['wall_s']:.2f} | {ours['cpu_s']:.2f} "
                     f"| {ours['peak_rss_mb']:.0f} | {mb / ours['wall_s']:.1f} | {peer_['wall_s']:.2f} "
                     f"| {peer_['cpu_s']:.2f} | {peer_['peak_rss_mb']:.0f} | {mb / peer_['wall_s']:.1f} "
                     f"| {ours['wall_s'] / peer_['wall_s']:.2f} |")
    for metric, what in (("wall_s", "wall"), ("cpu_s", "CPU")):
        trees = [(results[n]["input_mb"], results[n]["medians"]["medconv"][metric]) for n in names
                 if "long" not in n and not results[n]["medians"].get("medconv", {}).get("failed")]
        if len(trees) >= 2:  # least-squares line through the trees: fixed cost + cost per MB
            mean_x = sum(x for x, _ in trees) / len(trees)
            mean_y = sum(y for _, y in trees) / len(trees)
            slope = sum((x - mean_x) * (y - mean_y) for x, y in trees) / sum((x - mean_x) ** 2 for x, _ in trees)
            lines += ["", f"medconv over the trees: {what} ≈ {mean_y - slope * mean_x:.2f} s + {slope * 1000:.2f} s "
                          f"per GB of input (least squares through {len(trees)} points)."]
    return lines + [""]


def verdict_rows(results: dict, context: dict, quick: bool) -> list[str]:
    rows = []
    for target in TARGETS:
        if target.workload not in results:
            continue
        value, ok = target.evaluate(results[target.workload]["medians"], context)
        if results[target.workload].get("problems"):
            ok = False if ok is not None else ok
        if target.reference == "files_per_s":
            shown = "–" if value is None else f"{value:.0f} files/s"
        elif target.reference is None:
            shown = "–" if value is None else f"{value:.2f} s"
        else:
            shown = "–" if value is None else f"{value:.{3 if target.metric == 'output_mb' else 2}f}×"
        rows.append((target.text, shown, ok, bool(results[target.workload].get("problems"))))
    for target in SCALING_TARGETS:
        if f"scaling-{target.larger}" not in results or f"scaling-{target.smaller}" not in results:
            continue
        value, ok = target.evaluate(results, context)
        problems = any(results[n].get("problems") for n in (f"scaling-{target.larger}", f"scaling-{target.smaller}"))
        rows.append((target.text, "–" if value is None else f"{value:.2f}×", False if problems else ok, problems))
    lines = []
    for text, shown, ok, problems in rows:
        if quick and not problems:  # small inputs: start-up dominates; only a wrong output fails here
            verdict = "not judged (quick mode: judged on the full run)"
        else:
            verdict = "n/a (tool failed or missing)" if ok is None else "PASS" if ok else "FAIL"
        lines.append(f"| {text} | {shown} | {verdict} |")
    return lines


def markdown(results: dict, context: dict, quick: bool = False) -> str:
    lines = []
    for name, result in results.items():
        medians = result["medians"]
        lines += [f"### {title(name, context, result)}", "",
                  "| tool | wall s (median) | min–max s | CPU s | peak RSS MB | output MB | runs |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for tool in result["tools"]:
            m = medians.get(tool, {})
            if m.get("failed") or not m:
                lines.append(f"| {tool} | FAILED | | | | | 0 |")
                continue
            lines.append(f"| {tool} | {m['wall_s']:.2f} | {m['wall_min_s']:.2f}–{m['wall_max_s']:.2f} | {m['cpu_s']:.2f} "
                         f"| {m['peak_rss_mb']:.0f} | {m['output_mb']:.1f} | {m['n']} |")
        ours = [t for t in result["tools"] if t in medians and not medians[t].get("failed") and t.startswith("medconv")]
        peers = [t for t in result["tools"] if t in medians and not medians[t].get("failed") and not t.startswith("medconv")]
        if ours and peers:
            lines += ["", "medconv's ratio to each peer (wall / peak RSS / output size; < 1 means medconv is lower):", "",
                      "| medconv | peer | wall | RSS | size |", "|---|---|---:|---:|---:|"]
            for a in ours:
                for b in peers:
                    ma, mb = medians[a], medians[b]
                    size = f"{ma['output_mb'] / mb['output_mb']:.2f}" if mb["output_mb"] and ma["output_mb"] else "–"
                    lines.append(f"| {a} | {b} | {ma['wall_s'] / mb['wall_s']:.2f} | "
                                 f"{ma['peak_rss_mb'] / mb['peak_rss_mb']:.2f} | {size} |")
        if name == "scan" and "medconv scan" in medians and not medians["medconv scan"].get("failed"):
            lines += ["", f"{context['scan_files'] / medians['medconv scan']['wall_s']:.0f} files/s "
                          f"({context['scan_files']} files, whole process including start-up)."]
        if result.get("problems"):
            lines += ["", "**Output check FAILED:**", ""] + [f"- {p}" for p in result["problems"]]
        else:
            lines += ["", "Output check: not applicable (no images written)." if name == "scan" else
                      "Output check: on the SimpleITK script's RAS grid, values within the tolerances of "
                      "scripts/bench_checks.py (it does not anti-alias)." if name == "prep" else
                      "Output check: all outputs agree (same voxels at the same RAS positions as the reference)."]
        lines.append("")
    lines += scaling_table(results)
    lines += ["### Targets (issues 7 and 14)", "", "| target | measured | result |", "|---|---:|---|"]
    lines += verdict_rows(results, context, quick)
    return "\n".join(lines) + "\n"


def run_small(work: Path, reps: int, quick: bool) -> str:
    """scripts/bench_small.py's report (the small-folder workloads of issue 14, item 2), or why it is missing.

    That script times its own workloads and judges its own targets (default
    ``--jobs`` against ``--jobs 1`` and dcm2niix); its report is included as it
    prints it. Quick mode leaves it out (its verdicts need the full repetitions).
    """
    script = HERE / "bench_small.py"
    if quick:
        return "\n### Small folders\n\nNot run in quick mode: scripts/bench_small.py judges its targets on full runs.\n"
    if not script.exists():
        log("small: scripts/bench_small.py is not in this checkout; skipped")
        return "\n### Small folders\n\nNot measured: scripts/bench_small.py is not in this checkout.\n"
    command = [sys.executable, str(script), "--work", str(work / "small"), "--reps", str(reps)]
    log(f"small: {' '.join(command)}")
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        log(f"small: bench_small.py failed ({done.returncode}): {done.stderr.strip()[-300:]}")
        return f"\n### Small folders\n\nscripts/bench_small.py FAILED (exit {done.returncode}).\n"
    return f"\n### Small folders (scripts/bench_small.py, its own verdicts)\n\n```\n{done.stdout.strip()}\n```\n"


def tool_versions() -> dict:
    versions = {"python": platform.python_version()}
    try:
        first = subprocess.run([str(VENV_BIN / "dcm2niix"), "-v"], capture_output=True, text=True).stdout.splitlines()
        versions["dcm2niix"] = next((l for l in first if l.startswith("v")), first[-1] if first else "?").strip()
    except OSError:
        versions["dcm2niix"] = "missing"
    versions["pigz"] = shutil.which("pigz") or "not on PATH (dcm2niix -z y then uses its internal zlib, level 6)"
    from importlib import metadata

    for package in ("medconv", "dicom2nifti", "SimpleITK", "pydicom", "nibabel", "numpy", "isal", "psutil"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "missing"
    return versions


def machine() -> dict:
    cpu = "?"
    with open("/proc/cpuinfo") as stream:
        for line in stream:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import psutil

    return {"nproc": os.cpu_count(), "cpu": cpu, "mem_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "kernel": platform.release()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small workloads, 2-3 repetitions: checks the harness and outputs, judges no target")
    parser.add_argument("--work", type=Path, default=Path("bench-work"), help="work folder (default ./bench-work)")
    parser.add_argument("--reps", type=int, help="timed repetitions per tool (default: 5 for ct and prep, 3 others)")
    parser.add_argument("--only", default=",".join(WORKLOADS),
                        help=f"comma-separated workloads (default: all): {','.join(WORKLOADS)}")
    parser.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up run of each tool")
    parser.add_argument("--json", type=Path, help="also write every run, the medians and the verdicts here")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    reps = {name: args.reps or sizes.reps[name] for name in sizes.reps}
    which = [w.strip() for w in args.only.split(",") if w.strip()]
    unknown = sorted(set(which) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
    work = args.work.resolve()
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()
    folders = make_workloads(work, sizes, which, "-quick" if args.quick else "")
    context = {
        "ct_volume_mb": sizes.ct["slices"] * sizes.ct["size"] ** 2 * 2 / 1e6,
        "scan_files": sizes.scan["n_files"],
        "ct_desc": f"{sizes.ct['size']}×{sizes.ct['size']}×{sizes.ct['slices']} int16, "
                   f"{sizes.ct['slices'] * sizes.ct['size'] ** 2 * 2 / 1e6:.0f} MB of voxels",
        "tree_desc": f"{sizes.tree['n_series']} series of {sizes.tree['low']}–{sizes.tree['high']} slices of "
                     f"{sizes.tree['size']}×{sizes.tree['size']}",
        "luna_desc": f"{sizes.luna['n_images']} images of {sizes.luna['size']}×{sizes.luna['size']}×"
                     f"{sizes.luna['low']}–{sizes.luna['high']}",
        "scan_desc": f"{sizes.scan['n_files']} files of {sizes.scan['size']}×{sizes.scan['size']}",
        "scaling_desc": f"LIDC-style, {sizes.scaling['tree']['low']}–{sizes.scaling['tree']['high']} slices of "
                        f"{sizes.scaling['tree']['size']}×{sizes.scaling['tree']['size']} per series",
        "scaling_long_desc": f"{sizes.scaling['long']['size']}×{sizes.scaling['long']['size']} slices",
    }
    expected = {"tree": sizes.tree["n_series"], "luna": sizes.luna["n_images"],
                "scan": -(-sizes.scan["n_files"] // sizes.scan["slices_per_series"]),
                **{f"scaling-{n}": n for n in sizes.scaling["trees"]}}
    measured = [n for w in which for n in (scaling_names(sizes) if w == "scaling" else [w]) if n != "small"]
    results = {name: run_workload(name, folders[name], work, reps[name.split("-")[0]], warmup=not args.no_warmup)
               for name in measured}
    small_report = run_small(work, reps["small"], args.quick) if "small" in which else ""
    load_after = os.getloadavg()
    from bench_checks import check_outputs  # nibabel and numpy: only once all timing is done

    for name, result in results.items():
        result["problems"] = check_outputs(name, result["outputs"], expected.get(name, 1))
        for problem in result["problems"]:
            log(f"{name}: OUTPUT CHECK FAILED: {problem}")
    header = (f"medconv benchmark, {started:%Y-%m-%d %H:%M} UTC, {'quick' if args.quick else 'full'} mode, "
              f"timed repetitions per tool: {', '.join(f'{n} {reps[n]}' for n in which)} (medians), warm page cache, one untimed warm-up run per tool"
              f"{' (skipped)' if args.no_warmup else ''}; load average {load_before[0]:.2f} before, "
              f"{load_after[0]:.2f} after. MB = 10^6 bytes. pigz: {shutil.which('pigz') or 'not on PATH'}.\n")
    if args.quick:
        header += ("\nQuick mode measures the same tools on small inputs (a 256×256×100 CT, trees of 128×128 "
                   "slices, 64×64 scaling trees): it checks that every tool runs and that the outputs agree. "
                   "Start-up (Python imports, about 0.3 s) dominates medconv's times and baseline memory its RSS, "
                   "so no target is judged here (each says so); the targets are judged on the full run.\n")
    report = header + "\n" + markdown(results, context, quick=args.quick) + small_report
    print(report)
    if args.json:
        payload = {"started": started.isoformat(), "mode": "quick" if args.quick else "full", "reps": reps,
                   "command": " ".join([sys.executable] + sys.argv), "machine": machine(), "versions": tool_versions(),
                   "load_before": load_before, "load_after": load_after, "context": context,
                   "sizes": asdict(sizes), "results": {
                       n: {k: (v if k != "outputs" else {t: str(p) for t, p in v.items()}) for k, v in r.items()}
                       for n, r in results.items()},
                   "targets": [{"text": t.text, "value": t.evaluate(results[t.workload]["medians"], context)[0],
                                "pass": None if args.quick else t.evaluate(results[t.workload]["medians"], context)[1]}
                               for t in TARGETS if t.workload in results]
                   + [{"text": t.text, "value": t.evaluate(results, context)[0],
                       "pass": None if args.quick else t.evaluate(results, context)[1]}
                      for t in SCALING_TARGETS if f"scaling-{t.larger}" in results],
                   "markdown": report}
        args.json.write_text(json.dumps(payload, indent=1, default=str))
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
