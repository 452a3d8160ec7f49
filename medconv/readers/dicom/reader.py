"""The DICOM reader: discovery of every unit under a folder, reading one as a Volume, and its image reference.

``discover(root)`` (:mod:`.discover`) yields one :class:`~medconv.source.Source`
per unit, each carrying its frozen :class:`~.plan.UnitPlan`; ``read(source)``
hands that plan to the one assembly path (:mod:`.assemble`);
``image_reference(source)`` gives annotation readers the grid the image is
written on and its acquired instances, from headers only. The reader keeps no
state between calls: everything a call needs travels in the Source.
"""

from __future__ import annotations

import os
from typing import Iterator

from ...errors import NotAVolumeError, SpecialFileError, UnreadableFileError, UnsupportedFormatError
from ...image_reference import ImageReference, ReferencedInstance
from ...options import ReadOptions
from ...source import InfoKey, Source
from ...volume import Volume
from ..files import check_source
from .discover import Unit, discover_units, plan_groups, sources_of
from .headers import DicomHeader, looks_like_dicom, read_header
from .plan import UnitPlan

DICOM_SUFFIXES = (".dcm", ".dcm.gz", ".ima")


class DicomReader:
    """Every DICOM series under a folder; one Volume per image stack."""

    name = "dicom"
    suffixes = DICOM_SUFFIXES

    def __init__(self, jobs: int | None = None):
        #: Worker processes for the header scan (``None``: every core).
        self.jobs = jobs
        #: ``(path, reason)`` of the files the last :meth:`discover` skipped as not DICOM (for reports only:
        #: :meth:`read` never looks at it).
        self.skipped: list[tuple[str, str]] = []

    def sniff(self, path: str) -> bool:
        """``DICM`` at byte 128, a preamble-less DICOM start, or ``.dcm.gz``; never raises."""
        try:
            return looks_like_dicom(os.fspath(path))
        except Exception:
            return False

    def discover(self, root: str) -> Iterator[Source]:
        """One Source per image unit (and per set-aside object or unreadable file) under ``root``.

        Every file is considered whatever its suffix (TCIA files often have none);
        DICOMDIR and non-DICOM files are skipped and listed in :attr:`skipped`.
        Each Source's ``plan`` is what :meth:`read` and :meth:`image_reference` use.
        """
        root = os.fspath(root)
        discovery = discover_units(root, jobs=self.jobs)
        self.skipped = discovery.skipped
        yield from sources_of(discovery, root, self.name)

    def plan(self, source: Source, options: ReadOptions = ReadOptions()) -> UnitPlan:
        """The unit plan of ``source``: the one discovery made, or one made now from its files.

        Raises
        ------
        NotAVolumeError
            The source is a non-image object, a localizer, or a 2D image without ``include_2d``.
        UnreadableFileError, GeometryError, UnsupportedFormatError
            As the message says; each names a file and what to do.
        """
        if source.info.get(InfoKey.SPECIAL_FILE):
            raise SpecialFileError(source.info[InfoKey.UNREADABLE], source.path,
                                   "medconv reads regular files only; remove it from the dataset folder")
        if source.unreadable:
            raise UnreadableFileError(source.unreadable, source.path, "the file is truncated or corrupt")
        if source.info.get(InfoKey.OUTSIDE_DATASET):
            check_source(source, options)  # the OutsideDatasetError of its first link, unless follow_outside
        if source.excluded and not (options.include_2d and source.is_2d):
            raise NotAVolumeError(f"not converted: {source.excluded}", source.path,
                                  "to convert 2D images as one-slice volumes, pass --include-2d "
                                  "(ReadOptions(include_2d=True))" if source.is_2d else None)
        if isinstance(source.plan, UnitPlan):
            return source.plan
        return _plan_files(source, options)

    def read(self, source: Source, options: ReadOptions = ReadOptions()) -> Volume:
        """The Volume of one unit found by :meth:`discover` (or of a hand-made list of files).

        Raises
        ------
        NotAVolumeError
            The source is a non-image object, a localizer, or a 2D image without ``include_2d``.
        UnreadableFileError, GeometryError, MissingDependencyError, UnsupportedFormatError
            As the message says; each names a file and what to do.
        """
        from .assemble import assemble
        from .pixels import check_unit_voxels

        plan = self.plan(source, options)
        check_source(source, options)  # a file swapped for a FIFO, or for a link out of SRC, since discovery
        check_unit_voxels(plan, options)  # before any buffer is allocated
        return assemble(plan, options)

    def image_reference(self, source: Source) -> ImageReference:
        """The grid ``read(source)`` writes the image on, and its acquired instances; headers only.

        The grid equals ``Grid.of(self.read(source))`` (after any tilt or uneven-spacing
        repair); ``instances`` lists every acquired frame with its SOP Instance UID
        and ImagePositionPatient, sorted along the slice normal.
        """
        from ...transforms.resample import Grid
        from .assemble import stack_geometry
        from .order import normal_of, order_frames

        plan = self.plan(source)
        order = order_frames(plan)
        geometry, _ = stack_geometry(plan, order)
        k, rows, columns = geometry.shape_kji
        grid = Grid(shape=(columns, rows, k), spacing=tuple(float(v) for v in geometry.spacing),
                    origin=tuple(float(v) for v in geometry.origin),
                    direction=tuple(float(v) for v in geometry.direction.ravel()))
        normal = normal_of(plan.iop) if plan.iop is not None else None
        instances = [ReferencedInstance(frame.sop_instance_uid, tuple(frame.position), frame.frame)
                     for frame in plan.frames if frame.position is not None]
        if normal is not None:
            instances.sort(key=lambda instance: float(sum(a * b for a, b in zip(instance.position, normal))))
        first = plan.first
        return ImageReference(unit_id=source.id, series_uid=first.series_uid, study_uid=first.study_uid,
                              frame_of_reference_uid=first.frame_of_reference_uid, modality=first.modality,
                              grid=grid, instances=tuple(instances))


