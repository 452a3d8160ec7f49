"""Output checks for scripts/benchmark.py: a fast wrong result must not pass.

Every image a tool wrote is compared with a reference tool's image of the same
unit *in world space*: both are brought to the closest RAS orientation with
nibabel (no interpolation), then shapes, affines (0.01 mm) and the voxels of the
first, middle and last slices must agree exactly (scaling applied, so dcm2niix's
stored values + ``scl_inter`` equal medconv's Hounsfield units).

Preprocessed outputs (``prep``) are compared with the SimpleITK script's the same
way, but within a tolerance: the script does not anti-alias, medconv does
(sigma 0.30 mm in-plane for 0.70 -> 1 mm), which moves noisy CT values by a few
HU. Both are brought to lung-window fractions ([-1350, 150] HU -> [0, 1]; an
int16 HU output is converted) and must agree to :data:`PREP_MEDIAN_TOLERANCE`
in the median (a grid shifted by one voxel fails it: the phantom's noise alone
gives 0.01) and :data:`PREP_P99_TOLERANCE` at the 99th percentile (the voxels
at the phantom's 1,000 HU edges, where smoothing or not differs most).
"""

from __future__ import annotations

import json
from pathlib import Path


#: Lung-window fractions (1 = 1500 HU): median |medconv - SimpleITK script| (0.004 = 6 HU).
PREP_MEDIAN_TOLERANCE = 0.004
#: ... and its 99th percentile (0.1 = 150 HU: anti-aliasing at the phantom's edges; measured 0.05).
PREP_P99_TOLERANCE = 0.1


def lung_fraction(values):
    import numpy as np

    if values.dtype.kind in "iu" or values.max() > 1.5:  # HU
        return np.clip((values.astype(np.float64) + 1350.0) / 1500.0, 0.0, 1.0)
    return values.astype(np.float64)


def close_in_world(ours: Path, reference: Path) -> str | None:
    """None if ``ours`` and ``reference`` are on the same RAS grid with lung-window values within tolerance."""
    import numpy as np

    shape_a, affine_a, slabs_a = canonical_slabs(ours)
    shape_b, affine_b, slabs_b = canonical_slabs(reference)
    if shape_a != shape_b:
        return f"shape {shape_a} != {shape_b}"
    if not np.allclose(affine_a, affine_b, atol=0.01):
        return f"affine differs:\n{np.round(affine_a, 3)}\nvs\n{np.round(affine_b, 3)}"
    for fraction, a, b in zip((0.0, 0.5, 1.0), slabs_a, slabs_b):
        diff = np.abs(lung_fraction(a) - lung_fraction(b))
        median, p99 = float(np.median(diff)), float(np.percentile(diff, 99))
        if median > PREP_MEDIAN_TOLERANCE or p99 > PREP_P99_TOLERANCE:
            return (f"values differ at {fraction:.0%} of the slices: median {median:.4f}, p99 {p99:.4f} "
                    f"(tolerance {PREP_MEDIAN_TOLERANCE}, {PREP_P99_TOLERANCE})")
    return None


def canonical_slabs(path: Path, fractions=(0.0, 0.5, 1.0)):
    """(shape, affine, one slice at each fraction of the last axis), all in closest-RAS orientation.

    The image is decompressed once; reorientation flips/permutes without interpolation.
    """
    import nibabel as nib
    import numpy as np

    image = nib.as_closest_canonical(nib.load(str(path)))
    data = np.asanyarray(image.dataobj)  # applies scl_slope / scl_inter
    n = image.shape[2]
    slabs = [np.asarray(data[:, :, int(round(f * (n - 1)))], dtype=np.float64) for f in fractions]
    return image.shape[:3], image.affine, slabs


def same_in_world(ours: Path, reference: Path) -> str | None:
    """None if ``ours`` and ``reference`` hold the same voxels at the same RAS positions (3 slices)."""
    import numpy as np

    shape_a, affine_a, slabs_a = canonical_slabs(ours)
    shape_b, affine_b, slabs_b = canonical_slabs(reference)
    if shape_a != shape_b:
        return f"shape {shape_a} != {shape_b}"
    if not np.allclose(affine_a, affine_b, atol=0.01):
        return f"affine differs:\n{np.round(affine_a, 3)}\nvs\n{np.round(affine_b, 3)}"
    for fraction, a, b in zip((0.0, 0.5, 1.0), slabs_a, slabs_b):
        if not np.array_equal(a, b):
            return f"voxels differ at {fraction:.0%} of the slices (max |diff| {np.abs(a - b).max():g})"
    return None


