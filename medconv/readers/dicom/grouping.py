"""Group scanned DICOM headers into series, split them into stacks, and classify them.

Rules (docs/dicom.md has the full table):

1. Files group by SeriesInstanceUID; files repeating a SOPInstanceUID (copies, re-encodings)
   go to separate units (``copy 2 ...``), never dropped. Image files whose SeriesInstanceUID
   is blank or missing (anonymisers blank it) but that carry pixels and patient geometry
   group by folder and FrameOfReferenceUID instead (:func:`blank_series_key`); rule 3
   then splits them by orientation, matrix, SeriesNumber ... like any series, and each
   such unit is flagged ``no-series-uid`` with a warning. Any other file without
   SeriesInstanceUID is a unit of its own, classified like any other (a fragment without
   pixel data is excluded; a lone image is a 2D slice).
2. Non-image objects (RTSTRUCT, SEG, SR, PR, KO, RT dose/plan, raw, documents, no
   pixel data) are set apart, one :class:`SeriesGroup` per series, ``excluded`` set.
   A file of an *image* storage class (CT, MR, PET ... Image Storage) with a
   SeriesInstanceUID but without Pixel Data or Rows/Columns is not a non-image: it
   is a broken slice (truncated or corrupt). It joins the image stack of its series
   (same SeriesNumber and orientation), whose ``unreadable`` then names it, so that
   reading the series fails instead of filling the hole by interpolation; with no
   such stack it is a unit of its own with ``unreadable`` set.
3. Image files of one UID are split (``split`` records why) when SeriesNumber,
   orientation (|ΔIOP| > 1e-3), matrix size, samples per pixel or layout differ.
   Multi-frame files of one series, matrix, ImageType and SOP class are pooled into
   one stack (the reader then makes one unit per frame group and splits the pool
   per file unless its frames form complete volumes: :mod:`.layouts.enhanced`).
4. Within a stack, slices at the same position are told apart by echo (split into
   one stack per echo), then by temporal position / trigger time / acquisition
   number: when every index value holds the same set of positions the stack becomes
   4D (``axis4 = "time"``), otherwise it is split by that index. Each split stack gets
   a label (``frame_group``: ``echo-1``, ``temporal-position-2``) that is appended to
   its SeriesDescription, so that output names tell the echoes apart. Mosaic files (one
   volume each) are split by echo the same way, then stacked as time points. Duplicates that
   nothing here tells apart are flagged ``duplicate``: discovery then plans them as vendor
   4D (:mod:`.layouts.vendor4d`: repeats in acquisition order, when every position repeats
   equally); when they do not form complete volumes the unit fails (never dropped).
5. 2D images are units of their own, one per file, before any stacking: projection
   radiographs (CR, DX, MG, IO, XA, RF; greyscale secondary captures of those
   modalities) and their multi-frame cine are converted through the greyscale
   pipeline (layouts ``projection`` / ``cine``, :mod:`.layouts.projection`); other
   greyscale images without patient geometry get the same layout but are excluded
   as 2D images (``include_2d`` converts them). Several in one series are told apart
   by ``Split(IMAGE, InstanceNumber)``.
6. Classification of image stacks: ImageType LOCALIZER/SCOUT, a stack of one or
   two slices at another orientation than the main stack of its series, or a series
   made only of single slices at several orientations (a 3-plane scout), is a
   localizer; secondary captures and colour (RGB) images are excluded; single 2D
   slices are excluded unless ``include_2d``.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from .headers import DicomHeader
from .plan import ImageComponent, Layout, Split, SplitKind
from .sop_classes import SopKind, sop_class

NON_IMAGE_MODALITIES = {
    "RTSTRUCT": "RTSTRUCT (structure set: polygon contours drawn on another series, not an image)",
    "SEG": "SEG (segmentation object, not an image series)",
    "SR": "SR (structured report, not an image)",
    "PR": "PR (presentation state, not an image)",
    "KO": "KO (key object selection, not an image)",
    "RTPLAN": "RT plan, not an image",
    "RTDOSE": "RTDOSE (dose grid, not an image series)",
    "REG": "registration object, not an image",
    "DOC": "encapsulated document, not an image",
}
IOP_TOLERANCE = 1e-3
POSITION_BIN_MM = 0.01
#: Flag of a unit grouped without SeriesInstanceUID (rule 1).
NO_SERIES_UID_FLAG = "no-series-uid"
#: Modalities of cross-sectional slices: files without patient geometry are a broken stack, not 2D images.
CROSS_SECTIONAL_MODALITIES = frozenset({"CT", "MR", "PT", "NM"})


@dataclass
class SeriesGroup:
    """One unit found by discovery: an image stack, or a set-aside object with its reason."""

    headers: list[DicomHeader]
    split: list[Split] = field(default_factory=list)
    excluded: str | None = None
    layout: str = "single"
    axis4: str | None = None
    flags: list[str] = field(default_factory=list)
    #: The label telling this unit apart from the other units of its series, appended to its
    #: SeriesDescription for output names: a multi-frame frame group (``T1-FIELD_MAP-REAL``),
    #: or an echo / temporal-index split of single-frame slices (``echo-1``). ``""``: none.
    frame_group: str = ""
    #: Multi-frame only: ``(columns, rows, slices[, volumes])`` when discovery parsed the frames.
    shape: tuple[int, ...] | None = None
    #: Multi-frame only: ``(column, row, slice)`` steps in mm when discovery parsed the frames.
    spacing: tuple[float, float, float] | None = None
    #: 4D single-frame stacks: the header attribute whose values are the time points.
    time_attribute: str | None = None
    #: ``"path: what is wrong"`` for each broken file in ``headers`` (see :func:`broken_image_reason`).
    broken: list[str] = field(default_factory=list)
    #: Decisions grouping took that the output must report (they go into the plan's warnings).
    warnings: list[str] = field(default_factory=list)

    @property
    def first(self) -> DicomHeader:
        return self.headers[0]

    @property
    def unreadable(self) -> str | None:
        """Why reading this unit must fail (its broken files, named), or ``None`` when it is readable."""
        if not self.broken:
            return None
        count, example = len(self.broken), self.broken[0]
        if count == len(self.headers):
            return example if count == 1 else f"none of the {count} files of the series holds an image, e.g. {example}"
        return (f"the series has a broken slice: {example}" if count == 1
                else f"the series has {count} broken slices, e.g. {example}")

    def add_broken(self, header: DicomHeader, message: str) -> None:
        """Add a broken file to this unit (last: the first header still names the series)."""
        if not any(h is header for h in self.headers):
            self.headers.append(header)
        self.broken.append(message)
        if "corrupt-slice" not in self.flags:
            self.flags.append("corrupt-slice")


def image_storage_class(sop_class_uid: str) -> str | None:
    """The name of the image storage class of a SOP class UID (whole-UID match), or ``None`` for any other."""
    found = sop_class(sop_class_uid)
    return found.name if found is not None and found.kind is not SopKind.NON_IMAGE else None


def broken_image_reason(header: DicomHeader) -> str | None:
    """Why a file of an image series is unusable (truncated or corrupt), or ``None``.

    An image storage SOP class promises Pixel Data, Rows and Columns (type 1): a file
    of such a class without them was cut off or damaged (or is a header-only fragment).
    """
    name = image_storage_class(header.sop_class_uid)
    if name is None:
        return None
    if header.has_pixels and header.rows and header.columns:
        return None
    missing = [what for what, present in (("Rows", header.rows), ("Columns", header.columns),
                                          ("BitsAllocated", header.bits_allocated)) if not present]
    return f"{name} file without {', '.join(missing)}: truncated or corrupt"


def non_image_reason(header: DicomHeader) -> str | None:
    """Why a file is not part of an image volume, or ``None`` if it is an image."""
    found = sop_class(header.sop_class_uid)
    if found is not None and found.kind is SopKind.NON_IMAGE:
        return found.reason
    if header.modality in NON_IMAGE_MODALITIES:
        return NON_IMAGE_MODALITIES[header.modality]
    if not header.has_pixels:
        return f"no pixel data (SOP class {header.sop_class_uid or 'unknown'})"
    return None


#: ImageType values naming the part of a complex MR signal (Siemens ``ORIGINAL\\PRIMARY\\P\\ND``,
#: Philips ``ORIGINAL\\PRIMARY\\PHASE MAP\\P\\FFE``), as dcm2niix reads them.
IMAGE_COMPONENT_CODES: dict[str, ImageComponent] = {
    "M": ImageComponent.MAGNITUDE, "MAGNITUDE": ImageComponent.MAGNITUDE,
    "P": ImageComponent.PHASE, "PHASE": ImageComponent.PHASE,
    "R": ImageComponent.REAL, "REAL": ImageComponent.REAL,
    "I": ImageComponent.IMAGINARY, "IMAGINARY": ImageComponent.IMAGINARY,
}


def image_component(header: DicomHeader) -> ImageComponent | None:
    """Magnitude, phase, real or imaginary from ImageType (the first value from the 3rd on that names one).

    Vendors put it in different places (Siemens the 3rd value, Philips the 4th after a
    ``M_FFE`` / ``PHASE MAP`` 3rd), so every value from the 3rd on is looked at;
    ``None`` when none names a component (CT's ``AXIAL``, GE's ``OTHER``).
    """
    for value in header.image_type[2:]:
        found = IMAGE_COMPONENT_CODES.get(value)
        if found is not None:
            return found
    return None


def layout_of(header: DicomHeader) -> str:
    """``"mosaic"``, ``"multiframe"`` or ``"single"``."""
    if header.is_mosaic:
        return "mosaic"
    if header.is_multiframe:
        return "multiframe"
    return "single"


def blank_series_key(header: DicomHeader) -> tuple[str, str, str] | None:
    """The pseudo series of an image file without SeriesInstanceUID, or ``None`` when it stays on its own.

    Anonymisers blank SeriesInstanceUID; without it every slice became a 2D unit of its
    own and nothing converted. An image file with pixels and patient geometry
    (ImageOrientationPatient and ImagePositionPatient) joins the files of its folder
    with the same FrameOfReferenceUID (blank too, often); the series rules then split
    them by orientation, matrix, SeriesNumber, echo ... as for any series. Files without
    geometry (fragments, projection images) stay units of their own.
    """
    if header.series_uid or not (header.has_pixels and header.iop is not None and header.ipp is not None):
        return None
    return ("no-series-uid", os.path.dirname(header.path), header.frame_of_reference_uid)


def _note_blank_series_uid(group: SeriesGroup) -> None:
    group.flags.append(NO_SERIES_UID_FLAG)
    where = (f"FrameOfReferenceUID {group.first.frame_of_reference_uid}" if group.first.frame_of_reference_uid
             else "a blank FrameOfReferenceUID")
    group.warnings.append(
        f"SeriesInstanceUID is blank in these {len(group.headers)} file(s) (an anonymiser removed it?): grouped "
        f"by folder ({os.path.dirname(group.first.path)}), {where}, orientation and matrix; check that they "
        "are one series")


def group_headers(headers: Iterable[DicomHeader]) -> list[SeriesGroup]:
    """Group, split and classify scanned headers into discovery units (see module doc)."""
    by_uid: dict[object, list[DicomHeader]] = defaultdict(list)
    cut_early: list[DicomHeader] = []  # broken image files cut before their SeriesInstanceUID
    for header in headers:
        if not header.series_uid and broken_image_reason(header):
            cut_early.append(header)
        else:
            by_uid[header.series_uid or blank_series_key(header) or f"no-series-uid:{header.path}"].append(header)
    groups: list[SeriesGroup] = []
    for uid, members in by_uid.items():
        copies = _split_same_instance(members)
        for copy_index, part in enumerate(copies, start=1):
            for group in _group_one_uid(part):
                if len(copies) > 1:
                    group.split.append(Split(SplitKind.COPY, copy_index))
                if isinstance(uid, tuple):
                    _note_blank_series_uid(group)
                groups.append(group)
    for header in cut_early:
        stack = _stack_in_folder(header, groups)
        if stack is None:  # a header-only fragment on its own (pydicom's test files): classified as usual
            groups.extend(_group_one_uid([header]))
        else:
            stack.add_broken(header, f"{header.path}: {broken_image_reason(header)} (no SeriesInstanceUID left; "
                                     "it lies in the series' folder)")
    _label_name_clashes(groups)
    return groups


def _plane(iop: tuple[float, ...] | None) -> str:
    """``axial``, ``coronal``, ``sagittal`` or ``oblique`` from the slice normal (within about 10 degrees)."""
    if not iop:
        return "no-orientation"
    normal = np.abs(np.cross(iop[:3], iop[3:]))
    axis = int(np.argmax(normal))
    return ("sagittal", "coronal", "axial")[axis] if normal[axis] > 0.985 else "oblique"


def _label_name_clashes(groups: list[SeriesGroup]) -> None:
    """Units of one series that output names could not tell apart get a label (``frame_group``).

    Output names use PatientID, StudyDate, SeriesNumber, Modality and SeriesDescription.
    Units that share all of these (an orientation or matrix split within one series
    number, copies of the same instances) would otherwise be told apart only by a
    hash fragment: they get a readable label from their split (``matrix-256x256``,
    ``sagittal``, ``copy-2``), numbered if that is not enough. Multi-frame pools are
    labelled later, per frame group, by the reader.
    """
    clashes: dict[tuple, list[SeriesGroup]] = defaultdict(list)
    for group in groups:
        if group.excluded is None and group.layout != "multiframe":
            first = group.first
            clashes[(first.patient_id, first.study_date, first.study_uid, first.series_number, first.modality,
                     first.series_description, group.frame_group)].append(group)
    for members in clashes.values():
        if len(members) < 2:
            continue
        labels = [_split_label(group) for group in members]
        if len(set(labels)) < len(labels):
            labels = [f"{label}-{index}" if label else f"part-{index}" for index, label in enumerate(labels, start=1)]
        for group, label in zip(members, labels):
            group.frame_group = " ".join(part for part in (group.frame_group, label) if part)


def _split_label(group: SeriesGroup) -> str:
    """A short readable label from a unit's split reasons (SeriesNumber and echo/index splits left out)."""
    parts = []
    for split in group.split:
        if split.kind is SplitKind.COPY:
            parts.append(f"copy-{split.value}")
        elif split.kind is SplitKind.ORIENTATION:
            parts.append(_plane(group.first.iop))
        elif split.kind is SplitKind.MATRIX:
            parts.append(f"matrix-{split.value}")
        elif split.kind is SplitKind.SAMPLES:
            parts.append(f"{split.value}-samples")
        elif split.kind is SplitKind.LAYOUT:
            parts.append(str(split.value))
        elif split.kind is SplitKind.IMAGE:
            parts.append(split.label)
    return "-".join(parts)


