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
map ...) or complex component. :func:`frame_groups` lists them; discovery can
make one Source per group (``source.info["frame_group"]``). Within a group, the
frames at one slice position are repeats (time points, echoes, diffusion
directions) and become the 4th axis, ordered by TemporalPositionIndex, echo
time, then file and frame order; every position must hold the same number of
repeats, else the object is refused rather than stacked wrongly.

Several files of one series (Siemens XA writes one file per time point) are
read together: their frames are pooled before grouping.

Classic multi-frame objects without functional groups are volumes only when
every frame's position is stated: RT dose (GridFrameOffsetVector). Others (cine
ultrasound, angiography runs, NM tomography) are not converted
(:class:`NotAVolumeError`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from medconv.errors import GeometryError, NotAVolumeError, UnsupportedFormatError
from medconv.options import ReadOptions
from medconv.source import Source
from medconv.volume import Volume

from .decode import PixelHeader, decode_into, pixel_header, read_datasets
from .pixels import invert_monochrome1, rescale_frames
from .series_meta import meta_from_dataset


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
    group: str
    temporal: float
    echo: float
    order: tuple


def _item(functional_group: Any, keyword: str) -> Any:
    if functional_group is None:
        return None
    sequence = functional_group.get(keyword)
    if sequence is None or len(sequence) == 0:
        return None
    return sequence[0]


def _lookup(per_frame: Any, shared: Any, sequence: str, attribute: str) -> Any:
    for group in (per_frame, shared):
        item = _item(group, sequence)
        if item is not None and item.get(attribute) not in (None, ""):
            return item.get(attribute)
    return None


def _float(value: Any, default: float = math.nan) -> float:
    try:
        if value is None or value == "":
            return default
        return float(value)
    except (TypeError, ValueError):
        return default


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
    for index, group in enumerate(per_frame):
        position = _lookup(group, shared, "PlanePositionSequence", "ImagePositionPatient")
        iop = _lookup(group, shared, "PlaneOrientationSequence", "ImageOrientationPatient")
        spacing = _lookup(group, shared, "PixelMeasuresSequence", "PixelSpacing")
        if position is None or iop is None or spacing is None:
            raise GeometryError(f"frame {index + 1} has no position, orientation or pixel spacing", path=path,
                                hint="this multi-frame object is not a volume medconv can place in space")
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
        iop_key = ",".join(f"{float(v):.4f}" for v in iop)
        temporal = _float(_lookup(group, shared, "FrameContentSequence", "TemporalPositionIndex"))
        echo = _float(_lookup(group, shared, "MREchoSequence", "EffectiveEchoTime"))
        acquisition = _float(_lookup(group, shared, "FrameContentSequence", "FrameAcquisitionNumber"))
        dimension = _lookup(group, shared, "FrameContentSequence", "DimensionIndexValues")
        if dimension is None:
            dimension = ()
        elif isinstance(dimension, (int, float)):
            dimension = (int(dimension),)
        else:
            dimension = tuple(int(v) for v in dimension)
        group_key = "|".join((frame_type_text, str(component), iop_key))
        frames.append(Frame(
            file_index=file_index,
            frame_index=index,
            position=np.array([float(v) for v in position], dtype=np.float64),
            iop=tuple(float(v) for v in iop),
            pixel_spacing=(float(spacing[0]), float(spacing[1])),
            slope=slope if slope != 0 else 1.0,
            intercept=intercept,
            rescale_type=rescale_type,
            group=group_key,
            temporal=temporal,
            echo=echo,
            order=(_nan_last(temporal), _nan_last(echo), _nan_last(acquisition), file_index, dimension, index),
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
              rescale_type=str(ds.get("DoseUnits", "") or ""), group="", temporal=math.nan, echo=math.nan,
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


def _group_labels(frames: Sequence[Frame]) -> dict[str, str]:
    """Readable, unique labels of the frame groups, in first-frame order.

    A label is the frame type and complex component (``"M-MAGNITUDE"``,
    ``"FIELD_MAP-REAL"``), with the orientation appended only when several
    orientations exist; a single group is labelled ``""``.
    """
    keys = list(dict.fromkeys(frame.group for frame in frames))
    if len(keys) == 1:
        return {keys[0]: ""}
    parts = [key.split("|") for key in keys]
    several_iops = len({p[2] for p in parts}) > 1
    labels = {}
    for index, (key, (frame_type, component, iop)) in enumerate(zip(keys, parts)):
        words = [w for w in frame_type.split("\\") + [component] if w and w not in ("NONE",)]
        if several_iops:
            words.append(f"orientation{index + 1}")
        label = "-".join(dict.fromkeys(words)) or f"group{index + 1}"
        if label in labels.values():
            label = f"{label}-{index + 1}"
        labels[key] = label
    return labels


def frame_groups(paths: Sequence[str]) -> list[str]:
    """The labels of the frame groups (separate images) of multi-frame files, in first-frame order.

    Discovery can make one Source per group, with ``info["frame_group"]`` set to
    the label; a single group is labelled ``""``.
    """
    frames = _frames_of(read_datasets(paths), paths)
    return list(_group_labels(frames).values())


def _split_repeats(frames: list[Frame], normal: np.ndarray, path: str) -> list[list[Frame]]:
    """Frames of one group as volumes: ``volumes[t][k]``, positions in input order within each volume."""
    distance = np.array([float(np.dot(frame.position, normal)) for frame in frames])
    order = np.argsort(distance, kind="stable")
    positions: list[list[Frame]] = []
    last = None
    for index in order:
        if last is None or abs(distance[index] - last) > 0.01:
            positions.append([])
            last = distance[index]
        positions[-1].append(frames[index])
    repeats = {len(p) for p in positions}
    if len(repeats) != 1:
        raise GeometryError(
            f"slice positions hold different numbers of frames ({sorted(repeats)}): the frames do not form "
            "complete volumes", path=path, hint="convert this object with dcm2niix",
        )
    count = repeats.pop()
    for at_position in positions:
        at_position.sort(key=lambda frame: frame.order)
    return [[at_position[t] for at_position in positions] for t in range(count)]


def read_multiframe(source: Source, options: ReadOptions = ReadOptions()) -> Volume:
    """Read the multi-frame file(s) of ``source`` into a 3D volume, or 4D when positions repeat.

    ``source.info["frame_group"]`` (from :func:`frame_groups`) selects one frame
    group; without it the first group is read and the others are named in a warning.

    Raises
    ------
    GeometryError
        Frames without position/orientation, incomplete volumes, or a stack
        refused by the tilt/spacing policy.
    NotAVolumeError
        A classic multi-frame image without frame positions.
    UnreadableFileError
        A file cannot be parsed or decoded.
    """
    from .stack import plan_stack, volume_from_stack

    paths = list(source.paths)
    datasets = read_datasets(paths)
    frames = _frames_of(datasets, paths)
    labels = _group_labels(frames)
    groups = list(labels.values())
    warnings: list[str] = []
    wanted = source.info.get("frame_group")
    if wanted is not None:
        if wanted not in groups:
            raise UnsupportedFormatError(f"no frame group {wanted!r} (found {groups})", path=paths[0])
        group = wanted
    else:
        group = groups[0]
        if len(groups) > 1:
            warnings.append(
                f"{len(groups)} frame groups in this object; read {group!r}, not converted: "
                + ", ".join(repr(g) for g in groups[1:])
            )
    selected = [frame for frame in frames if labels[frame.group] == group]
    first = selected[0]
    iop = first.iop
    if any(not np.allclose(frame.iop, iop, atol=1e-4) for frame in selected):
        raise GeometryError("frames of one group have different orientations", path=paths[0])
    normal = np.cross(iop[:3], iop[3:])
    volumes = _split_repeats(selected, normal, paths[0])
    base = volumes[0]
    plan = plan_stack(np.stack([frame.position for frame in base]), iop, first.pixel_spacing, options,
                      path=paths[0], rows=int(datasets[0].Rows), columns=int(datasets[0].Columns))
    reference = np.stack([base[k].position for k in plan.order])
    for volume in volumes[1:]:
        positions = np.stack([volume[k].position for k in plan.order])
        if not np.allclose(positions, reference, atol=0.01):
            raise GeometryError("repeated volumes of a multi-frame object are not at the same positions",
                                path=paths[0], hint="convert this object with dcm2niix")
    ordered = [[volume[k] for k in plan.order] for volume in volumes]
    array, units, pixel_warnings = _decode_selected(datasets, paths, ordered)
    warnings.extend(pixel_warnings)
    if len(ordered) == 1:
        array = array[0]
    meta = meta_from_dataset(datasets[0], paths, units, warnings)
    if len(ordered) > 1:
        echoes = {frame[0].echo for frame in ordered}
        temporals = {frame[0].temporal for frame in ordered}
        meta["axis4"] = "echo" if len(echoes) > 1 and len(temporals) <= 1 else "time" if len(temporals) > 1 else "volume"
    if group:
        meta.setdefault("dicom", {})["FrameGroup"] = group
    return volume_from_stack(array, plan, meta, options.kind or "intensity", options)


def _decode_selected(datasets: Sequence[Any], paths: Sequence[str],
                     ordered: list[list[Frame]]) -> tuple[np.ndarray, str | None, list[str]]:
    """Decode the files and gather the selected frames into ``(t, k, rows, cols)``, rescaled per frame."""
    headers: list[PixelHeader] = [pixel_header(ds, path) for ds, path in zip(datasets, paths)]
    first = headers[0]
    if any(h.samples != 1 for h in headers):
        raise UnsupportedFormatError("colour multi-frame images are not volumes medconv converts", path=paths[0])
    if len({(h.rows, h.columns) for h in headers}) != 1:
        raise UnsupportedFormatError("multi-frame files of different matrix sizes", path=paths[0])
    dtypes = {h.stored_dtype for h in headers}
    stored_dtype = dtypes.pop() if len(dtypes) == 1 else np.dtype(np.int32)
    needed = {frame.file_index for volume in ordered for frame in volume}
    decoded: dict[int, np.ndarray] = {}
    for file_index in sorted(needed):
        header = headers[file_index]
        buffer = np.empty((header.frames, header.rows, header.columns), dtype=header.stored_dtype)
        decode_into(paths[file_index], header, buffer)
        if header.photometric == "MONOCHROME1":
            invert_monochrome1(buffer, header)
        decoded[file_index] = buffer
    count_t, count_k = len(ordered), len(ordered[0])
    stored = np.empty((count_t * count_k, first.rows, first.columns), dtype=stored_dtype)
    slopes, intercepts = [], []
    for t, volume in enumerate(ordered):
        for k, frame in enumerate(volume):
            stored[t * count_k + k] = decoded[frame.file_index][frame.frame_index]
            slopes.append(frame.slope)
            intercepts.append(frame.intercept)
    decoded.clear()
    warnings = []
    if len(set(zip(slopes, intercepts))) > 1:
        warnings.append("rescale slope/intercept vary between frames; applied per frame")
    if any(h.photometric == "MONOCHROME1" for h in headers):
        warnings.append("MONOCHROME1 pixel data inverted within the stored range so that higher values are brighter")
    array = rescale_frames(stored, slopes, intercepts).reshape(count_t, count_k, first.rows, first.columns)
    units = None
    if first.modality == "CT":
        units = "HU"
    elif first.modality == "RTDOSE" and ordered[0][0].rescale_type:
        units = ordered[0][0].rescale_type  # DoseUnits: GY or RELATIVE
    return np.ascontiguousarray(array), units, warnings
