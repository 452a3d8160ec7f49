"""Independent references for tests: dcm2niix runs and world-space comparisons.

Compare medconv with a reference *in world space*: both images are brought to
the closest canonical (RAS) orientation with nibabel, then their affines and
voxels are compared. Two converters may legitimately store axes in different
orders; the same voxel at the same RAS position is what has to agree.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest


def dcm2niix_binary() -> str:
    """Path of the dcm2niix executable installed from PyPI (the test extra)."""
    candidate = Path(sys.executable).parent / "dcm2niix"
    found = str(candidate) if candidate.exists() else shutil.which("dcm2niix")
    if not found:
        pytest.fail("dcm2niix is not installed: pip install -e '.[test]'")
    return found


def run_dcm2niix(input_dir: Path, out_dir: Path, *flags: str) -> list[Path]:
    """Convert ``input_dir`` with dcm2niix into ``out_dir``; the NIfTI files it wrote, sorted.

    Defaults to uncompressed output named by series number and protocol
    (``-z n -f %s_%p``); ``flags`` are appended and override those.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    command = [dcm2niix_binary(), "-b", "y", "-z", "n", "-f", "%s_%p", *flags, "-o", str(out_dir), str(input_dir)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if completed.returncode not in (0, 8):  # 8: some but not all converted
        raise AssertionError(f"dcm2niix failed ({completed.returncode}): {completed.stdout}\n{completed.stderr}")
    return sorted(out_dir.glob("*.nii*"))


def canonical(image: nib.spatialimages.SpatialImage) -> tuple[np.ndarray, np.ndarray]:
    """``(voxels, affine)`` of ``image`` reoriented to the closest RAS+ axes (no interpolation)."""
    canon = nib.as_closest_canonical(image)
    return np.asanyarray(canon.dataobj), canon.affine


def assert_same_in_world(ours: nib.spatialimages.SpatialImage, reference: nib.spatialimages.SpatialImage,
                         atol_mm: float = 0.01, value_atol: float = 0.0) -> None:
    """Assert two images hold the same values at the same RAS positions.

    ``atol_mm`` bounds the difference of the affines' columns (spacing and
    direction) and origins in mm; voxels must be equal (or within ``value_atol``).
    """
    our_data, our_affine = canonical(ours)
    ref_data, ref_affine = canonical(reference)
    assert our_data.shape[:3] == ref_data.shape[:3], f"shape {our_data.shape} != reference {ref_data.shape}"
    np.testing.assert_allclose(our_affine, ref_affine, atol=atol_mm, err_msg="affines differ")
    ours_values = our_data.astype(np.float64).reshape(ref_data.shape)
    np.testing.assert_allclose(ours_values, ref_data.astype(np.float64), atol=value_atol, rtol=0,
                               err_msg="voxel values differ at the same world positions")
