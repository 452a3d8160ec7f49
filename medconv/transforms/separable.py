"""Separable resampling: axis-aligned grids resampled one axis at a time, streamed over slices.

When every axis of the output grid runs along an axis of the input grid (the
same direction, as ``--spacing`` always gives, or a permutation / flip of it,
as a ``--like`` reference in another orientation gives), resampling is a
product of three one-dimensional operators. Along each axis, output sample
``o`` sits at the continuous input index ``x_o = start + step * o``, and

* **linear** interpolation with anti-aliasing is ``out_o = sum_n W[o, n] in_n``
  with ``W = L G``: ``G`` the discrete Gaussian of :mod:`.gaussian` (edge
  values repeated beyond the ends, as ITK's ``ZeroFluxNeumann`` boundary does),
  ``L`` linear interpolation between the two input samples around ``x_o``;
* **nearest** is ``out_o = in[floor(x_o + 0.5)]`` (halves round up, as ITK does).

Both follow SimpleITK's ``ResampleImageFilter`` at the edges: a sample with
``-0.5 <= x_o < n - 0.5`` takes the nearest edge value when it lies beyond the
outermost voxel centre; any other sample takes the fill value.

``W`` is banded (a few taps per output sample whatever the blur: the Gaussian is
only ever evaluated at the output samples, so the cost per *input* voxel does
not grow with sigma). It is applied in blocks of :data:`BLOCK` output samples
as small dense matrix products (BLAS), one slab of slices at a time: the
in-plane axes of a slab first, then the slice axis, each output slab rounded or
passed to a pointwise step (a window) and stored in the output dtype right
away. Memory beyond the input and the output is a few slices per thread.
Threads split the output slices; BLAS itself is held to one thread meanwhile,
so ``threads`` is the whole CPU use.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from ..resources import cores
from .gaussian import discrete_gaussian_kernel

__all__ = ["ALIGNMENT_TOLERANCE_VOXELS", "BLOCK", "SLICE_BLOCK", "SLAB_SLICES", "AxisMap", "AxisOperator", "axis_map",
           "linear_operator", "nearest_operator", "resample_separable", "available_threads"]

#: Output samples per dense block of a banded operator (measured: 16 beats 8 and 32 on a 512² x 300 CT).
BLOCK = 16
#: Output slices finished at a time (a block's float values, rounded or windowed, then stored).
SLICE_BLOCK = 8
#: Input slices resampled in-plane at a time (their float copies are the engine's working memory).
SLAB_SLICES = 4
#: Largest error, in input voxels, that treating the grids as axis-aligned may cause anywhere in the output.
ALIGNMENT_TOLERANCE_VOXELS = 1e-4

#: ``finish(block, first_slice) -> block``: rounds / windows a float block of output slices into the output dtype.
Finish = Callable[[np.ndarray, int], np.ndarray]


def available_threads(threads: int = 0) -> int:
    """``threads`` if positive, else the cores this process may use.

    That is the CPU affinity, capped by ``OMP_NUM_THREADS`` when the user (or a
    cluster's job script) sets it. A batch passes each worker its share of the cores
    explicitly instead (``Preprocessing.threads``, set by
    :func:`medconv.batch.execution.job_for`), so several workers do not
    oversubscribe the machine.
    """
    if threads > 0:
        return threads
    usable = cores()
    try:
        share = int(os.environ.get("OMP_NUM_THREADS", "0"))
    except ValueError:
        share = 0
    return max(1, min(usable, share) if share > 0 else usable)


@dataclass(frozen=True)
class AxisMap:
    """How output axis ``m`` runs along input axis ``source[m]``: ``x = start[m] + step[m] * o`` (input voxels)."""

    source: tuple[int, int, int]
    start: tuple[float, float, float]
    step: tuple[float, float, float]


def axis_map(spacing_in: Sequence[float], origin_in: Sequence[float], direction_in: np.ndarray,
             shape_out: Sequence[int], spacing_out: Sequence[float], origin_out: Sequence[float],
             direction_out: np.ndarray) -> Optional[AxisMap]:
    """The :class:`AxisMap` from an output grid to an input grid, or ``None`` when they are not axis-aligned.

    ``M = diag(1/spacing_in) D_in^T D_out diag(spacing_out)`` maps output indices to
    input indices; the grids are aligned when each column of ``M`` has one entry
    and the others move no sample by more than :data:`ALIGNMENT_TOLERANCE_VOXELS`.
    """
    scale_in = 1.0 / np.asarray(spacing_in, dtype=float)
    m = scale_in[:, None] * (np.asarray(direction_in, float).T @ np.asarray(direction_out, float)) \
        * np.asarray(spacing_out, dtype=float)[None, :]
    source = tuple(int(n) for n in np.argmax(np.abs(m), axis=0))
    if sorted(source) != [0, 1, 2]:
        return None
    extent = np.asarray(shape_out, dtype=float) - 1
    off_axis = m.copy()
    off_axis[list(source), [0, 1, 2]] = 0.0
    if np.max(np.abs(off_axis) @ extent) > ALIGNMENT_TOLERANCE_VOXELS:
        return None
    shift = np.asarray(origin_out, float) - np.asarray(origin_in, float)
    offset = scale_in * (np.asarray(direction_in, float).T @ shift)
    return AxisMap(source=source, start=tuple(float(offset[n]) for n in source),
                   step=tuple(float(m[n, o]) for o, n in enumerate(source)))


@dataclass(frozen=True)
class AxisOperator:
    """One axis of a separable resampling: output sample ``o`` is ``sum_t weights[o, t] * in[first[o] + t]``.

    ``weights`` is ``None`` for nearest neighbour (then ``first`` holds the index
    taken). ``outside`` marks the samples that take the fill value.
    """

    n_in: int
    first: np.ndarray
    weights: Optional[np.ndarray]
    outside: np.ndarray

    @property
    def n_out(self) -> int:
        return len(self.first)

    @property
    def is_identity(self) -> bool:
        """True when the operator copies the input unchanged."""
        if self.n_out != self.n_in or self.outside.any() or not np.array_equal(self.first, np.arange(self.n_in)):
            return False
        return self.weights is None or (self.weights.shape[1] >= 1 and np.all(self.weights[:, 0] == 1.0)
                                        and not np.any(self.weights[:, 1:]))

    def dense_blocks(self, dtype, block: int = BLOCK) -> list[tuple[int, int, int, int, np.ndarray]]:
        """``(o0, o1, c0, c1, W[o0:o1, c0:c1])`` for blocks of ``block`` output samples."""
        blocks = []
        width = self.weights.shape[1]
        for o0 in range(0, self.n_out, block):
            o1 = min(o0 + block, self.n_out)
            c0 = int(self.first[o0:o1].min())
            c1 = int(self.first[o0:o1].max()) + width
            dense = np.zeros((o1 - o0, c1 - c0))
            rows = np.arange(o1 - o0)[:, None]
            np.add.at(dense, (rows, self.first[o0:o1, None] - c0 + np.arange(width)[None, :]), self.weights[o0:o1])
            c1_in = min(c1, self.n_in)  # columns past the input's end carry no weight (indices are clamped)
            blocks.append((o0, o1, c0, c1_in, np.ascontiguousarray(dense[:, :c1_in - c0], dtype=dtype)))
        return blocks


def _inside(n_in: int, positions: np.ndarray) -> np.ndarray:
    return (positions >= -0.5) & (positions < n_in - 0.5)


def linear_operator(n_in: int, positions: np.ndarray, variance: float = 0.0) -> AxisOperator:
    """Gaussian smoothing (``variance`` in voxels², 0 for none) then linear interpolation at ``positions``."""
    positions = np.asarray(positions, dtype=float)
    outside = ~_inside(n_in, positions)
    kernel = discrete_gaussian_kernel(variance)
    radius = len(kernel) // 2
    x = np.clip(positions, 0.0, n_in - 1.0)
    base = np.minimum(np.floor(x).astype(np.int64), max(n_in - 2, 0))
    fraction = np.where(n_in > 1, x - base, 0.0)
    # the 2 interpolation neighbours, each spread over the 2r+1 kernel taps, edges repeated
    index = base[:, None] + np.arange(-radius, radius + 2)[None, :]
    contribution = np.zeros(index.shape)
    contribution[:, :-1] += (1.0 - fraction)[:, None] * kernel[None, :]
    contribution[:, 1:] += fraction[:, None] * kernel[None, :]
    index = np.clip(index, 0, n_in - 1)
    first = index.min(axis=1)
    width = int((index.max(axis=1) - first).max()) + 1
    weights = np.zeros((len(positions), width))
    np.add.at(weights, (np.arange(len(positions))[:, None], index - first[:, None]), contribution)
    weights[outside] = 0.0
    return AxisOperator(n_in=n_in, first=first, weights=weights, outside=outside)


#: A sample this close (input voxels) to halfway between two voxels counts as a tie, which rounds up.
TIE_TOLERANCE_VOXELS = 1e-9


def nearest_operator(n_in: int, positions: np.ndarray) -> AxisOperator:
    """Nearest neighbour at ``positions`` (``floor(x + 0.5)``: ties round up; clamped into the input).

    A tie (a sample halfway between two voxels, common when spacings are in
    simple ratios) is decided from the exact grid definition, so float noise in
    the positions does not decide it (SimpleITK decides such ties by its own
    rounding, either way).
    """
    positions = np.asarray(positions, dtype=float)
    index = np.clip(np.floor(positions + 0.5 + TIE_TOLERANCE_VOXELS), 0, n_in - 1).astype(np.int64)
    return AxisOperator(n_in=n_in, first=index, weights=None, outside=~_inside(n_in, positions))


def _apply_left(blocks, source: np.ndarray, out: np.ndarray) -> None:
    """``out[p] = W @ source[p]`` for every slice ``p`` (``source``: (P, n_in, X) -> ``out``: (P, n_out, X))."""
    for o0, o1, c0, c1, dense in blocks:
        np.matmul(dense, source[:, c0:c1, :], out=out[:, o0:o1, :])


def _in_plane(buffer: np.ndarray, p0: int, p1: int, ops, blocks, work_dtype) -> np.ndarray:
    """Slices ``p0:p1`` of ``buffer`` (k, j, i) resampled along j and i: (p1 - p0, Jo, Io) in ``work_dtype``.

    Computed :data:`SLAB_SLICES` input slices at a time, so that the float copies
    of the input slices and the half-resampled slices stay small.
    """
    op_j, op_i = ops
    out = np.empty((p1 - p0, op_j.n_out, op_i.n_out), dtype=work_dtype)
    for q0 in range(p0, p1, SLAB_SLICES):
        q1 = min(q0 + SLAB_SLICES, p1)
        out[q0 - p0:q1 - p0] = _in_plane_slab(buffer[q0:q1], ops, blocks, work_dtype)
    return out


def _in_plane_slab(slab: np.ndarray, ops, blocks, work_dtype) -> np.ndarray:
    op_j, op_i = ops
    if op_i.weights is None:  # nearest: gathers, exact for every dtype
        return slab.take(op_j.first, axis=1).take(op_i.first, axis=2).astype(work_dtype, copy=False)
    slab = slab.astype(work_dtype)  # a copy: contiguous, and the input's dtype may not be a BLAS type
    if not op_i.is_identity:  # along i: out[p] = (W_i @ slab[p].T) -> (P, Io, J), a transposed operand
        along_i = np.empty((slab.shape[0], op_i.n_out, slab.shape[1]), dtype=work_dtype)
        _apply_left(blocks[1], slab.transpose(0, 2, 1), along_i)
        slab = along_i.transpose(0, 2, 1)  # (P, J, Io) as a view
    if not op_j.is_identity:
        along_j = np.empty((slab.shape[0], op_j.n_out, slab.shape[2]), dtype=work_dtype)
        _apply_left(blocks[0], slab, along_j)
        slab = along_j
    return slab


def resample_separable(buffer: np.ndarray, ops: Sequence[AxisOperator], *, fill: float, work_dtype,
                       finish: Finish, threads: int = 0, out: Optional[np.ndarray] = None) -> np.ndarray:
    """Resample a (k, j, i) ``buffer`` with one operator per axis ``(op_k, op_j, op_i)``.

    Parameters
    ----------
    buffer:
        The input voxels in (k, j, i) order, any dtype and strides.
    ops:
        The operators along k, j and i (all linear or all nearest).
    fill:
        Value of the samples outside the input (set before ``finish``).
    work_dtype:
        float32 or float64 for linear interpolation; the input dtype for nearest.
    finish:
        Called on each block of output slices (float ``work_dtype``, or the input
        dtype for nearest) with the index of its first slice; returns the block in
        the output dtype. The first call fixes that dtype.
    threads:
        Threads to use (0: :func:`available_threads`).

    Returns
    -------
    numpy.ndarray
        The output voxels, C-ordered (Ko, Jo, Io).
    """
    op_k, op_j, op_i = ops
    linear = op_k.weights is not None
    blocks = (op_j.dense_blocks(work_dtype), op_i.dense_blocks(work_dtype)) if linear else None
    k_blocks = op_k.dense_blocks(work_dtype, SLICE_BLOCK) if linear else \
        [(o0, min(o0 + SLICE_BLOCK, op_k.n_out)) for o0 in range(0, op_k.n_out, SLICE_BLOCK)]
    plane_shape = (op_j.n_out, op_i.n_out)
    result: list[Optional[np.ndarray]] = [out]

    outside_j, outside_i = np.flatnonzero(op_j.outside), np.flatnonzero(op_i.outside)

    def store(o0: int, values: np.ndarray) -> None:
        outside_k = np.flatnonzero(op_k.outside[o0:o0 + len(values)])
        for axis, outside in ((0, outside_k), (1, outside_j), (2, outside_i)):
            if len(outside):  # most grids lie inside the input: no pass over the block then
                values[(slice(None),) * axis + (outside,)] = fill
        finished = finish(values, o0)
        if result[0] is None:
            result[0] = np.empty((op_k.n_out,) + plane_shape, dtype=finished.dtype)
        result[0][o0:o0 + len(finished)] = finished

    def run_nearest(part) -> None:
        for o0, o1 in part:
            planes = op_k.first[o0:o1]
            store(o0, _in_plane(buffer[planes], 0, len(planes), (op_j, op_i), None, work_dtype))

    def run_linear(part) -> None:
        # slices reduced in-plane, kept while later output blocks still need them (inputs only move forward)
        cache, cache_start = np.empty((0,) + plane_shape, dtype=work_dtype), 0
        for o0, o1, c0, c1, dense in part:
            if op_k.is_identity:
                store(o0, _in_plane(buffer, o0, o1, (op_j, op_i), blocks, work_dtype))
                continue
            cache_end = cache_start + len(cache)
            if not cache_start <= c0 < cache_end:
                cache = _in_plane(buffer, c0, c1, (op_j, op_i), blocks, work_dtype)
            elif c1 > cache_end:
                cache = np.concatenate([cache[c0 - cache_start:],
                                        _in_plane(buffer, cache_end, c1, (op_j, op_i), blocks, work_dtype)])
            else:
                cache = cache[c0 - cache_start:]
            cache_start = c0
            values = dense @ cache[:c1 - c0].reshape(c1 - c0, -1)
            store(o0, values.reshape((o1 - o0,) + plane_shape))

    run = run_linear if linear else run_nearest
    n_threads = max(1, min(available_threads(threads), len(k_blocks)))
    from concurrent.futures import ThreadPoolExecutor  # lazy: the CLI imports this module for --help too

    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):  # our threads do the parallel work
        run(k_blocks[:1])  # the first block alone fixes the output dtype
        rest = k_blocks[1:]
        if rest and n_threads == 1:
            run(rest)
        elif rest:
            size = math.ceil(len(rest) / n_threads)
            with ThreadPoolExecutor(max_workers=n_threads) as pool:
                for done in [pool.submit(run, rest[i:i + size]) for i in range(0, len(rest), size)]:
                    done.result()
    return result[0]
