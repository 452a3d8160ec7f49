"""DICOM SEG -> label volumes on the referenced image's grid.

Frames are decoded by highdicom (bit-packed BINARY, FRACTIONAL, LABELMAP, any
transfer syntax) and placed by their own PlanePositionSequence: a frame goes to
the grid slice nearest its plane (the rule of :mod:`.planes`: within half a slice
step), and its pixels onto that slice by the frame's ImageOrientationPatient and
PixelSpacing. When the frame's pixel grid is the image's (the usual case), pixels
are copied; otherwise each grid voxel takes the nearest frame pixel, with a
warning. Grid slices no frame reaches are background; frames that reach no
slice are reported.

* **BINARY**: one mask per segment (frames of one segment are OR-ed).
* **FRACTIONAL**: fraction = stored / MaximumFractionalValue; a voxel belongs to
  the segment when fraction >= the threshold (default 0.5), or the fractions are
  kept as float32 (``fractional="keep"``, split / stack only).
* **LABELMAP**: each frame holds segment numbers; segment 0 (and any value that
  names no segment, e.g. a PixelPaddingValue) is background.

Segments are kept apart (one mask each), so overlapping segments survive in
``split`` and ``stack``; a ``map`` resolves overlaps by the rule of
:mod:`.labelmap`. Label values are consecutive over the segments in
SegmentNumber order; the table keeps each SegmentNumber.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ...errors import GeometryError, InvalidAnnotationError, UnreadableFileError, UnsupportedFormatError
from ...image_reference import ImageReference
from ..dicom.stack import orientation_direction
from .dicom_io import coded_concepts, read_dataset, sequence, text
from .headers import seg_label
from .labelmap import RoiMask, label_outputs, object_suffix
from .model import AnnotationKind, AnnotationResult, LabelEntry, RoiReport, RoiStatus
from .options import AnnotationOptions, FractionalHandling

#: A frame whose pixel axes differ from the grid's by less than this (in voxels per pixel) is on the grid.
PIXEL_GRID_TOLERANCE = 1e-3

#: A frame plane farther than this (in slice steps) from its slice centre adds a warning.
OFF_CENTRE_TOLERANCE = 0.05


@dataclass(frozen=True)
class SegFrame:
    """One SEG frame's geometry: 1-based number, segment (0 for LABELMAP), position, axes, spacing."""

    number: int
    segment: int
    position: np.ndarray
    row_direction: np.ndarray  #: direction of increasing column index
    column_direction: np.ndarray  #: direction of increasing row index
    spacing: tuple[float, float]  #: (between rows, between columns) in mm
    source_sop_uid: str = ""


def functional_group(group, shared, keyword: str):
    """A functional-group macro from the per-frame group, else from the shared one."""
    for source in (group, shared):
        items = sequence(source, keyword)
        if items:
            return items[0]
    return None


def frames_of(dataset, path: str) -> list[SegFrame]:
    """Every frame's geometry from the functional groups (per-frame first, shared second)."""
    shared = (sequence(dataset, "SharedFunctionalGroupsSequence") or [None])[0]
    per_frame = sequence(dataset, "PerFrameFunctionalGroupsSequence")
    frames = []
    for index, group in enumerate(per_frame):
        plane = functional_group(group, shared, "PlanePositionSequence")
        orientation = functional_group(group, shared, "PlaneOrientationSequence")
        measures = functional_group(group, shared, "PixelMeasuresSequence")
        if plane is None or orientation is None or measures is None:
            raise InvalidAnnotationError(f"SEG frame {index + 1} has no plane position, orientation or pixel spacing",
                                         path=path, hint="only SEG objects in the patient frame can be placed")
        try:
            position = np.asarray([float(v) for v in plane.ImagePositionPatient], dtype=np.float64)
            iop = np.asarray([float(v) for v in orientation.ImageOrientationPatient], dtype=np.float64)
            spacing = tuple(float(v) for v in measures.PixelSpacing)
        except (AttributeError, TypeError, ValueError):
            raise InvalidAnnotationError(f"SEG frame {index + 1} has unreadable geometry values", path=path) from None
        if position.shape != (3,) or iop.shape != (6,) or len(spacing) != 2 or not (
                np.all(np.isfinite(position)) and np.all(np.isfinite(iop)) and all(s > 0 for s in spacing)):
            raise InvalidAnnotationError(f"SEG frame {index + 1} has NaN, missing or non-positive geometry values",
                                         path=path)
        try:  # the image stacks' one orientation rule: rounding removed, a corrupt orientation refused
            direction = orientation_direction(iop, path)
        except GeometryError as exc:
            raise InvalidAnnotationError(f"SEG frame {index + 1}: {exc.message}", path=path, hint=exc.hint) from None
        identification = functional_group(group, shared, "SegmentIdentificationSequence")
        segment = int(identification.ReferencedSegmentNumber) if identification is not None else 0
        derivation = sequence(group, "DerivationImageSequence")
        sources = sequence(derivation[0], "SourceImageSequence") if derivation else []
        frames.append(SegFrame(index + 1, segment, position, direction[:, 0], direction[:, 1], spacing,
                               text(sources[0], "ReferencedSOPInstanceUID") if sources else ""))
    return frames


