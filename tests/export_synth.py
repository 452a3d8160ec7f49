"""Synthetic training datasets for the export tests, written with nibabel and SimpleITK (never with medconv).

Every image voxel carries an analytic function of its *world* position, so a
test can check any output voxel against the input in world space:

* channel ``c`` of case ``n``: ``intensity(c, n, x, y, z)`` (RAS mm);
* the label map: concentric shells around a case-dependent centre, so a label
  that moved by a voxel or was interpolated shows.

Layouts: Decathlon Task01-like (4D, 4 channels, ``dataset.json``), Task03-like
(3D CT), LUNA16-like and Sliver07-like (MetaImage, from ``metaimage_synth``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import nibabel as nib
import numpy as np

TASK01_MODALITIES = {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"}
TASK01_LABELS = {"0": "background", "1": "edema", "2": "non-enhancing tumor", "3": "enhancing tumour"}
TASK03_LABELS = {"0": "background", "1": "liver", "2": "cancer"}


def affine_for(case: int, spacing=(1.0, 1.2, 1.5), oblique: bool = False) -> np.ndarray:
    """A RAS affine with flipped axes (stored LPS-like, as many NIfTI files are), optionally rotated."""
    affine = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    if oblique:
        angle = np.radians(12.0)
        rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
        affine[:3, :3] = rotation @ affine[:3, :3]
    affine[:3, 3] = (30.0 + case, 25.0 - case, -20.0 + 2 * case)
    return affine


def world(shape: Sequence[int], affine: np.ndarray) -> np.ndarray:
    """RAS mm of every voxel centre, shape ``shape + (3,)``."""
    i, j, k = np.meshgrid(*(np.arange(n, dtype=float) for n in shape[:3]), indexing="ij")
    index = np.stack([i, j, k, np.ones_like(i)], axis=-1)
    return (index @ affine.T)[..., :3]


def intensity(channel: int, case: int, xyz: np.ndarray) -> np.ndarray:
    """A smooth, channel- and case-dependent image value at RAS positions ``xyz``."""
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    return (100.0 * (channel + 1) + 10.0 * case + 3.0 * np.sin(x / 7.0 + channel) + 2.0 * np.cos(y / 5.0)
            + 0.5 * z).astype(np.float32)


def label_centre(case: int, affine: np.ndarray, shape) -> np.ndarray:
    middle = np.array([(n - 1) / 2.0 for n in shape[:3]] + [1.0])
    return (affine @ middle)[:3] + np.array([1.5 * case, -1.0, 0.5])


def shells(xyz: np.ndarray, centre: np.ndarray, radii: Sequence[float], values: Sequence[int]) -> np.ndarray:
    """Label ``values[n]`` inside ``radii[n]`` (mm) around ``centre``, innermost last wins; 0 outside."""
    distance = np.linalg.norm(xyz - centre, axis=-1)
    labels = np.zeros(distance.shape, dtype=np.uint8)
    for radius, value in zip(radii, values):
        labels[distance <= radius] = value
    return labels


def save_nifti(array: np.ndarray, affine: np.ndarray, path: Path, dtype=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = nib.Nifti1Image(np.asarray(array, dtype=dtype) if dtype else np.asarray(array), affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    nib.save(image, str(path))
    return path


def write_task01(root: Path, train: int = 3, test: int = 1, shape=(14, 12, 10)) -> Path:
    """A Decathlon Task01_BrainTumour-like folder: 4D 4-channel float images, labels 0-3, dataset.json."""
    root.mkdir(parents=True, exist_ok=True)
    for number in range(1, train + test + 1):
        affine = affine_for(number)
        xyz = world(shape, affine)
        image = np.stack([intensity(c, number, xyz) for c in range(4)], axis=3)
        folder = "imagesTr" if number <= train else "imagesTs"
        save_nifti(image, affine, root / folder / f"BRATS_{number:03d}.nii.gz")
        if number <= train:
            labels = shells(xyz, label_centre(number, affine, shape), (5.0, 3.5, 2.0), (1, 2, 3))
            save_nifti(labels, affine, root / "labelsTr" / f"BRATS_{number:03d}.nii.gz", np.uint8)
    (root / "dataset.json").write_text(json.dumps({
        "name": "BRATS", "tensorImageSize": "4D", "modality": TASK01_MODALITIES, "labels": TASK01_LABELS,
        "numTraining": train, "numTest": test,
        "training": [{"image": f"./imagesTr/BRATS_{n:03d}.nii.gz", "label": f"./labelsTr/BRATS_{n:03d}.nii.gz"}
                     for n in range(1, train + 1)],
        "test": [f"./imagesTs/BRATS_{n:03d}.nii.gz" for n in range(train + 1, train + test + 1)],
    }, indent=2))
    return root


def ct_values(case: int, xyz: np.ndarray) -> np.ndarray:
    """An int16 'CT' in HU: air outside a body ellipse, tissue inside, a smooth gradient."""
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    body = ((x - 30) / 12.0) ** 2 + ((y - 20) / 10.0) ** 2 < 1
    values = np.where(body, 40.0 + 2.0 * z + 5.0 * np.sin(x / 4.0) + case, -1000.0)
    return np.round(values).astype(np.int16)


def write_task03(root: Path, train: int = 3, test: int = 0, shape=(16, 14, 8), float_labels: bool = False) -> Path:
    """A Decathlon Task03_Liver-like folder: 3D int16 CT, labels 0/1/2, dataset.json (modality CT)."""
    root.mkdir(parents=True, exist_ok=True)
    for number in range(train + test):
        affine = affine_for(number, spacing=(0.8, 0.8, 2.5), oblique=number % 2 == 1)
        xyz = world(shape, affine)
        folder = "imagesTr" if number < train else "imagesTs"
        save_nifti(ct_values(number, xyz), affine, root / folder / f"liver_{number}.nii.gz")
        if number < train:
            labels = shells(xyz, label_centre(number, affine, shape), (6.0, 3.0), (1, 2))
            save_nifti(labels.astype(np.float32) if float_labels else labels, affine,
                       root / "labelsTr" / f"liver_{number}.nii.gz")
    (root / "dataset.json").write_text(json.dumps({
        "name": "Liver", "tensorImageSize": "3D", "modality": {"0": "CT"}, "labels": TASK03_LABELS,
        "numTraining": train, "numTest": test,
        "training": [{"image": f"./imagesTr/liver_{n}.nii.gz", "label": f"./labelsTr/liver_{n}.nii.gz"}
                     for n in range(train)],
        "test": [f"./imagesTs/liver_{n}.nii.gz" for n in range(train, train + test)],
    }, indent=2))
    return root


def nifti_world_value(path: Path, ras_points: np.ndarray, volume: int | None = None) -> np.ndarray:
    """The voxel values of a NIfTI file (nibabel) at RAS points that are voxel centres of it (nearest index)."""
    image = nib.load(str(path))
    data = np.asanyarray(image.dataobj)
    if volume is not None:
        data = data[..., volume]
    index = np.rint(np.c_[ras_points, np.ones(len(ras_points))] @ np.linalg.inv(image.affine).T)[:, :3].astype(int)
    return data[index[:, 0], index[:, 1], index[:, 2]]
