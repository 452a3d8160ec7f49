"""Discovery: every file under a folder → header scan → series and stacks → one planned Source per unit.

:func:`discover_units` walks the folder (every file, whatever its suffix),
scans the headers (:mod:`.headers`), groups them (:mod:`.grouping`) and lets
each stack's layout plan it (:func:`.layouts.plan_unit`). Each unit becomes a
:class:`~medconv.source.Source` whose ``plan`` is the frozen
:class:`~.plan.UnitPlan` that reading consumes, and whose ``info`` holds the
JSON facts naming, ``medconv scan`` and the manifest use. Units set aside
(non-image objects, localizers, unreadable files) are Sources too, with the
reason in ``info``: nothing found is dropped silently.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Iterator, Sequence

from ...errors import MedconvError, OutsideDatasetError, SpecialFileError, UnreadableFileError
from ...options import ReadOptions
from ...layout import ascii_name
from ...source import InfoKey, Source
from ..files import check_dataset_file
from .grouping import SeriesGroup, group_headers
from .headers import DicomHeader, dicom_like_name, header_notes, header_problem, scan_files
from .plan import Layout, PlanFailure, UnitPlan

log = logging.getLogger(__name__)


@dataclass
class Unit:
    """One discovered unit before it becomes a Source: its group, and its plan (or why it has none)."""

    group: SeriesGroup
    plan: UnitPlan | None = None
    failure: Exception | None = None


@dataclass
class Discovery:
    """What a discovery found: the units, and the files it skipped or could not parse (with why)."""

    units: list[Unit] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    #: Links inside SRC resolving outside it (not opened): one refused unit per folder.
    outside: list[tuple[str, OutsideDatasetError]] = field(default_factory=list)
    #: The unreadable paths that are special files (FIFOs, devices, sockets).
    special: set[str] = field(default_factory=set)
    #: The skipped paths that are not regular files (folder links, FIFOs named like nothing DICOM): nothing may
    #: open them, not even to look for LIDC XML (opening a FIFO blocks).
    unopened: set[str] = field(default_factory=set)


@dataclass
class Walk:
    """The files under SRC, sorted by what discovery may do with them (nothing is opened to decide)."""

    #: Regular files (and links to regular files inside SRC): their headers are scanned.
    files: list[str] = field(default_factory=list)
    #: Links that resolve outside SRC: never opened (``--follow-outside`` reads them at read time).
    outside: list[tuple[str, OutsideDatasetError]] = field(default_factory=list)
    #: ``(path, error)`` of what cannot be read: FIFOs, devices, sockets (``SpecialFileError``), links
    #: pointing nowhere, folders that cannot be listed. A FIFO is never opened: opening it blocks.
    refused: list[tuple[str, MedconvError]] = field(default_factory=list)
    #: ``(path, reason)``: links to folders (not followed, like every folder link under SRC).
    skipped: list[tuple[str, str]] = field(default_factory=list)


def walk(root: str) -> Walk:
    """Every file under ``root`` (or ``root`` itself), sorted, hidden files and medconv temporaries left out.

    Entries are told apart by their directory entry type (no ``stat`` for regular
    files); a link costs a ``stat`` and a ``realpath`` (:func:`~medconv.readers.files.check_dataset_file`,
    the one stay-inside-SRC rule). Folder links are not followed.
    """
    found = Walk()
    if not os.path.isdir(root):
        try:  # a file named on its own: only the special-file rule (it was named on purpose)
            check_dataset_file(root, os.path.dirname(os.path.abspath(root)), follow_outside=True)
            found.files.append(root)
        except MedconvError as exc:
            found.refused.append((root, exc))
        return found
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as exc:
            found.refused.append((folder, UnreadableFileError(f"this folder cannot be listed ({exc.strerror or exc})",
                                                              folder)))
            continue
        subfolders = []
        for entry in entries:
            name = entry.name
            if name.startswith(".") or ".medconv-tmp" in name:
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    subfolders.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    found.files.append(entry.path)
                elif entry.is_symlink():
                    _walk_link(entry.path, root, found)
                else:
                    check_dataset_file(entry.path, root)  # a FIFO, device or socket: raises
            except OutsideDatasetError as exc:
                found.outside.append((entry.path, exc))
            except MedconvError as exc:
                found.refused.append((entry.path, exc))
            except OSError as exc:
                found.refused.append((entry.path, UnreadableFileError(f"cannot be examined ({exc.strerror or exc})",
                                                                      entry.path)))
        pending.extend(reversed(subfolders))  # depth first, in name order, like os.walk top-down
    return found


def _walk_link(path: str, root: str, found: Walk) -> None:
    """A link under SRC: a regular file inside SRC is scanned; a folder is not followed; the rest raises."""
    if os.path.isdir(path):
        found.skipped.append((path, "a link to a folder: not followed (folder links under SRC never are)"))
        return
    check_dataset_file(path, root)  # special file, dangling, outside SRC: raises
    found.files.append(path)


def plan_groups(headers: Sequence[DicomHeader]) -> list[Unit]:
    """Group scanned headers and plan every stack (one unit per frame group of a multi-frame stack)."""
    groups = group_headers(headers)
    groups.sort(key=lambda g: (g.first.patient_id, g.first.study_date, g.first.series_number or 0,
                               g.first.series_uid, tuple(s.text for s in g.split)))
    units: list[Unit] = []
    for group in groups:
        if group.unreadable or group.layout == Layout.OBJECT.value:
            units.append(Unit(group))
            continue
        problem = next((p for p in map(header_problem, group.headers) if p is not None), None)
        if problem is not None:  # a corrupt geometry or pixel description: the unit fails naming it (not excluded
            group.excluded = None  # as "colour" for SamplesPerPixel 5), and read() raises it again
            units.append(Unit(group, failure=problem))
            continue
        if group.excluded and group.layout != Layout.SINGLE_FRAME.value and "2d" not in group.flags:
            units.append(Unit(group))
            continue
        from .layouts import plan_unit

        try:
            if "duplicate" in group.flags and group.layout == Layout.SINGLE_FRAME.value:
                outcome = _vendor_4d(group)
            else:
                outcome = plan_unit(group)
        except Exception as exc:  # typed or not, it stays with this unit: read() raises it again
            units.append(Unit(group, failure=exc))
            continue
        notes = tuple(dict.fromkeys(note for header in group.headers for note in header_notes(header)))
        for item in outcome if isinstance(outcome, list) else [outcome]:
            if isinstance(item, PlanFailure):
                units.append(Unit(_subgroup(group, item.headers), failure=item.error))
            else:
                extra = tuple(group.warnings) + notes  # grouping's decisions (a blank SeriesInstanceUID), bad elements
                if extra:
                    item = replace(item, warnings=extra + tuple(item.warnings))
                units.append(Unit(_subgroup(group, item.headers, item), plan=item))
    return units


def _vendor_4d(group: SeriesGroup) -> UnitPlan:
    """A single-frame stack whose repeated positions no index tells apart: the vendor-4D plan (repeats told
    apart by diffusion key, else ordered by acquisition). Raises the planner's GeometryError when the
    repeats do not form complete volumes (a missing file) or nothing orders them (duplicated files)."""
    from .layouts.vendor4d import plan_vendor_4d

    trial = SeriesGroup(list(group.headers), split=list(group.split), layout=Layout.VENDOR_4D.value,
                        frame_group=group.frame_group)
    plan = plan_vendor_4d(trial)
    group.layout, group.axis4 = Layout.VENDOR_4D.value, plan.axis4.value
    group.flags.remove("duplicate")
    from .order import order_frames

    diffusion = any(frame.diffusion is not None for frame in plan.frames)
    count = order_frames(plan).count
    group.flags.append(f"4D over {'diffusion weighting' if diffusion else 'acquisition order'} ({count} volumes)")
    return plan


def _subgroup(group: SeriesGroup, headers: Sequence[DicomHeader], plan: UnitPlan | None = None) -> SeriesGroup:
    """The group of one planned unit (a multi-frame stack may plan several: per frame group or per file)."""
    if plan is None and len(headers) == len(group.headers):
        return group
    by_path = {h.path for h in headers}
    members = [h for h in group.headers if h.path in by_path]
    sub = SeriesGroup(members or list(group.headers), split=list(plan.splits) if plan else list(group.split),
                      excluded=group.excluded, layout=group.layout, axis4=plan.axis4.value if plan and plan.axis4 else None,
                      flags=list(group.flags), frame_group=plan.label if plan else group.frame_group,
                      broken=list(group.broken), time_attribute=group.time_attribute,
                      warnings=list(group.warnings))
    return sub


def discover_units(root: str, jobs: int | None = None) -> Discovery:
    """Scan and plan every unit under ``root`` (a folder or one file); never raises for one file's sake."""
    walked = walk(root)
    result = scan_files(walked.files, jobs=jobs)
    skipped = result.skipped + walked.skipped
    unreadable = list(result.unreadable)
    special: set[str] = set()
    unopened = {path for path, _ in walked.skipped}
    for path, error in walked.refused:  # a FIFO named like a slice is a row; one named notes.fifo is skipped
        if dicom_like_name(path) or os.path.isdir(path):
            unreadable.append((path, error.message))
            if isinstance(error, SpecialFileError):
                special.add(path)
        else:
            skipped.append((path, f"not read: {error.message}"))
            unopened.add(path)
    if skipped:
        reasons = Counter(reason for _, reason in skipped)
        log.info("%s: skipped %d non-DICOM file(s): %s", root, len(skipped),
                 ", ".join(f"{n} {r}" for r, n in reasons.items()))
    units = plan_groups(result.headers)
    _note_unreadable_neighbours(units, unreadable + [(path, exc.message) for path, exc in walked.outside])
    return Discovery(units, skipped, unreadable, walked.outside, special, unopened)


