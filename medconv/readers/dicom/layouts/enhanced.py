"""Enhanced (and classic) multi-frame DICOM objects to 3D or 4D volumes.

An enhanced multi-frame object (Enhanced MR/CT/PET, Legacy Converted) keeps one
image per *frame*, each described by functional groups: the per-frame group
(PerFrameFunctionalGroupsSequence) or, when the value is the same for all
frames, the shared group (SharedFunctionalGroupsSequence). From them every
frame gets its ImagePositionPatient (PlanePositionSequence), orientation
(PlaneOrientationSequence), pixel spacing (PixelMeasuresSequence) and rescale
(PixelValueTransformationSequence, applied per frame).

Frames are split into **frame groups** that are different images and never go
into one array: a different orientation, frame type (magnitude, phase, field
map ...) or complex component, and the isotropic (trace) frames Philips adds to
a DWI object (DiffusionDirectionality ``ISOTROPIC``; dcm2niix writes them apart
too, as ``_ADC``). :func:`frame_groups` lists them; discovery can
make one Source per group (``source.info["frame_group"]``). Within a group, the
frames at one slice position are repeats (time points, echoes, diffusion
directions) and become the 4th axis, ordered by TemporalPositionIndex, echo
time, then file and frame order (frames of different diffusion weightings,
MRDiffusionSequence, make it a "volume" axis); every position must hold the same number of
repeats, else the object is refused rather than stacked wrongly.

Several files of one series (Siemens XA writes one file per time point) are
read together: their frames are pooled before grouping.

Classic multi-frame objects without functional groups are volumes only when
every frame's position is stated: RT dose (GridFrameOffsetVector). Others (cine
ultrasound, angiography runs, NM tomography) are not converted
(:class:`NotAVolumeError`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from medconv.errors import GeometryError, MedconvError, NotAVolumeError, UnsupportedFormatError

from ..decode import read_datasets
from ..diffusion import Diffusion, diffusion_from_functional_group, is_diffusion_series
from ..functional_groups import ItemMemo, read_functional_groups
from ..order import POSITION_TOLERANCE_MM, order_frames
from ..plan import Axis4, FrameRef, Layout, PlanFailure, Split, SplitKind, UnitPlan


@dataclass(frozen=True)
class FrameGroupKey:
    """What makes frames different images (never one array): frame type, complex component, orientation,
    and whether they are an isotropic (trace) diffusion image, which dcm2niix also writes apart (``_ADC``)."""

    frame_type: str = ""
    component: str = ""
    orientation: str = ""
    isotropic: bool = False

    @property
    def image(self) -> "FrameGroupKey":
        """The key without the isotropic flag (the image a trace volume was derived from)."""
        return FrameGroupKey(self.frame_type, self.component, self.orientation)


def _isotropic(per_frame: Any, shared: Any) -> bool:
    directionality = _lookup(per_frame, shared, "MRDiffusionSequence", "DiffusionDirectionality")
    return str(directionality or "").upper() == "ISOTROPIC"


@dataclass
class Frame:
    """One frame of a multi-frame object, with what decides where it goes."""

    file_index: int
    frame_index: int
    position: np.ndarray
    iop: tuple[float, ...]
    pixel_spacing: tuple[float, float]
    slope: float
    intercept: float
    rescale_type: str
    group: "FrameGroupKey"
    temporal: float
    echo: float
    order: tuple
    diffusion: Diffusion | None = None


def _item(functional_group: Any, keyword: str) -> Any:
    if functional_group is None:
        return None
    sequence = functional_group.get(keyword)
    if sequence is None or len(sequence) == 0:
        return None
    return sequence[0]


def _lookup(per_frame: Any, shared: Any, sequence: str, attribute: str) -> Any:
    """``attribute`` of the first item of ``sequence`` in the per-frame group, else in the shared group.

    Called about 16 times per frame (1,200 frames in a 20-file Siemens XA series), hence inline.
    """
    for group in (per_frame, shared):
        if group is None:
            continue
        items = group.get(sequence)
        if items:
            value = items[0].get(attribute)
            if value is not None and value != "":
                return value
    return None


def _float(value: Any, default: float = math.nan) -> float:
    try:
        if value is None or value == "":
            return default
        return float(value)
    except (TypeError, ValueError):
        return default


#: The per-frame sequences that decide a frame's image (orientation, spacing, rescale, type, echo,
#: diffusion): frames whose first items of these are the same objects share these values (see
#: :func:`_image_facts`). Position and FrameContent (time, acquisition, dimension index) vary per frame.
_IMAGE_SEQUENCES = ("PlaneOrientationSequence", "PixelMeasuresSequence", "PixelValueTransformationSequence",
                    "MRImageFrameTypeSequence", "CTImageFrameTypeSequence", "PETFrameTypeSequence",
                    "MREchoSequence", "MRDiffusionSequence")


@dataclass(frozen=True)
class _ImageFacts:
    """What a frame's image sequences say (one per distinct combination of items, not one per frame)."""

    iop: tuple[float, ...] | None
    pixel_spacing: tuple[float, float] | None
    slope: float
    intercept: float
    rescale_type: str
    group: FrameGroupKey
    echo: float
    diffusion: Diffusion | None


