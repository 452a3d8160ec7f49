"""Opening annotation DICOM objects (RTSTRUCT, SEG) with typed errors, and small value helpers."""

from __future__ import annotations

import io
import os
from typing import Any, Iterable, Optional

from ...errors import UnreadableFileError, UnsupportedFormatError

RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
LABEL_MAP_SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.7"
SEG_SOP_CLASSES = frozenset({SEG_STORAGE, LABEL_MAP_SEG_STORAGE})


class _TruncationWatch(io.RawIOBase):
    """A file wrapper that notices reads cut short by the end of the file.

    pydicom stops quietly at the end of a truncated file (the elements read so far
    make a smaller, valid-looking dataset). A read that returns fewer bytes than
    asked, or a second read at the end of the file (a sequence left open, then the
    dataset), means the file was cut.
    """

    def __init__(self, raw):
        self.raw = raw
        self.short_reads = 0
        self.reads_at_end = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        if size and size > 0:
            if not data:
                self.reads_at_end += 1
            elif len(data) < size:
                self.short_reads += 1
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()

    @property
    def truncated(self) -> bool:
        return self.short_reads > 0 or self.reads_at_end > 1


#: Top-level sequences an object of each kind cannot lack (a file cut between elements loses them).
REQUIRED_SEQUENCES = {"RTSTRUCT": ("StructureSetROISequence", "ROIContourSequence"),
             "SEG": ("SegmentSequence", "PerFrameFunctionalGroupsSequence")}


def read_dataset(path: str | os.PathLike, *, expect: str, stop_before_pixels: bool = False):
    """The dataset at ``path`` (whole), checked to be ``expect`` ("RTSTRUCT" or "SEG").

    A truncated or non-DICOM file raises :class:`UnreadableFileError`; a DICOM
    object of another kind :class:`UnsupportedFormatError`.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    from ..dicom.headers import is_bare_dataset

    path = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            watch = _TruncationWatch(handle)
            dataset = pydicom.dcmread(watch, stop_before_pixels=stop_before_pixels, force=is_bare_dataset(path))
            modality = str(dataset.get("Modality", ""))
            sop_class = str(dataset.get("SOPClassUID", ""))
            if expect == "RTSTRUCT":
                ok = modality == "RTSTRUCT" or sop_class == RTSTRUCT_STORAGE
            else:
                ok = modality == "SEG" or sop_class in SEG_SOP_CLASSES
            missing = [keyword for keyword in REQUIRED_SEQUENCES[expect] if keyword not in dataset] if ok else []
            if ok and (watch.truncated or missing):
                detail = f"it lacks {', '.join(missing)}" if missing else "it ends inside a data element"
                raise UnreadableFileError(f"incomplete {expect} file: {detail}", path=path,
                                          hint="the file is truncated or corrupt: download it again")
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        if isinstance(error, (FileNotFoundError, PermissionError, IsADirectoryError)):
            raise UnreadableFileError(f"cannot open: {error.strerror or error}", path=path,
                                      hint="check the path and its permissions") from None
        raise UnreadableFileError(f"not a readable {expect} DICOM file ({type(error).__name__}: {error})",
                                  path=path, hint="the file is truncated or corrupt: download it again") from None
    if not ok:
        raise UnsupportedFormatError(f"not a DICOM {expect} (Modality {modality or 'none'}, SOP class {sop_class})",
                                     path=path)
    return dataset


def text(dataset: Any, keyword: str, default: str = "") -> str:
    """A DICOM attribute as a stripped string ('' when absent)."""
    value = dataset.get(keyword, None) if dataset is not None else None
    return default if value is None else str(value).strip()


def sequence(dataset: Any, keyword: str) -> list:
    """A DICOM sequence as a list (empty when absent)."""
    value = dataset.get(keyword, None) if dataset is not None else None
    return list(value) if value else []


def coded_concepts(items: Iterable[Any]) -> tuple[dict, ...]:
    """Code sequence items as ``{scheme, value, meaning}`` dicts."""
    codes = []
    for item in items:
        value = text(item, "CodeValue") or text(item, "LongCodeValue") or text(item, "URNCodeValue")
        if value:
            codes.append({"scheme": text(item, "CodingSchemeDesignator"), "value": value,
                          "meaning": text(item, "CodeMeaning")})
    return tuple(codes)


def rgb(value: Any) -> Optional[tuple[int, int, int]]:
    """An ROIDisplayColor-like triplet as ints in 0..255, or None."""
    try:
        triplet = tuple(int(round(float(v))) for v in value)
    except (TypeError, ValueError):
        return None
    if len(triplet) != 3:
        return None
    return tuple(min(255, max(0, v)) for v in triplet)