def _note_unreadable_neighbours(units: list[Unit], unreadable: Sequence[tuple[str, str]]) -> None:
    """Give every plan the unreadable files of its folder(s): a gap next to one is not filled."""
    if not unreadable:
        return
    by_folder: dict[str, list[str]] = {}
    for path, _ in unreadable:
        by_folder.setdefault(os.path.dirname(path), []).append(path)
    for unit in units:
        if unit.plan is None:
            continue
        folders = {os.path.dirname(h.path) for h in unit.plan.headers}
        nearby = tuple(path for folder in sorted(folders) for path in by_folder.get(folder, ()))
        if nearby:
            unit.plan = replace(unit.plan, unreadable_nearby=nearby)


# -- Sources --------------------------------------------------------------------------------------
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


def slug(text: str, limit: int = 40) -> str:
    """``text`` reduced to ``[A-Za-z0-9._-]`` for source ids (non-ASCII made ASCII by the naming rule first)."""
    text = _SLUG.sub("-", ascii_name(text).strip()).strip("-.")
    return text[:limit] or "x"


def _unique(ident: str, used: set[str]) -> str:
    candidate, n = ident, 2
    while candidate in used:
        candidate, n = f"{ident}_{n}", n + 1
    used.add(candidate)
    return candidate


def relative_folder(path: str, base: str) -> str:
    folder = os.path.dirname(path)
    return os.path.relpath(folder, base).replace(os.sep, "/") if base else folder


