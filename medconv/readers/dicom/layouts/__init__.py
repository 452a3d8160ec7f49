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
from ..decode import mask_stored_bits
from ..pixels import (PixelStack, decode_file, direct_pixel_header, finish_stack, read_pixel_bytes,
                      read_pixel_stack)
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
        direct = _read_in_place(frames, headers)
        if direct is not None:
            return direct
    else:
        raise UnsupportedFormatError(f"{plan.layout.value} units are not assembled into volumes", plan.first.path)
    decoded: dict[str, tuple[np.ndarray, Any]] = {}
    for path in dict.fromkeys(f.path for f in frames):
        stored, pixel = decode_file(headers[path])
        decoded[path] = (decode(stored, plan) if decode else stored, _with_rescale_type(pixel, headers[path]))
    first_array, first_pixel = decoded[frames[0].path]
    if any(p.samples != 1 for _, p in decoded.values()):
        raise UnsupportedFormatError(f"colour {plan.layout.value} images are not volumes medconv converts",
                                     first_pixel.path)
    shapes = {a.shape[1:] for a, _ in decoded.values()}
    if len(shapes) != 1:
        raise UnsupportedFormatError("the files of this unit have different matrix sizes", first_pixel.path)
    dtype = np.result_type(*[a.dtype for a, _ in decoded.values()])
    stored = np.empty((len(frames),) + first_array.shape[1:], dtype=dtype)
    for index, frame in enumerate(frames):
        stored[index] = decoded[frame.path][0][frame.frame]
    pixels = {path: pixel for path, (_, pixel) in decoded.items()}
    decoded.clear()
    return finish_stack(stored, _frame_headers(frames, pixels))


def _with_rescale_type(pixel: Any, header: DicomHeader) -> Any:
    """``pixel`` with the unit of the scanned header when its own has none (RT dose: DoseUnits, found at planning)."""
    if header.rescale_type and not pixel.rescale_type:
        return dataclasses.replace(pixel, rescale_type=header.rescale_type)
    return pixel


def _frame_headers(frames: Sequence[FrameRef], pixels: dict[str, Any]) -> list[Any]:
    """One pixel header per frame: its file's, with the frame's own rescale where it has one.

    The frames of one file share a handful of rescales: one (frozen) header each, not one per frame.
    """
    pixel_headers = []
    rescaled: dict[tuple[str, float | None, float | None], Any] = {}
    for frame in frames:
        pixel = pixels[frame.path]
        if frame.slope is not None or frame.intercept is not None:
            key = (frame.path, frame.slope, frame.intercept)
            if key not in rescaled:
                rescaled[key] = dataclasses.replace(
                    pixel, slope=frame.slope if frame.slope is not None else pixel.slope,
                    intercept=frame.intercept if frame.intercept is not None else pixel.intercept)
            pixel = rescaled[key]
        pixel_headers.append(pixel)
    return pixel_headers


def _read_in_place(frames: Sequence[FrameRef], headers: dict[str, DicomHeader]) -> PixelStack | None:
    """The frames of multi-frame files read straight into the output array, or ``None`` (decode and gather).

    That is when every file's pixel bytes can be read from the file as they are
    (:func:`..pixels.direct_pixel_header`, greyscale, one matrix and stored dtype) and
    each file's frames are, in the order asked, all of its frames in file order (a
    Siemens XA series: one file per time point, its slices in position order): one
    ``readinto`` per file into its place in the output instead of a decoded copy per
    file and a copy per frame.
    """
    runs: dict[str, tuple[int, int]] = {}  # path -> (first output index, frame count)
    for index, frame in enumerate(frames):
        start, count = runs.setdefault(frame.path, (index, 0))
        if frame.frame != count or index != start + count:
            return None
        runs[frame.path] = (start, count + 1)
    pixels = {path: direct_pixel_header(headers[path]) for path in runs}
    if any(p is None or p.samples != 1 or p.frames != runs[path][1] for path, p in pixels.items()):
        return None
    if len({(p.frame_shape, p.stored_dtype) for p in pixels.values()}) != 1:
        return None
    first = pixels[frames[0].path]
    stored = np.empty((len(frames),) + first.frame_shape, dtype=first.stored_dtype)
    for path, (start, count) in runs.items():
        block = stored[start:start + count]
        read_pixel_bytes(path, headers[path].pixel_offset, block)
        mask_stored_bits(block, pixels[path])
    pixels = {path: _with_rescale_type(pixel, headers[path]) for path, pixel in pixels.items()}
    return finish_stack(stored, _frame_headers(frames, pixels))


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
