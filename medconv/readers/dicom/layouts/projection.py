"""2D DICOM images: projection radiographs (``Layout.PROJECTION``) and classic multi-frame 2D (``Layout.CINE_2D``).

**Which files** (:func:`planar_layout`, called by grouping for every image file):
a greyscale (MONOCHROME1/2), non-enhanced image that is

* of a projection SOP class (CR, DX, MG, IO, XA, RF, breast projection), or
* a greyscale Secondary Capture of a projection modality (CR, DX, MG, IO, PX,
  XA, RF, RG: digitised film such as CBIS-DDSM's mammograms), or
* of a projection modality without ImageOrientation/PositionPatient.

One frame is a ``PROJECTION`` unit, several frames a ``CINE_2D`` unit (one
volume, never unrelated images). Each file is a unit of its own: two
radiographs of one series (PA and lateral) are two outputs, told apart by
``Split(SplitKind.IMAGE, InstanceNumber)`` (issue 10, fault 8). Grouping also
gives this layout to the greyscale images it excludes as 2D (an OT image
without geometry), so that ``include_2d`` reads them the same way.

**Values** (PS3.4's greyscale pipeline, :mod:`..greyscale`), chosen by
``ReadOptions.voi``:

* ``None`` (default): **modality values**, lossless: the Modality LUT or the
  rescale, with MONOCHROME1 / Presentation LUT Shape INVERSE inverted over the
  modality range (``2^BitsStored - 1 - x`` for unsigned data without rescale, never
  by the data's maximum), in the smallest integer dtype that holds them. For
  NIfTI, npz and 16-bit PNG.
* a :class:`~..greyscale.VoiChoice`: **display values** after the VOI (the
  file's VOI LUT or window, a window of yours, the image's min..max), inverted
  once for MONOCHROME1, quantised to ``ReadOptions.voi_bits`` (8: uint8 for an
  8-bit PNG; 16: uint16).

**Geometry**: the pixel spacing from PixelSpacing, else ImagerPixelSpacing
corrected by EstimatedRadiographicMagnificationFactor, else NominalScannedPixelSpacing
(:func:`..greyscale.detector_spacing`; the tag used is ``meta["dicom"]["PixelSpacingSource"]``).
The direction from ImageOrientationPatient when the file has it, else from
PatientOrientation (0020,0020) (the patient directions of the rows and columns,
e.g. ``L\\F`` for a PA chest: ``i`` towards the patient's left, ``j`` towards the
feet), else identity; ``meta["dicom"]["OrientationSource"]`` says which. The
origin is ImagePositionPatient, else 0. The third axis of a cine is its frame
index (FrameTime in the sidecar), with SpacingBetweenSlices or SliceThickness
as the step when the file states one (tomosynthesis), else 1.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from ....errors import UnsupportedFormatError
from ....geometry import orthonormalize
from ....options import ReadOptions
from ....pixels import smallest_integer_dtype
from ....volume import Volume
if TYPE_CHECKING:  # the greyscale pipeline is imported by the functions that read pixels (below): discovery
    # asks every series the predicates (planar_layout ...), and a series of slices never needs the rest
    from ..greyscale import DetectorSpacing, VoiChoice
from ..headers import DicomHeader, reuse_or_read
from ..meta import volume_meta
from ..plan import FrameRef, Layout, UnitPlan
from ..sop_classes import SopKind, sop_class
from ..stack import IOP_UNIT_TOLERANCE, orientation_defect

_P = "1.2.840.10008.5.1.4.1.1."

#: SOP classes of projection X-ray images (PS3.4 B.5): always read as 2D images.
PROJECTION_SOP_CLASSES = frozenset(_P + suffix for suffix in (
    "1", "1.1", "1.1.1", "1.2", "1.2.1", "1.3", "1.3.1",  # CR, DX, MG, IO (for presentation / processing)
    "12.1", "12.2", "12.3",  # XA, RF, XA bi-plane (single-frame radiographs or cine runs)
    "13.1.4", "13.1.5",  # breast projection X-ray
))

#: Modalities of projection imaging: a greyscale secondary capture of one, or an image of one without
#: patient geometry, is a 2D image too (digitised film, anonymised exports).
PROJECTION_MODALITIES = frozenset({"CR", "DX", "MG", "IO", "PX", "XA", "RF", "RG"})

#: Secondary Capture classes that can hold a greyscale picture (single-frame, and the multi-frame byte/word ones).
GREYSCALE_SECONDARY_CAPTURE = frozenset(_P + suffix for suffix in ("7", "7.1", "7.2", "7.3"))

#: Below this magnitude float32 holds rescaled values as exactly as the rescale itself gives them.
FLOAT32_EXACT = 2.0**24

#: The layouts this module reads.
PLANAR_LAYOUTS = (Layout.PROJECTION, Layout.CINE_2D)

class OrientationSource(str, enum.Enum):
    """Which attribute gave a 2D image's direction (``meta["dicom"]["OrientationSource"]``)."""

    IMAGE_ORIENTATION = "ImageOrientationPatient"
    PATIENT_ORIENTATION = "PatientOrientation"
    NONE = "none (identity)"

