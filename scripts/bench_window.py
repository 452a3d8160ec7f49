#!/usr/bin/env python
"""A window's scaling (``--window ... --scale unit|uint8``): medconv's in-place form against the one-expression form.

Usage (from the repository root)::

    .venv/bin/python scripts/bench_window.py                 # 512x512x120, int16 and float32, 7 repetitions
    .venv/bin/python scripts/bench_window.py --slices 300 --reps 9

``medconv.transforms.intensity.clip`` (the function behind ``--window`` and
``--clip``) is timed side by side, interleaved, with the definition written as
one numpy expression, ``(np.clip(x.astype(float64), lo, hi) - lo) / (hi - lo)``
then ``astype(float32)`` or ``floor(255 * u + 0.5).astype(uint8)``, on the same
arrays; both results are compared byte for byte. The table gives the best time
per voxel (ns) of each and their ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from medconv.transforms.intensity import clip
from medconv.volume import Volume

LO, HI = -1350.0, 150.0  # the lung window


def one_expression(array: np.ndarray, scale: str) -> np.ndarray:
    unit = (np.clip(array.astype(np.float64), LO, HI) - LO) / (HI - LO)
    return unit.astype(np.float32) if scale == "unit" else np.floor(unit * 255.0 + 0.5).astype(np.uint8)


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=120)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    shape = (args.slices, 512, 512)
    arrays = {"int16": rng.integers(-1024, 3000, size=shape).astype(np.int16).T,
              "float32": rng.normal(-500, 600, size=shape).astype(np.float32).T}
    print(f"{'input':8} {'scale':6} {'one expression':>15} {'medconv':>9} {'ratio':>6}   (ns per voxel, best of "
          f"{args.reps}, {np.prod(shape) / 1e6:.1f} M voxels, numpy {np.__version__})")
    for name, array in arrays.items():
        volume = Volume(array, spacing=(1.0, 1.0, 1.0))
        for scale in ("unit", "uint8"):
            ours = clip(volume, LO, HI, scale=scale).array
            expected = one_expression(array, scale)
            assert ours.dtype == expected.dtype and ours.tobytes() == expected.tobytes(), (name, scale)
            reference, medconv = [], []
            for _ in range(args.reps):  # interleaved, so that load on the machine hits both alike
                reference.append(seconds(lambda: one_expression(array, scale)))
                medconv.append(seconds(lambda: clip(volume, LO, HI, scale=scale)))
            ref_ns, our_ns = min(reference) / array.size * 1e9, min(medconv) / array.size * 1e9
            print(f"{name:8} {scale:6} {ref_ns:15.2f} {our_ns:9.2f} {our_ns / ref_ns:6.2f}")


if __name__ == "__main__":
    main()