def sources_of(discovery: Discovery, root: str, reader: str = "dicom") -> Iterator[Source]:
    """The Sources of a discovery: unreadable files first, then every unit in series order.

    RTSTRUCT and SEG objects, and LIDC XML among the skipped files, become annotation
    units paired with the image unit they annotate (:mod:`medconv.readers.annotations.discovery`).
    A discovery with neither a non-image object nor a skipped file holds no annotation:
    the annotation modules are then not imported (15-20 ms of a small run).
    """
    base = root if os.path.isdir(root) else ""
    used: set[str] = set()
    sources = []
    for path, reason in discovery.unreadable:
        ident = _unique(f"unreadable_{slug(os.path.basename(path))}", used)
        info = {InfoKey.UNREADABLE: reason, "n_files": 1, "folder": relative_folder(path, base)}
        if path in discovery.special:
            info[InfoKey.SPECIAL_FILE] = True
        sources.append(Source(ident, reader, (path,), base, info))
    sources.extend(outside_sources(discovery.outside, base, used, reader))
    for unit in discovery.units:
        try:
            sources.append(source_for(unit, base, used, reader))
        except Exception as exc:  # a unit that cannot even be described is one failed row
            paths = tuple(h.path for h in unit.group.headers)
            ident = _unique(f"undescribed_{slug(os.path.basename(paths[0]))}", used)
            sources.append(Source(ident, reader, paths, base, {
                InfoKey.UNREADABLE: f"cannot describe this unit ({type(exc).__name__}: {exc})", "n_files": len(paths),
                "folder": relative_folder(paths[0], base)}))
    regular = [(path, reason) for path, reason in discovery.skipped if path not in discovery.unopened]
    if not regular and not any(source.info.get(InfoKey.LAYOUT) == Layout.OBJECT.value for source in sources):
        yield from sources
        return
    from ..annotations.discovery import with_annotation_units

    yield from with_annotation_units(sources, regular, base)


