"""Benchmark the DICOM tilt / uneven-spacing repair: medconv's numpy path against SimpleITK doing the same.

Why it exists: issue 10 asked that the repair use the project's resampler (SimpleITK)
unless a benchmark shows the numpy path is needed. This script measures both on the
same planned stacks (``medconv.readers.dicom.stack.plan_stack`` of synthetic 512x512
int16 CT positions), interleaved, and prints the medians and how far the two results
agree away from the field edge:

* ``tilt``: an even 1.25 mm stack with a 15 degree shear. SimpleITK takes the acquired
  slices as one image with a sheared (non-orthogonal) direction and resamples it
  linearly onto the orthogonal output grid with ``ResampleImageFilter``.
* ``gap``: slices 1.25 mm apart, then 2.5 mm apart (every other slice missing).
  SimpleITK cannot hold uneven slices in one image: they are put on a regular index
  grid along the normal and a ``DisplacementFieldTransform`` (constant in-plane, one
  node per output slice) maps every output slice onto its fractional acquired index.

Both do the same arithmetic (bilinear in-plane, linear between the two acquired
slices, integers rounded back); they differ only along the edge of the acquired data
(the outer ring, and the sheared slab's edge inside a tilted grid), where ITK
extends the edge by half a pixel and medconv blends with the fill value. The
agreement is measured away from it (no fill value within one pixel in-plane).

Usage: python scripts/bench_stack_repair.py [SLICES] [REPEATS]
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

from medconv.readers.dicom.stack import StackPlan, plan_stack, regularise_stack

SIZE = 512
STEP_MM = 1.25
PIXEL_MM = 0.7
FILL = -1024


def planned_stack(kind: str, slices: int) -> tuple[np.ndarray, StackPlan]:
    """``(array (k, rows, cols) int16, plan)`` of a synthetic CT stack with a tilt or a gap."""
    iop = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    if kind == "tilt":
        distances = np.arange(slices) * STEP_MM
        shear = np.tan(np.radians(15.0))
    else:
        half = slices // 2
        distances = np.concatenate([np.arange(half) * STEP_MM, half * STEP_MM + np.arange(slices - half) * 2 * STEP_MM])
        shear = 0.0
    positions = np.array([(-180.0, -180.0 + d * shear, d) for d in distances])
    plan = plan_stack(positions, iop, (PIXEL_MM, PIXEL_MM), rows=SIZE, columns=SIZE)
    array = np.random.default_rng(0).normal(0, 300, (slices, SIZE, SIZE)).astype(np.int16)
    return array, plan


def _rounded(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.clip(np.trunc(values + np.copysign(0.5, values)), info.min, info.max).astype(dtype)


def _resampler(sitk, plan: StackPlan, rows_out: int, cols_out: int):
    resampler = sitk.ResampleImageFilter()
    resampler.SetSize((cols_out, rows_out, plan.shape_kji[0]))
    resampler.SetOutputOrigin(tuple(plan.origin))
    resampler.SetOutputSpacing(tuple(plan.spacing))
    resampler.SetOutputDirection(tuple(plan.direction.ravel()))
    resampler.SetInterpolator(sitk.sitkLinear)
    resampler.SetDefaultPixelValue(float(FILL))
    resampler.SetOutputPixelType(sitk.sitkFloat32)
    return resampler


def simpleitk_tilt(array: np.ndarray, plan: StackPlan) -> np.ndarray:
    """An even tilted stack as one sheared SimpleITK image, resampled onto the plan's orthogonal grid."""
    import SimpleITK as sitk

    rows, cols = array.shape[1:]
    row_dir, col_dir, normal = plan.direction[:, 0], plan.direction[:, 1], plan.direction[:, 2]
    ps_col, ps_row, _ = plan.spacing
    shear = (plan.offsets_px[-1] - plan.offsets_px[0]) / plan.distances[-1]  # pixels per mm along the normal
    along = normal + shear[0] * ps_col * row_dir + shear[1] * ps_row * col_dir
    vector = plan.distances[-1] / (len(array) - 1) * along
    image = sitk.GetImageFromArray(array)
    image.SetOrigin(tuple(plan.positions[0]))
    image.SetSpacing((ps_col, ps_row, float(np.linalg.norm(vector))))
    image.SetDirection(tuple(np.column_stack([row_dir, col_dir, vector / np.linalg.norm(vector)]).ravel()))
    out = _resampler(sitk, plan, rows + plan.grow_px[0], cols + plan.grow_px[1]).Execute(image)
    return _rounded(sitk.GetArrayFromImage(out), array.dtype)