def _image_facts(group: Any, shared: Any, ds: Any) -> _ImageFacts:
    iop = _lookup(group, shared, "PlaneOrientationSequence", "ImageOrientationPatient")
    spacing = _lookup(group, shared, "PixelMeasuresSequence", "PixelSpacing")
    slope = _float(_lookup(group, shared, "PixelValueTransformationSequence", "RescaleSlope"),
                   _float(ds.get("RescaleSlope"), 1.0))
    intercept = _float(_lookup(group, shared, "PixelValueTransformationSequence", "RescaleIntercept"),
                       _float(ds.get("RescaleIntercept"), 0.0))
    rescale_type = str(_lookup(group, shared, "PixelValueTransformationSequence", "RescaleType") or "")
    frame_type = _lookup(group, shared, "MRImageFrameTypeSequence", "FrameType") or _lookup(
        group, shared, "CTImageFrameTypeSequence", "FrameType") or _lookup(
        group, shared, "PETFrameTypeSequence", "FrameType")
    component = _lookup(group, shared, "MRImageFrameTypeSequence", "ComplexImageComponent") or ""
    frame_type_text = "\\".join(str(v) for v in (frame_type or ())[2:])
    iop_key = ",".join(f"{float(v):.4f}" for v in iop) if iop is not None else ""
    return _ImageFacts(
        iop=tuple(float(v) for v in iop) if iop is not None else None,
        pixel_spacing=(float(spacing[0]), float(spacing[1])) if spacing is not None else None,
        slope=slope if slope != 0 else 1.0, intercept=intercept, rescale_type=rescale_type,
        group=FrameGroupKey(frame_type_text, str(component), iop_key, _isotropic(group, shared)),
        echo=_float(_lookup(group, shared, "MREchoSequence", "EffectiveEchoTime")),
        diffusion=diffusion_from_functional_group(group) or diffusion_from_functional_group(shared))


def _first_item_ids(group: Any) -> tuple[int | None, ...]:
    """The identities of the first items of the per-frame group's image sequences (``None``: absent).

    The raw walker gives byte-identical items as one object, so most frames of a file
    share them; a pydicom Dataset's items are all distinct (facts then computed per frame).
    """
    ids = []
    for keyword in _IMAGE_SEQUENCES:
        items = group.get(keyword) if group is not None else None
        ids.append(id(items[0]) if items else None)
    return tuple(ids)