def _stack_in_folder(header: DicomHeader, groups: list[SeriesGroup]) -> SeriesGroup | None:
    """The image stack a broken file without SeriesInstanceUID most likely belongs to: the largest
    single-frame stack of 2+ slices in its folder, agreeing on every identifying value the file still has."""
    folder = os.path.dirname(header.path)
    candidates = []
    for group in groups:
        first = group.first
        if group.excluded is not None or group.layout != "single" or len(group.headers) < 2:
            continue
        if os.path.dirname(first.path) != folder:
            continue
        if any(mine and mine != theirs for mine, theirs in (
                (header.study_uid, first.study_uid), (header.modality, first.modality),
                (header.sop_class_uid, first.sop_class_uid), (header.patient_id, first.patient_id),
                (header.series_number, first.series_number))):
            continue
        candidates.append(group)
    return max(candidates, key=lambda g: len(g.headers)) if candidates else None


def _group_one_uid(members: list[DicomHeader]) -> list[SeriesGroup]:
    groups: list[SeriesGroup] = []
    non_image: dict[str, list[DicomHeader]] = defaultdict(list)
    images: list[DicomHeader] = []
    broken: list[tuple[DicomHeader, str]] = []
    for header in members:
        damage = broken_image_reason(header) if header.series_uid else None  # without: see group_headers
        reason = None if damage else non_image_reason(header)
        if damage:
            broken.append((header, damage))
        elif reason:
            non_image[reason].append(header)
        else:
            images.append(header)
    for reason, files in non_image.items():
        groups.append(SeriesGroup(files, excluded=reason, layout="object"))
    stacks: list[SeriesGroup] = []
    if images:
        stacks = _split_series(images)
        _classify(stacks)
        groups.extend(stacks)
    # a broken file joins the stack it belongs to; files with no stack to join form one unit per SeriesNumber
    orphans: dict[int | None, SeriesGroup] = {}
    for header, damage in broken:
        stack = _stack_of_broken(header, stacks)
        if stack is None:
            stack = orphans.get(header.series_number)
            if stack is None:
                stack = orphans[header.series_number] = SeriesGroup([header])
                groups.append(stack)
        stack.add_broken(header, f"{header.path}: {damage}")
    return groups


