"""Helpers for the hostile-input tests: measuring a read in a fresh process, and editing file bytes.

:func:`read_in_subprocess` reads one file with medconv in a child process and
reports how the read ended, how long the read itself took (imports excluded)
and the child's peak RSS, so a memory bomb is measured without taking the test
process down. The byte editors (TIFF IFD entries, NIfTI header fields) come from
``scripts/fuzz_inputs.py``, the fuzz harness, which shares no code with medconv's
readers.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent

_spec = importlib.util.spec_from_file_location("fuzz_inputs", PROJECT / "scripts" / "fuzz_inputs.py")
fuzz_inputs = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("fuzz_inputs", fuzz_inputs)
_spec.loader.exec_module(fuzz_inputs)

_CHILD = r"""
import json, resource, sys, time
import medconv
from medconv.errors import MedconvError
from medconv.options import ReadOptions
from medconv.registry import readers
import nibabel, pydicom, tifffile  # imported before the clock starts: the read is timed, not Python's imports
readers.available()


def peak_mb():
    # VmHWM: this process' peak RSS since exec (ru_maxrss keeps the forked parent's, a large pytest's)
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


for path, options in json.loads(sys.argv[1]):
    before_mb = peak_mb()
    start = time.perf_counter()
    try:
        volume = medconv.read(path, options=ReadOptions(**options))
        outcome, message = "volume", str(volume.shape)
        del volume
    except MedconvError as exc:
        outcome, message = type(exc).__name__, exc.one_line()
    seconds = time.perf_counter() - start
    rss_mb = peak_mb()
    print(json.dumps({"path": path, "outcome": outcome, "message": message, "seconds": seconds, "rss_mb": rss_mb,
                      "before_mb": before_mb}), flush=True)
"""


def read_in_subprocess(reads: list[tuple[str | Path, dict]], timeout: float = 120) -> list[dict]:
    """``medconv.read(path, options=ReadOptions(**options))`` for each of ``reads``, one after the other,
    in one new process; for each ``{"path", "outcome", "message", "seconds", "rss_mb", "before_mb"}``.

    ``outcome`` is the medconv error's class name or ``"volume"``; ``seconds`` times
    the read alone (every reader is imported first); ``rss_mb`` is the process' peak
    resident memory so far (imports included: ``before_mb`` is the peak before that
    read, about 80 MB at the first one). Anything else escaping a read, or a read that
    does not end within ``timeout``, fails the test.
    """
    items = [(str(path), options) for path, options in reads]
    completed = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(items)], capture_output=True, text=True,
                               timeout=timeout)
    if completed.returncode != 0:
        raise AssertionError(f"a read escaped (exit {completed.returncode}): {completed.stderr[-2000:]}")
    return [json.loads(line) for line in completed.stdout.strip().splitlines()]
