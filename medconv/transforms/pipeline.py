"""``Preprocessing``: every preprocessing choice in one frozen, picklable object.

The steps always run in this fixed order, each one appending to ``Volume.history``:

1. **reorient** (``orient``): exact permutation/flip of the axes;
2. **resample** (``spacing`` or ``like``): :mod:`.resample`, labels nearest;
3. **intensity** (one of ``window``, ``clip``, ``normalize``), then ``scale``;
4. **cast** (``dtype``).

Reorienting first means a per-axis ``spacing`` refers to the *output* axes
(``--orient RAS --spacing 0.7,0.7,keep`` keeps the S axis). The object travels
to worker processes, so it holds plain values only; a ``like`` reference is
reduced to its :class:`~medconv.transforms.resample.Grid` when built.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, Callable, Optional, Union

import numpy as np

from ..errors import UsageError
from ..volume import Volume
from .separable import SLAB_SLICES
from .cast import cast, validate_dtype
from .intensity import SCALES, clip, normalize, window
from .orientation import reorient, validate_axis_codes
from .parse import parse_interpolation, parse_normalize, parse_number, parse_range, parse_spacing, parse_window
from .resample import Grid, resample_to_grid, grid_for_spacing

__all__ = ["Preprocessing", "ORDER"]

#: the order the steps run in.
ORDER = ("reorient", "resample", "intensity", "cast")

Spacing = tuple[Optional[float], Optional[float], Optional[float]]


@dataclass(frozen=True)
class Preprocessing:
    """All preprocessing choices; calling it on a Volume applies them in :data:`ORDER`.

    Parameters
    ----------
    orient:
        Target axis codes (``"RAS"``, ``"LPS"``, ...) or ``None``.
    spacing:
        Target spacing per axis in mm, ``None`` entries keep an axis; or ``None``.
    like:
        A reference :class:`Grid` to resample onto (exclusive with ``spacing``).
    interpolation:
        ``"linear"``, ``"bspline"`` or ``"nearest"`` for intensities; ``None`` is
        linear. Labels always use nearest.
    fill:
        Value outside the input when resampling; ``None``: -1024 for CT, else 0.
    antialias:
        Gaussian pre-smoothing of intensities along downsampled axes.
    window:
        ``(level, width)``; with ``window_name == "dicom"`` and ``window=None`` the
        volume's own ``meta["window"]`` is used.
    window_name:
        The preset name (or ``"dicom"``), for histories and manifests.
    clip:
        ``(min, max)`` value range (exclusive with ``window`` and ``normalize``).
    normalize:
        ``"zscore"`` or ``"percentile"`` (with ``percentiles``).
    scale:
        ``"none"``, ``"unit"`` or ``"uint8"``; needs a window, clip or percentile range.
    dtype:
        Final dtype name or ``None``; ``cast_clip`` clips out-of-range values
        instead of failing.
    threads:
        Threads each resampling may use (0: the cores this process may use, see
        :func:`~medconv.transforms.separable.available_threads`). Not a choice about
        the result: a batch may set it (``dataclasses.replace``) to share cores between
        workers; it is left out of :meth:`describe`.
    """

    orient: Optional[str] = None
    spacing: Optional[Spacing] = None
    like: Optional[Grid] = None
    interpolation: Optional[str] = None
    fill: Optional[float] = None
    antialias: bool = True
    window: Optional[tuple[float, float]] = None
    window_name: Optional[str] = None
    clip: Optional[tuple[float, float]] = None
    normalize: Optional[str] = None
    percentiles: tuple[float, float] = (0.5, 99.5)
    scale: str = "none"
    dtype: Optional[str] = None
    cast_clip: bool = False
    threads: int = 0

    def __post_init__(self):
        set_ = object.__setattr__  # normalise values given directly (Preprocessing(spacing=1, clip=(0, 1)))
        if self.orient is not None:
            set_(self, "orient", validate_axis_codes(self.orient))
        if self.spacing is not None:
            set_(self, "spacing", parse_spacing(self.spacing))
        if self.like is not None and not isinstance(self.like, Grid):
            raise UsageError("like= must be a Grid here; Preprocessing.from_options reads a path or Volume")
        if self.fill is not None:
            set_(self, "fill", parse_number(self.fill, "fill"))
        if self.window is not None:
            set_(self, "window", tuple(parse_number(v, "window") for v in self.window))
            if len(self.window) != 2 or self.window[1] <= 0:
                raise UsageError(f"window needs (level, width) with a positive width, got {self.window}")
        if self.clip is not None:
            set_(self, "clip", parse_range(self.clip))
        set_(self, "percentiles", tuple(float(p) for p in self.percentiles))
        if self.spacing is not None and self.like is not None:
            raise UsageError("give a target spacing or a reference grid (--like), not both")
        if self.interpolation is not None:
            set_(self, "interpolation", parse_interpolation(self.interpolation))
        resampling_only = [f"--{name}" for name in ("interpolation", "fill") if getattr(self, name) is not None]
        if resampling_only and self.spacing is None and self.like is None:
            raise UsageError(f"{' and '.join(resampling_only)} only apply to resampling", hint="add --spacing or --like")
        intensity = [name for name, value in (("window", self.window or self.window_name), ("clip", self.clip),
                                              ("normalize", self.normalize)) if value]
        if len(intensity) > 1:
            raise UsageError(f"choose one of --window, --clip and --normalize, got {' and '.join(intensity)}")
        if self.scale not in SCALES:
            raise UsageError(f"unknown scale {self.scale!r}", hint="use none, unit or uint8")
        if self.normalize == "zscore" and self.scale != "none":
            raise UsageError("--normalize zscore gives z-scores; it takes no --scale")
        if self.scale != "none" and not (self.window or self.window_name or self.clip
                                         or self.normalize == "percentile"):
            raise UsageError(f"--scale {self.scale} needs a value range to scale",
                             hint="add --window, --clip or --normalize percentile")
        if self.dtype is not None:
            set_(self, "dtype", validate_dtype(self.dtype).name)

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_options(cls, *, orient: Optional[str] = None, spacing: Union[str, float, tuple, None] = None,
                     like: Union[Grid, Volume, str, os.PathLike, None] = None, interpolation: Optional[str] = None,
                     fill: Union[str, float, None] = None, antialias: bool = True, window: Optional[str] = None,
                     clip: Union[str, tuple, None] = None, scale: Optional[str] = None, dtype: Optional[str] = None,
                     normalize: Optional[str] = None, cast_clip: bool = False) -> "Preprocessing":
        """Build from option values as a user writes them (``spacing="0.7,0.7,keep"``,
        ``window="lung"`` or ``"-600,1500"`` or ``"dicom"``, ``clip="-1000,400"``,
        ``normalize="percentile:1,99"``). A ``like`` path is read once, here."""
        window_name, window_values = parse_window(window) if window else (None, None)
        method, percentiles = parse_normalize(normalize) if normalize else (None, (0.5, 99.5))
        if scale is None:
            scale = "unit" if method == "percentile" else "none"
        grid = None
        if like is not None:
            grid = like if isinstance(like, Grid) else Grid.from_reference(like)
        return cls(orient=orient, spacing=parse_spacing(spacing) if spacing is not None else None, like=grid,
                   interpolation=interpolation, fill=parse_number(fill, "fill") if fill is not None else None,
                   antialias=antialias, window=window_values, window_name=window_name,
                   clip=parse_range(clip) if clip is not None else None, normalize=method,
                   percentiles=percentiles, scale=str(scale).lower(), dtype=dtype, cast_clip=cast_clip)

    # -- application ------------------------------------------------------------------
    @property
    def is_identity(self) -> bool:
        """True when calling this changes nothing (no step chosen)."""
        return not (self.orient or self.spacing or self.like or self.window or self.window_name or self.clip
                    or self.normalize or self.dtype)

    @property
    def _intensity_floats(self) -> bool:
        return self.normalize is not None or self.scale != "none" or (self.dtype or "").startswith("float")

    def __call__(self, volume: Volume) -> Volume:
        """Apply the chosen steps to ``volume`` in :data:`ORDER`.

        A window or clip is pointwise, so it runs on blocks of slices: fused into the
        resampling when there is one (each block of resampled slices is windowed as
        soon as it exists), else block by block over the volume. The result is the
        same as applying the steps one after the other on whole arrays, without
        their full-size float intermediates.
        """
        if self.orient:
            volume = reorient(volume, self.orient)
        pointwise = self._pointwise_step()
        if self.spacing is not None or self.like is not None:
            grid = self.like if self.like is not None else grid_for_spacing(volume, self.spacing)
            # keep interpolated floats when the next steps rescale anyway (no double rounding)
            volume = resample_to_grid(volume, grid, interpolation=self.interpolation, fill=self.fill,
                                      antialias=self.antialias, dtype="float32" if self._intensity_floats else None,
                                      threads=self.threads, then=pointwise)
        elif pointwise is not None:
            volume = _in_slice_blocks(volume, pointwise)
        if self.normalize is not None:
            volume = normalize(volume, self.normalize, percentiles=self.percentiles, scale=self.scale)
        if self.dtype is not None:
            volume = cast(volume, self.dtype, clip=self.cast_clip)
        return volume

    def _pointwise_step(self) -> Optional[Callable[[Volume], Volume]]:
        """The window or clip step as a function of a Volume (``None`` without one)."""
        if self.window is not None or self.window_name is not None:
            if self.window_name:  # a preset or "dicom"
                return partial(window, preset=self.window_name, scale=self.scale)
            return partial(window, level=self.window[0], width=self.window[1], scale=self.scale)
        if self.clip is not None:
            return partial(clip, minimum=self.clip[0], maximum=self.clip[1], scale=self.scale)
        return None

    # -- description ------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """The chosen steps as a JSON-serialisable dict for manifests and sidecars (only what is set)."""
        out: dict[str, Any] = {}
        if self.orient:
            out["orient"] = self.orient
        if self.spacing is not None:
            out["spacing"] = ["keep" if s is None else s for s in self.spacing]
        if self.like is not None:
            grid = asdict(self.like)
            out["like"] = {key: list(value) if isinstance(value, tuple) else value for key, value in grid.items()}
        if self.spacing is not None or self.like is not None:
            out["interpolation"] = self.interpolation or "linear"
            out["fill"] = "auto (-1024 for CT, else 0)" if self.fill is None else self.fill
            out["antialias"] = self.antialias
        if self.window_name == "dicom":
            out["window"] = "dicom"
        elif self.window is not None:
            out["window"] = {"name": self.window_name, "level": self.window[0], "width": self.window[1]}
        if self.clip is not None:
            out["clip"] = list(self.clip)
        if self.normalize is not None:
            out["normalize"] = self.normalize
            if self.normalize == "percentile":
                out["percentiles"] = list(self.percentiles)
        if out.keys() & {"window", "clip", "normalize"}:
            out["scale"] = self.scale
        if self.dtype is not None:
            out["dtype"] = self.dtype
            out["cast_clip"] = self.cast_clip
        return out


def _in_slice_blocks(volume: Volume, step: Callable[[Volume], Volume]) -> Volume:
    """``step(volume)`` for a pointwise ``step``, run a few slices at a time (less memory, same values)."""
    array = volume.array
    if array.ndim != 3 or array.shape[2] <= SLAB_SLICES or volume.kind == "label":
        return step(volume)
    first = None
    out = None
    for k0 in range(0, array.shape[2], SLAB_SLICES):
        done = step(volume.replace(array=array[:, :, k0:k0 + SLAB_SLICES]))
        if out is None:
            first = done
            out = np.empty(array.shape[::-1], dtype=done.array.dtype)  # C-ordered (k, j, i), as readers make
        out[k0:k0 + SLAB_SLICES] = np.asarray(done.array).T
    return first.replace(array=out.T)
