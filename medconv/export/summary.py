"""The dataset summary: what nnU-Net's planning would compute, so a bad case shows before training.

``dataset_summary.json`` (in the dataset folder) and a printed table, from the
per-case statistics the workers recorded (:mod:`.stats`):

* cases (training, test) and channels;
* labels: value, name, voxels in all, cases holding it, share of the labelled
  voxels (class imbalance: the rarest label against the commonest);
* spacing and size per axis: median (nnU-Net's default target spacing), min, max;
  anisotropy (largest / smallest median spacing; nnU-Net treats > 3 specially);
* per channel: the intensity range and the foreground mean and standard deviation
  (what nnU-Net's CT normalisation uses);
* notes: cases whose label map is empty, cases missing a label most cases have,
  cases whose spacing is far from the median, a channel holding Hounsfield units
  that is not named "CT" (nnU-Net would z-score it instead).
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np

from .formats.base import write_json

SUMMARY_NAME = "dataset_summary.json"
#: nnU-Net treats spacing as anisotropic past this ratio (its ANISO_THRESHOLD).
ANISOTROPY_THRESHOLD = 3.0
#: A case whose spacing along an axis is this many times off the median is named in the notes.
SPACING_OUTLIER = 2.0
#: Minimum below which a channel's values look like Hounsfield units (air).
HU_AIR = -900.0


def _axis_stats(values: list[list[float]]) -> dict[str, list[float]]:
    array = np.asarray(values, dtype=float)
    return {"median": np.median(array, axis=0).round(6).tolist(), "min": array.min(axis=0).round(6).tolist(),
            "max": array.max(axis=0).round(6).tolist()}


def build_summary(records: Sequence[Mapping[str, Any]], labels: Mapping[int, str],
                  channel_names: Sequence[str]) -> dict[str, Any]:
    """The summary of the exported cases (``records``: the workers' case records)."""
    training = [r for r in records if r["stats"].get("label_voxels") is not None]
    test = [r for r in records if r["stats"].get("label_voxels") is None]
    summary: dict[str, Any] = {"cases": {"training": len(training), "test": len(test)},
                               "channels": list(channel_names), "notes": []}
    notes: list[str] = summary["notes"]
    if not records:
        return summary
    spacings = [r["stats"]["spacing"] for r in records]
    summary["spacing"] = _axis_stats(spacings)
    summary["shape"] = _axis_stats([r["stats"]["shape"] for r in records])
    median = np.asarray(summary["spacing"]["median"])
    summary["anisotropy"] = round(float(median.max() / median.min()), 3)
    if summary["anisotropy"] > ANISOTROPY_THRESHOLD:
        notes.append(f"spacing is anisotropic ({summary['anisotropy']:g}x between axes): nnU-Net resamples the "
                     "coarse axis separately")
    for record in records:
        ratio = np.asarray(record["stats"]["spacing"]) / median
        if np.any(ratio > SPACING_OUTLIER) or np.any(ratio < 1 / SPACING_OUTLIER):
            notes.append(f"case {record['case']['case_id']}: spacing {_text(record['stats']['spacing'])} is far "
                         f"from the median {_text(median)}")
    summary["labels"] = _label_rows(training, labels, notes)
    summary["intensity"] = _channel_rows(records, channel_names, notes)
    return summary


def _label_rows(training, labels: Mapping[int, str], notes: list[str]) -> list[dict[str, Any]]:
    if not training:
        return []
    counts = np.zeros(len(labels), dtype=np.int64)
    present = np.zeros(len(labels), dtype=np.int64)
    for record in training:
        voxels = np.asarray(record["stats"]["label_voxels"][: len(labels)], dtype=np.int64)
        voxels = np.pad(voxels, (0, len(labels) - len(voxels)))
        counts += voxels
        present += voxels > 0
        if voxels[1:].sum() == 0:
            notes.append(f"case {record['case']['case_id']}: the label map is empty (background only)")
    foreground = max(int(counts[1:].sum()), 1)
    rows = []
    for value, name in sorted(labels.items()):
        rows.append({"value": value, "name": name, "voxels": int(counts[value]), "cases": int(present[value]),
                     "share_of_foreground": None if value == 0 else round(float(counts[value]) / foreground, 6)})
    usual = [row for row in rows[1:] if row["cases"] * 2 > len(training)]
    for record in training:
        voxels = record["stats"]["label_voxels"]
        missing = [row["name"] for row in usual if row["value"] >= len(voxels) or voxels[row["value"]] == 0]
        if missing and sum(voxels[1:]) > 0:
            notes.append(f"case {record['case']['case_id']}: no {', '.join(missing)} (most cases have it)")
    shares = [row["voxels"] for row in rows[1:] if row["voxels"] > 0]
    if len(shares) > 1:
        notes.append(f"class imbalance: the commonest label has {max(shares) / min(shares):.1f}x the voxels of the rarest")
    return rows


def _channel_rows(records, channel_names: Sequence[str], notes: list[str]) -> list[dict[str, Any]]:
    rows = []
    for name in channel_names:
        stats = [r["stats"]["channels"].get(name) for r in records if r["stats"]["channels"].get(name)]
        if not stats:
            continue
        foreground = [s["foreground"] for s in stats if "foreground" in s]
        row = {"channel": name, "min": min(s["min"] for s in stats), "max": max(s["max"] for s in stats),
               "mean": float(np.mean([s["mean"] for s in stats]))}
        if foreground:
            row["foreground_mean"] = float(np.mean([f["mean"] for f in foreground]))
            row["foreground_std"] = float(np.mean([f["std"] for f in foreground]))
            row["foreground_p00_5"] = float(np.median([f["p00_5"] for f in foreground]))
            row["foreground_p99_5"] = float(np.median([f["p99_5"] for f in foreground]))
        rows.append(row)
        if name != "CT" and row["min"] <= HU_AIR and row["max"] > 0 and \
                all(u in (None, "HU") for r in records for u in r["stats"].get("units") or [None]):
            notes.append(f"channel {name!r} looks like CT in Hounsfield units (min {row['min']:g}) but is not named "
                         "'CT': nnU-Net uses its CT normalisation only for channels named 'CT' (--channel-names CT)")
    return rows


def _text(values) -> str:
    return "x".join(f"{float(v):.4g}" for v in values)


def write_summary(folder: str, summary: Mapping[str, Any]) -> str:
    path = os.path.join(folder, SUMMARY_NAME)
    write_json(path, summary)
    return path


def table_lines(headers: Sequence[str], rows: Sequence[Sequence[str]], left: Sequence[str] = ()) -> list[str]:
    """A plain text table (columns padded; ``left`` columns left-aligned, the rest right-aligned)."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h)) for i, h in enumerate(headers)]

    def line(values) -> str:
        cells = [str(v).ljust(w) if h in left else str(v).rjust(w) for v, w, h in zip(values, widths, headers)]
        return "  ".join(cells).rstrip()

    return [line(headers)] + [line(row) for row in rows]


def render_summary(summary: Mapping[str, Any], console) -> None:
    """Print the summary: counts, spacing and size, a labels table, an intensity table, the notes."""
    cases = summary["cases"]
    lines = [f"cases: {cases['training']} training, {cases['test']} test; channels: {', '.join(summary['channels'])}"]
    if summary.get("spacing"):
        for name in ("spacing", "shape"):
            stats = summary[name]
            lines.append(f"{name:<8} median {_text(stats['median'])}  min {_text(stats['min'])}  "
                         f"max {_text(stats['max'])}")
    if summary.get("labels"):
        rows = [(str(r["value"]), r["name"], f"{r['voxels']:,}", str(r["cases"]),
                 "" if r["share_of_foreground"] is None else f"{100 * r['share_of_foreground']:.2f} %")
                for r in summary["labels"]]
        lines += table_lines(("value", "label", "voxels", "cases", "of foreground"), rows, left=("label",))
    if summary.get("intensity"):
        rows = [(r["channel"], f"{r['min']:.4g}", f"{r['max']:.4g}",
                 f"{r['foreground_mean']:.4g}" if "foreground_mean" in r else "",
                 f"{r['foreground_std']:.4g}" if "foreground_std" in r else "") for r in summary["intensity"]]
        lines += table_lines(("channel", "min", "max", "fg mean", "fg std"), rows, left=("channel",))
    notes = summary.get("notes", [])
    lines += [f"note: {note}" for note in notes[:20]]
    if len(notes) > 20:
        lines.append(f"note: ... and {len(notes) - 20} more in {SUMMARY_NAME}")
    for text in lines:
        console.print(text, highlight=False, markup=False)