def simpleitk_gap(array: np.ndarray, plan: StackPlan) -> np.ndarray:
    """An unevenly spaced (untilted) stack: a regular index grid and a displacement field along the normal."""
    import SimpleITK as sitk

    count_out = plan.shape_kji[0]
    rows, cols = array.shape[1:]
    normal = plan.direction[:, 2]
    image = sitk.GetImageFromArray(array.astype(np.float32))
    image.SetOrigin(tuple(plan.positions[0]))
    image.SetSpacing((plan.spacing[0], plan.spacing[1], 1.0))  # one "mm" per acquired slice
    image.SetDirection(tuple(plan.direction.ravel()))
    targets = np.arange(count_out) * plan.spacing[2]
    index = np.interp(targets, plan.distances, np.arange(len(array)))
    shift = np.outer(index - targets, normal)  # output slice t samples acquired index(t)
    field = np.ascontiguousarray(np.broadcast_to(shift[:, None, None, :], (count_out, 2, 2, 3)), dtype=np.float64)
    field_image = sitk.GetImageFromArray(field, isVector=True)
    field_image.SetOrigin(tuple(plan.origin))
    field_image.SetSpacing(((cols - 1) * plan.spacing[0], (rows - 1) * plan.spacing[1], plan.spacing[2]))
    field_image.SetDirection(tuple(plan.direction.ravel()))
    resampler = _resampler(sitk, plan, rows, cols)
    resampler.SetTransform(sitk.DisplacementFieldTransform(field_image))
    return _rounded(sitk.GetArrayFromImage(resampler.Execute(image)), array.dtype)


def _away_from_the_edge(*results: np.ndarray) -> np.ndarray:
    """Voxels with no fill value within one pixel in-plane in any result, and not on the outer ring."""
    near = np.zeros(results[0].shape, dtype=bool)
    for result in results:
        fill = result == FILL
        near |= fill
        near[:, 1:, :] |= fill[:, :-1, :]
        near[:, :-1, :] |= fill[:, 1:, :]
        near[:, :, 1:] |= fill[:, :, :-1]
        near[:, :, :-1] |= fill[:, :, 1:]
    near[:, [0, -1], :] = True
    near[:, :, [0, -1]] = True
    return ~near


def main(argv: list[str]) -> int:
    slices = int(argv[1]) if len(argv) > 1 else 120
    repeats = int(argv[2]) if len(argv) > 2 else 3
    print(f"{SIZE}x{SIZE}x{slices} int16, {repeats} interleaved runs each, medians (s)")
    for kind, other in (("tilt", simpleitk_tilt), ("gap", simpleitk_gap)):
        array, plan = planned_stack(kind, slices)
        times: dict[str, list[float]] = {"numpy": [], "simpleitk": []}
        for _ in range(repeats):
            start = time.perf_counter()
            ours = regularise_stack(array, plan, fill=FILL)
            times["numpy"].append(time.perf_counter() - start)
            start = time.perf_counter()
            theirs = other(array, plan)
            times["simpleitk"].append(time.perf_counter() - start)
        difference = np.abs(ours.astype(np.int32) - theirs.astype(np.int32))[_away_from_the_edge(ours, theirs)]
        numpy_s, sitk_s = statistics.median(times["numpy"]), statistics.median(times["simpleitk"])
        print(f"{kind:5s} {plan.flags} -> {ours.shape}: numpy {numpy_s:.3f}  simpleitk {sitk_s:.3f}  "
              f"ratio {sitk_s / numpy_s:.1f}x  max |difference| away from the data's edge {difference.max()} "
              f"({(difference > 1).mean():.2%} > 1)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
