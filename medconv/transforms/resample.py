"""Resampling onto a new spacing or onto a reference grid.

How: when the output grid's axes run along the input's (``--spacing`` always;
``--like`` a reference in the same or a permuted / flipped orientation),
linear and nearest resampling run on the separable path of
:mod:`.separable` (one axis at a time, streamed over slices, in the output
dtype); oblique grids and B-spline go to SimpleITK's ``ResampleImageFilter``.
Both give the same values (tests/test_resample.py compares them).

Rules (docs/preprocessing.md explains them with examples):

* **Grid for a target spacing.** The direction is kept. Along each axis the
  output size is ``max(1, round_half_up(size * spacing / new_spacing))`` and the
  output grid is *centred* on the input grid: the centre of the covered box
  (voxel edges included) stays where it was, so the new extent differs from the
  old by less than one output voxel, split evenly between both ends. An axis
  whose target is ``None`` ("keep"), and an axis of a single voxel (a 2D
  image's slice axis), keeps its size, spacing and position exactly.
* **Grid of a reference** (``like=``): the output takes the reference's shape,
  spacing, origin and direction exactly, so an image and its mask line up
  voxel for voxel.
* **Interpolation**: intensities default to ``linear`` (``bspline`` = cubic
  B-spline, ``nearest`` are available); labels are *always* resampled with
  nearest neighbour, whatever was asked, so no new label value appears. A label
  whose structures all fall between the new voxels (strong downsampling) can
  vanish: that adds a warning naming it.
* A volume already on the target grid is returned unchanged (history says so).
* **Anti-aliasing**: when an intensity volume is downsampled along an axis
  (and the interpolation is not ``nearest``), it is first smoothed along that
  axis by a Gaussian whose sigma (mm) is ``sqrt(new**2 - old**2) / (2*sqrt(2*ln 2))``:
  the blur that turns the old voxel's point spread (FWHM = old spacing) into one
  of FWHM = new spacing (Cardoso et al., "Scale factor point spread function
  matching", MICCAI 2015). The kernel is the discrete Gaussian of
  :mod:`.gaussian` (ITK's ``DiscreteGaussianImageFilter`` kernel and truncation),
  edge values repeated beyond the ends.
* **Fill**: voxels outside the input take ``fill``; by default -1024 for CT
  (``meta["modality"] == "CT"`` or ``meta["units"] == "HU"``) and 0 otherwise;
  labels always get 0.
* **dtype**: labels and ``nearest`` keep the input dtype (values are copied).
  Interpolated intensities are computed in float32 (float64 input: float64);
  with ``dtype=None`` an integer input is rounded to the nearest integer
  (halves away from zero) and clipped to its dtype's range (B-spline can
  overshoot), so CT stays int16 HU; ``dtype="float32"`` keeps the float result.
* 4D volumes are resampled one 3D volume at a time on the same grid.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Callable, Literal, Optional, Sequence, Union

import numpy as np

from ..errors import UsageError
from ..geometry import affine_from_geometry
from ..labels import interpolation_warning
from ..sitk_bridge import import_sitk, to_sitk
from ..volume import Volume
from .separable import (BLOCK, SLAB_SLICES, AxisMap, available_threads, axis_map, linear_operator, nearest_operator,
                        resample_separable)

__all__ = ["Grid", "resample", "resample_to_grid", "grid_for_spacing", "default_fill", "antialias_sigmas",
           "INTERPOLATIONS"]

Interpolation = Literal["linear", "bspline", "nearest"]
INTERPOLATIONS = ("linear", "bspline", "nearest")
#: the ratio between a Gaussian's FWHM and its sigma
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


@dataclass(frozen=True)
class Grid:
    """A sampling grid: spatial shape and LPS geometry. Small and picklable.

    ``direction`` is the 3x3 direction flattened row by row (as SimpleITK does).
    ``source`` names where the grid came from (a reference file), for the history.
    """

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]
    source: str = ""

    @classmethod
    def of(cls, volume: Volume, source: str = "") -> "Grid":
        """The grid of ``volume``."""
        return cls(shape=tuple(int(s) for s in volume.spatial_shape), spacing=tuple(volume.spacing),
                   origin=tuple(volume.origin), direction=tuple(float(d) for d in np.ravel(volume.direction)),
                   source=source)

    @classmethod
    def from_reference(cls, reference: Union[Volume, str, os.PathLike]) -> "Grid":
        """The grid of a Volume or of the image file at a path (read with :func:`medconv.read`)."""
        if isinstance(reference, Volume):
            return cls.of(reference)
        from ..api import read  # lazy: api imports the registry

        path = os.fspath(reference)
        return cls.of(read(path), source=path)

    @property
    def direction_matrix(self) -> np.ndarray:
        """The direction as a 3x3 matrix (column n: unit vector of axis n)."""
        return np.asarray(self.direction, dtype=float).reshape(3, 3)

    def describe(self) -> str:
        """``"shape (..) spacing (..)"`` for histories."""
        spacing = ", ".join(f"{s:g}" for s in self.spacing)
        text = f"shape {tuple(self.shape)} spacing ({spacing}) mm"
        return f"{text} of {self.source}" if self.source else text


def default_fill(volume: Volume) -> float:
    """-1024 (air in HU) for CT, 0 for everything else and for labels."""
    if volume.kind == "label":
        return 0.0
    meta = volume.meta
    if str(meta.get("modality", "")).upper() == "CT" or str(meta.get("units", "")).upper() == "HU":
        return -1024.0
    return 0.0


def _round_half_up(value: float) -> int:
    # a tiny tolerance so that 2.4999999999 (float noise of an exact 2.5) rounds up too
    return int(math.floor(value + 0.5 + 1e-9))


def grid_for_spacing(volume: Volume, spacing: Sequence[float | None]) -> Grid:
    """The centred output grid with ``spacing`` (``None`` entries keep that axis), same direction."""
    if len(spacing) != 3:
        raise UsageError(f"a target spacing needs 3 values (or None to keep an axis), got {spacing!r}")
    old_spacing = np.asarray(volume.spacing, dtype=float)
    old_shape = np.asarray(volume.spatial_shape)
    # an axis of one voxel (a 2D image) has nothing to interpolate along: it is kept
    spacing = tuple(None if n == 1 else s for n, s in zip(old_shape, spacing))
    new_spacing = np.array([old if new is None else float(new) for old, new in zip(old_spacing, spacing)])
    if not np.all(np.isfinite(new_spacing)) or np.any(new_spacing <= 0):
        raise UsageError(f"spacing must be positive, got {spacing!r}")
    new_shape = np.array([
        old_n if new is None else max(1, _round_half_up(old_n * old_s / new_s))
        for old_n, old_s, new_s, new in zip(old_shape, old_spacing, new_spacing, spacing)
    ])
    direction = np.asarray(volume.direction, dtype=float)
    # centre of the old grid == centre of the new one, measured along each axis
    shift = (old_spacing * (old_shape - 1) - new_spacing * (new_shape - 1)) / 2.0
    origin = np.asarray(volume.origin) + direction @ shift
    return Grid(shape=tuple(int(n) for n in new_shape), spacing=tuple(float(s) for s in new_spacing),
                origin=tuple(float(o) for o in origin), direction=tuple(float(d) for d in direction.ravel()))


def antialias_sigmas(volume: Volume, grid: Grid) -> tuple[float, float, float]:
    """Gaussian sigma (mm) along each input axis before resampling onto ``grid`` (0: no smoothing).

    The output spacing seen along input axis ``n`` is ``sum_m |d_n . e_m| * spacing_m``
    (exact for grids with the same or permuted axes, an approximation for oblique ones).
    """
    overlap = np.abs(np.asarray(volume.direction).T @ grid.direction_matrix)  # [n, m] = |d_n . e_m|
    seen = overlap @ np.asarray(grid.spacing)
    sigmas = []
    for old, new in zip(volume.spacing, seen):
        sigmas.append(math.sqrt(new * new - old * old) / _FWHM_PER_SIGMA if new > old * (1 + 1e-6) else 0.0)
    return tuple(sigmas)


def _sitk_interpolator(sitk, name: str):
    return {"linear": sitk.sitkLinear, "bspline": sitk.sitkBSpline, "nearest": sitk.sitkNearestNeighbor}[name]


def resample(volume: Volume, spacing: Sequence[float | None] | float | None = None, *,
             like: Union[Grid, Volume, str, os.PathLike, None] = None, interpolation: Interpolation | None = None,
             fill: float | None = None, antialias: bool = True, dtype: str | None = None,
             threads: int = 0) -> Volume:
    """Resample ``volume`` to a target spacing or onto the grid of a reference.

    Parameters
    ----------
    volume:
        The image (3D, 2D as one slice, or 4D resampled per volume).
    spacing:
        One number (isotropic) or three, ``None`` for an axis to keep. Axes are the
        volume's own ``i, j, k`` (reorient first if you mean world axes).
    like:
        A :class:`Grid`, a Volume or the path of an image whose grid to take
        exactly. Give ``spacing`` or ``like``, not both.
    interpolation:
        ``"linear"`` (default for intensities), ``"bspline"`` or ``"nearest"``.
        Ignored for labels: they always use nearest neighbour.
    fill:
        Value outside the input; default :func:`default_fill`. Labels always get 0.
    antialias:
        Smooth intensities along downsampled axes first (see the module docstring).
    dtype:
        ``None`` (integers stay integers, rounded) or ``"float32"`` to keep the
        interpolated float values of an intensity volume.
    threads:
        Threads the resampling may use; 0: the cores this process may use
        (capped by ``OMP_NUM_THREADS`` when set). A batch passes each unit's share.

    Returns
    -------
    Volume
        On the new grid, with a history entry naming grid, interpolation and fill.
    """
    if (spacing is None) == (like is None):
        raise UsageError("resample needs either a target spacing or a reference grid (like=), not both")
    if like is not None:
        grid = like if isinstance(like, Grid) else Grid.from_reference(like)
    else:
        if isinstance(spacing, (int, float)):
            spacing = (float(spacing),) * 3
        grid = grid_for_spacing(volume, tuple(spacing))
    return resample_to_grid(volume, grid, interpolation=interpolation, fill=fill, antialias=antialias, dtype=dtype,
                            threads=threads)


def resample_to_grid(volume: Volume, grid: Grid, *, interpolation: Interpolation | None = None,
                     fill: float | None = None, antialias: bool = True, dtype: str | None = None,
                     threads: int = 0, then: Optional[Callable[[Volume], Volume]] = None) -> Volume:
    """Resample ``volume`` onto ``grid`` (see :func:`resample` for the parameters).

    ``then`` is an optional *pointwise* step (a window, a clip: each output value
    depends on one resampled value only) applied to the result. On the separable
    path it runs on each block of output slices as soon as it is resampled, so the
    full-size intermediate never exists; its history entry and meta changes are
    those it makes on the first block.
    """
    if interpolation is not None and interpolation not in INTERPOLATIONS:
        raise UsageError(f"unknown interpolation {interpolation!r}", hint=f"use one of {', '.join(INTERPOLATIONS)}")
    if dtype not in (None, "float32"):
        raise UsageError(f"resample dtype must be None or 'float32', got {dtype!r}")
    spacing_text = ", ".join(f"{s:g}" for s in grid.spacing)
    target = grid.describe() if grid.source else f"spacing ({spacing_text}) mm, shape {tuple(grid.shape)}"
    if _on_grid(volume, grid):  # nothing to interpolate: keep the voxels as they are
        unchanged = volume.with_step(f"resample: already on {target}, unchanged")
        return then(unchanged) if then is not None else unchanged

    label = volume.kind == "label"
    method = "nearest" if label else (interpolation or "linear")
    fill_value = 0.0 if label else (default_fill(volume) if fill is None else float(fill))
    input_dtype = volume.array.dtype
    interpolated = method != "nearest"
    sigmas = antialias_sigmas(volume, grid) if (antialias and interpolated) else (0.0, 0.0, 0.0)

    if interpolated:
        work_dtype = np.dtype(np.float64 if input_dtype == np.float64 else np.float32)
        if dtype is None and np.issubdtype(input_dtype, np.integer):
            out_dtype = input_dtype
        else:
            out_dtype = np.dtype(np.float32) if dtype == "float32" else work_dtype
    else:
        work_dtype = out_dtype = input_dtype
        if dtype == "float32" and not label:
            out_dtype = np.dtype(np.float32)
    _check_fill(fill_value, out_dtype)

    smoothing = ""
    if any(sigmas):
        smoothing = ", anti-aliased (Gaussian sigma " + ", ".join(f"{s:.3g}" for s in sigmas) + " mm)"
    rounded = f", rounded to {out_dtype}" if out_dtype != work_dtype and np.issubdtype(out_dtype, np.integer) else ""
    how = f"{method}{' (label)' if label else ''}"
    step = f"resample {tuple(round(s, 4) for s in volume.spacing)} mm -> {target}; {how}, fill {fill_value:g}" \
           f"{smoothing}{rounded}"
    shell = volume.with_step(step, spacing=grid.spacing, origin=grid.origin, direction=grid.direction_matrix)
    looks_like_labels = interpolation_warning(volume, method)  # an image no name called a label map
    if looks_like_labels:
        shell = shell.with_warning(looks_like_labels)
    fused = then if (then is not None and not label) else None
    finish = _Finisher(shell, out_dtype, fused)

    array = volume.array if volume.array.ndim != 2 else volume.array[:, :, np.newaxis]
    job = _Resampling(volume, grid, method, fill_value, sigmas, work_dtype, available_threads(threads))
    if array.ndim == 4:
        result = np.stack([job.run(array[..., t], finish).T for t in range(array.shape[3])], axis=3)
    else:
        result = job.run(array, finish).T  # (i, j, k) view of the C-ordered (k, j, i) output
    out = finish.volume(result)
    if label:
        lost = sorted(_label_set(volume.array) - _label_set(result))
        if lost:
            shown = ", ".join(str(v) for v in lost[:10]) + (" ..." if len(lost) > 10 else "")
            out = out.with_warning(f"resample: label(s) {shown} vanished (structures smaller than the new voxels, "
                                   f"or outside the new grid)")
        if then is not None:
            out = then(out)
    return out


class _Finisher:
    """Turns blocks of resampled slices (k, j, i) into the output: rounding, then the fused pointwise step."""

    def __init__(self, shell: Volume, out_dtype: np.dtype, then: Optional[Callable[[Volume], Volume]]):
        self.shell, self.out_dtype, self.then = shell, np.dtype(out_dtype), then
        self.first: Optional[Volume] = None  # the pointwise step's result on the first block

    def __call__(self, block: np.ndarray, first_slice: int = 0) -> np.ndarray:
        if block.dtype != self.out_dtype:
            if np.issubdtype(self.out_dtype, np.integer):
                info = np.iinfo(self.out_dtype)
                # round half away from zero, then clip into the dtype (B-spline overshoot)
                block = np.clip(np.trunc(block + np.copysign(0.5, block)), info.min, info.max)
            block = block.astype(self.out_dtype)
        if self.then is None:
            return block
        # a few slices at a time: the pointwise step may work in float64 (intensity.window does)
        parts = []
        for k0 in range(0, len(block), SLAB_SLICES):
            done = self.then(self.shell.replace(array=block[k0:k0 + SLAB_SLICES].T))
            if self.first is None:
                self.first = done
            parts.append(np.asarray(done.array).T)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def volume(self, array: np.ndarray) -> Volume:
        """The output Volume holding ``array`` (i, j, k[, t])."""
        base = self.first if self.first is not None else self.shell
        return base.replace(array=array)


@dataclass(frozen=True)
class _Resampling:
    """One 3D resampling onto ``grid``: separable when the grids are axis-aligned, else SimpleITK."""

    volume: Volume
    grid: Grid
    method: str
    fill: float
    sigmas: tuple[float, float, float]
    work_dtype: np.dtype
    threads: int

    def run(self, array: np.ndarray, finish: Callable[[np.ndarray, int], np.ndarray]) -> np.ndarray:
        """The resampled (k, j, i) C-ordered output of the 3D ``array`` (i, j, k), finished block by block."""
        if self.method in ("linear", "nearest"):
            mapping = axis_map(self.volume.spacing, self.volume.origin, self.volume.direction, self.grid.shape,
                               self.grid.spacing, self.grid.origin, self.grid.direction_matrix)
            if mapping is not None:
                buffer, ops = self._separable(array, mapping)
                return resample_separable(buffer, ops, fill=self.fill, work_dtype=self.work_dtype, finish=finish,
                                          threads=self.threads)
        values = self._sitk(array)
        out = None
        for k0 in range(0, values.shape[0], BLOCK):
            block = finish(values[k0:k0 + BLOCK], k0)
            if out is None:
                out = np.empty(values.shape, dtype=block.dtype)
            out[k0:k0 + BLOCK] = block
        return out

    def _separable(self, array: np.ndarray, mapping: AxisMap):
        """The (k, j, i) input buffer in output axis order and the operators along output k, j, i."""
        buffer = np.transpose(array, mapping.source).T  # views: output axis m <- input axis source[m]
        ops = []
        for m in (2, 1, 0):
            n = mapping.source[m]
            size = array.shape[n]
            positions = mapping.start[m] + mapping.step[m] * np.arange(self.grid.shape[m])
            if mapping.step[m] < 0:  # read the input backwards: positions then increase
                buffer = np.flip(buffer, axis=2 - m)
                positions = (size - 1) - positions
            if self.method == "nearest":
                ops.append(nearest_operator(size, positions))
            else:
                ops.append(linear_operator(size, positions, (self.sigmas[n] / self.volume.spacing[n]) ** 2))
        return buffer, ops

    def _sitk(self, array: np.ndarray) -> np.ndarray:
        """SimpleITK's resampling (oblique grids, B-spline): the (k, j, i) float or input-dtype array."""
        sitk = import_sitk()
        source = self.volume.replace(array=array)
        if self.method != "nearest" and any(self.sigmas):  # the same Gaussian as the separable path, in place
            ops = [linear_operator(n, np.arange(n), (s / h) ** 2) for n, s, h in
                   zip(array.shape[::-1], self.sigmas[::-1], self.volume.spacing[::-1])]
            smoothed = resample_separable(array.T, ops, fill=0.0, work_dtype=self.work_dtype,
                                          finish=lambda block, _: block, threads=self.threads)
            source = source.replace(array=smoothed.T)
        image = to_sitk(source)
        pixel_type = image.GetPixelID()
        if self.method != "nearest":
            pixel_type = sitk.sitkFloat64 if self.work_dtype == np.float64 else sitk.sitkFloat32
            image = sitk.Cast(image, pixel_type)
        resampler = sitk.ResampleImageFilter()
        resampler.SetSize([int(n) for n in self.grid.shape])
        resampler.SetOutputOrigin(self.grid.origin)
        resampler.SetOutputSpacing(self.grid.spacing)
        resampler.SetOutputDirection(self.grid.direction)
        resampler.SetInterpolator(_sitk_interpolator(sitk, self.method))
        resampler.SetDefaultPixelValue(float(self.fill))
        resampler.SetOutputPixelType(pixel_type)
        resampler.SetNumberOfThreads(self.threads)
        return sitk.GetArrayFromImage(resampler.Execute(image))


