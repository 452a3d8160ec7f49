#!/usr/bin/env python
"""What crash containment costs: a call through medconv.guard against the same call made directly.

Usage (from the repository root)::

    .venv/bin/python scripts/bench_guard.py [--reps 5] [--corpus ../shared/corpora]

Measured, medians of ``--reps`` repetitions, in one run:

* **start**: the first guarded call of a process (starts the helper: an interpreter
  importing numpy and medconv);
* **per call**: a guarded call that passes and returns a few bytes;
* **per frame**: decoding one RLE frame of ``MR_small_RLE.dcm`` (64x64) with
  pylibjpeg-rle, directly and guarded (the compressed bytes go in, the pixels come back);
* **per unit**: returning a decoded 512x512 int16 slice, a 512x512x300 series
  (150 MB, through shared memory) and the same series in 300 calls of one slice.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from medconv.guard import GuardedProcess, Limits, Returned  # noqa: E402


def make_array(shape: tuple[int, ...]) -> np.ndarray:
    """A freshly decoded array, as a decoder makes one (filled, not zero pages)."""
    return np.full(shape, 7, np.int16)


def echo(value):
    return value


def decode_rle_frame(frame: bytes, rows: int, columns: int):
    from rle.rle import decode_frame  # pylibjpeg-rle

    return np.frombuffer(decode_frame(frame, rows * columns, 16, "<"), "<i2").reshape(rows, columns)


def timed(function, reps: int) -> float:
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--corpus", type=Path, default=HERE.parent.parent / "shared" / "corpora")
    args = parser.parse_args(argv)
    import bench_guard as me  # functions pickled by reference must come from an importable module

    helper = GuardedProcess("bench")
    started = time.perf_counter()
    assert helper.call(me.echo, 1) == Returned(1)
    print(f"start (first call, helper boots)        {1000 * (time.perf_counter() - started):8.1f} ms")

    def guarded(fn, *a):
        outcome = helper.call(fn, *a, limits=Limits(memory_bytes=4 << 30, seconds=300))
        assert isinstance(outcome, Returned), outcome
        return outcome.value

    per_call = timed(lambda: [guarded(me.echo, 1) for _ in range(200)], args.reps) / 200
    print(f"per call (a few bytes each way)         {1000 * per_call:8.3f} ms")

    path = args.corpus / "pydicom_test_files" / "MR_small_RLE.dcm"
    if path.exists():
        import pydicom
        from pydicom.encaps import generate_frames

        dataset = pydicom.dcmread(path)
        frame = next(generate_frames(dataset.PixelData, number_of_frames=1))
        rows, columns = int(dataset.Rows), int(dataset.Columns)
        direct = timed(lambda: [me.decode_rle_frame(frame, rows, columns) for _ in range(100)], args.reps) / 100
        through = timed(lambda: [guarded(me.decode_rle_frame, frame, rows, columns) for _ in range(100)],
                        args.reps) / 100
        print(f"RLE frame 64x64: direct {1000 * direct:.3f} ms, guarded {1000 * through:.3f} ms "
              f"(+{1000 * (through - direct):.3f} ms per frame)")
    else:
        print(f"(no corpus at {args.corpus}: RLE frame skipped)")

    for label, shape, calls in (("one 512x512 int16 slice", (512, 512), 1),
                                ("a 512x512x300 series, one call", (300, 512, 512), 1),
                                ("a 512x512x300 series, 300 calls", (512, 512), 300)):
        direct = timed(lambda: [make_array(shape).sum() for _ in range(calls)], args.reps)
        through = timed(lambda: [guarded(me.make_array, shape).sum() for _ in range(calls)], args.reps)
        print(f"{label:40s} direct {1000 * direct:8.1f} ms, guarded {1000 * through:8.1f} ms "
              f"(+{1000 * (through - direct):.1f} ms)")
    helper.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
