"""Slice geometry of a DICOM stack: sort, measure, check, and regularise.

Every DICOM image series (single-frame files, mosaic tiles, the frames of an
enhanced multi-frame object) ends up as a stack of 2D slices, each with an
ImagePositionPatient (IPP), one shared ImageOrientationPatient (IOP) and one
PixelSpacing. This module turns those into the Volume geometry of DESIGN.md:

* slices are sorted by their position projected on the normal
  ``n = cross(IOP[0:3], IOP[3:6])`` (never by InstanceNumber or file name);
* axis ``i`` has direction ``IOP[0:3]`` and step ``PixelSpacing[1]``, axis ``j``
  direction ``IOP[3:6]`` and step ``PixelSpacing[0]``, axis ``k`` direction ``n``;
* the origin is the IPP of the first sorted slice;
* the slice step is measured from the positions.

Checks and tolerances (see docs/dicom.md):

* **duplicate positions**: two slices closer than :data:`DUPLICATE_TOLERANCE_MM`
  along ``n`` are an error here (a 4D axis must be split off before, by grouping);
* **gantry tilt / shear**: each slice's in-plane displacement from the first slice
  is fitted as ``shear * distance along n``; a total displacement over the stack
  above :data:`SHEAR_TOLERANCE_PX` of a pixel is a tilt. In-plane jumps that are not
  a linear shear are refused (:class:`GeometryError`);
* **uneven spacing**: the slice positions along ``n`` are compared with the
  least-squares line through them (position against slice index); a residual above
  ``max(SPACING_ABS_TOLERANCE_MM, SPACING_REL_TOLERANCE * step)`` plus the rounding
  allowance below makes the stack uneven. The step of an even stack is the slope of
  that line. Steps that are whole multiples of one base step are reported as missing
  slices (``gap``).
* **precision of the header**: many exporters write ImagePositionPatient with one
  or two decimals. The rounding unit ``q`` is estimated from the values themselves
  (:func:`position_quantum`), and every tolerance grows by the error that rounding
  to ``q`` can cause (:data:`ROUNDING_ALLOWANCE`), so a regular stack written as
  ``0.0, 0.6, 1.2, 1.9 ...`` (0.625 mm slices) is not called uneven or tilted.
* **orientation**: ImageOrientationPatient must be two unit, orthogonal vectors within
  :data:`IOP_UNIT_TOLERANCE`; within it the rounding is removed, beyond it the unit fails
  (:func:`orientation_direction`, the rule every layout uses).
* **missing positions**: a slice whose position is not finite (the caller passes
  NaN for a file without ImagePositionPatient) is an error naming the file.

Policies ``ReadOptions.on_tilt`` / ``ReadOptions.on_uneven``: ``"resample"``
regularises the stack in :func:`volume_from_stack`, ``"error"`` makes
:func:`plan_stack` raise :class:`GeometryError`. Resampling (see
:func:`regularise_stack`) is per slice: an in-plane shift undoes the tilt (the
same repair as dcm2niix's ``_Tilt`` output) and a blend of the two neighbouring
acquired slices fills each regular slice position. Intensities are interpolated
linearly (integers rounded back to their dtype), labels by nearest neighbour.
Voxels outside the acquired data get the project's one fill rule,
:func:`medconv.transforms.resample.default_fill` (-1024 HU for CT, 0 otherwise and
for labels), the value ``--spacing`` resampling fills with too.

The repair is done here in numpy, not by SimpleITK: ``scripts/bench_stack_repair.py``
measured SimpleITK's ResampleImageFilter 10-40 times slower on the same stacks
(a sheared image for a tilt, a displacement field for uneven spacing); see
docs/dicom.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np

from ...errors import GeometryError
from ...geometry import orthonormalize
from ...options import ReadOptions
from ...volume import Volume

#: Slices closer than this along the normal (mm) are at the same position.
DUPLICATE_TOLERANCE_MM = 0.01
#: A shear whose total in-plane displacement over the stack exceeds this fraction
#: of the smaller pixel spacing is a tilt; below it, it is rounding noise.
SHEAR_TOLERANCE_PX = 0.05
#: In-plane scatter (residual of the linear shear fit) above this fraction of a
#: pixel means the slices do not form one stack.
SCATTER_TOLERANCE_PX = 0.25
#: Slice positions within ``max(abs, rel * step)`` of the regular grid are even.
SPACING_ABS_TOLERANCE_MM = 0.01
SPACING_REL_TOLERANCE = 0.05
#: The largest slice step (gap) ``on_uneven="resample"`` interpolates across, in units of the smallest step;
#: beyond it the stack is refused: the data are missing, not unevenly spaced (the GE uneven CT of dcm_qa_ct
#: has 1.08 to 7 mm steps, a ratio of 6.5).
MAX_GAP_RATIO = 10.0
#: ImageOrientationPatient's row and column vectors must be unit vectors and orthogonal to this:
#: ``| |v| - 1 |`` of each and ``|cos|`` of their angle at most 1e-3 (GDCM's ``DirectionCosines::IsValid``
#: epsilon), or what the rounding of the written digits explains when they were written coarser (each of
#: the six values off by at most half its rounding unit ``q``: a length by ``sqrt(3) q / 2``, the cosine by
#: ``sqrt(3) q``; :func:`orientation_limits`). Within it the rounding is removed (normalised,
#: orthonormalised); beyond it the header is corrupt or hand-made and the unit fails
#: (:func:`orientation_defect`). Real headers are far inside it: the corpora's worst is 2e-5 (six
#: significant digits).
IOP_UNIT_TOLERANCE = 1e-3
#: The coarsest rounding of ImageOrientationPatient :func:`orientation_limits` explains: two decimals.
#: Six values that are all multiples of 0.1 are exact (0 and 1 of an axis-aligned plane, nothing to
#: explain) or no exporter's output: one decimal would excuse a cosine of 0.17 (10 degrees), and
#: ``1\\0.1\\0\\0\\1\\0``, a row turned 5.7 degrees off its column, is a hand edit.
IOP_COARSEST_QUANTUM = 0.01
#: Decimal places tried by :func:`position_quantum` (0.1 mm ... 1e-6 mm).
MAX_POSITION_DECIMALS = 6
#: The coarsest rounding unit assumed (mm). Positions that are all whole millimetres
#: usually had their trailing zeros stripped (``"30"`` for 30.000), not 1 mm precision.
COARSEST_POSITION_QUANTUM = 0.1
#: How many worst-case rounding errors of one position (``u = q/2`` times the L1 norm
#: of the axis) each check tolerates on top of its own tolerance. A residual from a
#: least-squares line is at most ``(1 + 1.67) u`` (the line's own error through its
#: leverage); a step is at most ``2 u``; the total shear of a fit through the first
#: slice at most ``3 u``; the scatter about it at most ``5 u``.
ROUNDING_ALLOWANCE = {"residual": 3.0, "step": 2.0, "shear": 3.0, "scatter": 5.0}


def position_quantum(positions: np.ndarray) -> float:
    """The rounding unit (mm) the positions were written with, or 0 for full precision.

    The largest ``10**-d`` (``d = 1 .. MAX_POSITION_DECIMALS``) of which every
    coordinate is a whole multiple: ``0.1`` when the exporter wrote one decimal.
    DS values reach medconv only as floats, so the printed digits are recovered
    from the values; a stack has hundreds of coordinates, so one that needs more
    digits reveals the true precision. Never coarser than
    :data:`COARSEST_POSITION_QUANTUM`.
    """
    values = np.asarray(positions, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0
    for decimals in range(1, MAX_POSITION_DECIMALS + 1):
        scaled = values * 10.0 ** decimals
        if np.all(np.abs(scaled - np.round(scaled)) <= 1e-3):
            return min(10.0 ** -decimals, COARSEST_POSITION_QUANTUM)
    return 0.0


def orientation_limits(values: np.ndarray) -> tuple[float, float]:
    """How far (length, cosine) an ImageOrientationPatient written with the digits of ``values`` may be off.

    :data:`IOP_UNIT_TOLERANCE`, or the worst error the rounding of the written digits
    can make (``q`` from :func:`position_quantum`: 0.01 for two decimals) when larger:
    an exporter that wrote ``0.71\\0.71\\0`` did not write a corrupt header. ``q`` is at most
    :data:`IOP_COARSEST_QUANTUM`.
    """
    rounding = math.sqrt(3.0) * min(position_quantum(values), IOP_COARSEST_QUANTUM)
    return max(IOP_UNIT_TOLERANCE, rounding / 2.0), max(IOP_UNIT_TOLERANCE, rounding)


def orientation_defect(iop: Sequence[float]) -> str | None:
    """Why ``iop`` is not two orthogonal unit vectors within :func:`orientation_limits`, or ``None``.

    The reason names what was measured (a vector's length, the cosine between them),
    for an error or a warning. Six finite values are required.
    """
    values = np.asarray(iop, dtype=np.float64).ravel()
    if values.shape != (6,) or not np.all(np.isfinite(values)):
        return f"ImageOrientationPatient (0020,0037) {list(values)} is not six finite numbers"
    written = "\\".join(f"{v:g}" for v in values)
    length_limit, cosine_limit = orientation_limits(values)
    lengths = np.linalg.norm(values[:3]), np.linalg.norm(values[3:])
    for name, length in zip(("row", "column"), lengths):
        if abs(length - 1.0) > length_limit:
            return (f"ImageOrientationPatient (0020,0037) {written}: the {name} vector has length {length:.6g}, "
                    f"not 1 (within {length_limit:.3g})")
    cosine = float(values[:3] @ values[3:]) / (lengths[0] * lengths[1])
    if abs(cosine) > cosine_limit:
        return (f"ImageOrientationPatient (0020,0037) {written}: the row and column vectors are not orthogonal "
                f"(cosine {cosine:.6g}: {math.degrees(math.acos(max(-1.0, min(1.0, cosine)))):.4g} degrees apart, "
                f"not 90; the cosine may be {cosine_limit:.3g} at most)")
    return None


def orientation_direction(iop: Sequence[float], path: str | None = None) -> np.ndarray:
    """The 3x3 orthonormal direction (columns: row, column, normal) of an ImageOrientationPatient.

    The one rule every DICOM layout places its slices by: within :data:`IOP_UNIT_TOLERANCE`
    the header's rounding is removed (polar decomposition, handedness kept); beyond it
    :class:`GeometryError` names ``path`` and the measured length or cosine, since
    silently normalising a corrupt orientation would give a wrong geometry.
    """
    defect = orientation_defect(iop)
    if defect is not None:
        raise GeometryError(defect, path, "the orientation in the header is corrupt or hand-edited: re-export the "
                            "series from the scanner or PACS, or correct ImageOrientationPatient in its files")
    values = np.asarray(iop, dtype=np.float64).ravel()
    row, column = values[:3] / np.linalg.norm(values[:3]), values[3:] / np.linalg.norm(values[3:])
    return orthonormalize(np.column_stack([row, column, np.cross(row, column)]))


def _rounding_error(quantum: float, axis: np.ndarray) -> float:
    """Worst error (mm) along a unit ``axis`` of a position whose coordinates are rounded to ``quantum``."""
    return quantum / 2.0 * float(np.sum(np.abs(axis)))


@dataclass
class StackPlan:
    """How the slices of one stack become a regular volume.

    Attributes
    ----------
    order:
        Indices that sort the input slices along the normal (ascending).
    positions:
        The sorted slice positions (n, 3), LPS mm.
    spacing:
        ``(PixelSpacing[1], PixelSpacing[0], slice step)`` of the output grid, mm.
    origin:
        LPS position of voxel (0, 0, 0) of the output grid.
    direction:
        3x3 orthonormal; columns IOP row, IOP column, normal.
    shape_kji:
        Output ``(k, rows, cols)`` once regularised (the input shape if no resample).
    flags:
        Findings: ``"tilt"``, ``"uneven"``, ``"gap"``, ``"single-slice"``.
    warnings:
        One line per decision, for ``meta["warnings"]``.
    needs_resample:
        True when :func:`volume_from_stack` must regularise (tilt or uneven).
    distances:
        Sorted slice positions along the normal, relative to the first (mm).
    offsets_px:
        Per sorted slice, in-plane displacement ``(di, dj)`` in pixels relative to
        the first slice (non-zero only for a tilt).
    tilt_degrees:
        The tilt angle measured from the positions (0 when none).
    grow_px:
        ``(rows, columns)`` the regular grid adds to each slice to hold a sheared stack.
    """

    order: np.ndarray
    positions: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray
    shape_kji: tuple[int, int, int]
    flags: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    needs_resample: bool = False
    distances: np.ndarray = field(default_factory=lambda: np.zeros(0))
    offsets_px: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    tilt_degrees: float = 0.0
    grow_px: tuple[int, int] = (0, 0)


def plan_stack(
    positions: np.ndarray,
    iop: Sequence[float],
    pixel_spacing: Sequence[float],
    options: ReadOptions = ReadOptions(),
    gantry_tilt: float | None = None,
    path: str | None = None,
    *,
    rows: int | None = None,
    columns: int | None = None,
    slice_thickness: float | None = None,
    paths: Sequence[str] | None = None,
    unreadable_nearby: Sequence[str] = (),
) -> StackPlan:
    """Sort slices along the normal, measure the step and check the stack.

    Parameters
    ----------
    positions:
        ``(n, 3)`` ImagePositionPatient of each slice, LPS mm, in any order.
    iop:
        ImageOrientationPatient (6 values), shared by every slice.
    pixel_spacing:
        PixelSpacing ``(row spacing, column spacing)`` in mm (DICOM order).
    options:
        ``on_tilt`` and ``on_uneven`` decide between resampling and refusing.
    gantry_tilt:
        GantryDetectorTilt (degrees) from the header, if any; compared with the
        tilt the positions show.
    path:
        A file of the series, for error messages.
    rows, columns:
        Slice matrix size, for ``plan.shape_kji`` (the resample itself sizes its
        grid from the array it gets).
    slice_thickness:
        Used as the slice step of a single-slice stack.
    paths:
        The file of each position (same order), to name a slice in an error.
    unreadable_nearby:
        Unreadable files beside the stack: missing slices are then refused, never
        filled (the gap is most likely those files).

    Returns
    -------
    StackPlan
        Apply ``plan.order`` to the slices, then call :func:`volume_from_stack`.

    Raises
    ------
    GeometryError
        Bad IOP, a missing (NaN) position, duplicate positions, in-plane scatter,
        or a tilt / uneven spacing when the matching policy is ``"error"``.
    """
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    count = len(positions)
    if count == 0:
        raise GeometryError("a stack needs at least one slice", path)
    missing = np.flatnonzero(~np.all(np.isfinite(positions), axis=1))
    if len(missing):
        culprit = paths[int(missing[0])] if paths is not None and len(paths) == count else path
        raise GeometryError(
            f"{len(missing)} of {count} slice(s) have no ImagePositionPatient (0020,0032)"
            + (f", e.g. {culprit}" if culprit and culprit != path else "")
            + ": the slice cannot be placed in the stack", culprit or path,
            "the file is incomplete or corrupt: re-export or re-download the series, or remove that file")
    direction = orientation_direction(iop, path)
    row_dir, col_dir, normal = direction[:, 0], direction[:, 1], direction[:, 2]
    ps_row, ps_col = (float(v) for v in pixel_spacing)
    if not (ps_row > 0 and ps_col > 0):
        raise GeometryError(f"PixelSpacing {list(pixel_spacing)} is not positive", path)

    along = positions @ normal
    order = np.argsort(along, kind="stable")
    sorted_positions = positions[order]
    distances = along[order] - along[order[0]]
    flags: list[str] = []
    warnings: list[str] = []

    if count == 1:
        step = float(slice_thickness) if slice_thickness and slice_thickness > 0 else 1.0
        flags.append("single-slice")
        warnings.append(f"single slice: slice step set to {'SliceThickness' if slice_thickness else '1 mm'} ({step:g} mm)")
        shape = (1, int(rows or 0), int(columns or 0))
        return StackPlan(order, sorted_positions, (ps_col, ps_row, step), tuple(sorted_positions[0]), direction,
                         shape, flags, warnings, False, distances, np.zeros((1, 2)), 0.0)

    steps = np.diff(distances)
    duplicates = np.flatnonzero(steps < DUPLICATE_TOLERANCE_MM)
    if len(duplicates):
        first = int(duplicates[0])
        raise GeometryError(
            f"{len(duplicates)} slice(s) repeat a position already in the stack (e.g. at {distances[first]:.3f} mm "
            "along the normal) and no temporal/echo index tells them apart", path,
            "the series holds several volumes or duplicated files; remove the duplicates or split the series")

    # how far rounding of the written positions can move a position (mm): along the normal, the row, the column
    quantum = position_quantum(positions)
    noise_n = _rounding_error(quantum, normal)
    noise_px = max(_rounding_error(quantum, row_dir) / ps_col, _rounding_error(quantum, col_dir) / ps_row)

    # in-plane displacement of each slice from the first, in pixels
    relative = sorted_positions - sorted_positions[0]
    inplane = relative - np.outer(distances, normal)
    offsets_px = np.column_stack([inplane @ row_dir / ps_col, inplane @ col_dir / ps_row])
    shear_px = (distances @ offsets_px) / float(distances @ distances)  # pixels per mm along n
    scatter = float(np.max(np.abs(offsets_px - np.outer(distances, shear_px))))
    if scatter > SCATTER_TOLERANCE_PX + ROUNDING_ALLOWANCE["scatter"] * noise_px:
        raise GeometryError(
            f"slice positions jump in-plane by up to {scatter:.2f} pixels: not one straight stack "
            f"({_worst_slice(order, offsets_px, distances, positions, paths)})", path,
            "the series may mix acquisitions; check it in a viewer")
    total_shift_px = float(np.max(np.abs(shear_px * distances[-1])))
    shear_mm = np.hypot(shear_px[0] * ps_col, shear_px[1] * ps_row)
    tilt_degrees = math.degrees(math.atan(shear_mm))
    tilted = total_shift_px > SHEAR_TOLERANCE_PX + ROUNDING_ALLOWANCE["shear"] * noise_px
    if tilted:
        flags.append("tilt")
        header = f" (GantryDetectorTilt {gantry_tilt:g} deg)" if gantry_tilt else " (GantryDetectorTilt not set)"
        if options.on_tilt == "error":
            raise GeometryError(
                f"gantry tilt of {tilt_degrees:.2f} deg{header}: slices are sheared by {total_shift_px:.1f} pixels",
                path, "use on_tilt='resample' (--on-tilt resample) to resample onto an orthogonal grid")
        offsets_px = np.outer(distances, shear_px)
        warnings.append(f"gantry tilt {tilt_degrees:.2f} deg{header}: resampled onto an orthogonal grid "
                        "(per-slice in-plane shift, linear interpolation)")
    else:
        offsets_px = np.zeros_like(offsets_px)
        if gantry_tilt and abs(gantry_tilt) > 0.01:
            warnings.append(f"GantryDetectorTilt is {gantry_tilt:g} deg but the slice positions are not sheared: "
                            "no tilt correction needed")

    # spacing along the normal: a least-squares line through the positions (slice index -> distance)
    index = np.arange(count, dtype=np.float64)
    fitted_step, intercept = (float(v) for v in np.polyfit(index, distances, 1))
    tolerance = (max(SPACING_ABS_TOLERANCE_MM, SPACING_REL_TOLERANCE * fitted_step)
                 + ROUNDING_ALLOWANCE["residual"] * noise_n)
    deviation = float(np.max(np.abs(distances - (intercept + fitted_step * index))))
    uneven = deviation > tolerance
    step = fitted_step
    out_count = count
    if uneven:
        step_noise = ROUNDING_ALLOWANCE["step"] * noise_n
        base_step = _smallest_step(steps, step_noise)
        grid = _missing_slice_grid(distances, steps, base_step, step_noise)
        if grid is not None:
            # missing slices: every step a whole multiple of one base step, most steps the base step
            base_step, last_index = grid
            missing = last_index + 1 - count
            flags.append("gap")
            what = f"{missing} missing slice(s) (steps are multiples of {base_step:.3f} mm)"
            out_count = last_index + 1
            if unreadable_nearby:
                raise GeometryError(
                    f"{what}, and {len(unreadable_nearby)} file(s) beside the series are unreadable, e.g. "
                    f"{unreadable_nearby[0]}: the missing slices are probably those files, so the gap is not "
                    "filled by interpolation", path, "re-download the series (or remove the broken files to "
                    "accept the gap)")
        else:
            flags.append("uneven")
            what = f"uneven slice spacing ({steps.min():.3f} to {steps.max():.3f} mm)"
            out_count = int(round(distances[-1] / base_step)) + 1
        if options.on_uneven == "error":
            raise GeometryError(f"{what}", path,
                                "use on_uneven='resample' (--on-uneven resample) to interpolate onto a regular grid")
        ratio = float(steps.max()) / base_step
        if ratio > MAX_GAP_RATIO:  # e.g. 4 slices of a brain series 200 mm apart: refuse to invent the rest
            raise GeometryError(
                f"{what}: one gap of {steps.max():.1f} mm is {ratio:.0f} times the smallest step; resampling "
                f"would interpolate {int(round(ratio)) - 1} slices across it from its two neighbours",
                path, "the series is incomplete, a partial download or a selection of slices: get the complete series")
        step = distances[-1] / (out_count - 1)  # the first and last acquired slices lie on the grid
        warnings.append(f"{what}: resampled onto a regular {step:.3f} mm grid ({count} -> {out_count} slices, "
                        "linear interpolation between neighbouring slices)")

    # output grid: covers every acquired slice, shifted in-plane for a tilt
    rows_out, cols_out = int(rows or 0), int(columns or 0)
    origin = sorted_positions[0].copy()
    if tilted:
        low = np.floor(offsets_px.min(axis=0) + 1e-6)
        high = np.ceil(offsets_px.max(axis=0) - 1e-6)
        origin = origin + low[0] * ps_col * row_dir + low[1] * ps_row * col_dir
        grow = (int(high[1] - low[1]), int(high[0] - low[0]))
        rows_out, cols_out = rows_out + grow[0], cols_out + grow[1]
        offsets_px = offsets_px - low  # offsets relative to the output grid's corner
    else:
        grow = (0, 0)
    return StackPlan(
        order=order,
        positions=sorted_positions,
        spacing=(ps_col, ps_row, float(step)),
        origin=tuple(float(v) for v in origin),
        direction=direction,
        shape_kji=(out_count, rows_out, cols_out),
        flags=flags,
        warnings=warnings,
        needs_resample=bool(tilted or uneven),
        distances=distances,
        offsets_px=offsets_px,
        tilt_degrees=tilt_degrees if tilted else 0.0,
        grow_px=grow,
    )


def _worst_slice(order: np.ndarray, offsets_px: np.ndarray, distances: np.ndarray, positions: np.ndarray,
                 paths: Sequence[str] | None) -> str:
    """The slice whose removal leaves the straightest stack (leave-one-out line fits), for a message."""
    count = len(distances)
    if count <= 2 or count > 1000:  # the leave-one-out residuals take count x count memory: one fit to all
        design = np.column_stack([np.ones_like(distances), distances])
        fitted = design @ np.linalg.lstsq(design, offsets_px, rcond=None)[0]
        worst_sorted = int(np.argmax(np.max(np.abs(offsets_px - fitted), axis=1)))
    else:
        x, y = distances, offsets_px  # (n,), (n, 2)
        n = count - 1.0
        sx, sxx = x.sum() - x, (x * x).sum() - x * x
        sy, sxy = y.sum(axis=0) - y, (x[:, None] * y).sum(axis=0) - x[:, None] * y
        denominator = np.where(np.abs(n * sxx - sx * sx) > 1e-12, n * sxx - sx * sx, 1.0)
        slope = (n * sxy - sx[:, None] * sy) / denominator[:, None]
        intercept = (sy - slope * sx[:, None]) / n
        # residual[i, j, axis]: slice j about the line fitted without slice i
        residual = np.abs(y[None, :, :] - (intercept[:, None, :] + slope[:, None, :] * x[None, :, None])).max(axis=2)
        np.fill_diagonal(residual, 0.0)
        worst_sorted = int(np.argmin(residual.max(axis=1)))
    worst = int(order[worst_sorted])
    position = positions[worst]
    text = "(" + ", ".join(f"{v:g}" for v in position) + ")"
    where = f"{paths[worst]}, " if paths is not None and len(paths) == len(positions) else "the slice at "
    note = ""
    if not np.any(position) and np.any(positions):
        note = ": is its ImagePositionPatient missing? (a file without one reads as (0, 0, 0))"
    return f"worst: {where}ImagePositionPatient {text}{note}"


def _smallest_step(steps: np.ndarray, step_noise: float) -> float:
    """The smallest acquired step, not a rounding artefact: the mean of the steps within
    rounding noise of the smallest (just the smallest when the positions are exact)."""
    smallest = float(steps.min())
    return float(np.mean(steps[steps <= smallest + 2.0 * step_noise]))


def _missing_slice_grid(distances: np.ndarray, steps: np.ndarray, base_step: float,
                        step_noise: float) -> tuple[float, int] | None:
    """``(step, index of the last slice)`` when the slices sit on a regular grid with some
    positions missing (every step a whole multiple of one step, most of them one step);
    ``None`` otherwise. The step is the least-squares slope of distance against grid index."""
    for _ in range(2):  # the second pass re-counts the multiples with the fitted step
        multiples = np.round(steps / base_step)
        if np.any(multiples < 1):
            return None
        grid_index = np.concatenate([[0.0], np.cumsum(multiples)])
        base_step = float(np.polyfit(grid_index, distances, 1)[0])
    off_grid = np.abs(steps - multiples * base_step)
    if not (np.all(off_grid <= 2 * SPACING_REL_TOLERANCE * base_step + step_noise)
            and np.median(multiples) == 1 and multiples.max() >= 2):
        return None
    return base_step, int(grid_index[-1])


def volume_from_stack(
    array_kji: np.ndarray,
    plan: StackPlan,
    meta: dict,
    kind: Literal["intensity", "label"] = "intensity",
    options: ReadOptions = ReadOptions(),
) -> Volume:
    """Build the Volume of a planned stack, regularising it when the plan says so.

    Parameters
    ----------
    array_kji:
        Pixel data ``(k, rows, cols)`` (or ``(t, k, rows, cols)`` for 4D), C-ordered,
        slices already in ``plan.order``.
    plan:
        From :func:`plan_stack`.
    meta:
        Volume meta; ``plan.warnings`` are appended to ``meta["warnings"]``.
    kind:
        ``"label"`` makes the regularising resample nearest-neighbour.
    options:
        Read options (the policies were already applied by :func:`plan_stack`).

    Returns
    -------
    Volume
        ``array`` is the transposed view ``array_kji.T`` (axes i, j, k[, t]) of
        the given buffer (or of the resampled buffer), never a copy.
    """
    if array_kji.ndim not in (3, 4):
        raise GeometryError(f"a stack needs 3 or 4 dimensions (k, rows, cols), got {array_kji.shape}")
    meta = dict(meta)
    meta["warnings"] = list(meta.get("warnings", ())) + list(plan.warnings)
    if plan.flags:
        meta["geometry_flags"] = list(plan.flags)
    history = ("regularised slice stack: " + ", ".join(plan.flags),) if plan.needs_resample else ()
    volume = Volume(array=array_kji.T, spacing=plan.spacing, origin=plan.origin, direction=plan.direction,
                    kind=kind, meta=meta, history=history)
    if not plan.needs_resample:
        return volume
    from ...transforms.resample import default_fill

    fill = default_fill(volume)  # the project's one fill rule: -1024 HU for CT, 0 otherwise and for labels
    if array_kji.ndim == 4:
        regular = np.stack([regularise_stack(part, plan, kind, fill) for part in array_kji])
    else:
        regular = regularise_stack(array_kji, plan, kind, fill)
    return volume.replace(array=regular.T)


def regularise_stack(array_kji: np.ndarray, plan: StackPlan, kind: str = "intensity",
                     fill: float = 0.0) -> np.ndarray:
    """Resample a sorted, possibly tilted and unevenly spaced stack onto the plan's regular grid.

    Each output slice lies at a regular distance ``d`` along the normal. It is
    made from the two acquired slices around ``d``, each shifted in-plane by its
    tilt offset (bilinear), blended by distance (linear). Labels use the nearest
    slice and whole-pixel shifts. Integer intensities are rounded back to their
    dtype; voxels outside the acquired data get ``fill`` (labels 0). The dtype is
    widened only when it cannot hold ``fill`` (-1024 in an unsigned CT stack).
    """
    count_out = plan.shape_kji[0]
    rows, cols = array_kji.shape[1:]
    rows_out, cols_out = rows + plan.grow_px[0], cols + plan.grow_px[1]
    label = kind == "label"
    fill = 0 if label else fill
    dtype = array_kji.dtype
    if dtype.kind in "iu" and not np.iinfo(dtype).min <= fill <= np.iinfo(dtype).max:
        dtype = np.promote_types(dtype, np.min_scalar_type(int(fill)))
    out = np.empty((count_out, rows_out, cols_out), dtype=dtype)
    targets = np.arange(count_out) * plan.spacing[2]
    distances = plan.distances
    upper = np.clip(np.searchsorted(distances, targets - 1e-6), 1, len(distances) - 1)
    lower = upper - 1
    span = distances[upper] - distances[lower]
    weight = np.clip((targets - distances[lower]) / span, 0.0, 1.0)
    canvas = np.empty((rows_out + 2, cols_out + 2), dtype=np.float32)
    for k in range(count_out):
        if label:
            source = int(lower[k] if weight[k] < 0.5 else upper[k])
            out[k] = _shifted(array_kji[source], plan.offsets_px[source], rows_out, cols_out, fill, nearest=True,
                              canvas=canvas)
            continue
        w = float(weight[k])
        if w < 1e-6 or w > 1 - 1e-6:
            source = int(lower[k] if w < 0.5 else upper[k])
            slice_ = _shifted(array_kji[source], plan.offsets_px[source], rows_out, cols_out, fill, canvas=canvas)
        else:
            slice_ = (1 - w) * _shifted(array_kji[lower[k]], plan.offsets_px[lower[k]], rows_out, cols_out, fill,
                                        canvas=canvas)
            slice_ += w * _shifted(array_kji[upper[k]], plan.offsets_px[upper[k]], rows_out, cols_out, fill,
                                   canvas=canvas)
        if out.dtype.kind in "iu":
            np.rint(slice_, out=slice_)
        out[k] = slice_
    return out


def _shifted(slice_: np.ndarray, offset_px: np.ndarray, rows_out: int, cols_out: int, fill, nearest: bool = False,
             canvas: np.ndarray | None = None) -> np.ndarray:
    """``slice_`` (rows, cols) placed on a (rows_out, cols_out) grid at ``offset_px`` = (di, dj) pixels.

    Bilinear for fractional offsets (float32 result), whole pixels when ``nearest``.
    """
    di, dj = float(offset_px[0]), float(offset_px[1])
    rows, cols = slice_.shape
    if nearest:
        out = np.full((rows_out, cols_out), fill, dtype=slice_.dtype)
        oi, oj = int(round(di)), int(round(dj))
        out[oj:oj + rows, oi:oi + cols] = slice_[: rows_out - oj, : cols_out - oi]
        return out
    fi, fj = math.floor(di), math.floor(dj)
    ri, rj = di - fi, dj - fj
    if canvas is None or canvas.shape != (rows_out + 2, cols_out + 2):
        canvas = np.empty((rows_out + 2, cols_out + 2), dtype=np.float32)
    canvas.fill(fill)
    # canvas[J + 1, I + 1] holds input (J - fj, I - fi)
    canvas[fj + 1: fj + 1 + rows, fi + 1: fi + 1 + cols] = slice_[: rows_out + 1 - fj, : cols_out + 1 - fi]
    if ri < 1e-6 and rj < 1e-6:
        return canvas[1:-1, 1:-1].copy()
    out = (1 - ri) * (1 - rj) * canvas[1:-1, 1:-1]
    out += ri * (1 - rj) * canvas[1:-1, :-2]
    out += (1 - ri) * rj * canvas[:-2, 1:-1]
    out += ri * rj * canvas[:-2, :-2]
    return out
