"""Annotation objects -> label volumes on their image's grid: RTSTRUCT, DICOM SEG, LIDC-IDRI XML.

The public API (phase 2 wires it into discovery, the batch and the CLI):

* :func:`read_rtstruct`, :func:`read_seg`, :func:`read_lidc_xml`, or :func:`read_annotation`
  (any of them, by content): an annotation file + the :class:`~medconv.image_reference.ImageReference`
  of its image -> :class:`AnnotationResult` (label Volumes, label table, per-ROI reports);
* :func:`read_header` (cheap: what an annotation references) and :func:`pair` (which image
  unit it belongs to), :func:`is_lidc_xml` (recognise LIDC XML by its first bytes);
* :class:`AnnotationOptions`: map / split / stack, consensus level, FRACTIONAL handling.

Rules and conventions: docs/annotations.md.
"""

from .model import (AnnotationKind, AnnotationResult, ContourPlacement, ContourReport, LabelEntry, LabelOutput,
                    OutputRole, RoiReport, RoiStatus)
from .options import AnnotationOptions, FractionalHandling, MaskLayout
from .pairing import Pairing, PairingRule, PairingStatus, pair
from .headers import AnnotationHeader, annotation_kind, read_header
from .lidc import LidcRow, read_lidc_xml
from .lidc_xml import is_lidc_xml
from .rtstruct import read_rtstruct
from .seg import read_seg

__all__ = ["AnnotationKind", "AnnotationOptions", "AnnotationResult", "ContourPlacement", "ContourReport",
           "FractionalHandling", "LabelEntry", "LabelOutput", "MaskLayout", "OutputRole", "RoiReport", "RoiStatus",
           "read_rtstruct", "read_seg", "read_lidc_xml", "is_lidc_xml", "LidcRow",
           "AnnotationHeader", "annotation_kind", "read_header", "Pairing", "PairingRule", "PairingStatus", "pair",
           "read_annotation"]


def read_annotation(path, reference, options: AnnotationOptions = AnnotationOptions()) -> AnnotationResult:
    """Read any annotation object (kind from its content) onto ``reference``'s grid."""
    from ...errors import UnsupportedFormatError

    kind = annotation_kind(path)
    readers = {AnnotationKind.RTSTRUCT: read_rtstruct, AnnotationKind.SEG: read_seg,
               AnnotationKind.LIDC_XML: read_lidc_xml}
    if kind is None:
        raise UnsupportedFormatError("not an annotation object (RTSTRUCT, DICOM SEG or LIDC-IDRI XML)", path=path)
    return readers[kind](path, reference, options)