def _stack_of_broken(header: DicomHeader, stacks: list[SeriesGroup]) -> SeriesGroup | None:
    """The image stack a broken slice belongs to, or ``None``.

    The largest single-frame, not excluded stack of the same SeriesNumber (and
    orientation, echo and time index, when the broken file still has them). Leaving
    the file out would make a hole that the gap repair fills by interpolation: a
    wrong volume.
    """
    candidates = [s for s in stacks if s.excluded is None and s.layout == "single"
                  and (header.series_number is None or s.first.series_number == header.series_number)
                  and (header.iop is None or s.first.iop is None
                       or float(np.max(np.abs(np.subtract(header.iop, s.first.iop)))) <= IOP_TOLERANCE)]
    # within a split series: the stack holding the broken file's echo / time index, when its header still says
    for attribute, _ in _ECHO_FIELDS + _TIME_FIELDS:
        value = getattr(header, attribute)
        matching = [s for s in candidates
                    if value is not None and any(getattr(h, attribute) == value for h in s.headers)]
        if matching:
            candidates = matching
    return max(candidates, key=lambda s: len(s.headers)) if candidates else None


def _split_same_instance(members: list[DicomHeader]) -> list[list[DicomHeader]]:
    """Files repeating a SOPInstanceUID are different files of one instance (copies,
    re-encodings): each repetition goes to a unit of its own, never dropped or stacked."""
    seen: dict[str, int] = defaultdict(int)
    parts: list[list[DicomHeader]] = [[]]
    for header in members:
        index = 0
        if header.sop_instance_uid:
            index = seen[header.sop_instance_uid]
            seen[header.sop_instance_uid] += 1
        while len(parts) <= index:
            parts.append([])
        parts[index].append(header)
    return parts


