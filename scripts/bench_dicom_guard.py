#!/usr/bin/env python
"""What guarding the DICOM reader's compressed decodes costs: ``medconv.read`` guarded against unguarded.

Usage (from the repository root)::

    .venv/bin/python scripts/bench_dicom_guard.py [--reps 5] [--corpus ../shared/corpora]

The DICOM reader decodes every compressed transfer syntax in a guarded helper
process (:func:`medconv.readers.dicom.compressed.is_guarded`; docs/reliability.md).
This script reads the same inputs in one process, alternating the two ways, and
prints the medians of ``--reps`` repetitions (the two ways alternated):

* **guarded**: the reader as shipped (the helper is started before timing: its
  one-off start is printed apart);
* **direct**: the same reads with ``is_guarded`` answering ``False`` for the
  compressed syntaxes, so pydicom's decoders run in this process (what the reader
  did before).

Inputs: ``dcm_qa_frag`` (96 JPEG-lossless MR slices, several fragments per frame:
one guarded call per slice) and the four compressed files of ``dcm_qa_ts`` (RLE,
JPEG lossless, JPEG-LS, JPEG 2000), one read each.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--corpus", type=Path, default=HERE.parent.parent / "shared" / "corpora")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE.parent))

    import medconv
    from medconv.readers.dicom import compressed  # decode_into looks is_guarded up here at each decode
    from medconv.readers.dicom.compressed import DEFLATED
    from pydicom import dcmread

    frag = args.corpus / "dcm_qa_frag" / "In" / "5001_anat-T1w_acq-tfl"
    ts_files = []
    for path in sorted((args.corpus / "dcm_qa_ts" / "In").glob("*.dcm")):
        syntax = str(dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)
        if compressed.is_guarded(syntax) and syntax != DEFLATED:
            ts_files.append((path, syntax))
    guarded_check = compressed.is_guarded

    def unguarded(syntax: str) -> bool:
        return False

    started = time.perf_counter()
    medconv.read(ts_files[0][0])  # starts this process's helper
    print(f"first guarded read of a process (the helper starts): {(time.perf_counter() - started) * 1000:.0f} ms")
    inputs = [(f"dcm_qa_frag ({len(list(frag.glob('*.dcm')))} JPEG-lossless slices)", frag)] + \
             [(f"dcm_qa_ts/In/{path.name} ({compressed.transfer_syntax_name(syntax)[:24]})", path) for path, syntax in ts_files]
    print(f"{'input':44} {'direct':>10} {'guarded':>10} {'ratio':>6}")
    for name, path in inputs:
        medconv.read(path)  # warm the page cache and the imports
        directs, guardeds = [], []
        for _ in range(args.reps):  # alternated, so that a change in the machine's load hits both alike
            compressed.is_guarded = unguarded
            try:
                directs.append(timed(lambda: medconv.read(path)))
            finally:
                compressed.is_guarded = guarded_check
            guardeds.append(timed(lambda: medconv.read(path)))
        direct, guarded = statistics.median(directs), statistics.median(guardeds)
        print(f"{name:44} {direct * 1000:8.1f}ms {guarded * 1000:8.1f}ms {guarded / direct:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
