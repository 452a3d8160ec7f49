"""Dataset trees for the batch tests: many small NIfTI units written by nibabel, plus broken ones.

nibabel writes the inputs and reads the outputs back, so every check of a
converted voxel or affine is made against an independent reference.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from pathlib import Path

import numpy as np

from medconv.atomic import is_temporary


def affine_for(index: int) -> np.ndarray:
    """A distinct oblique-free RAS affine per unit (spacing and origin vary, one axis flipped)."""
    affine = np.diag([-(0.5 + 0.1 * index), 0.8, 1.5 + 0.25 * (index % 3), 1.0])
    affine[:3, 3] = (10.0 * index, -20.0, 5.0 - index)
    return affine


def unit_array(index: int, shape=(12, 10, 8)) -> np.ndarray:
    """A deterministic int16 array that differs between units and has no symmetry."""
    i, j, k = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    return (i * 100 + j * 10 + k + index * 1000).astype(np.int16)


def write_nifti_tree(root: Path, n_good: int = 12, bad: bool = True, shape=(12, 10, 8)) -> dict[str, list[Path]]:
    """``root/group<N>/case<M>.nii.gz`` good units and, with ``bad``, a truncated and a garbage file.

    Returns ``{"good": [...], "bad": [...]}``.
    """
    import nibabel as nib

    root = Path(root)
    written: dict[str, list[Path]] = {"good": [], "bad": []}
    for index in range(n_good):
        path = root / f"group{index % 3}" / f"case{index:03d}.nii.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(unit_array(index, shape), affine_for(index)), str(path))
        written["good"].append(path)
    if bad:
        truncated = root / "broken" / "truncated.nii.gz"
        truncated.parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(unit_array(99, shape), np.eye(4)), str(truncated))
        data = truncated.read_bytes()
        truncated.write_bytes(data[: len(data) // 2])
        garbage = root / "broken" / "garbage.nii"
        garbage.write_bytes(b"this is not a NIfTI file\n" * 40)
        written["bad"] += [truncated, garbage]
    return written


def tree_checksums(root: Path) -> dict[str, str]:
    """sha256 and mtime of every file under ``root``: changes if anything is touched."""
    sums = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            sums[os.path.relpath(path, root)] = f"{digest}:{os.stat(path).st_mtime_ns}"
    return sums


def output_bytes(dest: Path, suffixes=(".nii.gz", ".nii", ".npz", ".json")) -> dict[str, bytes]:
    """Every output file under ``dest`` (manifests and summaries excluded), by relative path."""
    found = {}
    for folder, _, files in os.walk(dest):
        for name in files:
            if name.startswith("medconv-") or not name.endswith(suffixes):
                continue
            path = os.path.join(folder, name)
            found[os.path.relpath(path, dest)] = Path(path).read_bytes()
    return found


def temporaries(dest: Path) -> list[str]:
    """Leftover temporary outputs under ``dest``."""
    return [os.path.join(folder, name) for folder, _, files in os.walk(dest) for name in files if is_temporary(name)]


class SlowPreprocessing:
    """A picklable Volume -> Volume step that takes ``seconds`` (to interrupt a run part-way)."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __call__(self, volume):
        time.sleep(self.seconds)
        return volume

    def describe(self) -> str:
        """What the step does to the voxels (nothing): the delay does not change the output."""
        return "sleep"


@dataclasses.dataclass(frozen=True)
class ThreadsProbe:
    """A picklable preprocessing step that records, in the history, the ``threads`` it was given."""

    threads: int = 0

    def __call__(self, volume):
        return volume.replace(history=volume.history + (f"threads={self.threads}",))

    def describe(self) -> str:
        return "threads probe (changes no voxel)"
