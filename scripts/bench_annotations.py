"""What annotations cost ``medconv tcia2nii`` on a LIDC-like tree: one LIDC XML beside every CT series.

Issue 11's target: pairing and rasterising add at most 15 % to ``tcia2nii``. This script

1. writes (or reuses) a LIDC-IDRI-like tree with :mod:`bench_workloads` (512 x 512 CT
   series, one file per slice, TCIA's folder layout) and, beside each series, a LIDC XML
   whose readings are **transplanted from the corpus XMLs** (``../shared/corpora/lidc``:
   every reading session, nodule outline, exclusion, small nodule and non-nodule of
   ``069.xml`` / ``072.xml``, the ROIs moved onto the synthetic series' slices, UIDs
   rewritten): real file sizes (300-400 KB), real outline lengths, four readers each.
   Without the corpus, nodules are generated (circles, four readers);
2. runs ``medconv tcia2nii TREE OUT`` with and without ``--no-annotations``, interleaved
   (A B A B ...), each run into a fresh output folder, and prints the median wall times,
   the overhead, and what was written.

Usage::

    python scripts/bench_annotations.py [--series 8] [--reps 5] [--jobs 0] [--work /tmp/medconv-bench-annot]

Never imported by medconv; it runs the installed ``medconv`` command (the venv's).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_workloads import _uid, ensure, lidc_series_slices, write_ct_series  # noqa: E402

CORPUS_XML = ("LIDC-IDRI-0001", "LIDC-IDRI-0003")
NS = "{http://www.nih.gov}"
CHARACTERISTICS = ("subtlety", "internalStructure", "calcification", "sphericity", "margin", "lobulation",
                   "spiculation", "texture", "malignancy")


def _corpus_readings(corpora: Path) -> list[list[dict]]:
    """Each corpus XML's readings: per session, its marks (kind, id, ratings, ROIs as (z rank, inclusion, points))."""
    documents = []
    for patient in CORPUS_XML:
        found = sorted((corpora / "lidc" / patient).rglob("*.xml"))
        if not found:
            continue
        root = ElementTree.parse(found[0]).getroot()
        zs = sorted({float(e.text) for e in root.iter(NS + "imageZposition")})
        rank = {z: n for n, z in enumerate(zs)}
        sessions = []
        for session in root.iter(NS + "readingSession"):
            marks = []
            for nodule in session.iter(NS + "unblindedReadNodule"):
                ratings = [nodule.findtext(f"{NS}characteristics/{NS}{name}") or "" for name in CHARACTERISTICS]
                rois = [(rank[float(roi.findtext(NS + "imageZposition"))],
                         (roi.findtext(NS + "inclusion") or "TRUE").strip(),
                         [(int(e.findtext(NS + "xCoord")), int(e.findtext(NS + "yCoord")))
                          for e in roi.iter(NS + "edgeMap")]) for roi in nodule.iter(NS + "roi")]
                marks.append({"kind": "nodule", "id": nodule.findtext(NS + "noduleID"), "ratings": ratings,
                              "rois": rois})
            for other in session.iter(NS + "nonNodule"):
                locus = other.find(NS + "locus")
                marks.append({"kind": "non", "id": other.findtext(NS + "nonNoduleID"),
                              "rois": [(rank[float(other.findtext(NS + "imageZposition"))], "TRUE",
                                        [(int(locus.findtext(NS + "xCoord")), int(locus.findtext(NS + "yCoord")))])]})
            sessions.append(marks)
        documents.append(sessions)
    return documents


def _generated_readings(seed: int) -> list[list[dict]]:
    """Four readers outlining two nodules (circles of 8 and 5 pixels) when the corpus is absent."""
    import math

    sessions = []
    for session in range(4):
        marks = []
        for number, (cx, cy, radius, first, count) in enumerate(((300 + seed % 7, 200, 8, 10, 6),
                                                                 (150, 320 - seed % 5, 5, 30, 3)), start=1):
            outline = sorted({(round(cx + (radius + 1) * math.cos(a / 40 * 2 * math.pi)),
                               round(cy + (radius + 1) * math.sin(a / 40 * 2 * math.pi))) for a in range(40)},
                             key=lambda p: math.atan2(p[1] - cy, p[0] - cx))
            marks.append({"kind": "nodule", "id": f"Nodule {number:03d}", "ratings": ["3"] * 9,
                          "rois": [(first + k + session % 2, "TRUE", outline) for k in range(count)]})
        sessions.append(marks)
    return [sessions]