def _enhanced_frames(ds: Any, file_index: int, path: str) -> list[Frame]:
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    shared_seq = ds.get("SharedFunctionalGroupsSequence")
    shared = shared_seq[0] if shared_seq else None
    count = int(_float(ds.get("NumberOfFrames"), 1))
    if per_frame is None or len(per_frame) != count:
        raise UnsupportedFormatError(
            f"PerFrameFunctionalGroupsSequence has {0 if per_frame is None else len(per_frame)} items "
            f"for {count} frames", path=path,
        )
    frames = []
    known: dict[tuple[int | None, ...], _ImageFacts] = {}  # the items are alive (held by ds): ids stay theirs
    for index, group in enumerate(per_frame):
        position = _lookup(group, shared, "PlanePositionSequence", "ImagePositionPatient")
        key = _first_item_ids(group)
        facts = known.get(key)
        if facts is None and position is not None:
            facts = known[key] = _image_facts(group, shared, ds)
        if position is None or facts.iop is None or facts.pixel_spacing is None:
            raise GeometryError(f"frame {index + 1} has no position, orientation or pixel spacing", path=path,
                                hint="this multi-frame object is not a volume medconv can place in space")
        temporal = _float(_lookup(group, shared, "FrameContentSequence", "TemporalPositionIndex"))
        acquisition = _float(_lookup(group, shared, "FrameContentSequence", "FrameAcquisitionNumber"))
        dimension = _lookup(group, shared, "FrameContentSequence", "DimensionIndexValues")
        if dimension is None:
            dimension = ()
        elif isinstance(dimension, (int, float)):
            dimension = (int(dimension),)
        else:
            dimension = tuple(int(v) for v in dimension)
        frames.append(Frame(
            file_index=file_index,
            frame_index=index,
            position=np.array([float(v) for v in position], dtype=np.float64),
            iop=facts.iop,
            pixel_spacing=facts.pixel_spacing,
            slope=facts.slope,
            intercept=facts.intercept,
            rescale_type=facts.rescale_type,
            group=facts.group,
            temporal=temporal,
            echo=facts.echo,
            order=(_nan_last(temporal), _nan_last(facts.echo), _nan_last(acquisition), file_index, dimension, index),
            diffusion=facts.diffusion,
        ))
    return frames


def _nan_last(value: float) -> float:
    return math.inf if math.isnan(value) else value


def _classic_frames(ds: Any, file_index: int, path: str) -> list[Frame]:
    """Frames of a classic multi-frame object with known positions (RT dose: GridFrameOffsetVector).

    NM tomography (positions implied by DetectorInformationSequence and the slice
    spacing, direction not stated) is refused: no sample to verify it against.
    """
    count = int(_float(ds.get("NumberOfFrames"), 1))
    iop = ds.get("ImageOrientationPatient")
    ipp = ds.get("ImagePositionPatient")
    spacing = ds.get("PixelSpacing")
    offsets = None
    if ds.get("GridFrameOffsetVector") is not None and ipp is not None and iop is not None:
        offsets = [float(v) for v in ds.GridFrameOffsetVector]
    if offsets is None or spacing is None or len(offsets) != count:
        raise NotAVolumeError(
            f"a {count}-frame image without per-frame geometry (not an enhanced multi-frame or RT dose object)",
            path=path, hint="frames without positions are not a volume (NM tomography: convert with dcm2niix)",
        )
    iop = tuple(float(v) for v in iop)
    normal = np.cross(iop[:3], iop[3:])
    origin = np.array([float(v) for v in ipp], dtype=np.float64)
    slope = _float(ds.get("DoseGridScaling"), _float(ds.get("RescaleSlope"), 1.0))
    intercept = _float(ds.get("RescaleIntercept"), 0.0)
    return [
        Frame(file_index=file_index, frame_index=k, position=origin + offsets[k] * normal, iop=iop,
              pixel_spacing=(float(spacing[0]), float(spacing[1])), slope=slope or 1.0, intercept=intercept,
              rescale_type=str(ds.get("DoseUnits", "") or ""), group=FrameGroupKey(), temporal=math.nan,
              echo=math.nan,
              order=(file_index, k))
        for k in range(count)
    ]


