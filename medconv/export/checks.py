"""The integrity rules nnU-Net applies to a dataset (``verify_dataset_integrity``), for every layout.

Re-implemented from nnU-Net's documentation (dataset_format.md, ignore_label.md)
and what its ``verify_dataset_integrity`` checks, and applied to nnU-Net,
Decathlon and MONAI folders alike:

* the index file has what the format needs (nnU-Net: ``labels``, ``channel_names``,
  ``numTraining``, ``file_ending``), and its count matches the files;
* every case has every channel and (training cases) a label map; no label map
  without images;
* labels: background 0, values consecutive, the ``ignore`` label (if any) highest;
* per case: channels and label map on one grid (shape exactly; spacing, origin and
  direction within nnU-Net's ``numpy.allclose`` tolerances, :mod:`.grids`); a
  stacked (4D) image holds as many volumes as there are channels;
* ``deep`` (``--check``): the voxels too: label values only those declared, no NaN
  in images or labels. Without ``deep`` (the check every export ends with) only
  headers are read: the exporter has already checked the voxels it wrote.

Every problem is one line naming the case and what is wrong.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..batch.pool import map_in_workers
from ..guard import Died, Outcome, Raised, Returned
from ..transforms.resample import Grid
from .formats import read_index
from .formats.base import CaseFiles, DatasetIndex
from .grids import describe_differences, grid_differences
from .labelmap import BACKGROUND, IGNORE


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an exported dataset."""

    message: str
    case_id: Optional[str] = None

    def one_line(self) -> str:
        return f"case {self.case_id}: {self.message}" if self.case_id else self.message


@dataclass(frozen=True)
class CheckReport:
    """What :func:`check_dataset` found."""

    folder: str
    format: str
    cases: int
    problems: tuple[Problem, ...]
    deep: bool

    @property
    def ok(self) -> bool:
        return not self.problems


def check_dataset(folder: str | os.PathLike, *, deep: bool = False, jobs: int = 1) -> CheckReport:
    """Apply the integrity rules to the exported dataset in ``folder`` (see the module notes)."""
    folder = os.fspath(folder)
    index = read_index(folder)
    problems = [Problem(text) for text in index.problems]
    problems += [Problem(text) for text in label_table_problems(index)]
    cases = [case for case in index.info.labelled + index.info.test]
    declared = set(index.info.labels)
    arguments = [(folder, case, len(index.info.channel_names), declared, deep) for case in cases]
    for case, outcome in zip(cases, map_in_workers(case_problems, arguments, jobs)):
        problems += _case_outcome(case, outcome)
    return CheckReport(folder, index.format, len(cases), tuple(problems), deep)


def _case_outcome(case: CaseFiles, outcome: Outcome) -> list[Problem]:
    """The problems :func:`case_problems` found, or the one its worker's death is (reading a file crashed it)."""
    if isinstance(outcome, Returned):
        return outcome.value
    if isinstance(outcome, Raised):
        raise outcome.error
    if isinstance(outcome, Died):
        return [Problem(f"reading its files crashed the checking process ({outcome.death.describe()}); "
                        "a file is probably corrupt", case.case_id)]
    return [Problem(f"reading its files crashed ({outcome.kind}: {outcome.message}); a file is probably corrupt",
                    case.case_id)]


def label_table_problems(index: DatasetIndex) -> list[str]:
    """What is wrong with the declared labels: background, consecutive values, the ignore label last."""
    labels = index.info.labels
    if not labels:
        return ["no labels are declared"]
    problems = []
    values = sorted(labels)
    if labels.get(0) != BACKGROUND:
        problems.append(f"label 0 must be {BACKGROUND!r}, got {labels.get(0)!r}")
    if values != list(range(len(values))):
        problems.append(f"label values must be consecutive 0, 1, 2, ..., got {values}")
    ignore = [value for value, name in labels.items() if name == IGNORE]
    if ignore and ignore[0] != max(values):
        problems.append(f"the {IGNORE!r} label must have the highest value, it has {ignore[0]}")
    return problems


def _grid(image) -> Grid:
    """The grid of a nibabel image from its header (RAS; both sides of a comparison use the same frame)."""
    affine = np.asarray(image.affine, dtype=float)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    direction = affine[:3, :3] / np.where(spacing == 0, 1, spacing)
    shape = tuple(int(n) for n in image.shape[:3]) + (1,) * max(0, 3 - len(image.shape))
    return Grid(shape=shape[:3], spacing=tuple(float(s) for s in spacing), origin=tuple(float(o) for o in affine[:3, 3]),
                direction=tuple(float(d) for d in direction.ravel()))


def case_problems(folder: str, case: CaseFiles, channels: int, declared: set[int], deep: bool) -> list[Problem]:
    """The problems of one case's files."""
    import nibabel as nib

    problems: list[Problem] = []
    loaded = {}
    for relative in case.files:
        path = os.path.join(folder, *relative.split("/"))
        try:
            loaded[relative] = nib.load(path)
        except FileNotFoundError:
            problems.append(Problem(f"{relative} does not exist", case.case_id))
        except Exception as exc:  # a broken file in the dataset: say which
            problems.append(Problem(f"{relative} cannot be read ({type(exc).__name__}: {exc})", case.case_id))
    if problems:
        return problems
    if not case.images:  # the index declares no channel (a problem of its own): no image to check against
        return [Problem("no image file to check (the index declares no channels)", case.case_id)]
    first = loaded[case.images[0]]
    if case.stacked:
        volumes = first.shape[3] if len(first.shape) > 3 else 1
        if volumes != channels:
            problems.append(Problem(f"{case.images[0]} holds {volumes} volume(s), the dataset has {channels} channel(s)",
                                    case.case_id))
    reference = _grid(first)
    for relative in case.files[1:]:
        differences = grid_differences(reference, _grid(loaded[relative]))
        if differences:
            problems.append(Problem(f"{relative} is not on the grid of {case.images[0]}: "
                                    f"{describe_differences(differences)}", case.case_id))
    if case.label:
        label = loaded[case.label]
        if len(label.shape) > 3 and label.shape[3] != 1:
            problems.append(Problem(f"{case.label} is not one 3D label map (shape {label.shape})", case.case_id))
        if label.get_data_dtype().kind not in "iub":
            problems.append(Problem(f"{case.label} stores {label.get_data_dtype()}, not integers", case.case_id))
    if deep:
        problems += _voxel_problems(case, loaded, declared)
    return problems


def _voxel_problems(case: CaseFiles, loaded: dict, declared: set[int]) -> list[Problem]:
    problems = []
    for relative in case.images:
        image = loaded[relative]
        if image.get_data_dtype().kind == "f":
            data = np.asanyarray(image.dataobj)
            bad = int(np.count_nonzero(np.isnan(data)))
            if bad:
                problems.append(Problem(f"{relative} holds {bad} NaN voxel(s)", case.case_id))
    if case.label:
        data = np.asanyarray(loaded[case.label].dataobj)
        if data.dtype.kind == "f" and np.isnan(data).any():
            problems.append(Problem(f"{case.label} holds NaN voxels", case.case_id))
        else:
            values = set(np.unique(data).tolist())
            stray = sorted(v for v in values if v not in declared)
            if stray:
                problems.append(Problem(f"{case.label} holds label value(s) {', '.join(map(str, stray[:10]))} that "
                                        "are not declared", case.case_id))
    return problems