def _xml_text(readings: list[dict], series_uid: str, study_uid: str, sops: list[str], zs: list[float],
              base: int) -> str:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<LidcReadMessage uid="1.3.6.1.4.1.14519.5.2.1.6279.6001.0.0" xmlns="http://www.nih.gov" '
             'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">',
             "<ResponseHeader>", "<Version>1.8.1</Version>", "<TaskDescription>Second unblinded read</TaskDescription>",
             f"<SeriesInstanceUid>{series_uid}</SeriesInstanceUid>",
             f"<StudyInstanceUID>{study_uid}</StudyInstanceUID></ResponseHeader>"]
    for number, marks in enumerate(readings, start=1):
        lines += ["<readingSession>", "    <annotationVersion>3.12</annotationVersion>",
                  f"    <servicingRadiologistID>{1000 + number}</servicingRadiologistID>"]
        for mark in marks:
            if mark["kind"] == "nodule":
                lines += ["    <unblindedReadNodule>", f"      <noduleID>{mark['id']}</noduleID>",
                          "      <characteristics>"]
                lines += [f"        <{n}>{v}</{n}>" for n, v in zip(CHARACTERISTICS, mark["ratings"]) if v]
                lines.append("      </characteristics>")
                for rank, inclusion, points in mark["rois"]:
                    k = min(base + rank, len(sops) - 1)
                    lines += ["      <roi>", f"        <imageZposition>{zs[k]:.6f} </imageZposition>",
                              f"        <imageSOP_UID>{sops[k]}</imageSOP_UID>",
                              f"        <inclusion>{inclusion}</inclusion>"]
                    for x, y in points:
                        lines += ["        <edgeMap>", f"          <xCoord>{x}</xCoord>",
                                  f"          <yCoord>{y}</yCoord>", "        </edgeMap>"]
                    lines.append("      </roi>")
                lines.append("    </unblindedReadNodule>")
            else:
                rank, _, [(x, y)] = mark["rois"][0]
                k = min(base + rank, len(sops) - 1)
                lines += ["    <nonNodule>", f"      <nonNoduleID>{mark['id']}</nonNoduleID>",
                          f"      <imageZposition>{zs[k]:.6f} </imageZposition>",
                          f"      <imageSOP_UID>{sops[k]}</imageSOP_UID>",
                          f"      <locus>\n        <xCoord>{x}</xCoord>\n        <yCoord>{y}</yCoord>\n      </locus>",
                          "    </nonNodule>"]
        lines.append("</readingSession>")
    lines.append("</LidcReadMessage>")
    return "\n".join(lines) + "\n"


def write_annotated_tree(dest: Path, n_series: int, low: int, high: int, corpora: Path, seed: int = 500) -> None:
    """The LIDC-like tree: ``n_series`` CT series of ``low``-``high`` slices, a LIDC XML beside each."""
    documents = _corpus_readings(corpora) or None
    for index, n_slices in enumerate(lidc_series_slices(n_series, low, high, seed)):
        patient = f"LIDC-IDRI-{index + 1:04d}"
        series_seed = seed + index
        step = (1.25, 2.5, 1.0, 2.0)[index % 4]
        folder = dest / patient / f"01-01-2000-NA-NA-{30178 + index}" / f"{3000566 + index}.000000-NA-{3192 + index:05d}"
        write_ct_series(folder, slices=n_slices, size=512, seed=series_seed, patient=patient, step_mm=step)
        z_top = -50.0 - 3.7 * (series_seed % 7)  # as write_ct_series places them
        sops = [_uid(series_seed, 4, k + 1) for k in range(n_slices)]
        zs = [round(z_top - k * step, 6) for k in range(n_slices)]
        readings = (documents[index % len(documents)] if documents else _generated_readings(index)[0])
        text = _xml_text(readings, _uid(series_seed, 2), _uid(series_seed, 1), sops, zs, base=n_slices // 4)
        (folder / f"{69 + index:03d}.xml").write_text(text)


def _run(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and every descendant it waited for)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr[-2000:]}")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _written(out: Path) -> dict:
    files = [p for p in out.rglob("*") if p.is_file()]
    masks = [p for p in files if "_lidc-" in p.name and p.name.endswith(".nii.gz")]
    return {"files": len(files), "masks": len(masks), "mask_mb": round(sum(p.stat().st_size for p in masks) / 1e6, 2),
            "total_mb": round(sum(p.stat().st_size for p in files) / 1e6, 1)}