def _rgb_from_lab(value) -> Optional[tuple[int, int, int]]:
    if value is None:
        return None
    from highdicom.color import CIELabColor

    try:
        return tuple(int(v) for v in CIELabColor.from_dicom_value([int(v) for v in value]).to_rgb(clip=True))
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class _Placement:
    """Where a frame's pixels go on its slice: an exact offset, or per-voxel nearest frame pixels."""

    slice_index: int
    plane_offset: float
    offset: Optional[tuple[int, int]] = None  #: (i0, j0) of frame pixel (0, 0) when on the pixel grid
    rows: Optional[np.ndarray] = None  #: nearest frame row for each (i, j) of the slice (-1: outside)
    columns: Optional[np.ndarray] = None


def _place(frame: SegFrame, shape: tuple[int, int], reference: ImageReference) -> Optional[_Placement]:
    ni, nj, nk = reference.grid.shape
    origin = reference.continuous_index(frame.position)
    step_column = reference.continuous_index(frame.position + frame.spacing[1] * frame.row_direction) - origin
    step_row = reference.continuous_index(frame.position + frame.spacing[0] * frame.column_direction) - origin
    k = int(np.floor(origin[2] + 0.5))
    if abs(step_column[2]) > PIXEL_GRID_TOLERANCE or abs(step_row[2]) > PIXEL_GRID_TOLERANCE:
        raise InvalidAnnotationError("SEG frames are not parallel to the image's slices",
                                     hint="the SEG was made on another image orientation")
    if not (0 <= k < nk and abs(origin[2] - k) <= 0.5):
        return None
    plane_offset = float(origin[2] - k)
    snapped = np.round(origin[:2])
    if (np.allclose(step_column, (1, 0, 0), atol=PIXEL_GRID_TOLERANCE)
            and np.allclose(step_row, (0, 1, 0), atol=PIXEL_GRID_TOLERANCE)
            and np.allclose(origin[:2], snapped, atol=PIXEL_GRID_TOLERANCE)):
        return _Placement(k, plane_offset, offset=(int(snapped[0]), int(snapped[1])))
    # general case: each voxel of slice k takes the nearest frame pixel
    ii, jj = np.meshgrid(np.arange(ni, dtype=float), np.arange(nj, dtype=float), indexing="ij")
    basis = np.stack([step_column[:2], step_row[:2]], axis=1)  # (i, j) per (column, row) step
    inverse = np.linalg.inv(basis)
    relative = np.stack([ii - origin[0], jj - origin[1]], axis=-1) @ inverse.T
    columns, rows = np.rint(relative[..., 0]).astype(np.int64), np.rint(relative[..., 1]).astype(np.int64)
    outside = (rows < 0) | (rows >= shape[0]) | (columns < 0) | (columns >= shape[1])
    rows[outside], columns[outside] = -1, -1
    return _Placement(k, plane_offset, rows=rows, columns=columns)


def _paste(values: np.ndarray, placement: _Placement, shape: tuple[int, int]) -> np.ndarray:
    """A frame's ``(rows, columns)`` values as a full ``(ni, nj)`` slice of the grid (0 outside)."""
    out = np.zeros(shape, dtype=values.dtype)
    if placement.offset is not None:
        i0, j0 = placement.offset
        frame = values.T  # (columns, rows) = (i, j)
        i_start, j_start = max(i0, 0), max(j0, 0)
        i_stop, j_stop = min(i0 + frame.shape[0], shape[0]), min(j0 + frame.shape[1], shape[1])
        if i_stop > i_start and j_stop > j_start:
            out[i_start:i_stop, j_start:j_stop] = frame[i_start - i0:i_stop - i0, j_start - j0:j_stop - j0]
        return out
    inside = placement.rows >= 0
    out[inside] = values[placement.rows[inside], placement.columns[inside]]
    return out


def _open(path: str, dataset):
    import highdicom

    try:
        return highdicom.seg.Segmentation.from_dataset(dataset, copy=False)
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise UnsupportedFormatError(f"not a usable DICOM SEG ({error})", path=path) from None