def _split_series(images: list[DicomHeader]) -> list[SeriesGroup]:
    """Split one SeriesInstanceUID's image files into stacks (reasons in ``split``)."""
    # multi-frame files of one series, matrix and image type are pooled (Siemens XA writes
    # one enhanced file per time point); discovery then checks that their frames form
    # volumes (layouts.enhanced) and splits them per file otherwise. Mosaic files (one per
    # time point) and single-frame slices are bucketed below.
    stacks, images = _split_planar(images)
    singles = []
    pools: dict[tuple, list[DicomHeader]] = defaultdict(list)
    for header in images:
        if layout_of(header) == "multiframe":
            key = (header.series_number, header.rows, header.columns, header.samples_per_pixel,
                   header.image_type, header.sop_class_uid)
            pools[key].append(header)
        else:
            singles.append(header)
    for pool in pools.values():
        pool.sort(key=lambda h: (h.acquisition_number if h.acquisition_number is not None else 0,
                                 h.instance_number if h.instance_number is not None else 0, _natural(h.path)))
        stacks.append(SeriesGroup(pool, layout="multiframe"))
    pooled = [stack for stack in stacks if stack.layout == "multiframe"]
    if len(pooled) > 1 or (pooled and singles):
        for stack in pooled:
            stack.split.append(Split(SplitKind.MULTIFRAME_FILE))

    buckets: list[tuple[tuple, list[DicomHeader], list[Split]]] = []
    for header in singles:
        iop = np.asarray(header.iop) if header.iop else None
        key = (header.series_number, header.rows, header.columns, header.samples_per_pixel, layout_of(header),
               image_component(header))
        for bucket_key, bucket, _ in buckets:
            if bucket_key[0] != key:
                continue
            other = bucket_key[1]
            if (iop is None) == (other is None) and (iop is None or np.max(np.abs(iop - other)) <= IOP_TOLERANCE):
                bucket.append(header)
                break
        else:
            buckets.append(((key, iop), [header], []))
    if len(buckets) > 1:
        keys = [bucket_key for bucket_key, _, _ in buckets]
        for bucket_key, _, reasons in buckets:
            (number, rows, columns, samples, layout, component), iop = bucket_key
            if len({k[0][5] for k in keys}) > 1:  # magnitude and phase of one acquisition (Philips SWI)
                reasons.append(Split(SplitKind.IMAGE_COMPONENT, component))
            if len({k[0][0] for k in keys}) > 1:
                reasons.append(Split(SplitKind.SERIES_NUMBER, number))
            if len({(k[0][1], k[0][2]) for k in keys}) > 1:
                reasons.append(Split(SplitKind.MATRIX, f"{columns}x{rows}"))
            if len({k[0][3] for k in keys}) > 1:
                reasons.append(Split(SplitKind.SAMPLES, samples))
            if len({k[0][4] for k in keys}) > 1:
                reasons.append(Split(SplitKind.LAYOUT, layout))
            if not reasons:
                reasons.append(Split(SplitKind.ORIENTATION))
    for bucket_key, bucket, reasons in buckets:
        # component, echo and index splits share SeriesNumber and description: a label tells them apart
        labels = [split.label for split in reasons if split.kind is SplitKind.IMAGE_COMPONENT]
        if bucket_key[0][4] == "mosaic":  # every mosaic file holds all slices: files are time points of one echo
            for echo_split, files in _split_echoes(bucket):
                stack = SeriesGroup(files, split=reasons + echo_split, layout="mosaic",
                                    axis4="time" if len(files) > 1 else None)
                stack.frame_group = _joined(labels + [split.label for split in echo_split])
                stacks.append(stack)
            continue
        for stack in _split_duplicates(bucket):
            stack.frame_group = _joined(labels + [split.label for split in stack.split])
            stack.split = reasons + stack.split
            stacks.append(stack)
    return stacks


