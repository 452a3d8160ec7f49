"""Putting planar outlines on the image grid: which slice a contour plane belongs to.

The grid is the one medconv writes the image on (``ImageReference.grid``), after
any tilt or uneven-spacing repair, so a plane's slice is computed from the grid
itself: a plane at continuous slice index ``kc`` (its points' mean position along
the slice normal, in slice steps) goes to the nearest slice ``k = round(kc)``
when ``|kc - k| <= 0.5`` and ``0 <= k < nk`` (half a step beyond the first or last
slice is still that slice; farther is :attr:`ContourPlacement.OFF_GRID`).

A contour whose points spread over more than :data:`COPLANAR_TOLERANCE` of a
slice step along the normal is not parallel to the slices and is reported
(:attr:`ContourPlacement.NOT_PARALLEL`), not smeared over several slices. When
several contour planes of one ROI land on one slice (contours drawn more finely
than the image's slices), only the plane nearest the slice centre is drawn there
(planes within :data:`SAME_PLANE_TOLERANCE` of it count as the same plane); the
others are :attr:`ContourPlacement.SUPERSEDED`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ...image_reference import ImageReference
from .model import ContourPlacement, ContourReport
from .raster import fill_polygons

#: Largest spread (in slice steps) of one contour's points along the slice normal.
COPLANAR_TOLERANCE = 0.1

#: Contour planes closer than this (in slice steps) are the same plane (XOR-ed together).
SAME_PLANE_TOLERANCE = 0.01

#: In-plane margin (voxels) beyond the grid edge before a contour counts as clipped.
_CLIP_MARGIN = 0.5


@dataclass(frozen=True)
class PlanarContour:
    """One closed outline in continuous grid indices: ``points`` is ``(n, 3)`` of ``(i, j, k)``."""

    points: np.ndarray
    referenced_sop_uid: str = ""


def place_contours(contours: Sequence[PlanarContour], reference: ImageReference
                   ) -> tuple[dict[int, list[int]], list[ContourReport]]:
    """Which contours are drawn on which slice, and a report per contour (in input order).

    Returns ``(by_slice, reports)``: ``by_slice[k]`` lists the indices of the contours
    drawn (XOR-ed) on slice ``k``.
    """
    ni, nj, nk = reference.grid.shape
    planes: list[float] = []
    reports: list[ContourReport] = []
    candidates: dict[int, list[int]] = {}
    for index, contour in enumerate(contours):
        points = contour.points
        count = len(points)
        plane = float(np.mean(points[:, 2])) if count else float("nan")
        planes.append(plane)
        base = dict(plane_index=plane, points=count, referenced_sop_uid=contour.referenced_sop_uid)
        if count < 3:
            reports.append(ContourReport(ContourPlacement.DEGENERATE, **base))
            continue
        if float(np.ptp(points[:, 2])) > COPLANAR_TOLERANCE:
            reports.append(ContourReport(ContourPlacement.NOT_PARALLEL, **base))
            continue
        k = int(np.floor(plane + 0.5))
        if not (0 <= k < nk and abs(plane - k) <= 0.5):
            reports.append(ContourReport(ContourPlacement.OFF_GRID, **base))
            continue
        clipped = bool(np.any(points[:, 0] < -_CLIP_MARGIN) or np.any(points[:, 0] > ni - 1 + _CLIP_MARGIN)
                       or np.any(points[:, 1] < -_CLIP_MARGIN) or np.any(points[:, 1] > nj - 1 + _CLIP_MARGIN))
        reports.append(ContourReport(ContourPlacement.PLACED, slice_index=k, clipped=clipped, **base))
        candidates.setdefault(k, []).append(index)
    by_slice: dict[int, list[int]] = {}
    for k, members in candidates.items():
        nearest = min(abs(planes[m] - k) for m in members)
        kept = [m for m in members if abs(planes[m] - k) - nearest <= SAME_PLANE_TOLERANCE]
        by_slice[k] = kept
        for m in members:
            if m not in kept:
                old = reports[m]
                reports[m] = ContourReport(ContourPlacement.SUPERSEDED, old.plane_index, None, old.points,
                                           old.clipped, old.referenced_sop_uid)
    return by_slice, reports


def rasterise_slices(contours: Sequence[PlanarContour], by_slice: dict[int, list[int]],
                     shape: tuple[int, int]) -> dict[int, np.ndarray]:
    """Each slice's filled ``(ni, nj)`` mask: the XOR (even-odd) of the contours drawn on it."""
    return {k: fill_polygons([contours[m].points[:, :2] for m in members], shape)
            for k, members in by_slice.items()}
