"""One measured run for scripts/benchmark.py: wall time, CPU time, peak RSS of a process tree.

The command runs in a fresh process writing into an empty folder. Peak RSS is
the largest of (a) the RSS of the process and all its descendants, summed, polled
every 20 ms with psutil, (b) the largest high-water mark (``VmHWM``) any single
member of the tree reached, polled likewise, and (c) ``ru_maxrss`` from wait4.
(c) includes the benchmark's own parent process (the child starts as a vfork of
it), so the parent is kept lean (about 25 MB): it never imports numpy while
measuring. CPU time is user + system of the child and its waited-for
descendants, from wait4.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

POLL_SECONDS = 0.02


@dataclass(frozen=True)
class Tool:
    """One command to time: ``argv(input, output_dir)`` and the glob patterns of its image outputs."""

    name: str
    argv: Callable[[Path, Path], list[str]]
    is_medconv: bool = False
    outputs: tuple[str, ...] = ("*.nii.gz", "*.nii")



@dataclass
class Run:
    """The measurements of one run (sizes in MB = 10^6 bytes, as in issue 7)."""

    tool: str
    rep: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    output_mb: float
    returncode: int
    load1: float
    rss_sum_mb: float = 0.0
    hwm_mb: float = 0.0
    ru_maxrss_mb: float = 0.0
    stderr_tail: str = ""


def high_water_mark(pid: int) -> int:
    """``VmHWM`` (peak RSS, bytes) of a live process; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as stream:
            for line in stream:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def sample_tree(process) -> tuple[int, int]:
    """(RSS summed over ``process`` and its descendants, largest single VmHWM), in bytes."""
    import psutil

    try:
        members = [process] + process.children(recursive=True)
    except psutil.Error:
        return 0, 0
    total = hwm = 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            continue
        hwm = max(hwm, high_water_mark(member.pid))
    return total, hwm


def output_bytes(out: Path, patterns: tuple[str, ...]) -> int:
    """Bytes of the files under ``out`` matching ``patterns`` (hidden temporary files excluded)."""
    seen = set()
    for pattern in patterns:
        for path in out.rglob(pattern):
            if path.is_file() and not path.name.startswith("."):
                seen.add(path)
    return sum(p.stat().st_size for p in seen)


def measure(tool: Tool, src: Path, out: Path, rep: int, log_dir: Path) -> Run:
    """Run ``tool`` once on ``src`` into a fresh ``out``, in a new process; returns the measurements."""
    import psutil

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    log_path = log_dir / f"{slug(tool.name)}.rep{rep}.log"
    load1 = os.getloadavg()[0]
    rss_sum = hwm = 0
    with open(log_path, "wb") as sink:
        started = time.perf_counter()
        child = subprocess.Popen(tool.argv(src, out), stdout=sink, stderr=subprocess.STDOUT, cwd=str(out))
        handle = psutil.Process(child.pid)
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                wall = time.perf_counter() - started
                break
            now_sum, now_hwm = sample_tree(handle)
            rss_sum, hwm = max(rss_sum, now_sum), max(hwm, now_hwm)
            time.sleep(POLL_SECONDS)
    child.returncode = os.waitstatus_to_exitcode(status)
    maxrss = usage.ru_maxrss * 1024
    peak = max(rss_sum, hwm, maxrss)
    tail = log_path.read_text(errors="replace")[-800:] if child.returncode else ""
    mib = 1e6  # MB as in issue 7 (10^6 bytes)
    return Run(tool.name, rep, wall, usage.ru_utime + usage.ru_stime, peak / mib,
               output_bytes(out, tool.outputs) / mib, child.returncode, load1,
               rss_sum / mib, hwm / mib, maxrss / mib, tail)


def slug(name: str) -> str:
    """A file-name-safe form of a tool name."""
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")
