"""The DICOM reader: discovery of every series under a folder, and reading one series as a Volume.

``discover(root)`` scans headers only (:mod:`.headers`), groups and classifies them
(:mod:`.grouping`) and yields one :class:`~medconv.source.Source` per stack, with
non-volumes (RTSTRUCT, SR, localizers, secondary captures ...) carrying
``info["excluded"]`` and unreadable files ``info["unreadable"]``.
``read(source, options)`` builds the Volume: slice geometry from :mod:`.stack`,
pixels from :mod:`.pixels` (mosaic and enhanced multi-frame delegate to
:mod:`.mosaic` / :mod:`.multiframe`).
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from typing import Iterator

import numpy as np

from ...errors import GeometryError, NotAVolumeError, UnreadableFileError, UnsupportedFormatError
from ...options import ReadOptions
from ...source import Source
from ...volume import Volume
from .grouping import SeriesGroup, group_headers
from .headers import DicomHeader, looks_like_dicom, read_header, reuse_or_read, scan_files
from .series_meta import meta_from_header
from .stack import StackPlan, plan_stack, volume_from_stack

log = logging.getLogger(__name__)

DICOM_SUFFIXES = (".dcm", ".dcm.gz", ".ima")
#: A discovery keeps its headers for :meth:`DicomReader.read` up to this many files (~1.5 KB each).
KEEP_HEADERS = 20000


class DicomReader:
    """Every DICOM series under a folder; one Volume per image stack."""

    name = "dicom"
    suffixes = DICOM_SUFFIXES

    def __init__(self, jobs: int | None = None):
        #: Worker processes for the header scan (``None``: every core).
        self.jobs = jobs
        #: ``(path, reason)`` of the files the last :meth:`discover` skipped as not DICOM.
        self.skipped: list[tuple[str, str]] = []
        #: The headers of the last :meth:`discover` (at most :data:`KEEP_HEADERS` of them), by path:
        #: :meth:`read` in the same process uses them instead of parsing the files again.
        self._known: dict[str, DicomHeader] = {}

    def sniff(self, path: str) -> bool:
        """``DICM`` at byte 128, a preamble-less DICOM start, or ``.dcm.gz``; never raises."""
        try:
            return looks_like_dicom(os.fspath(path))
        except Exception:
            return False

    # -- discovery ---------------------------------------------------------------------------
    def discover(self, root: str) -> Iterator[Source]:
        """One Source per image stack (and per set-aside object) under ``root`` (a folder or one file).

        Every file is considered whatever its suffix (TCIA files often have none);
        DICOMDIR and non-DICOM files are skipped and listed in :attr:`skipped`.
        """
        root = os.fspath(root)
        paths = list(_walk(root))
        result = scan_files(paths, jobs=self.jobs)
        self.skipped = result.skipped
        self._known = {h.path: h for h in result.headers} if len(result.headers) <= KEEP_HEADERS else {}
        if result.skipped:
            reasons = Counter(reason for _, reason in result.skipped)
            log.info("%s: skipped %d non-DICOM file(s): %s", root, len(result.skipped),
                     ", ".join(f"{n} {r}" for r, n in reasons.items()))
        base = root if os.path.isdir(root) else ""
        used: set[str] = set()
        for path, reason in result.unreadable:
            ident = _unique(f"unreadable_{_slug(os.path.basename(path))}", used)
            yield Source(ident, self.name, (path,), base, {"unreadable": reason, "n_files": 1,
                                                           "folder": _relative_folder(path, base)})
        groups = group_headers(result.headers)
        groups.sort(key=lambda g: (g.first.patient_id, g.first.study_date, g.first.series_number or 0,
                                   g.first.series_uid, g.split))
        for group in groups:
            if "duplicate" in group.flags and group.layout == "single" and not group.excluded:
                _detect_diffusion_4d(group)
            for unit in _multiframe_units(group) if group.layout == "multiframe" and not group.excluded else (group,):
                yield _source_for(unit, base, used)

    # -- reading -----------------------------------------------------------------------------
    def read(self, source: Source, options: ReadOptions = ReadOptions()) -> Volume:
        """The Volume of one series found by :meth:`discover` (or of a list of files).

        Raises
        ------
        NotAVolumeError
            The source is a non-image object, a localizer, or a 2D image without ``include_2d``.
        UnreadableFileError, GeometryError, MissingDependencyError, UnsupportedFormatError
            As the message says; each names a file and what to do.
        """
        info = source.info
        if info.get("unreadable"):
            raise UnreadableFileError(info["unreadable"], source.path, "the file is truncated or corrupt")
        excluded = info.get("excluded")
        if excluded and not (options.include_2d and info.get("is_2d")):
            raise NotAVolumeError(f"not converted: {excluded}", source.path,
                                  "to convert 2D images as one-slice volumes, pass --include-2d "
                                  "(ReadOptions(include_2d=True))" if info.get("is_2d") else None)
        layout = info.get("layout")
        known = self._known
        if layout is None:  # a Source not made by discover: group its files now
            parsed = _read_headers(source.paths)
            known = {h.path: h for h in parsed}
            found = group_headers(parsed)
            groups = [g for g in found if g.excluded is None or (options.include_2d and "2d" in g.flags)]
            if not groups and len(found) == 1:
                raise NotAVolumeError(f"not converted: {found[0].excluded}", source.path)
            if len(groups) != 1:
                raise UnsupportedFormatError(f"the files form {len(groups)} image stacks, not one", source.path,
                                             "discover the folder to get one source per series")
            if groups[0].unreadable:
                raise UnreadableFileError(groups[0].unreadable, source.path, "the file is truncated or corrupt")
            if "duplicate" in groups[0].flags and groups[0].layout == "single":
                _detect_diffusion_4d(groups[0])
            layout, axis4 = groups[0].layout, groups[0].axis4
        else:
            axis4 = info.get("axis4")
        if layout == "mosaic":
            return _delegate("mosaic", "read_mosaic_series", source, options)
        if layout == "multiframe":
            return _delegate("multiframe", "read_multiframe", source, options)
        if layout == "dwi4d":
            return _delegate("vendor4d", "read_vendor_4d", source, options)
        return read_single_frame_series(source.paths, options, axis4=axis4, known=known)


def _delegate(module: str, function: str, source: Source, options: ReadOptions) -> Volume:
    import importlib

    try:
        reader = getattr(importlib.import_module(f"{__package__}.{module}"), function)
    except (ImportError, AttributeError) as exc:
        raise UnsupportedFormatError(f"{module} DICOM is not supported by this medconv version", source.path) from exc
    return reader(source, options)


def _read_headers(paths, known: dict[str, DicomHeader] | None = None) -> list[DicomHeader]:
    headers = []
    for path in paths:
        try:
            headers.append(reuse_or_read(path, known.get(path)) if known else read_header(path))
        except Exception as exc:
            raise UnreadableFileError(f"cannot parse the DICOM header ({type(exc).__name__}: {exc})", path,
                                      "the file is truncated or corrupt; remove it or re-download the series") from exc
    return headers


def read_single_frame_series(paths, options: ReadOptions = ReadOptions(), axis4: str | None = None,
                             known: dict[str, DicomHeader] | None = None) -> Volume:
    """Read a stack of single-frame files (one 3D volume, or 4D when ``axis4`` is set).

    Geometry comes from :func:`.stack.plan_stack`, pixels from
    :func:`.pixels.read_pixel_stack`, in slice order. ``known`` headers (from a
    discovery in this process) are used for the files unchanged since; the
    others are parsed.
    """
    from .pixels import read_pixel_stack

    headers = _read_headers(paths, known)
    first = headers[0]
    warnings: list[str] = []
    iop, ps = first.iop, first.pixel_spacing
    if iop is None or first.ipp is None:
        if not options.include_2d or len(headers) > 1:
            raise GeometryError("the files carry no ImageOrientationPatient / ImagePositionPatient", first.path,
                                "this is not a cross-sectional series; include_2d converts single 2D images")
        iop = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
        warnings.append("no patient geometry in the file: identity orientation and origin 0 assumed")
    if ps is None:
        ps = (1.0, 1.0)
        warnings.append("no PixelSpacing: 1 mm assumed")
    for header in headers[1:]:
        if header.iop is None or np.max(np.abs(np.subtract(header.iop, iop))) > 1e-3:
            raise GeometryError("slices have different orientations (ImageOrientationPatient varies)", header.path,
                                "the series mixes stacks; discover the folder to split it")
    volumes = 1
    if axis4:
        volumes = _count_time_points(headers)
        per_volume = len(headers) // volumes
        order_t = _time_order(headers)
        headers = [headers[i] for i in order_t]
    else:
        per_volume = len(headers)
    positions = _positions(headers[:per_volume])
    plan = plan_stack(positions, iop, ps, options, first.gantry_tilt, first.path, rows=first.rows,
                      columns=first.columns, slice_thickness=first.slice_thickness,
                      paths=[h.path for h in headers[:per_volume]])
    in_order: list[DicomHeader] = []
    for t in range(volumes):
        block = headers[t * per_volume:(t + 1) * per_volume]
        if t:
            _check_same_positions(block, plan, first.path)
            block_positions = _positions(block)
            block_order = np.argsort(block_positions @ plan.direction[:, 2], kind="stable")
        else:
            block_order = plan.order
        in_order.extend(block[i] for i in block_order)
    ordered = [h.path for h in in_order]
    # the headers carry each file's pixel data offset: the pixel stage reads the bytes without parsing again
    stack = read_pixel_stack(ordered, in_order)
    array = stack.array
    if array.ndim != 3:
        raise UnsupportedFormatError(f"pixel data of shape {array.shape[1:]} per slice is not greyscale", first.path,
                                     "colour DICOM series are not converted")
    if volumes > 1:
        array = array.reshape((volumes, per_volume) + array.shape[1:])
    meta = meta_from_header(first, ordered, units=stack.units, warnings=warnings + list(stack.warnings))
    if axis4:
        meta["axis4"] = axis4
    kind = options.kind or "intensity"
    return volume_from_stack(array, plan, meta, kind=kind, options=options)


def _time_key(header: DicomHeader):
    return (header.temporal_position if header.temporal_position is not None else 0,
            header.trigger_time if header.trigger_time is not None else 0.0,
            header.acquisition_number if header.acquisition_number is not None else 0)


def _count_time_points(headers: list[DicomHeader]) -> int:
    count = len({_time_key(h) for h in headers})
    if len(headers) % count:
        raise GeometryError(f"{len(headers)} files do not split evenly into {count} time points", headers[0].path)
    return count


def _time_order(headers: list[DicomHeader]) -> list[int]:
    return sorted(range(len(headers)), key=lambda i: _time_key(headers[i]))


def _positions(headers: list[DicomHeader]) -> np.ndarray:
    """``(n, 3)`` ImagePositionPatient of each header; NaN where the tag is missing (plan_stack names those files)."""
    return np.array([h.ipp if h.ipp is not None else (np.nan, np.nan, np.nan) for h in headers], dtype=np.float64)


def _check_same_positions(block: list[DicomHeader], plan: StackPlan, path: str) -> None:
    positions = _positions(block)
    ours = np.sort(positions @ plan.direction[:, 2])
    reference = np.sort(plan.positions @ plan.direction[:, 2])
    if ours.shape != reference.shape or not np.all(np.abs(ours - reference) <= 0.01):  # NaN (no IPP) fails too
        raise GeometryError("the time points of this 4D series do not share slice positions", path)




# -- discovery helpers -------------------------------------------------------------------------
def _walk(root: str) -> Iterator[str]:
    if os.path.isfile(root):
        yield root
        return
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and ".medconv-tmp" not in name:
                yield os.path.join(folder, name)


_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


def _slug(text: str, limit: int = 40) -> str:
    text = _SLUG.sub("-", text.strip()).strip("-.")
    return text[:limit] or "x"


def _unique(ident: str, used: set[str]) -> str:
    candidate, n = ident, 2
    while candidate in used:
        candidate, n = f"{ident}_{n}", n + 1
    used.add(candidate)
    return candidate


def _relative_folder(path: str, base: str) -> str:
    folder = os.path.dirname(path)
    return os.path.relpath(folder, base).replace(os.sep, "/") if base else folder


def _detect_diffusion_4d(group: SeriesGroup) -> None:
    """Single-frame slices repeating positions with no temporal/echo index: a diffusion series
    (b-value / gradient tell the repeats apart) becomes layout ``dwi4d``, read by :mod:`.vendor4d`."""
    from .vendor4d import diffusion_volume_count

    count = diffusion_volume_count([h.path for h in group.headers])
    if count:
        group.layout, group.axis4 = "dwi4d", "volume"
        group.flags.remove("duplicate")
        group.flags.append(f"4D over diffusion weighting ({count} volumes)")


def _multiframe_units(group: SeriesGroup) -> list[SeriesGroup]:
    """A multi-frame stack as discovery units: one per frame group; pooled files split per file
    when their frames do not form volumes together (:mod:`.multiframe_units`)."""
    from .multiframe_units import plan_multiframe_units

    by_path = {h.path: h for h in group.headers}
    units = plan_multiframe_units([h.path for h in group.headers])
    pooled = len({unit.paths for unit in units}) == 1
    result = []
    for unit in units:
        split = list(group.split)
        if not pooled:
            split.append("multiframe file")
        if unit.frame_group:
            split.append(unit.frame_group)
        result.append(SeriesGroup([by_path[path] for path in unit.paths], split=split, layout="multiframe",
                                  axis4="time" if unit.shape and len(unit.shape) == 4 else None,
                                  flags=list(group.flags), frame_group=unit.frame_group, shape=unit.shape,
                                  spacing=unit.spacing))
    return result


def _source_for(group: SeriesGroup, base: str, used: set[str]) -> Source:
    first = group.first
    parts = [_slug(first.patient_id or "unknown"), _slug(first.study_date or "nodate"),
             f"S{first.series_number if first.series_number is not None else 'x'}", _slug(first.modality or "OT")]
    if first.series_description:
        parts.append(_slug(first.series_description, 24))
    parts.append((first.series_uid or "nouid")[-8:].replace(".", "-"))
    ident = "_".join(parts)
    if group.split:
        ident += "_" + _slug("-".join(group.split), 30)
    if group.excluded and group.layout == "object":
        ident += "_" + _slug(first.modality or "object")
    ident = _unique(ident, used)
    # one relpath per folder, not per file (30,000 files: 0.2 s)
    folders = sorted({_relative_folder(os.path.join(folder, ""), base)
                      for folder in {os.path.dirname(h.path) for h in group.headers}})
    info: dict = {
        "patient_id": first.patient_id, "study_date": first.study_date, "study_uid": first.study_uid,
        "series_uid": first.series_uid, "series_number": first.series_number, "modality": first.modality,
        "series_description": first.series_description, "study_description": first.study_description,
        "manufacturer": first.manufacturer, "n_files": len(group.headers), "layout": group.layout,
        "folder": folders[0] if len(folders) == 1 else folders, "flags": list(group.flags),
    }
    if group.split:
        info["split"] = list(group.split)
    if group.frame_group:
        # the output name tells the groups apart (the batch names by series_description)
        info["frame_group"] = group.frame_group
        info["series_description"] = " ".join(p for p in (first.series_description, group.frame_group) if p)
    if group.axis4:
        info["axis4"] = group.axis4
    if group.excluded:
        info["excluded"] = group.excluded
        if "2d" in group.flags:
            info["is_2d"] = True
    if group.unreadable:
        info["unreadable"] = group.unreadable
    if first.rows and first.columns:
        _geometry_info(group, info)
    return Source(ident, "dicom", tuple(h.path for h in group.headers), base, info)


def _geometry_info(group: SeriesGroup, info: dict) -> None:
    """Shape, spacing and geometry flags for ``medconv scan`` and naming (never raises)."""
    first = group.first
    if group.layout not in ("single", "dwi4d") or first.iop is None or first.pixel_spacing is None or group.excluded:
        frames = first.number_of_frames if group.layout == "multiframe" else len(group.headers)
        info["shape"] = list(group.shape) if group.shape else [first.columns, first.rows, frames]
        if group.layout == "mosaic" and first.mosaic_images:
            tiles = int(np.ceil(np.sqrt(first.mosaic_images)))
            info["shape"] = [first.columns // tiles, first.rows // tiles, first.mosaic_images]
            if len(group.headers) > 1:
                info["shape"].append(len(group.headers))
        if group.spacing:
            info["spacing"] = list(group.spacing)
        elif first.pixel_spacing:
            info["spacing"] = [first.pixel_spacing[1], first.pixel_spacing[0], first.slice_thickness]
        return
    headers = group.headers
    if group.layout == "dwi4d":  # one weighting's worth of slices: one header per position
        normal = np.cross(first.iop[:3], first.iop[3:])
        by_position = {}
        for header in headers:
            if header.ipp is not None:
                by_position.setdefault(round(float(np.dot(header.ipp, normal) / 0.01)), header)
        headers = list(by_position.values())
    elif group.axis4:
        keys = {}
        for header in headers:
            keys.setdefault(_time_key(header), []).append(header)
        headers = next(iter(keys.values()))
    positions = _positions(headers)
    try:
        plan = plan_stack(positions, first.iop, first.pixel_spacing, ReadOptions(), first.gantry_tilt, first.path,
                          rows=first.rows, columns=first.columns, slice_thickness=first.slice_thickness,
                          paths=[h.path for h in headers])
    except GeometryError as exc:
        info["flags"].append("geometry-error")
        info["geometry_error"] = exc.message
        info["shape"] = [first.columns, first.rows, len(headers)]
        return
    k, rows, cols = plan.shape_kji
    info["shape"] = [cols, rows, k]
    info["spacing"] = [round(v, 6) for v in plan.spacing]
    info["flags"].extend(flag for flag in plan.flags if flag not in info["flags"])
    if group.axis4:
        info["shape"].append(len(group.headers) // len(headers))