def _label_set(array: np.ndarray) -> set:
    """The distinct values of a label array (a counting pass for small integer ranges, else a sort)."""
    if array.dtype.kind in "iub" and array.size:
        low, high = int(array.min()), int(array.max())
        if high - low < 1 << 20:
            counts = np.bincount((np.asarray(array, dtype=np.int64) - low).ravel(), minlength=high - low + 1)
            return {int(v) + low for v in np.flatnonzero(counts)}
    return {v.item() for v in np.unique(array)}


def _on_grid(volume: Volume, grid: Grid, tolerance_mm: float = 1e-6) -> bool:
    """True when every voxel of ``volume`` already sits on ``grid`` (same shape and affine)."""
    if tuple(volume.spatial_shape) != tuple(grid.shape):
        return False
    grid_affine = affine_from_geometry(grid.spacing, grid.origin, grid.direction_matrix)
    return bool(np.allclose(volume.affine_lps, grid_affine, atol=tolerance_mm, rtol=0))


def _check_fill(fill: float, dtype: np.dtype) -> None:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        if not (info.min <= fill <= info.max) or fill != math.floor(fill):
            raise UsageError(f"fill value {fill:g} does not fit the output dtype {dtype}",
                             hint=f"choose --fill between {info.min} and {info.max}, or add --dtype float32 to keep the "
                             "resampled values as floats")