def _joined(labels: list[str]) -> str:
    return " ".join(label for label in labels if label)


def _split_planar(images: list[DicomHeader]) -> tuple[list[SeriesGroup], list[DicomHeader]]:
    """2D images (radiographs, 2D cine, greyscale images without patient geometry), one unit per file, and the rest.

    Each file is an image of its own, never a slice of a stack: two radiographs of one
    series (PA and lateral) are two units, each with ``Split(IMAGE, InstanceNumber)``
    (issue 10, fault 8: two made a stack that failed for want of ImagePositionPatient).
    Which files: :func:`.layouts.projection.planar_layout`, plus single-frame greyscale
    images of other modalities (not CT, MR, PT, NM, whose slices without geometry
    stay one stack that fails saying so) in a series where no file has patient geometry
    (classified as excluded 2D images later, read the same way with ``include_2d``);
    a CT or MR slice that lost its ImagePositionPatient stays in its stack, whose
    reading then names it.
    """
    from .layouts.projection import has_patient_geometry, is_greyscale, planar_layout

    planar: list[tuple[DicomHeader, str]] = []
    rest: list[DicomHeader] = []
    stackable = any(has_patient_geometry(header) for header in images)  # a slice without position stays in its stack
    for header in images:
        layout = planar_layout(header)
        if (layout is None and not stackable and not header.is_multiframe and not header.is_mosaic
                and header.modality not in CROSS_SECTIONAL_MODALITIES and is_greyscale(header)
                and getattr(sop_class(header.sop_class_uid), "kind", None) is not SopKind.SECONDARY_CAPTURE):
            layout = Layout.PROJECTION
        if layout is None:
            rest.append(header)
        else:
            planar.append((header, layout.value))
    planar.sort(key=lambda item: (item[0].instance_number if item[0].instance_number is not None else 0,
                                  _natural(item[0].path)))
    groups = []
    for index, (header, layout) in enumerate(planar, start=1):
        group = SeriesGroup([header], layout=layout)
        if len(planar) > 1:
            group.split.append(Split(SplitKind.IMAGE, header.instance_number if header.instance_number is not None
                                     else index))
        groups.append(group)
    return groups, rest


