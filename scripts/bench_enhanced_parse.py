#!/usr/bin/env python
"""The DICOM parsing of an enhanced series, stage by stage, in one process: header scan, functional groups, frames.

For the enhanced multi-frame target (issue 10, fault 13), whose discovery is
pure-Python work per frame. For each FOLDER (e.g. the ``in`` folder that
``scripts/bench_dicom_layouts.py`` writes) it times, over its ``*.dcm`` files,
best of ``--reps`` after one warm-up (imports and the page cache are warm, so
these are the parsers' own costs, not a process's):

* ``scan``: :func:`medconv.readers.dicom.rawheader.parse_file` of every file (the
  header scan's parse: top-level elements and the pixel offset);
* ``walk``: :func:`medconv.readers.dicom.functional_groups.read_functional_groups`
  of every file (with one ``ItemMemo`` for the series where the package has it);
* ``frames``: the enhanced layout's frames from those (``layouts.enhanced._frames_of``).

``--package DIR`` imports medconv from DIR instead (another checkout unpacked with
``git archive``), to compare two versions with the same interpreter and files.

Usage (from the repository root)::

    .venv/bin/python scripts/bench_enhanced_parse.py /tmp/enh-lay/in /tmp/enh-layU/in
    .venv/bin/python scripts/bench_enhanced_parse.py /tmp/enh-lay/in --package /tmp/base
"""

from __future__ import annotations

import argparse
import inspect
import sys
import time
from pathlib import Path


def best_ms(function, reps: int) -> float:
    """The best wall time of ``function()`` over ``reps`` runs after a warm-up, in ms."""
    function()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--package", type=Path, help="import medconv from this folder")
    args = parser.parse_args(argv)
    if args.package:
        sys.path.insert(0, str(args.package))
    import medconv
    from medconv.readers.dicom import functional_groups, headers, rawheader
    from medconv.readers.dicom.layouts import enhanced

    wanted = getattr(headers, "_WANTED")
    with_memo = "memo" in inspect.signature(functional_groups.read_functional_groups).parameters
    print(f"# medconv from {Path(medconv.__file__).parent}, best of {args.reps}"
          f"{', one ItemMemo per series' if with_memo else ''}")
    for folder in args.folders:
        paths = [str(p) for p in sorted(folder.glob("*.dcm"))]
        scanned = [rawheader.parse_file(p, wanted) for p in paths]

        def walk():
            if with_memo:
                memo = functional_groups.ItemMemo()
                return [functional_groups.read_functional_groups(p, h.pixel_offset, memo)
                        for p, h in zip(paths, scanned)]
            return [functional_groups.read_functional_groups(p, h.pixel_offset) for p, h in zip(paths, scanned)]

        datasets = walk()
        scan = best_ms(lambda: [rawheader.parse_file(p, wanted) for p in paths], args.reps)
        walked = best_ms(walk, args.reps)
        frames = best_ms(lambda: enhanced._frames_of(datasets, paths), args.reps)
        print(f"{folder}: {len(paths)} files  scan {scan:.1f} ms  walk {walked:.1f} ms  frames {frames:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
