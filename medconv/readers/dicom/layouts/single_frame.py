"""Single-frame stacks (one slice per file): frame references straight from the scanned headers.

No file is opened: every fact a frame needs (position, SOP instance, time
index, acquisition order, diffusion weighting) is in the header scan. A 4D stack
(grouping found a temporal index, trigger time or acquisition number holding the
same positions, ``group.time_attribute``) gets that value as each frame's
temporal key; its 4th axis is "volume" rather than time when its volumes carry
different diffusion weightings (Siemens classic DWI numbers each volume's
acquisition).
"""

from __future__ import annotations

from ..diffusion import is_diffusion_series
from ..headers import DicomHeader
from ..order import acquisition_key
from ..plan import Axis4, FrameRef, Layout, UnitPlan


def frame_of(header: DicomHeader, temporal: float | None = None, **keys) -> FrameRef:
    """The frame reference of a single-frame file (``keys`` set or override FrameRef fields)."""
    order = acquisition_key(header.instance_number, header.acquisition_number, header.trigger_time,
                            header.acquisition_time)
    fields = dict(path=header.path, frame=0, position=header.ipp, sop_instance_uid=header.sop_instance_uid,
                  temporal=temporal, diffusion=header.diffusion, acquisition=order)
    fields.update(keys)
    return FrameRef(**fields)


def plan_single_frame(group) -> UnitPlan:
    """The plan of a grouped single-frame stack (:class:`..grouping.SeriesGroup`)."""
    headers = tuple(group.headers)
    first = headers[0]
    attribute = getattr(group, "time_attribute", None)
    axis4 = Axis4(group.axis4) if group.axis4 else None
    frames = tuple(frame_of(h, getattr(h, attribute) if axis4 and attribute else None) for h in headers)
    if axis4 is Axis4.TIME and is_diffusion_series(frames):
        axis4 = Axis4.VOLUME
    return UnitPlan(layout=Layout.SINGLE_FRAME, frames=frames, headers=headers, iop=first.iop,
                    pixel_spacing=first.pixel_spacing, rows=first.rows, columns=first.columns, axis4=axis4,
                    splits=tuple(group.split), label=group.frame_group)
