"""When two images are on "the same grid", in nnU-Net's sense, and what differs when they are not.

nnU-Net's ``verify_dataset_integrity`` compares the images and the label map of a
case with ``numpy.allclose`` at its default tolerances (``|a - b| <= atol + rtol * |b|``
with ``rtol = 1e-5``, ``atol = 1e-8``): shape exactly, spacing (an error when it
differs), origin and direction (a warning there; an error here, since a label
map that is off by a translation is silently wrong). medconv uses the same
tolerances, in this one place, both when it pairs a label map with its image
and when it checks an exported dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np

from ..transforms.resample import Grid
from ..volume import Volume

#: numpy.allclose's defaults, which nnU-Net's integrity check relies on.
GRID_RTOL = 1e-5
GRID_ATOL = 1e-8

Gridded = Union[Grid, Volume]


@dataclass(frozen=True)
class GridDifference:
    """One way two grids differ."""

    field: str  # "shape", "spacing", "origin" or "direction"
    first: tuple
    second: tuple

    def describe(self) -> str:
        def text(values):
            return "(" + ", ".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in values) + ")"

        return f"{self.field} {text(self.first)} vs {text(self.second)}"


def grid_of(item: Gridded) -> Grid:
    return item if isinstance(item, Grid) else Grid.of(item)


def grid_differences(first: Gridded, second: Gridded) -> tuple[GridDifference, ...]:
    """How ``second``'s grid differs from ``first``'s beyond nnU-Net's tolerances (empty: the same grid)."""
    a, b = grid_of(first), grid_of(second)
    differences = []
    if tuple(a.shape) != tuple(b.shape):
        differences.append(GridDifference("shape", tuple(a.shape), tuple(b.shape)))
    for name in ("spacing", "origin", "direction"):
        values_a, values_b = getattr(a, name), getattr(b, name)
        if not np.allclose(values_a, values_b, rtol=GRID_RTOL, atol=GRID_ATOL):
            differences.append(GridDifference(name, tuple(float(v) for v in values_a),
                                              tuple(float(v) for v in values_b)))
    return tuple(differences)


def same_grid(first: Gridded, second: Gridded) -> bool:
    return not grid_differences(first, second)


def describe_differences(differences: tuple[GridDifference, ...]) -> str:
    return "; ".join(difference.describe() for difference in differences)