def read_seg(path: str | os.PathLike, reference: ImageReference,
             options: AnnotationOptions = AnnotationOptions()) -> AnnotationResult:
    """Put every segment of the DICOM SEG at ``path`` on ``reference.grid``."""
    path = os.fspath(path)
    dataset = read_dataset(path, expect="SEG")
    seg = _open(path, dataset)
    seg_type = text(dataset, "SegmentationType").upper()
    frames = frames_of(dataset, path)
    source = os.path.basename(path)
    descriptions = sorted(sequence(dataset, "SegmentSequence"), key=lambda item: int(item.SegmentNumber))
    segments = [item for item in descriptions if not (seg_type == "LABELMAP" and int(item.SegmentNumber) == 0)]
    number_to_value = {int(item.SegmentNumber): n + 1 for n, item in enumerate(segments)}
    maximum = float(dataset.get("MaximumFractionalValue", 255) or 255)
    keep_fractions = seg_type == "FRACTIONAL" and options.fractional is FractionalHandling.KEEP
    ni, nj, nk = reference.grid.shape
    slices: dict[int, dict[int, np.ndarray]] = {number: {} for number in number_to_value}
    unplaced, off_centre, resampled = 0, 0, 0
    placements: dict[tuple, Optional[_Placement]] = {}
    try:
        for frame in frames:
            key = (tuple(frame.position), tuple(frame.row_direction), tuple(frame.column_direction), frame.spacing)
            if key not in placements:
                placements[key] = _place(frame, (int(dataset.Rows), int(dataset.Columns)), reference)
            placement = placements[key]
            if placement is None:
                unplaced += 1
                continue
            off_centre += abs(placement.plane_offset) > OFF_CENTRE_TOLERANCE
            resampled += placement.offset is None
            stored = np.asarray(seg.get_stored_frame(frame.number))
            if seg_type == "LABELMAP":
                planes = {number: stored == number for number in number_to_value if np.any(stored == number)}
            elif seg_type == "FRACTIONAL":
                fraction = stored.astype(np.float32) / np.float32(maximum)
                planes = {frame.segment: fraction if keep_fractions else fraction >= options.fractional_threshold}
            else:
                planes = {frame.segment: stored != 0}
            for number, values in planes.items():
                if number not in slices:
                    continue
                pasted = _paste(values, placement, (ni, nj))
                previous = slices[number].get(placement.slice_index)
                slices[number][placement.slice_index] = pasted if previous is None else np.maximum(previous, pasted)
    except InvalidAnnotationError as error:
        raise InvalidAnnotationError(error.message, path=path, hint=error.hint) from None
    except (ValueError, IndexError, EOFError, OSError) as error:
        raise UnreadableFileError(f"cannot decode the SEG frames ({type(error).__name__}: {error})", path=path,
                                  hint="the file is truncated or corrupt: download it again") from None
    entries, masks, reports, warnings = [], [], [], []
    for item in segments:
        number = int(item.SegmentNumber)
        name = text(item, "SegmentLabel") or f"Segment-{number}"
        codes = coded_concepts(sequence(item, "SegmentedPropertyCategoryCodeSequence")
                               + sequence(item, "SegmentedPropertyTypeCodeSequence"))
        entry = LabelEntry(number_to_value[number], name, _rgb_from_lab(item.get("RecommendedDisplayCIELabValue")),
                           codes, source, number)
        if keep_fractions:
            mask = RoiMask.from_dense(np.stack([slices[number].get(k, np.zeros((ni, nj), np.float32))
                                                for k in range(nk)], axis=-1)) if slices[number] else RoiMask.empty()
        else:
            mask = RoiMask.from_slices(slices[number], (ni, nj, nk))
        status = RoiStatus.RASTERISED if mask.voxels else RoiStatus.EMPTY
        if status is RoiStatus.EMPTY:
            warnings.append(f"segment {name!r} (#{number}) has no voxel on the image grid")
        entries.append(entry)
        masks.append(mask)
        reports.append(RoiReport(number, name, status, entry.value, mask.voxels))
    if unplaced:
        warnings.append(f"{unplaced} SEG frame(s) lie beyond the image's first or last slice; not placed")
    if off_centre:
        warnings.append(f"{off_centre} SEG frame(s) lie between image slices (more than "
                        f"{OFF_CENTRE_TOLERANCE:g} step from a slice centre); placed on the nearest slice")
    if resampled:
        warnings.append(f"{resampled} SEG frame(s) are not on the image's pixel grid; resampled (nearest pixel)")
    label = seg_label(dataset)
    name_suffix = object_suffix(AnnotationKind.SEG, label)
    meta = {"source_format": AnnotationKind.SEG.value, "source_files": [path], "modality": "SEG",
            "series_uid": text(dataset, "SeriesInstanceUID"), "study_uid": text(dataset, "StudyInstanceUID"),
            "patient_id": text(dataset, "PatientID"), "series_description": label, "warnings": warnings,
            "header": {"segmentation_type": seg_type}}
    outputs, overlap_warnings = label_outputs(masks, entries, reference, options.masks,
                                              suffix=name_suffix, meta=meta)
    return AnnotationResult(path, AnnotationKind.SEG, reference.unit_id, tuple(entries), tuple(reports),
                            tuple(outputs), tuple(warnings + overlap_warnings), name_suffix=name_suffix)