def images_in(out: Path) -> list[Path]:
    """The image volumes under ``out``: not hidden temporaries, and not medconv's annotation masks
    (a sidecar whose ``meta.annotates`` names the image they are drawn on), which no peer writes."""
    return sorted(p for p in out.rglob("*.nii*") if p.is_file() and not p.name.startswith(".")
                  and not _is_annotation_mask(p))


def _is_annotation_mask(path: Path) -> bool:
    import json

    stem = path.name[: -len(".nii.gz")] if path.name.endswith(".nii.gz") else path.stem
    sidecar = path.with_name(stem + ".json")
    try:
        return bool(json.loads(sidecar.read_text()).get("meta", {}).get("annotates"))
    except (OSError, ValueError, AttributeError):
        return False


def match_by_geometry(ours: list[Path], theirs: list[Path]) -> list[tuple[Path, Path | None]]:
    """Pair each of ``ours`` with the reference image of the same shape and RAS origin."""
    import nibabel as nib
    import numpy as np

    def key(path):
        """Orientation-independent: sorted shape and the RAS bounding box of the voxel centres (0.1 mm)."""
        image = nib.load(str(path))
        shape = image.shape[:3]
        corners = np.array([[i, j, k, 1] for i in (0, shape[0] - 1) for j in (0, shape[1] - 1)
                            for k in (0, shape[2] - 1)], dtype=float)
        world = (image.affine @ corners.T)[:3]
        return sorted(shape), np.round(world.min(axis=1), 1).tolist(), np.round(world.max(axis=1), 1).tolist()

    reference = {json.dumps(key(p)): p for p in theirs}
    return [(p, reference.get(json.dumps(key(p)))) for p in ours]


def check_outputs(workload: str, outs: dict[str, Path], expected_units: int) -> list[str]:
    """Problems found in the last repetition's outputs (empty list: all agree)."""
    problems = []
    if workload in ("ct", "prep"):
        # one image per tool, against the reference tool's: same voxels (ct), or within tolerances (prep)
        ref_name, compare = ("dcm2niix -z y", same_in_world) if workload == "ct" else ("SimpleITK script", close_in_world)
        reference = images_in(outs[ref_name])
        if len(reference) != 1:
            return [f"{ref_name} wrote {len(reference)} images, expected 1"]
        for name, out in outs.items():
            if name == ref_name:
                continue
            found = images_in(out)
            if len(found) != 1:
                problems.append(f"{name}: wrote {len(found)} images, expected 1")
                continue
            issue = compare(found[0], reference[0])
            if issue:
                problems.append(f"{name} vs {ref_name}: {issue}")
    elif workload in ("tree", "luna") or workload.startswith("scaling-"):
        ref_name = {"tree": "dcm2niix -z y", "luna": "SimpleITK"}.get(workload, "dcm2niix -z y ×2")
        reference = images_in(outs[ref_name])
        if len(reference) != expected_units:
            problems.append(f"{ref_name}: wrote {len(reference)} images, expected {expected_units}")
        for name, out in outs.items():
            if name == ref_name:
                continue
            found = images_in(out)
            if len(found) != expected_units:
                problems.append(f"{name}: wrote {len(found)} images, expected {expected_units}")
            pairs = match_by_geometry(found, reference)
            unmatched = [p.name for p, q in pairs if q is None]
            if unmatched:
                problems.append(f"{name}: no reference image with the same shape and origin for {unmatched[:3]}")
            checked = [(p, q) for p, q in pairs if q is not None][:2]  # voxels of two pairs: cheap enough
            for ours, theirs in checked:
                issue = same_in_world(ours, theirs)
                if issue:
                    problems.append(f"{name} {ours.name} vs {ref_name} {theirs.name}: {issue}")
    elif workload == "scan":
        import csv

        table = outs["medconv scan"] / "scan.csv"
        if not table.exists():
            return [f"medconv scan wrote no {table.name}"]
        with open(table, newline="") as stream:
            rows = list(csv.DictReader(stream))
        if len(rows) != expected_units:
            problems.append(f"medconv scan listed {len(rows)} units, expected {expected_units} series")
    return problems