def _frames_of(datasets: Sequence[Any], paths: Sequence[str]) -> list[Frame]:
    frames: list[Frame] = []
    for file_index, (ds, path) in enumerate(zip(datasets, paths)):
        if ds.get("PerFrameFunctionalGroupsSequence") is not None:
            frames.extend(_enhanced_frames(ds, file_index, path))
        else:
            frames.extend(_classic_frames(ds, file_index, path))
    return frames


def _group_labels(frames: Sequence[Frame]) -> dict["FrameGroupKey", str]:
    """Readable, unique labels of the frame groups, in first-frame order.

    A label is the frame type and complex component (``"M-MAGNITUDE"``,
    ``"FIELD_MAP-REAL"``), with the orientation appended only when several
    orientations exist; a single group is labelled ``""``. An isotropic (trace)
    diffusion group gets its image's label with ``isotropic`` appended (a DWI
    object's trace frames: ``isotropic``, the DWI itself keeps ``""``).
    """
    keys = list(dict.fromkeys(frame.group for frame in frames))
    images = list(dict.fromkeys(key.image for key in keys))
    labels: dict[FrameGroupKey, str] = {}
    if len(images) == 1:
        labels[images[0]] = ""
    else:
        several_iops = len({image.orientation for image in images}) > 1
        for index, image in enumerate(images):
            words = [w for w in image.frame_type.split("\\") + [image.component] if w and w not in ("NONE",)]
            if several_iops:
                words.append(f"orientation{index + 1}")
            label = "-".join(dict.fromkeys(words)) or f"group{index + 1}"
            if label in labels.values():
                label = f"{label}-{index + 1}"
            labels[image] = label
    return {key: "-".join(part for part in (labels[key.image], "isotropic" if key.isotropic else "") if part)
            for key in keys}


def frame_groups(paths: Sequence[str]) -> list[str]:
    """The labels of the frame groups (separate images) of multi-frame files, in first-frame order
    (a single group is labelled ``""``)."""
    frames = _frames_of(read_datasets(paths), paths)
    return list(_group_labels(frames).values())


def _none_if_nan(value: float) -> float | None:
    return None if math.isnan(value) else value


def _timing(ds: Any) -> dict[str, float]:
    """RepetitionTime and FlipAngle of an enhanced MR object (MRTimingAndRelatedParametersSequence)."""
    found: dict[str, float] = {}
    for container in (ds.get("SharedFunctionalGroupsSequence"), ds.get("PerFrameFunctionalGroupsSequence")):
        if not container:
            continue
        timing = _item(container[0], "MRTimingAndRelatedParametersSequence")
        for keyword in ("RepetitionTime", "FlipAngle"):
            value = _float(timing.get(keyword)) if timing is not None else math.nan
            if keyword not in found and not math.isnan(value):
                found[keyword] = value
    return found


def _described(header, ds: Any, first: Frame):
    """The scanned header of the unit's first file with the facts enhanced objects keep in functional groups."""
    timing = _timing(ds)
    changes: dict[str, Any] = {}
    if header.echo_time is None and not math.isnan(first.echo):
        changes["echo_time"] = first.echo
    if header.repetition_time is None and "RepetitionTime" in timing:
        changes["repetition_time"] = timing["RepetitionTime"]
    if header.flip_angle is None and "FlipAngle" in timing:
        changes["flip_angle"] = timing["FlipAngle"]
    if first.rescale_type and not header.rescale_type:
        changes["rescale_type"] = first.rescale_type.upper()
    return dataclasses.replace(header, **changes) if changes else header


