"""Annotation objects -> label volumes on their image's grid: RTSTRUCT, DICOM SEG, LIDC-IDRI XML.

The public API:

* :func:`read_rtstruct`, :func:`read_seg`, :func:`read_lidc_xml`, or :func:`read_annotation`
  (any of them, by content): an annotation file + the :class:`~medconv.image_reference.ImageReference`
  of its image -> :class:`AnnotationResult` (label Volumes, label table, per-ROI reports);
* :func:`read_header` (cheap: what an annotation references) and :func:`pair` (which image
  unit it belongs to), :func:`is_lidc_xml` (recognise LIDC XML by its first bytes);
* :class:`AnnotationOptions`: map / split / stack, consensus level, FRACTIONAL handling;
* :func:`~.discovery.with_annotation_units` (discovery: annotation units paired with their
  image units) and :class:`~.reader.AnnotationReader` (the registry's ``annotation`` reader).

Names are imported on first use (PEP 562), so that loading the registry's reader does not
import every annotation module. Rules and conventions: docs/annotations.md.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the submodule defining it
_EXPORTS = {
    **dict.fromkeys(("AnnotationKind", "AnnotationResult", "ContourPlacement", "ContourReport", "LabelEntry",
                     "LabelOutput", "OutputRole", "RoiReport", "RoiStatus"), "model"),
    **dict.fromkeys(("AnnotationOptions", "FractionalHandling", "MaskLayout"), "options"),
    **dict.fromkeys(("Pairing", "PairingRule", "PairingStatus", "pair"), "pairing"),
    **dict.fromkeys(("AnnotationHeader", "annotation_kind", "read_header"), "headers"),
    **dict.fromkeys(("LidcRow", "read_lidc_xml"), "lidc"),
    "is_lidc_xml": "lidc_xml",
    "read_rtstruct": "rtstruct",
    "read_seg": "seg",
    **dict.fromkeys(("AnnotationPlan", "with_annotation_units"), "discovery"),
    "AnnotationReader": "reader",
}

__all__ = sorted(_EXPORTS) + ["read_annotation"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


def read_annotation(path, reference, options=None):
    """Read any annotation object (kind from its content) onto ``reference``'s grid.

    ``options`` is an :class:`AnnotationOptions` (default: one label map, consensus 0.5,
    FRACTIONAL thresholded at 0.5). Raises :class:`~medconv.errors.UnsupportedFormatError`
    for a file that is not an RTSTRUCT, DICOM SEG or LIDC-IDRI XML.
    """
    from ...errors import UnsupportedFormatError
    from .headers import annotation_kind
    from .model import AnnotationKind
    from .options import AnnotationOptions

    kind = annotation_kind(path)
    if kind is None:
        raise UnsupportedFormatError("not an annotation object (RTSTRUCT, DICOM SEG or LIDC-IDRI XML)", path=path)
    module, function = {AnnotationKind.RTSTRUCT: ("rtstruct", "read_rtstruct"), AnnotationKind.SEG: ("seg", "read_seg"),
                        AnnotationKind.LIDC_XML: ("lidc", "read_lidc_xml")}[kind]  # only that kind's reader is imported
    read = getattr(importlib.import_module(f"{__name__}.{module}"), function)
    return read(path, reference, options if options is not None else AnnotationOptions())