def _unit_seconds(out: Path) -> dict[str, float]:
    """Total wall seconds the manifest gives the image units and the annotation units (each unit's own time)."""
    totals = {"dicom": 0.0, "annotation": 0.0}
    for line in (out / "medconv-manifest.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row.get("reader") in totals:
            totals[row["reader"]] += float(row.get("seconds") or 0.0)
    return totals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=8, help="CT series in the tree (default 8)")
    parser.add_argument("--low", type=int, default=100, help="fewest slices per series (default 100)")
    parser.add_argument("--high", type=int, default=250, help="most slices per series (default 250)")
    parser.add_argument("--reps", type=int, default=5, help="runs of each variant, interleaved (default 5)")
    parser.add_argument("--jobs", type=int, default=0, help="medconv --jobs (default 0: medconv's default)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/medconv-bench-annot"), help="tree and outputs")
    parser.add_argument("--corpora", type=Path, default=HERE.parent.parent / "shared" / "corpora")
    args = parser.parse_args(argv)
    medconv = str(Path(sys.executable).with_name("medconv"))
    params = {"kind": "annotated-lidc", "series": args.series, "low": args.low, "high": args.high,
              "corpus": (args.corpora / "lidc").is_dir()}
    tree = ensure(args.work / "tree", params,
                  lambda dest: write_annotated_tree(dest, args.series, args.low, args.high, args.corpora))
    xml_kb = [p.stat().st_size / 1e3 for p in tree.rglob("*.xml")]
    slices = sum(1 for _ in tree.rglob("*.dcm"))
    print(f"tree: {tree} ({args.series} series, {slices} slices of 512x512, {len(xml_kb)} LIDC XML of "
          f"{min(xml_kb):.0f}-{max(xml_kb):.0f} KB{', readings from the corpus' if params['corpus'] else ''})")
    variants = {"without (--no-annotations)": ["--no-annotations"], "with annotations (default)": []}
    times: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    units: list[dict[str, float]] = []
    written = {}
    load = os.getloadavg()[0]
    for rep in range(args.reps):
        for name, extra in variants.items():
            out = args.work / f"out-{rep}-{len(extra)}"
            shutil.rmtree(out, ignore_errors=True)
            command = [medconv, "tcia2nii", str(tree), str(out), "-q", "--jobs", str(args.jobs)] + extra
            wall, used = _run(command)
            times[name].append(wall)
            cpu[name].append(used)
            written[name] = _written(out)
            if not extra:
                units.append(_unit_seconds(out))
            shutil.rmtree(out, ignore_errors=True)
    base, full = (statistics.median(times[name]) for name in variants)
    base_cpu, full_cpu = (statistics.median(cpu[name]) for name in variants)
    for name in variants:
        print(f"{name:28s} wall median {statistics.median(times[name]):6.2f} s (runs "
              + " ".join(f"{t:.2f}" for t in times[name]) + f"), CPU median {statistics.median(cpu[name]):6.2f} s"
              + f"  written {json.dumps(written[name])}")
    print(f"overhead of pairing + rasterising + writing the masks: wall {100 * (full / base - 1):+.1f} %, "
          f"CPU {100 * (full_cpu / base_cpu - 1):+.1f} % (target <= 15 %); "
          f"{(full - base) / args.series * 1000:.0f} ms wall, {(full_cpu - base_cpu) / args.series * 1000:.0f} ms CPU "
          f"per series; load average {load:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    images = statistics.median(u["dicom"] for u in units)
    annotations = statistics.median(u["annotation"] for u in units)
    print(f"the units' own times (manifest 'seconds', median of {len(units)} runs): images {images:.2f} s, "
          f"annotation units {annotations:.2f} s ({100 * annotations / images:.1f} % of the images')")
    print("command: " + " ".join([Path(sys.executable).name, "scripts/bench_annotations.py"] + (argv or sys.argv[1:])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