def _natural(path: str) -> list:
    """Sort key putting ``6_2.dcm`` before ``6_10.dcm``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path)]


def _normal(header: DicomHeader) -> np.ndarray | None:
    if not header.iop or not header.ipp:
        return None
    iop = np.asarray(header.iop, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    norm = np.linalg.norm(normal)
    return normal / norm if norm > 0 else None


def _position_keys(headers: list[DicomHeader]) -> list[int] | None:
    normal = _normal(headers[0])
    if normal is None:
        return None
    return [int(round(float(np.dot(h.ipp, normal)) / POSITION_BIN_MM)) if h.ipp else 0 for h in headers]


def _has_duplicates(headers: list[DicomHeader]) -> bool:
    keys = _position_keys(headers)
    return keys is not None and len(set(keys)) < len(keys)


_ECHO_FIELDS = (("echo_number", SplitKind.ECHO), ("echo_time", SplitKind.ECHO_TIME))
_TIME_FIELDS = (("temporal_position", SplitKind.TEMPORAL_POSITION), ("trigger_time", SplitKind.TRIGGER_TIME),
                ("acquisition_number", SplitKind.ACQUISITION_NUMBER))


def _split_echoes(headers: list[DicomHeader]) -> list[tuple[list[Split], list[DicomHeader]]]:
    """Files of one stack per echo (EchoNumbers, else EchoTime, when every file has one and they differ)."""
    for attribute, kind in _ECHO_FIELDS:
        values = {getattr(h, attribute) for h in headers}
        if len(values) > 1 and None not in values:
            return [([Split(kind, value)], [h for h in headers if getattr(h, attribute) == value])
                    for value in sorted(values)]
    return [([], headers)]


def _split_duplicates(headers: list[DicomHeader]) -> list[SeriesGroup]:
    """One stack, or several (per echo / index), or one 4D stack, for slices sharing positions."""
    if len(headers) < 2 or not _has_duplicates(headers):
        return [SeriesGroup(headers)]
    for attribute, label in _ECHO_FIELDS:
        values = {getattr(h, attribute) for h in headers}
        if len(values) > 1 and None not in values:
            parts = defaultdict(list)
            for h in headers:
                parts[getattr(h, attribute)].append(h)
            result = []
            for value in sorted(parts):
                for stack in _split_duplicates(parts[value]):
                    stack.split.insert(0, Split(label, value))
                    result.append(stack)
            return result
    for attribute, label in _TIME_FIELDS:
        values = {getattr(h, attribute) for h in headers}
        if len(values) < 2 or None in values:
            continue
        parts = defaultdict(list)
        for h in headers:
            parts[getattr(h, attribute)].append(h)
        position_sets = [sorted(_position_keys(part)) for part in parts.values()]
        distinct = all(len(set(p)) == len(p) for p in position_sets)
        if distinct and all(p == position_sets[0] for p in position_sets):
            ordered = [h for value in sorted(parts) for h in parts[value]]
            group = SeriesGroup(ordered, axis4="time", time_attribute=attribute)
            group.flags.append(f"4D over {label.value} ({len(parts)} volumes)")
            return [group]
        if distinct and any(len(part) > 1 for part in parts.values()):
            # (a value per file, e.g. TriggerTime as the time since the run started, is no stack index:
            # the repeats are ordered by acquisition instead, layouts.vendor4d)
            result = []
            for value in sorted(parts):
                stack = SeriesGroup(parts[value], split=[Split(label, value)])
                result.append(stack)
            return result
    group = SeriesGroup(headers)
    group.flags.append("duplicate")
    return [group]


def _classify(stacks: list[SeriesGroup]) -> None:
    """Mark localizers, secondary captures, colour images and lone 2D images as excluded."""
    image_stacks = [s for s in stacks if s.excluded is None]
    main = max(image_stacks, key=lambda s: len(s.headers), default=None)
    singles = [s for s in image_stacks if s.layout == "single" and len(s.headers) == 1 and s.axis4 is None
               and s.first.iop is not None]
    multi_plane = (len(singles) >= 2 and len(singles) == len(image_stacks)
                   and len({tuple(np.round(s.first.iop, 3)) for s in singles}) >= 2)
    for stack in image_stacks:
        first = stack.first
        if "LOCALIZER" in first.image_type or "SCOUT" in first.image_type:
            stack.excluded = "localizer (ImageType LOCALIZER)"
        elif stack.layout in ("projection", "cine"):
            _classify_planar(stack)
        elif getattr(sop_class(first.sop_class_uid), "kind", None) is SopKind.SECONDARY_CAPTURE:
            stack.excluded = "secondary capture (screenshot or derived picture, not an acquired volume)"
        elif first.samples_per_pixel > 1 or first.photometric.startswith(("RGB", "YBR", "PALETTE")):
            stack.excluded = f"colour image ({first.photometric or 'RGB'}), not a greyscale volume"
        elif (stack.layout == "single" and len(stack.headers) <= 2 and main is not None and stack is not main
              and len(main.headers) > 2 and _orientation_differs(stack, main)):
            stack.excluded = "localizer (a lone slice at another orientation than the main stack)"
        elif multi_plane and any(stack is single for single in singles):
            stack.excluded = "localizer (one slice per orientation: a multi-plane scout)"
        elif stack.layout == "single" and len(stack.headers) == 1 and stack.axis4 is None:
            if first.iop is None or first.ipp is None:
                stack.excluded = "2D image without patient geometry (projection radiograph or similar)"
            else:
                stack.excluded = "single 2D slice"
            stack.flags.append("2d")


def _classify_planar(stack: SeriesGroup) -> None:
    """A radiograph or 2D cine is converted; another 2D image without patient geometry is excluded (``2d``)."""
    from .layouts.projection import planar_layout

    if planar_layout(stack.first) is None:
        stack.excluded = "2D image without patient geometry (not a projection radiograph)"
        stack.flags.append("2d")


def _orientation_differs(stack: SeriesGroup, main: SeriesGroup) -> bool:
    a, b = stack.first.iop, main.first.iop
    if a is None or b is None:
        return True
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) > IOP_TOLERANCE