def _plans_of(headers: Sequence, datasets: Sequence[Any], group, per_file: bool) -> list[UnitPlan]:
    """One plan per frame group of files read together (checked to form complete volumes)."""
    paths = [h.path for h in headers]
    frames = _frames_of(datasets, paths)
    labels = _group_labels(frames)
    plans = []
    for key, label in labels.items():
        selected = [frame for frame in frames if frame.group == key]
        first = selected[0]
        if not np.allclose([frame.iop for frame in selected], first.iop, atol=1e-4):
            raise GeometryError("frames of one group have different orientations", path=paths[0])
        normal = np.cross(first.iop[:3], first.iop[3:])
        distinct = len({round(float(np.dot(frame.position, normal)) / POSITION_TOLERANCE_MM) for frame in selected})
        axis4 = None
        if distinct < len(selected):
            echoes = {frame.echo for frame in selected if not math.isnan(frame.echo)}
            temporals = {frame.temporal for frame in selected if not math.isnan(frame.temporal)}
            axis4 = Axis4.ECHO if len(echoes) > 1 and len(temporals) <= 1 else \
                Axis4.TIME if len(temporals) > 1 else Axis4.VOLUME
        refs = tuple(FrameRef(path=paths[f.file_index], frame=f.frame_index, position=tuple(float(v) for v in f.position),
                              sop_instance_uid=headers[f.file_index].sop_instance_uid,
                              echo=_none_if_nan(f.echo), temporal=_none_if_nan(f.temporal),
                              acquisition=f.order[2:] if len(f.order) > 2 else f.order,
                              slope=f.slope, intercept=f.intercept, diffusion=f.diffusion) for f in selected)
        if axis4 is not None and is_diffusion_series(refs):
            axis4 = Axis4.VOLUME
        splits = list(group.split) + ([Split(SplitKind.MULTIFRAME_FILE)] if per_file else [])
        if label:
            splits.append(Split(SplitKind.FRAME_GROUP, label))
        described = (_described(headers[first.file_index], datasets[first.file_index], first),)
        others = tuple(h for i, h in enumerate(headers) if i != first.file_index)
        plan = UnitPlan(layout=Layout.ENHANCED, frames=refs, headers=described + others, iop=first.iop,
                        pixel_spacing=first.pixel_spacing, rows=int(datasets[0].Rows), columns=int(datasets[0].Columns),
                        axis4=axis4, splits=tuple(splits), label=label, frame_group=label)
        order_frames(plan)  # complete volumes at shared positions, or GeometryError
        plans.append(plan)
    return plans


def _functional_groups(headers) -> list[Any]:
    """Each file's top-level image attributes and functional groups, parsed once: by the raw walker
    (:mod:`..functional_groups`, 10x faster than pydicom on Siemens XA files), else by pydicom."""
    memo = ItemMemo()  # the items one file repeats from another (positions, orientation ...) are parsed once
    datasets: list[Any] = [read_functional_groups(h.path, h.pixel_offset, memo) for h in headers]
    missing = [i for i, ds in enumerate(datasets) if ds is None or ds.get("PerFrameFunctionalGroupsSequence") is None]
    for index, ds in zip(missing, read_datasets([headers[i].path for i in missing])):
        datasets[index] = ds  # classic multi-frame (RT dose), big endian, deflate, a defect: pydicom
    return datasets


def plan_enhanced(group) -> list[UnitPlan | PlanFailure]:
    """The plans of the multi-frame files of one stack: one per frame group.

    Each file is parsed once, here (functional groups, headers only); reading
    decodes the frames without parsing again. Pooled files (Siemens XA writes
    one file per time point) stay one unit when, in every frame group, their
    frames form complete volumes at shared positions; otherwise each file is a
    unit of its own. What cannot be planned is a :class:`PlanFailure`.
    """
    headers = tuple(group.headers)
    try:
        datasets = _functional_groups(headers)
    except MedconvError as exc:
        return [PlanFailure(headers, exc)]
    try:
        return list(_plans_of(headers, datasets, group, per_file=False))
    except Exception as exc:  # a malformed functional group is a bad file: reading says what is wrong
        if len(headers) == 1:
            return [PlanFailure(headers, exc)]
    outcomes: list[UnitPlan | PlanFailure] = []
    for header, ds in zip(headers, datasets):  # the pool does not form volumes: each file on its own
        try:
            outcomes.extend(_plans_of([header], [ds], group, per_file=True))
        except Exception as exc:
            outcomes.append(PlanFailure((header,), exc))
    return outcomes
