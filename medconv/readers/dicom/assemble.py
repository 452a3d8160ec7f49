"""The one assembly path: a :class:`~.plan.UnitPlan` to a Volume, whatever the layout.

Every layout (single-frame stack, mosaic, enhanced multi-frame, vendor 4D) only
turns its files into frame references at discovery (:mod:`.layouts`). Reading
is then the same four steps for all of them:

1. **order** the frames into volumes (:func:`.order.order_frames`);
2. **geometry**: sort the slices of the first volume along the normal, measure
   and check the stack, plan any tilt / uneven-spacing repair
   (:func:`stack_geometry`, built on :func:`.stack.plan_stack`, where the gap
   rule lives);
3. **decode** the frames in that order into one C-ordered ``(t*k, rows, cols)``
   buffer and rescale it (:func:`.layouts.decode_frames`, :mod:`.pixels`);
4. **meta** from the one builder (:func:`.meta.volume_meta`; the volumes' diffusion
   weightings as ``meta["diffusion"]``, :func:`.diffusion.diffusion_meta`) and the Volume
   (:func:`.stack.volume_from_stack`, which regularises when the plan says so).

:func:`stack_geometry` is also what :meth:`.reader.DicomReader.image_reference`
uses, so the grid an annotation is drawn on is the grid the image is written on.
"""

from __future__ import annotations

import numpy as np

from ...errors import GeometryError, UnsupportedFormatError
from ...options import ReadOptions
from ...volume import Volume
from .diffusion import diffusion_meta
from .meta import volume_meta
from .order import FrameOrder, order_frames
from .plan import Axis4, FrameRef, Layout, UnitPlan
from .stack import StackPlan, plan_stack, volume_from_stack

#: Frames of one unit must share ImageOrientationPatient to this (per component).
IOP_TOLERANCE = 1e-3

#: Used when a 2D image read with ``include_2d`` has no patient geometry.
IDENTITY_IOP = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def stack_geometry(plan: UnitPlan, order: FrameOrder, options: ReadOptions = ReadOptions()) -> tuple[StackPlan, list[str]]:
    """The stack plan (sort, output grid, repair) of the first volume, and the warnings geometry adds.

    Raises
    ------
    GeometryError
        No orientation or position (unless ``include_2d`` for one 2D image), orientations
        that differ between files, or whatever :func:`.stack.plan_stack` refuses.
    """
    first = plan.first
    warnings: list[str] = []
    frames = [plan.frames[i] for i in order.volumes[0]]
    iop, spacing = plan.iop, plan.pixel_spacing
    positions = np.array([f.position if f.position is not None else (np.nan,) * 3 for f in frames], dtype=np.float64)
    if iop is None or (len(frames) == 1 and frames[0].position is None):
        if not options.include_2d or len(plan.frames) > 1:
            raise GeometryError("the files carry no ImageOrientationPatient / ImagePositionPatient", first.path,
                                "this is not a cross-sectional series; include_2d converts single 2D images")
        iop = IDENTITY_IOP
        positions = np.zeros((1, 3))
        warnings.append("no patient geometry in the file: identity orientation and origin 0 assumed")
    if spacing is None:
        spacing = (1.0, 1.0)
        warnings.append("no PixelSpacing: 1 mm assumed")
    for header in plan.headers[1:] if plan.layout in (Layout.SINGLE_FRAME, Layout.VENDOR_4D) else ():
        if header.iop is None or np.max(np.abs(np.subtract(header.iop, iop))) > IOP_TOLERANCE:
            raise GeometryError("slices have different orientations (ImageOrientationPatient varies)", header.path,
                                "the series mixes stacks; discover the folder to split it")
    geometry = plan_stack(positions, iop, spacing, options, first.gantry_tilt, first.path, rows=plan.rows,
                          columns=plan.columns, slice_thickness=first.slice_thickness,
                          paths=[f.path for f in frames], unreadable_nearby=plan.unreadable_nearby)
    return geometry, warnings


def ordered_frames(plan: UnitPlan, order: FrameOrder, geometry: StackPlan) -> list[list[FrameRef]]:
    """``frames[t][k]``: every volume's frames in the stack's slice order."""
    return [[plan.frames[volume[k]] for k in geometry.order] for volume in order.volumes]


def assemble(plan: UnitPlan, options: ReadOptions = ReadOptions()) -> Volume:
    """Read the unit ``plan`` describes as one Volume (3D, or 4D along ``plan.axis4``).

    Raises
    ------
    GeometryError, UnreadableFileError, UnsupportedFormatError, MissingDependencyError
        As the message says; each names a file and what to do.
    """
    from .layouts import decode_frames, layout_meta

    if plan.layout in (Layout.PROJECTION, Layout.CINE_2D):  # 2D images: no stack, the greyscale pipeline
        from .layouts.projection import assemble_planar

        return assemble_planar(plan, options)
    order = order_frames(plan)
    geometry, warnings = stack_geometry(plan, order, options)
    frames = ordered_frames(plan, order, geometry)
    stack = decode_frames(plan, [frame for volume in frames for frame in volume])
    array = stack.array
    if array.ndim != 3:
        raise UnsupportedFormatError(f"pixel data of shape {array.shape[1:]} per slice is not greyscale",
                                     plan.first.path, "colour DICOM series are not converted")
    if order.count > 1:
        array = array.reshape((order.count, len(frames[0])) + array.shape[1:])
    units, suv = stack.units, None
    if options.pet and plan.first.modality == "PT":  # --pet suv|sul: the activity as SUV (readers/dicom/suv.py)
        from .suv import unit_suv

        suv = unit_suv([frame.path for volume in frames for frame in volume], options.pet,
                       per_frame_times=plan.layout is not Layout.ENHANCED)
        array = np.multiply(array, suv.factors.reshape(array.shape[:-2] + (1, 1)), dtype=np.float32)
        units = suv.scale.units
    paths = list(dict.fromkeys(frame.path for volume in frames for frame in volume))
    diffusion, notes = diffusion_meta([volume[0].diffusion for volume in frames])
    meta = volume_meta(plan.first, paths, units, list(plan.warnings) + warnings + list(stack.warnings) + notes,
                       layout_meta(plan, frames))
    if diffusion is not None:
        meta["diffusion"] = diffusion
    if suv is not None:
        meta["dicom"]["suv"] = suv.describe()
        if "window" in meta:  # the file's window is in the stored units: scaled when one factor serves all
            factor = float(suv.factors.flat[0])
            if np.all(suv.factors == factor):
                meta["window"] = [meta["window"][0] * factor, meta["window"][1] * factor]
            else:
                del meta["window"]
    if plan.axis4 is not None and order.count > 1:
        meta["axis4"] = plan.axis4.value
        if plan.axis4 is Axis4.TIME and plan.first.repetition_time:
            meta["repetition_time"] = plan.first.repetition_time / 1000.0  # DICOM ms -> s (NIfTI pixdim[4])
    volume = volume_from_stack(np.ascontiguousarray(array), geometry, meta, options.kind or "intensity", options)
    return volume if suv is None else volume.replace(history=(suv.step,) + volume.history)
