"""The diffusion weighting of a DICOM image: its b-value and gradient direction, from standard or vendor tags.

Where each vendor keeps them (the first found wins; dcm2niix reads the same tags):

=============== ================================ ============================================ ===============
source          b-value                          gradient direction                           frame
=============== ================================ ============================================ ===============
standard        DiffusionBValue (0018,9087)      DiffusionGradientOrientation (0018,9089)     patient (LPS)
enhanced MR     MRDiffusionSequence > the same   > DiffusionGradientDirectionSequence > same  patient (LPS)
Siemens         (0019,100C) IS                   (0019,100E) FD x 3                           patient (LPS)
Siemens mosaic  CSA ``B_value``                  CSA ``DiffusionGradientDirection``           patient (LPS)
Philips         (2001,1003) FL                   (2005,10B0) (2005,10B1) (2005,10B2) FL       patient (LPS)
GE              (0043,1039) IS, first value [#]_ (0019,10BB) (0019,10BC) (0019,10BD) DS      GE's own
=============== ================================ ============================================ ===============

.. [#] GE adds 10^9 to the b-value in some software versions; it is removed.

GE writes its gradient directions relative to the frequency, phase and slice
encoding axes, not in the patient frame; dcm2niix converts them with rules it
calls validated only for head-first supine axial scans. medconv keeps GE's
values as stored (:attr:`GradientFrame.GE`) and writes no ``.bvec`` for them,
with a warning, rather than a direction that may be wrong.

A Siemens ``DiffusionDirectionality`` (0019,100D) or the enhanced
DiffusionDirectionality of ``ISOTROPIC`` (a trace image: b > 0 and no single
direction) gives a zero gradient, as dcm2niix writes it.

Private tags are read only from files of their vendor (Manufacturer), as their
meaning depends on the private creator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Optional

import numpy as np

DIFFUSION_B_VALUE = 0x00189087
DIFFUSION_GRADIENT_ORIENTATION = 0x00189089
SIEMENS_B_VALUE, SIEMENS_DIRECTIONALITY, SIEMENS_GRADIENT = 0x0019100C, 0x0019100D, 0x0019100E
PHILIPS_B_VALUE = 0x20011003
PHILIPS_GRADIENT = (0x200510B0, 0x200510B1, 0x200510B2)
GE_B_VALUE = 0x00431039
GE_GRADIENT = (0x001910BB, 0x001910BC, 0x001910BD)
#: GE's b-value offset in some software versions (the value is ``1e9 + b``).
GE_B_VALUE_OFFSET = 1e9

#: Every tag the header scan keeps for :func:`diffusion_from_elements`, with the VR it is read as
#: (private tags often arrive as implicit VR or UN: their VR is fixed here, by vendor convention).
DIFFUSION_TAG_VRS: dict[int, str] = {
    DIFFUSION_B_VALUE: "FD", DIFFUSION_GRADIENT_ORIENTATION: "FD",
    SIEMENS_B_VALUE: "IS", SIEMENS_DIRECTIONALITY: "CS", SIEMENS_GRADIENT: "FD",
    PHILIPS_B_VALUE: "FL", **{tag: "FL" for tag in PHILIPS_GRADIENT},
    GE_B_VALUE: "IS", **{tag: "DS" for tag in GE_GRADIENT},
}
DIFFUSION_TAGS = frozenset(DIFFUSION_TAG_VRS)

class GradientFrame(str, Enum):
    """The coordinate frame a stored gradient direction is in (the value is ``meta["diffusion"]["frame"]``)."""

    #: The DICOM patient frame (LPS): Siemens, Philips and the standard attributes.
    PATIENT = "LPS"
    #: GE's frequency / phase / slice axes: kept as stored, not converted.
    GE = "GE frequency/phase/slice (as stored, not converted)"


@dataclass(frozen=True)
class Diffusion:
    """The diffusion weighting of one frame.

    Attributes
    ----------
    b_value:
        s/mm².
    gradient:
        The gradient direction as stored, in :attr:`frame`; ``(0, 0, 0)`` for b = 0
        and isotropic (trace) images, and when the file states none.
    frame:
        The frame :attr:`gradient` is in.
    """

    b_value: float
    gradient: tuple[float, float, float] = (0.0, 0.0, 0.0)
    frame: GradientFrame = GradientFrame.PATIENT


def vendor_of(manufacturer: str) -> str:
    """``"siemens"``, ``"philips"``, ``"ge"`` or ``""`` from the Manufacturer attribute."""
    lower = (manufacturer or "").lower()
    if "philips" in lower:
        return "philips"
    if lower.split()[:1] == ["ge"] or "general electric" in lower or lower.startswith("gems"):
        return "ge"
    if "siemens" in lower:
        return "siemens"
    return ""


#: ``tag -> (raw little-endian value bytes or None, value pydicom converted or None)``, ``None`` when absent.
ElementLookup = Callable[[int], Optional[tuple]]


def _numbers(found: tuple | None, vr: str) -> list[float]:
    """The numeric values of one element (raw bytes read as ``vr``, or pydicom's value)."""
    if found is None:
        return []
    raw, value = found
    if raw is not None:
        if vr in ("FD", "FL"):
            size = 8 if vr == "FD" else 4
            if len(raw) and len(raw) % size == 0:
                return [float(v) for v in np.frombuffer(raw, dtype=f"<f{size}")]
            value = raw  # an odd length: written as text after all (some anonymisers do)
        else:
            value = raw
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("latin-1", "replace").strip("\x00 ").split("\\")
    elif isinstance(value, str):
        value = value.strip("\x00 ").split("\\")
    elif not isinstance(value, (list, tuple)) and type(value).__name__ != "MultiValue":
        value = [value]
    numbers = []
    for item in value:
        try:
            number = float(item)
        except (TypeError, ValueError):
            return []
        if not math.isfinite(number):
            return []
        numbers.append(number)
    return numbers


def _text(found: tuple | None) -> str:
    if found is None:
        return ""
    raw, value = found
    value = raw if raw is not None else value
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("latin-1", "replace")
    return str(value or "").strip("\x00 ").upper()


def _as_stored(vector) -> tuple[float, float, float]:
    return tuple(float(v) + 0.0 for v in vector)  # type: ignore[return-value]  # (+ 0.0: no negative zero)


def diffusion_from_elements(manufacturer: str, element: ElementLookup) -> Diffusion | None:
    """The weighting of a single-frame file from its top-level elements, or ``None`` when it states none.

    ``element(tag)`` gives an element's raw value bytes (little endian) or its
    pydicom value (:data:`ElementLookup`); only :data:`DIFFUSION_TAGS` are asked for.
    """
    vendor = vendor_of(manufacturer)
    b_values = _numbers(element(DIFFUSION_B_VALUE), "FD")
    gradient = _numbers(element(DIFFUSION_GRADIENT_ORIENTATION), "FD")
    frame = GradientFrame.PATIENT
    if not b_values and vendor == "siemens":
        b_values = _numbers(element(SIEMENS_B_VALUE), "IS")
        gradient = gradient or _numbers(element(SIEMENS_GRADIENT), "FD")
    elif not b_values and vendor == "philips":
        b_values = _numbers(element(PHILIPS_B_VALUE), "FL")
        if not gradient:
            parts = [_numbers(element(tag), "FL") for tag in PHILIPS_GRADIENT]
            gradient = [p[0] for p in parts] if all(parts) else []
    elif not b_values and vendor == "ge":
        b_values = _numbers(element(GE_B_VALUE), "IS")
        if b_values and b_values[0] >= GE_B_VALUE_OFFSET:
            b_values[0] -= GE_B_VALUE_OFFSET
        if not gradient:
            parts = [_numbers(element(tag), "DS") for tag in GE_GRADIENT]
            gradient = [p[0] for p in parts] if all(parts) else []
            frame = GradientFrame.GE
    if not b_values:
        return None
    isotropic = vendor == "siemens" and _text(element(SIEMENS_DIRECTIONALITY)) == "ISOTROPIC"
    return make_diffusion(b_values[0], gradient, frame, isotropic)


def make_diffusion(b_value: float, gradient, frame: GradientFrame = GradientFrame.PATIENT,
                   isotropic: bool = False) -> Diffusion:
    """A :class:`Diffusion`; a missing, malformed or isotropic gradient, or b = 0, gives ``(0, 0, 0)``."""
    vector = (0.0, 0.0, 0.0)
    if gradient is not None and len(gradient) == 3 and not isotropic and b_value > 0:
        vector = _as_stored(gradient)
    return Diffusion(round(float(b_value), 3), vector, frame)


def diffusion_from_functional_group(group: Any) -> Diffusion | None:
    """The weighting of an enhanced MR frame from its MRDiffusionSequence item (per-frame or shared), or ``None``."""
    if group is None:
        return None
    sequence = group.get("MRDiffusionSequence")
    if not sequence:
        return None
    item = sequence[0]
    b_value = item.get("DiffusionBValue")
    if b_value in (None, ""):
        return None
    directionality = str(item.get("DiffusionDirectionality", "") or "").upper()
    gradient = None
    directions = item.get("DiffusionGradientDirectionSequence")
    if directions:
        gradient = directions[0].get("DiffusionGradientOrientation")
    return make_diffusion(float(b_value), list(gradient) if gradient is not None else None,
                          isotropic=directionality == "ISOTROPIC")


def diffusion_from_csa(csa: dict | None) -> Diffusion | None:
    """The weighting of a Siemens mosaic from its CSA image header (nibabel's reader), or ``None``."""
    if csa is None:
        return None
    from nibabel.nicom import csareader

    try:
        b_value = csareader.get_b_value(csa)
        gradient = csareader.get_g_vector(csa)
    except Exception:  # a malformed CSA field: no weighting known
        return None
    if b_value is None:
        return None
    return make_diffusion(float(b_value), list(gradient) if gradient is not None else None)


def is_diffusion_series(frames) -> bool:
    """True when the frames of a 4D unit carry diffusion weightings that differ (its 4th axis is not time)."""
    weightings = {frame.diffusion for frame in frames}
    return None not in weightings and len(weightings) > 1


def diffusion_meta(weightings) -> tuple[dict | None, list[str]]:
    """``meta["diffusion"]`` for volumes of these weightings (one per volume, ``None`` when not stated), and warnings.

    ``{"b_values": [...], "gradients": [[x, y, z], ...], "frame": GradientFrame value}``:
    what the NIfTI writer turns into ``.bval`` / ``.bvec`` (``frame`` "LPS" only).
    ``None`` when no volume states a weighting.
    """
    if all(weighting is None for weighting in weightings):
        return None, []
    stated = [weighting or Diffusion(0.0) for weighting in weightings]
    frames = {weighting.frame for weighting in stated if weighting.b_value > 0}
    frame = frames.pop() if len(frames) == 1 else GradientFrame.PATIENT
    warnings = []
    if frame is GradientFrame.GE:
        warnings.append("GE writes diffusion gradient directions relative to its frequency, phase and slice axes: "
                        "kept as stored in the sidecar (meta diffusion), no .bvec written; b-values are in .bval")
    trace = [str(t + 1) for t, weighting in enumerate(stated)
             if weighting.b_value > 0 and not any(weighting.gradient) and len(stated) > 1]
    if trace:
        warnings.append(f"diffusion volume(s) {', '.join(trace)} have b > 0 and no gradient direction (isotropic / "
                        "trace images): written with a zero vector; FSL and MRtrix expect such volumes removed")
    meta = {"b_values": [weighting.b_value for weighting in stated],
            "gradients": [list(weighting.gradient) for weighting in stated], "frame": frame.value}
    return meta, warnings
