"""Sources: the convertible units a reader finds in a dataset, before any pixel is read."""

from __future__ import annotations

import os
import types
from dataclasses import dataclass, field
from typing import Any, Mapping


#: ``Source.info`` key of a unit drawn on another unit (an annotation's masks on its image): that unit's id.
#: Such a unit is named after it: the other unit's output name plus ``info[NAME_SUFFIX]``.
ANNOTATES = "annotates"
#: ``Source.info`` key: what a unit that annotates another adds to that unit's output name.
NAME_SUFFIX = "name_suffix"


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
        geometry flags ...); JSON-serialisable. Output naming templates use them.
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
        object.__setattr__(self, "info", types.MappingProxyType(dict(self.info)))

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