#: PatientOrientation letters (PS3.3 C.7.6.1.1.1) as LPS unit vectors.
_PATIENT_DIRECTIONS = {"L": (1.0, 0.0, 0.0), "R": (-1.0, 0.0, 0.0), "P": (0.0, 1.0, 0.0), "A": (0.0, -1.0, 0.0),
                       "H": (0.0, 0.0, 1.0), "F": (0.0, 0.0, -1.0)}


def is_greyscale(header: DicomHeader) -> bool:
    """One sample per pixel, MONOCHROME1 or MONOCHROME2 (an empty photometric counts as MONOCHROME2)."""
    return header.samples_per_pixel <= 1 and header.photometric in ("", "MONOCHROME1", "MONOCHROME2")


def has_patient_geometry(header: DicomHeader) -> bool:
    """Whether the file places its image in the patient (ImageOrientationPatient and ImagePositionPatient)."""
    return header.iop is not None and header.ipp is not None


def planar_layout(header: DicomHeader) -> Optional[Layout]:
    """``PROJECTION`` or ``CINE_2D`` for a file the module notes call a 2D image, else ``None``."""
    if header.is_enhanced or not is_greyscale(header) or not header.rows or not header.columns:
        return None
    uid = header.sop_class_uid
    found = sop_class(uid)
    if found is not None and found.kind is SopKind.NON_IMAGE:
        return None
    projection = (uid in PROJECTION_SOP_CLASSES
                  or (uid in GREYSCALE_SECONDARY_CAPTURE and header.modality in PROJECTION_MODALITIES)
                  or (header.modality in PROJECTION_MODALITIES and not has_patient_geometry(header)))
    if not projection:
        return None
    return Layout.CINE_2D if header.number_of_frames > 1 else Layout.PROJECTION


def plan_planar(group) -> UnitPlan:
    """The plan of one 2D image file (a :class:`..grouping.SeriesGroup` of one header, layout projection/cine)."""
    header = group.headers[0]
    layout = Layout(group.layout)
    if len(group.headers) != 1:  # grouping makes one unit per file; a hand-made source may not
        raise UnsupportedFormatError(f"{len(group.headers)} files in one 2D image unit; each file is its own image",
                                     header.path, "discover the folder to get one source per image")
    frames = tuple(FrameRef(path=header.path, frame=index, position=header.ipp,
                            sop_instance_uid=header.sop_instance_uid)
                   for index in range(max(1, header.number_of_frames) if layout is Layout.CINE_2D else 1))
    return UnitPlan(layout=layout, frames=frames, headers=(header,), rows=header.rows, columns=header.columns,
                    splits=tuple(group.split), label=group.frame_group)


# -- geometry -----------------------------------------------------------------------------

@dataclass(frozen=True)
class PlanarGeometry:
    """Where a 2D image lies: spacing (i, j, k) in mm, origin (LPS), direction columns, and what said so."""

    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray
    spacing_from: DetectorSpacing
    orientation_from: OrientationSource
    warnings: tuple[str, ...] = ()


def _floats(value: Any) -> list[float]:
    if value is None or value == "":
        return []
    try:
        items = list(value) if not isinstance(value, (str, bytes)) and hasattr(value, "__iter__") else [value]
        return [float(v) for v in items]
    except (TypeError, ValueError):
        return []


def _patient_orientation(value: Any) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """The (row, column) LPS directions of PatientOrientation (``["L", "F"]``, ``"A\\\\FR"``), or ``None``."""
    if value is None or value == "":
        return None
    entries = [str(v).strip().upper() for v in (value if not isinstance(value, str) else value.split("\\"))]
    if len(entries) != 2 or not all(entries) or any(ch not in _PATIENT_DIRECTIONS for e in entries for ch in e):
        return None
    vectors = []
    for entry in entries:
        vector = np.sum([_PATIENT_DIRECTIONS[ch] for ch in entry], axis=0)
        norm = np.linalg.norm(vector)
        if norm == 0:
            return None
        vectors.append(vector / norm)
    row, column = vectors
    return (row, column) if abs(float(np.dot(row, column))) <= IOP_UNIT_TOLERANCE else None


def planar_geometry(ds: Any, frames: int) -> PlanarGeometry:
    """The geometry of a 2D image (module notes), from its pydicom header."""
    from ..greyscale import detector_spacing

    warnings: list[str] = []
    spacing = detector_spacing(ds)
    warnings.extend(spacing.warnings)
    row = column = None
    orientation_from = OrientationSource.NONE
    iop = _floats(ds.get("ImageOrientationPatient"))
    if len(iop) == 6:
        defect = orientation_defect(iop)  # the stacks' rule; a 2D picture ignores a bad orientation, with a warning
        if defect is None:
            row, column, orientation_from = np.array(iop[:3]), np.array(iop[3:]), OrientationSource.IMAGE_ORIENTATION
        else:
            warnings.append(f"{defect}: ignored")
    if row is None:
        found = _patient_orientation(ds.get("PatientOrientation"))
        if found is not None:
            row, column = found
            orientation_from = OrientationSource.PATIENT_ORIENTATION
    if row is None:
        row, column = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    # the tolerance above is looser than a Volume's (header rounding): remove the rounding, as for a CT stack
    direction = orthonormalize(np.column_stack([row, column, np.cross(row, column)]))
    position = _floats(ds.get("ImagePositionPatient"))
    origin = tuple(position) if len(position) == 3 and all(map(math.isfinite, position)) else (0.0, 0.0, 0.0)
    step = 1.0
    if frames > 1:
        stated = [v for v in (_floats(ds.get("SpacingBetweenSlices")) + _floats(ds.get("SliceThickness")))
                  if math.isfinite(v) and v > 0]
        step = stated[0] if stated else 1.0
    return PlanarGeometry((spacing.column, spacing.row, step), origin, direction, spacing, orientation_from,
                          tuple(warnings))