def outside_sources(links: Sequence[tuple[str, OutsideDatasetError]], base: str, used: set[str],
                    reader: str = "dicom") -> Iterator[Source]:
    """One Source per folder of links that resolve outside SRC; nothing of them has been opened.

    Reading one raises its :class:`~medconv.errors.OutsideDatasetError` unless
    ``ReadOptions.follow_outside``; then its files are planned like a Source made by
    hand (one image stack).
    """
    by_folder: dict[str, list[tuple[str, OutsideDatasetError]]] = {}
    for path, error in links:
        by_folder.setdefault(os.path.dirname(path), []).append((path, error))
    for folder, found in by_folder.items():
        first = found[0][1]
        more = f" (and {len(found) - 1} more link(s) in this folder)" if len(found) > 1 else ""
        ident = _unique(f"outside_{slug(os.path.basename(found[0][0]))}", used)
        yield Source(ident, reader, tuple(path for path, _ in found), base, {
            InfoKey.ERROR: first.one_line() + more, InfoKey.OUTSIDE_DATASET: first.one_line() + more,
            "n_files": len(found),
            "folder": relative_folder(found[0][0], base)})


def source_for(unit: Unit, base: str, used: set[str], reader: str = "dicom") -> Source:
    """The Source of one planned unit (ids readable and unique within ``used``)."""
    group, plan = unit.group, unit.plan
    first = group.first
    parts = [slug(first.patient_id or "unknown"), slug(first.study_date or "nodate"),
             f"S{first.series_number if first.series_number is not None else 'x'}", slug(first.modality or "OT")]
    if first.series_description:
        parts.append(slug(first.series_description, 24))
    parts.append((first.series_uid or "nouid")[-8:].replace(".", "-"))
    ident = "_".join(parts)
    if group.split:
        ident += "_" + slug("-".join(s.text for s in group.split), 30)
    if group.excluded and group.layout == Layout.OBJECT.value:
        ident += "_" + slug(first.modality or "object")
    ident = _unique(ident, used)
    # one relpath per folder, not per file (30,000 files: 0.2 s)
    folders = sorted({relative_folder(os.path.join(folder, ""), base)
                      for folder in {os.path.dirname(h.path) for h in group.headers}})
    info: dict = {
        InfoKey.PATIENT_ID: first.patient_id, InfoKey.STUDY_DATE: first.study_date, InfoKey.STUDY_UID: first.study_uid,
        InfoKey.SERIES_UID: first.series_uid, InfoKey.SERIES_NUMBER: first.series_number,
        InfoKey.MODALITY: first.modality, InfoKey.SERIES_DESCRIPTION: first.series_description,
        "study_description": first.study_description, "manufacturer": first.manufacturer,
        "patient_name": first.patient_name, "n_files": len(group.headers), InfoKey.LAYOUT: group.layout,
        "folder": folders[0] if len(folders) == 1 else folders, "flags": list(group.flags),
    }
    if group.split:
        info["split"] = [s.text for s in group.split]
    if group.frame_group:
        # the output name tells the units apart (the batch names by series_description)
        info[InfoKey.FRAME_GROUP] = group.frame_group
        info[InfoKey.SERIES_DESCRIPTION] = " ".join(p for p in (first.series_description, group.frame_group) if p)
    if group.axis4:
        info["axis4"] = group.axis4
    if group.excluded:
        info[InfoKey.EXCLUDED] = group.excluded
        if "2d" in group.flags:
            info[InfoKey.IS_2D] = True
    if group.unreadable:
        info[InfoKey.UNREADABLE] = group.unreadable
    if plan is not None and plan.layout in (Layout.PROJECTION, Layout.CINE_2D):
        info["file"] = _file_field(plan.first.path, base)  # one file, one image: named after it (dcm2png)
    if unit.failure is not None:
        info["flags"].append("geometry-error")
        info[InfoKey.GEOMETRY_ERROR] = getattr(unit.failure, "message", str(unit.failure))
    if first.rows and first.columns:
        _geometry_info(unit, info)
    return Source(ident, reader, tuple(h.path for h in group.headers), base, info, plan=plan)


