"""The four image layouts: each turns its files into frame references; decoding gathers their pixels.

* :mod:`.single_frame`: one slice per file (3D, or 4D over a time index);
* :mod:`.mosaic`: Siemens mosaics, one volume per file;
* :mod:`.enhanced`: enhanced / legacy-converted multi-frame objects (functional groups);
* :mod:`.vendor4d`: single-frame repeats no standard index orders (diffusion, classic fMRI);
* :mod:`.projection`: 2D images (radiographs, 2D cine), read through the greyscale pipeline.

:func:`plan_unit` dispatches a grouped stack to its layout's planner;
:func:`decode_frames` decodes the frames the assembly ordered (one path for
every layout: files with one frame are read straight into the output buffer,
multi-frame files and mosaics are decoded once each and their frames gathered).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from ....errors import UnsupportedFormatError
from ..headers import DicomHeader, reuse_or_read
from ..pixels import PixelStack, decode_file, finish_stack, read_pixel_stack
from ..plan import FrameRef, Layout, UnitPlan


def fresh_headers(plan: UnitPlan) -> dict[str, DicomHeader]:
    """The plan's headers by path, each parsed again only if its file changed since discovery."""
    return {header.path: reuse_or_read(header.path, header) for header in plan.headers}


def decode_frames(plan: UnitPlan, frames: Sequence[FrameRef]) -> PixelStack:
    """The rescaled pixels of ``frames`` (in this order) as one C-ordered ``(n, rows, columns)`` array."""
    headers = fresh_headers(plan)
    if plan.layout in (Layout.SINGLE_FRAME, Layout.VENDOR_4D):
        return read_pixel_stack([f.path for f in frames], [headers[f.path] for f in frames])
    if plan.layout is Layout.MOSAIC:
        from .mosaic import decode_tiles as decode
    elif plan.layout is Layout.ENHANCED:
        decode = None
    else:
        raise UnsupportedFormatError(f"{plan.layout.value} units are not assembled into volumes", plan.first.path)
    decoded: dict[str, tuple[np.ndarray, Any]] = {}
    for path in dict.fromkeys(f.path for f in frames):
        stored, pixel = decode_file(headers[path])
        if headers[path].rescale_type and not pixel.rescale_type:  # e.g. RT dose: DoseUnits, found at planning
            pixel = dataclasses.replace(pixel, rescale_type=headers[path].rescale_type)
        decoded[path] = (decode(stored, plan) if decode else stored, pixel)
    first_array, first_pixel = decoded[frames[0].path]
    if any(p.samples != 1 for _, p in decoded.values()):
        raise UnsupportedFormatError(f"colour {plan.layout.value} images are not volumes medconv converts",
                                     first_pixel.path)
    shapes = {a.shape[1:] for a, _ in decoded.values()}
    if len(shapes) != 1:
        raise UnsupportedFormatError("the files of this unit have different matrix sizes", first_pixel.path)
    dtype = np.result_type(*[a.dtype for a, _ in decoded.values()])
    stored = np.empty((len(frames),) + first_array.shape[1:], dtype=dtype)
    pixel_headers = []
    # the frames of one file share a handful of rescales: one (frozen) header each, not one per frame
    rescaled: dict[tuple[str, float | None, float | None], Any] = {}
    for index, frame in enumerate(frames):
        array, pixel = decoded[frame.path]
        stored[index] = array[frame.frame]
        if frame.slope is not None or frame.intercept is not None:
            key = (frame.path, frame.slope, frame.intercept)
            if key not in rescaled:
                rescaled[key] = dataclasses.replace(
                    pixel, slope=frame.slope if frame.slope is not None else pixel.slope,
                    intercept=frame.intercept if frame.intercept is not None else pixel.intercept)
            pixel = rescaled[key]
        pixel_headers.append(pixel)
    decoded.clear()
    return finish_stack(stored, pixel_headers)


def layout_meta(plan: UnitPlan, frames: list[list[FrameRef]]) -> dict[str, Any]:
    """The layout-specific entries of ``meta["dicom"]`` (DICOM keywords), per volume where they vary."""
    extra: dict[str, Any] = {}
    if plan.layout is Layout.MOSAIC:
        extra["NumberOfImagesInMosaic"] = len(frames[0])
    if plan.frame_group:
        extra["FrameGroup"] = plan.frame_group
    firsts = [volume[0] for volume in frames]
    if len(frames) > 1 and len({f.echo for f in firsts}) > 1 and None not in {f.echo for f in firsts}:
        extra["EchoTimes"] = [f.echo for f in firsts]
    return extra


def plan_unit(group) -> UnitPlan | list[UnitPlan]:
    """The plan(s) of one grouped stack (a :class:`..grouping.SeriesGroup`), by its layout.

    Enhanced multi-frame stacks give one plan per frame group (or per file). Raises the
    typed error of a stack that cannot be planned (discovery records it, reading raises it).
    """
    layout = Layout(group.layout)
    if layout is Layout.MOSAIC:
        from .mosaic import plan_mosaic

        return plan_mosaic(group)
    if layout is Layout.ENHANCED:
        from .enhanced import plan_enhanced

        return plan_enhanced(group)
    if layout is Layout.VENDOR_4D:
        from .vendor4d import plan_vendor_4d

        return plan_vendor_4d(group)
    if layout in (Layout.PROJECTION, Layout.CINE_2D):
        from .projection import plan_planar

        return plan_planar(group)
    from .single_frame import plan_single_frame

    return plan_single_frame(group)
