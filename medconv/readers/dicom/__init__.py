"""DICOM series: discovery, grouping, slice geometry and reading (see docs/dicom.md).

The registry loads :class:`DicomReader` from here. The submodules are imported
lazily so that importing ``medconv.readers.dicom.stack`` stays cheap.
"""

from __future__ import annotations

__all__ = ["DicomReader"]


def __getattr__(name: str):
    if name == "DicomReader":
        from .reader import DicomReader

        return DicomReader
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
