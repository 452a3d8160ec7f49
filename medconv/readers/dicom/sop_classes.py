"""The SOP classes the DICOM reader tells apart, matched by **whole UID** from one table.

Matching by prefix confused classes whose UIDs share leading digits:
``...1.1.7`` (Secondary Capture) is a prefix of ``...1.1.77.1.6`` (VL Whole Slide
Microscopy), and ``...1.1.66`` (Raw Data) of ``...1.1.66.7`` (Label Map
Segmentation). :data:`SOP_CLASSES` lists every class by its full UID
(PS3.4 Annex B / PS3.6 Table A-1); a UID not in it is classified by Modality
and by whether it holds pixels (:mod:`.grouping`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class SopKind(str, Enum):
    """What a SOP class holds, for grouping."""

    #: Acquired image storage (CT, MR, PET ...): its files must hold pixels.
    IMAGE = "image"
    #: A screenshot or derived picture (Secondary Capture): excluded.
    SECONDARY_CAPTURE = "secondary capture"
    #: Not an image volume (structure set, report, segmentation, waveform ...): set apart.
    NON_IMAGE = "non-image"


@dataclass(frozen=True)
class SopClass:
    """One SOP class: its name, what it holds, (non-images) why it is set apart, and whether its geometry
    is in functional groups (enhanced multi-frame IODs: read by :mod:`.layouts.enhanced` whatever their
    number of frames; a single-frame Parametric Map has no top-level position)."""

    name: str
    kind: SopKind
    reason: str = ""
    functional_groups: bool = False


_P = "1.2.840.10008.5.1.4.1.1."
_RT_OBJECT = "RT object (plan, record or image), not an image series"
_SR = "SR (structured report, not an image)"
_PR = "PR (presentation state, not an image)"
_DOCUMENT = "encapsulated document, not an image"
_WAVEFORM = "waveform, not an image"
_SEG = "SEG (segmentation object, not an image series)"

SOP_CLASSES: dict[str, SopClass] = {
    _P + "1": SopClass("CR Image Storage", SopKind.IMAGE),
    _P + "1.1": SopClass("Digital X-Ray Image Storage - For Presentation", SopKind.IMAGE),
    _P + "1.1.1": SopClass("Digital X-Ray Image Storage - For Processing", SopKind.IMAGE),
    _P + "1.2": SopClass("Digital Mammography X-Ray Image Storage - For Presentation", SopKind.IMAGE),
    _P + "1.2.1": SopClass("Digital Mammography X-Ray Image Storage - For Processing", SopKind.IMAGE),
    _P + "1.3": SopClass("Digital Intra-Oral X-Ray Image Storage - For Presentation", SopKind.IMAGE),
    _P + "1.3.1": SopClass("Digital Intra-Oral X-Ray Image Storage - For Processing", SopKind.IMAGE),
    _P + "2": SopClass("CT Image Storage", SopKind.IMAGE),
    _P + "2.1": SopClass("Enhanced CT Image Storage", SopKind.IMAGE, functional_groups=True),
    _P + "2.2": SopClass("Legacy Converted Enhanced CT Image Storage", SopKind.IMAGE, functional_groups=True),
    _P + "3.1": SopClass("Ultrasound Multi-frame Image Storage", SopKind.IMAGE),
    _P + "4": SopClass("MR Image Storage", SopKind.IMAGE),
    _P + "4.1": SopClass("Enhanced MR Image Storage", SopKind.IMAGE, functional_groups=True),
    _P + "4.2": SopClass("MR Spectroscopy Storage", SopKind.NON_IMAGE, "MR spectroscopy, not an image"),
    _P + "4.3": SopClass("Enhanced MR Color Image Storage", SopKind.IMAGE, functional_groups=True),
    _P + "4.4": SopClass("Legacy Converted Enhanced MR Image Storage", SopKind.IMAGE, functional_groups=True),
    _P + "6.1": SopClass("Ultrasound Image Storage", SopKind.IMAGE),
    _P + "6.2": SopClass("Enhanced US Volume Storage", SopKind.IMAGE),
    _P + "7": SopClass("Secondary Capture Image Storage", SopKind.SECONDARY_CAPTURE),
    _P + "7.1": SopClass("Multi-frame Single Bit Secondary Capture Image Storage", SopKind.SECONDARY_CAPTURE),
    _P + "7.2": SopClass("Multi-frame Grayscale Byte Secondary Capture Image Storage", SopKind.SECONDARY_CAPTURE),
    _P + "7.3": SopClass("Multi-frame Grayscale Word Secondary Capture Image Storage", SopKind.SECONDARY_CAPTURE),
    _P + "7.4": SopClass("Multi-frame True Color Secondary Capture Image Storage", SopKind.SECONDARY_CAPTURE),
    _P + "12.1": SopClass("X-Ray Angiographic Image Storage", SopKind.IMAGE),
    _P + "12.1.1": SopClass("Enhanced XA Image Storage", SopKind.IMAGE),
    _P + "12.2": SopClass("X-Ray Radiofluoroscopic Image Storage", SopKind.IMAGE),
    _P + "12.2.1": SopClass("Enhanced XRF Image Storage", SopKind.IMAGE),
    _P + "13.1.1": SopClass("X-Ray 3D Angiographic Image Storage", SopKind.IMAGE),
    _P + "13.1.2": SopClass("X-Ray 3D Craniofacial Image Storage", SopKind.IMAGE),
    _P + "13.1.3": SopClass("Breast Tomosynthesis Image Storage", SopKind.IMAGE),
    _P + "3": SopClass("Ultrasound Multi-frame Image Storage (retired)", SopKind.IMAGE),
    _P + "5": SopClass("Nuclear Medicine Image Storage (retired)", SopKind.IMAGE),
    _P + "6": SopClass("Ultrasound Image Storage (retired)", SopKind.IMAGE),
    _P + "12.3": SopClass("X-Ray Angiographic Bi-Plane Image Storage", SopKind.IMAGE),
    _P + "13.1.4": SopClass("Breast Projection X-Ray Image Storage - For Presentation", SopKind.IMAGE),
    _P + "13.1.5": SopClass("Breast Projection X-Ray Image Storage - For Processing", SopKind.IMAGE),
    _P + "14.1": SopClass("Intravascular OCT Image Storage - For Presentation", SopKind.IMAGE),
    _P + "14.2": SopClass("Intravascular OCT Image Storage - For Processing", SopKind.IMAGE),
    _P + "77.1.1.1": SopClass("Video Endoscopic Image Storage", SopKind.IMAGE),
    _P + "77.1.2.1": SopClass("Video Microscopic Image Storage", SopKind.IMAGE),
    _P + "77.1.4.1": SopClass("Video Photographic Image Storage", SopKind.IMAGE),
    _P + "20": SopClass("NM Image Storage", SopKind.IMAGE),
    _P + "30": SopClass("Parametric Map Storage", SopKind.IMAGE, functional_groups=True),
    _P + "128": SopClass("PET Image Storage", SopKind.IMAGE),
    _P + "128.1": SopClass("Legacy Converted Enhanced PET Image Storage", SopKind.IMAGE, functional_groups=True),
    _P + "130": SopClass("Enhanced PET Image Storage", SopKind.IMAGE, functional_groups=True),
    _P + "77.1.1": SopClass("VL Endoscopic Image Storage", SopKind.IMAGE),
    _P + "77.1.2": SopClass("VL Microscopic Image Storage", SopKind.IMAGE),
    _P + "77.1.3": SopClass("VL Slide-Coordinates Microscopic Image Storage", SopKind.IMAGE),
    _P + "77.1.4": SopClass("VL Photographic Image Storage", SopKind.IMAGE),
    _P + "77.1.5.1": SopClass("Ophthalmic Photography 8 Bit Image Storage", SopKind.IMAGE),
    _P + "77.1.5.2": SopClass("Ophthalmic Photography 16 Bit Image Storage", SopKind.IMAGE),
    _P + "77.1.5.4": SopClass("Ophthalmic Tomography Image Storage", SopKind.IMAGE),
    _P + "77.1.6": SopClass("VL Whole Slide Microscopy Image Storage", SopKind.NON_IMAGE,
                            "whole-slide microscopy (a 2D tiled pyramid, not a volume)"),
    _P + "481.1": SopClass("RT Image Storage", SopKind.NON_IMAGE, _RT_OBJECT),
    _P + "481.2": SopClass("RT Dose Storage", SopKind.NON_IMAGE, "RTDOSE (dose grid, not an image series)"),
    _P + "481.3": SopClass("RT Structure Set Storage", SopKind.NON_IMAGE,
                           "RTSTRUCT (structure set: polygon contours drawn on another series, not an image)"),
    **{_P + f"481.{n}": SopClass(f"RT object {n}", SopKind.NON_IMAGE, _RT_OBJECT) for n in range(4, 11)},
    _P + "66": SopClass("Raw Data Storage", SopKind.NON_IMAGE, "raw data, not an image"),
    _P + "66.1": SopClass("Spatial Registration Storage", SopKind.NON_IMAGE, "registration object, not an image"),
    _P + "66.2": SopClass("Spatial Fiducials Storage", SopKind.NON_IMAGE, "fiducials, not an image"),
    _P + "66.3": SopClass("Deformable Spatial Registration Storage", SopKind.NON_IMAGE,
                          "registration object, not an image"),
    _P + "66.4": SopClass("Segmentation Storage", SopKind.NON_IMAGE, _SEG),
    _P + "66.5": SopClass("Surface Segmentation Storage", SopKind.NON_IMAGE, "surface segmentation, not an image"),
    _P + "66.6": SopClass("Tractography Results Storage", SopKind.NON_IMAGE, "tractography results, not an image"),
    _P + "66.7": SopClass("Label Map Segmentation Storage", SopKind.NON_IMAGE,
                          "SEG (label map segmentation object, not an image series)"),
    _P + "66.8": SopClass("Height Map Segmentation Storage", SopKind.NON_IMAGE, _SEG),
    **{_P + f"88.{n}": SopClass(f"SR {n}", SopKind.NON_IMAGE, _SR)
       for n in (11, 22, 33, 34, 35, 40, 50, 65, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76)},
    _P + "88.59": SopClass("Key Object Selection Document Storage", SopKind.NON_IMAGE,
                           "KO (key object selection, not an image)"),
    **{_P + f"11.{n}": SopClass(f"Presentation State {n}", SopKind.NON_IMAGE, _PR) for n in range(1, 13)},
    **{_P + f"104.{n}": SopClass(f"Encapsulated document {n}", SopKind.NON_IMAGE, _DOCUMENT) for n in range(1, 6)},
    **{_P + f"9.{kind}": SopClass(f"Waveform {kind}", SopKind.NON_IMAGE, _WAVEFORM)
       for kind in ("1.1", "1.2", "1.3", "2.1", "3.1", "4.1", "4.2", "5.1", "6.1", "6.2", "7.1", "7.2", "7.3",
                    "7.4", "8.1")},
}


#: Classes added to the standard after pydicom 3.0's UID dictionary (the test checks the others against it).
NEWER_THAN_PYDICOM = frozenset({_P + "66.7", _P + "66.8"})


def sop_class(uid: str) -> SopClass | None:
    """The table entry of a SOP Class UID (whole-UID match), or ``None`` when not listed."""
    return SOP_CLASSES.get(uid.strip())


def uses_functional_groups(uid: str) -> bool:
    """True for the enhanced multi-frame classes, whose geometry is in functional groups (any frame count)."""
    found = sop_class(uid)
    return found is not None and found.functional_groups