#: File suffixes of DICOM files, left out of the ``file`` naming field (longest first).
DICOM_FILE_SUFFIXES = (".dcm.gz", ".dicom", ".dcm", ".ima")


def _file_field(path: str, base: str) -> str:
    """The file of a one-file unit relative to the root, without its DICOM suffix, ``/``-separated."""
    relative = os.path.relpath(path, base).replace(os.sep, "/") if base else os.path.basename(path)
    lower = relative.lower()
    for suffix in DICOM_FILE_SUFFIXES:
        if lower.endswith(suffix) and len(relative) > len(suffix):
            return relative[: -len(suffix)]
    return relative


def _geometry_info(unit: Unit, info: dict) -> None:
    """Shape, spacing and geometry flags for ``medconv scan`` and naming (never raises)."""
    from .assemble import stack_geometry
    from .order import order_frames

    group, plan = unit.group, unit.plan
    first = group.first
    if plan is None or group.excluded or plan.iop is None or plan.pixel_spacing is None:
        frames = first.number_of_frames if group.layout in ("multiframe", "cine") else len(group.headers)
        info[InfoKey.SHAPE] = [first.columns, first.rows, frames]
        if first.pixel_spacing:
            info["spacing"] = [first.pixel_spacing[1], first.pixel_spacing[0], first.slice_thickness]
        return
    try:
        order = order_frames(plan)
        geometry, _ = stack_geometry(plan, order, ReadOptions())
    except Exception as exc:  # typed or not: reading the unit raises it again, naming the file
        info["flags"].append("geometry-error")
        info[InfoKey.GEOMETRY_ERROR] = exc.message if isinstance(exc, MedconvError) else f"{type(exc).__name__}: {exc}"
        info[InfoKey.SHAPE] = [plan.columns, plan.rows, len(plan.frames)]
        return
    k, rows, cols = geometry.shape_kji
    info[InfoKey.SHAPE] = [cols, rows, k] + ([order.count] if order.count > 1 else [])
    info["spacing"] = [round(v, 6) for v in geometry.spacing]
    info["flags"].extend(flag for flag in geometry.flags if flag not in info["flags"])
