"""Polygon filling on a voxel grid slice: the one pixel rule of every contour reader.

**Pixel-centre rule.** A voxel belongs to a filled outline when its *centre* lies
inside the polygon, by the even-odd rule over every polygon given together (so
an inner contour drawn inside an outer one is a hole, and any odd number of
nested contours alternate: the XOR of the contours). A centre exactly on an edge
is inside for edges on its low-``i`` / low-``j`` side and outside otherwise (the
"top-left" rule of scan-line rasterisers): two ROIs that share an edge never
share a voxel, and a polygon's voxel count equals its area on average.

Coordinates are continuous ``(i, j)`` voxel indices (voxel centres are
integers); they are snapped to :data:`INDEX_SNAP` first, so a vertex meant to lie
on a voxel centre is not moved off it by floating-point noise of the
world-to-index transform. Parts outside the slice are clipped, never dropped.

Written here (about forty lines of numpy) rather than taken from scikit-image or
OpenCV: those fill boundary pixels by other rules (OpenCV includes every pixel the
outline touches) and would add a heavy runtime dependency for one function.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

#: Continuous indices are rounded to this many voxels before filling (float noise of the affine).
INDEX_SNAP = 1e-6


def fill_polygons(polygons: Sequence[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Boolean ``shape = (ni, nj)`` mask of the voxel centres inside ``polygons`` (even-odd rule).

    Parameters
    ----------
    polygons:
        Each an ``(n, 2)`` array of continuous ``(i, j)`` indices, closed implicitly
        (the last point joins the first). Polygons of fewer than 3 points add nothing.
    shape:
        ``(ni, nj)`` of the slice.
    """
    ni, nj = int(shape[0]), int(shape[1])
    starts, ends = [], []
    for polygon in polygons:
        points = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
        if len(points) < 3:
            continue
        points = np.round(points / INDEX_SNAP) * INDEX_SNAP
        starts.append(points)
        ends.append(np.roll(points, -1, axis=0))
    if not starts:
        return np.zeros((ni, nj), dtype=bool)
    p0, p1 = np.concatenate(starts), np.concatenate(ends)
    y0, y1 = p0[:, 1], p1[:, 1]
    keep = y0 != y1  # horizontal edges cross no row
    p0, p1, y0, y1 = p0[keep], p1[keep], y0[keep], y1[keep]
    low, high = np.minimum(y0, y1), np.maximum(y0, y1)
    # rows j with low <= j < high (half-open: each row crosses a closed outline an even number of times)
    first = np.clip(np.ceil(low), 0, nj).astype(np.int64)
    stop = np.clip(np.ceil(high), 0, nj).astype(np.int64)
    counts = np.maximum(stop - first, 0)
    if counts.sum() == 0:
        return np.zeros((ni, nj), dtype=bool)
    edge = np.repeat(np.arange(len(p0)), counts)
    rows = np.repeat(first, counts) + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
    x0, x1 = p0[edge, 0], p1[edge, 0]
    xs = x0 + (rows - y0[edge]) * (x1 - x0) / (y1[edge] - y0[edge])
    order = np.lexsort((xs, rows))
    rows, xs = rows[order], xs[order]
    # crossings pair up within each row: [x_2m, x_2m+1) is inside
    span_rows, left, right = rows[0::2], xs[0::2], xs[1::2]
    first_i = np.clip(np.ceil(left), 0, ni).astype(np.int64)
    stop_i = np.clip(np.ceil(right), 0, ni).astype(np.int64)
    drawn = stop_i > first_i
    out = np.zeros((ni, nj), dtype=bool)
    if not drawn.any():
        return out
    span_rows, first_i, stop_i = span_rows[drawn], first_i[drawn], stop_i[drawn]
    # fill only the bounding box of the spans: a difference array along i, summed
    i_low, i_high = int(first_i.min()), int(stop_i.max())
    j_low, j_high = int(span_rows.min()), int(span_rows.max()) + 1
    box = np.zeros((j_high - j_low, i_high - i_low + 1), dtype=np.int32)
    np.add.at(box, (span_rows - j_low, first_i - i_low), 1)
    np.add.at(box, (span_rows - j_low, stop_i - i_low), -1)
    out[i_low:i_high, j_low:j_high] = (np.cumsum(box[:, :-1], axis=1) > 0).T
    return out