# -- values -------------------------------------------------------------------------------

def planar_values(stored: np.ndarray, ds: Any, path: str, voi: Optional[VoiChoice], bits: int
                  ) -> tuple[np.ndarray, dict[str, Any], list[str]]:
    """``stored`` (frames, rows, columns) through the greyscale pipeline: the values, their description, warnings."""
    from ..greyscale import display_image, greyscale_header, modality_range, presentation_values

    header = greyscale_header(ds, path)
    warnings = list(header.warnings)
    if voi is None:
        values = presentation_values(stored, header)
        if values.dtype.kind in "iu" and values.dtype.itemsize > stored.dtype.itemsize:
            low, high = modality_range(header)
            narrow = smallest_integer_dtype(low, high, prefer_signed=low < 0, min_itemsize=stored.dtype.itemsize)
            if narrow is not None and narrow.itemsize < values.dtype.itemsize:
                values = values.astype(narrow)
        elif values.dtype == np.float64 and float(np.max(np.abs(modality_range(header)))) < FLOAT32_EXACT:
            values = values.astype(np.float32)  # the rescale's own dtype (medconv.pixels.rescaled_dtype)
        described = {"values": "modality", "presentation": header.presentation.value,
                     "modality_range": list(modality_range(header))}
        return values, described, warnings
    shown = display_image(stored, header, voi, bits)
    warnings.extend(shown.warnings)
    return shown.array, {"values": "display", **shown.describe()}, warnings


#: DICOM attributes of 2D images worth keeping in the sidecar, besides :data:`..meta.DICOM_SIDECAR_KEYWORDS`.
PLANAR_SIDECAR_KEYWORDS = ("ViewPosition", "ImageLaterality", "Laterality", "PresentationIntentType",
                           "PatientOrientation", "PhotometricInterpretation", "BitsStored", "FrameTime",
                           "EstimatedRadiographicMagnificationFactor", "DistanceSourceToDetector",
                           "DistanceSourceToPatient")


def _sidecar_value(value: Any) -> Any:
    if isinstance(value, (int, float, str)):
        return value
    if hasattr(value, "__iter__"):
        return [_sidecar_value(v) for v in value]
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def assemble_planar(plan: UnitPlan, options: ReadOptions = ReadOptions()) -> Volume:
    """Read a ``PROJECTION`` or ``CINE_2D`` unit: ``(i, j, 1)`` or ``(i, j, frames)`` (module notes).

    Raises
    ------
    UnsupportedFormatError, HeaderError, UnreadableFileError, MissingDependencyError
        Colour pixel data, a malformed LUT or VOI, a file that cannot be decoded; each names the file.
    """
    from ..decode import read_datasets
    from ..pixels import decode_file

    first = reuse_or_read(plan.first.path, plan.first)
    stored, pixel = decode_file(first)
    if pixel.samples != 1:
        raise UnsupportedFormatError(f"{pixel.photometric} pixel data is not a greyscale image", first.path,
                                     "colour DICOM images are not converted")
    (ds,) = read_datasets([first.path])
    values, greyscale, warnings = planar_values(stored, ds, first.path, options.voi, options.voi_bits)
    geometry = planar_geometry(ds, values.shape[0])
    warnings.extend(geometry.warnings)
    extra: dict[str, Any] = {"greyscale": greyscale, "PixelSpacingSource": geometry.spacing_from.source.value,
                             "OrientationSource": geometry.orientation_from.value}
    for keyword in PLANAR_SIDECAR_KEYWORDS:
        value = ds.get(keyword)
        if value not in (None, ""):
            extra[keyword] = _sidecar_value(value)
    if plan.layout is Layout.CINE_2D:
        time = _floats(ds.get("FrameTime"))
        warnings.append(f"{values.shape[0]} frames of one 2D image stacked along k"
                        + (f" (FrameTime {time[0]:g} ms)" if time else "")
                        + ": k is the frame index, not a position in the patient")
    meta = volume_meta(first, [first.path], None, warnings, extra)
    if options.voi is not None:
        meta.pop("window", None)  # applied: the values are display values now
    return Volume(array=values.T, spacing=geometry.spacing, origin=geometry.origin, direction=geometry.direction,
                  kind=options.kind or "intensity", meta=meta)
