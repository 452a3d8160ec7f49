"""Sources: the convertible units a reader finds in a dataset, before any pixel is read."""

from __future__ import annotations

import os
import types
from dataclasses import dataclass, field
from enum import Enum, unique
from typing import Any, Mapping


@unique
class InfoKey(str, Enum):
    """The ``Source.info`` keys that carry a decision, or that a module other than their writer reads.

    One definition per key: readers write them and the batch layer, naming, export and
    ``medconv scan`` read them through this enum (the decisions through the typed
    properties of :class:`Source`), never through a bare string. The values are the
    JSON keys themselves, unchanged: ``Source`` stores every key as a plain ``str``, so
    pickles, ``medconv scan`` output, ``--name`` fields and the resume fingerprint are
    what they were.

    Keys not listed here are metadata for the user and stay plain strings: header facts
    and flags shown by ``medconv scan`` (its table, note and ``info`` column) and usable
    as ``--name`` fields, and nothing else reads them: ``n_files``, ``folder``,
    ``spacing``, ``dtype``, ``axes``, ``split``, ``axis4``, ``file``, ``kind_guess``,
    ``kind_reason``, ``flags`` and the flag booleans (``4d``, ``rgb`` ...),
    ``referenced_series``, ``study_description``, ``manufacturer``, ``patient_name``,
    ``reason`` and each format's own details (TIFF ``tiff_shape``, MetaImage
    ``element_type`` ...).
    """

    # -- decisions: whether and how the unit is read ----------------------------------------------------------
    #: ``str``: why the unit is not an image volume (a localizer, a report, a 2D image ...): reading it raises
    #: NotAVolumeError; planned as excluded (:attr:`Source.excluded`).
    EXCLUDED = "excluded"
    #: ``True``: the excluded unit is a 2D image, converted after all with ``ReadOptions.include_2d``.
    IS_2D = "is_2d"
    #: ``str``: why the unit's file cannot be read (truncated, not DICOM ...): reading it fails.
    UNREADABLE = "unreadable"
    #: ``str``: a failure known at discovery, one line (a header that does not parse, an annotation that cannot
    #: be paired, a link out of SRC): reading the unit raises it (:attr:`Source.error`).
    ERROR = "error"
    #: ``True``: the unreadable unit is a FIFO, device or socket (reading raises SpecialFileError).
    SPECIAL_FILE = "special_file"
    #: Truthy (the reason, or ``True``): the unit's files are links that resolve outside SRC; reading raises
    #: OutsideDatasetError unless ``ReadOptions.follow_outside``.
    OUTSIDE_DATASET = "outside_dataset"
    #: ``True``: a unit made by planning for a reader whose discovery broke off; it fails with ``ERROR``,
    #: ``ERROR_TYPE`` (the error's code) and ``TRACEBACK`` (internal errors only).
    DISCOVERY_FAILED = "discovery_failed"
    ERROR_TYPE = "error_type"
    TRACEBACK = "traceback"
    #: ``str``: the unit id of the unit this one is drawn on (an annotation's masks on its image), ``""`` when
    #: it could not be paired; present on every annotation unit (:attr:`Source.is_annotation`). Such a unit
    #: is named after that unit: its output name plus ``NAME_SUFFIX``.
    ANNOTATES = "annotates"
    #: ``str``: what a unit that annotates another adds to that unit's output name.
    NAME_SUFFIX = "name_suffix"
    #: ``str``: the frame group of a multi-frame object this unit reads (DICOM); part of the resume fingerprint.
    FRAME_GROUP = "frame_group"
    #: ``str``: how the unit's pixels are laid out (DICOM: a ``readers.dicom.plan.Layout`` value; ``object``
    #: for a non-image object, which annotation discovery takes apart).
    LAYOUT = "layout"
    #: ``str``: why the unit's slice geometry is inconsistent (reading it fails).
    GEOMETRY_ERROR = "geometry_error"

    # -- annotation units (annotation discovery writes them; export and ``medconv scan`` read them) --------------
    #: ``str``: a ``readers.annotations.model.AnnotationKind`` value.
    ANNOTATION_KIND = "annotation_kind"
    #: ``str``: the ``PairingRule`` value that paired it.
    PAIRING = "pairing"
    #: ``list[str]``: the names of every ROI / segment its header lists.
    ROI_NAMES = "roi_names"
    #: ``int``: how many contours (SEG: frames) its header lists.
    CONTOURS = "contours"
    #: ``list[dict]``: its label table (``{value, name, ...}``), for a reader that knows it up front.
    LABELS = "labels"

    # -- header facts that naming, pairing, export and the manifest read --------------------------------------
    PATIENT_ID = "patient_id"
    STUDY_UID = "study_uid"
    STUDY_DATE = "study_date"
    #: A DICOM-like unit has one: naming uses the DICOM template and tells clashing names apart by it.
    SERIES_UID = "series_uid"
    SERIES_NUMBER = "series_number"
    MODALITY = "modality"
    SERIES_DESCRIPTION = "series_description"
    #: ``list[int]``: the array shape, ``[i, j, k]`` (``+ [t]``).
    SHAPE = "shape"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Source:
    """One convertible unit: a NIfTI file, a MetaImage header, a TIFF stack, or a DICOM series.

    Cheap to build (headers only) and picklable, so that it can travel to worker
    processes.

    Parameters
    ----------
    id:
        Stable identifier, unique within a dataset (used in manifests and as the
        fallback output name): for files the path relative to the dataset root
        without suffix, for DICOM series a readable name plus UID fragment.
    reader:
        Name of the reader that found it and will read it.
    paths:
        The files that make it up, in no particular order.
    root:
        The dataset folder it was found under ('' when a single file was given).
    info:
        Header facts for naming and planning (patient, modality, slice count,
        geometry flags ...) and the reader's decisions about the unit (excluded,
        unreadable, what it annotates ...); JSON-serialisable, keys are plain ``str``
        (an :class:`InfoKey` given as a key is stored as its value). The keys that
        matter beyond display are :class:`InfoKey`; the decisions are read through
        the properties below. Output naming templates use every key.
    plan:
        The reader's own plan of the unit (for DICOM a frozen
        ``medconv.readers.dicom.plan.UnitPlan``: layout, frame references, split
        reasons), made at discovery and consumed by the same reader's ``read``;
        picklable, never JSON. Only the reader that made it looks inside;
        ``None`` when the reader needs none (or the Source was built by hand).
    """

    id: str
    reader: str
    paths: tuple[str, ...]
    root: str = ""
    info: Mapping[str, Any] = field(default_factory=dict)
    plan: object | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "paths", tuple(os.fspath(p) for p in self.paths))
        info = {key.value if isinstance(key, InfoKey) else key: value for key, value in dict(self.info).items()}
        object.__setattr__(self, "info", types.MappingProxyType(info))

    def __reduce__(self):  # MappingProxyType does not pickle
        return (Source, (self.id, self.reader, self.paths, self.root, dict(self.info), self.plan))

    @property
    def path(self) -> str:
        """The first (for single-file formats: the only) file."""
        return self.paths[0]

    @property
    def relative_path(self) -> str:
        """The first file's path relative to ``root`` (the file name when no root)."""
        if self.root:
            return os.path.relpath(self.path, self.root)
        return os.path.basename(self.path)

    # -- the reader's decisions, typed (stored in ``info`` under their InfoKey) -----------------------------------

    @property
    def excluded(self) -> str | None:
        """Why the unit is not an image volume (``info[InfoKey.EXCLUDED]``), ``None`` when it is one."""
        return _text_or_none(self.info.get(InfoKey.EXCLUDED.value))

    @property
    def is_2d(self) -> bool:
        """Whether the excluded unit is a 2D image (``ReadOptions.include_2d`` converts it)."""
        return bool(self.info.get(InfoKey.IS_2D.value))

    @property
    def unreadable(self) -> str | None:
        """Why the unit's file cannot be read (``info[InfoKey.UNREADABLE]``), ``None`` when nothing says so."""
        return _text_or_none(self.info.get(InfoKey.UNREADABLE.value))

    @property
    def error(self) -> str | None:
        """The failure known at discovery (``info[InfoKey.ERROR]``): reading the unit raises it; else ``None``."""
        return _text_or_none(self.info.get(InfoKey.ERROR.value))

    @property
    def is_annotation(self) -> bool:
        """Whether the unit is drawn on another unit (an annotation object, paired or not)."""
        return InfoKey.ANNOTATES.value in self.info

    @property
    def annotates(self) -> str:
        """The id of the unit this one is drawn on; ``""`` when it is not an annotation or could not be paired."""
        return str(self.info.get(InfoKey.ANNOTATES.value) or "")


def _text_or_none(value: Any) -> str | None:
    return str(value) if value else None