def _read_headers(paths) -> list[DicomHeader]:
    headers = []
    for path in paths:
        try:
            headers.append(read_header(path))
        except Exception as exc:  # a third-party parse error on a bad file: a typed error naming it
            raise UnreadableFileError(f"cannot parse the DICOM header ({type(exc).__name__}: {exc})", path,
                                      "the file is truncated or corrupt; remove it or re-download the series") from exc
    return headers


def _plan_files(source: Source, options: ReadOptions) -> UnitPlan:
    """Plan a Source that carries no plan (built by hand, or whose planning failed at discovery)."""
    units: list[Unit] = plan_groups(_read_headers(source.paths))
    wanted = source.info.get(InfoKey.FRAME_GROUP)
    if wanted is not None:
        units = [u for u in units if u.plan is not None and u.plan.frame_group == wanted] or units
    candidates = [u for u in units if u.group.excluded is None or (options.include_2d and "2d" in u.group.flags)]
    if not candidates and len(units) == 1:
        raise NotAVolumeError(f"not converted: {units[0].group.excluded}", source.path)
    enhanced_groups = [u for u in candidates if u.plan is not None and u.plan.frame_group]
    if len(candidates) > 1 and len(enhanced_groups) == len(candidates) and wanted is None:
        chosen = candidates[0]  # one multi-frame object's frame groups: read the first, name the rest
        rest = ", ".join(repr(u.plan.frame_group) for u in candidates[1:])
        note = (f"{len(candidates)} frame groups in this object; read {chosen.plan.frame_group!r}, "
                f"not converted: {rest}")
        from dataclasses import replace

        return replace(chosen.plan, warnings=chosen.plan.warnings + (note,))
    if len(candidates) != 1:
        raise UnsupportedFormatError(f"the files form {len(candidates)} image stacks, not one", source.path,
                                     "discover the folder to get one source per series")
    unit = candidates[0]
    if unit.group.unreadable:
        raise UnreadableFileError(unit.group.unreadable, source.path, "the file is truncated or corrupt")
    if unit.failure is not None:
        raise unit.failure
    if unit.plan is None:
        raise NotAVolumeError(f"not converted: {unit.group.excluded}", source.path)
    return unit.plan
