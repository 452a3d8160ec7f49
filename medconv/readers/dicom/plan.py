"""The unit plan: what discovery decided about one DICOM unit, as frozen, picklable values.

Discovery (:mod:`.discover`) scans headers, groups them (:mod:`.grouping`) and,
for every unit, lets its layout module (:mod:`.layouts`) turn the unit's files
into :class:`FrameRef` records. The result is one :class:`UnitPlan`, carried by
the :class:`~medconv.source.Source` (``source.plan``) to wherever the unit is
read. :func:`.assemble.assemble` consumes it without grouping or parsing
headers again; :meth:`.reader.DicomReader.image_reference` computes the output
grid from it without decoding a pixel.

Nothing in this module decides anything: it only names the decisions.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .diffusion import Diffusion
    from .headers import DicomHeader


class Layout(str, Enum):
    """How a unit's pixels are laid out in its files (the value is ``Source.info[InfoKey.LAYOUT]``)."""

    #: One slice per file (CT, most MR and PET): a stack, 3D or 4D.
    SINGLE_FRAME = "single"
    #: Siemens mosaic: the slices of one volume tiled in one image, one file per time point.
    MOSAIC = "mosaic"
    #: Enhanced (or legacy-converted) multi-frame: frames described by functional groups.
    ENHANCED = "multiframe"
    #: Single-frame files whose positions repeat with no standard index (vendor 4D: DWI, GE/Philips fMRI).
    VENDOR_4D = "vendor4d"
    #: One 2D greyscale image (a CR/DX/MG/IO/XA radiograph, a digitised film, any image without patient
    #: geometry): read through the greyscale pipeline into an ``(i, j, 1)`` image (:mod:`.layouts.projection`).
    PROJECTION = "projection"
    #: A classic multi-frame 2D image without per-frame positions (XA/RF cine, a multi-frame radiograph):
    #: one ``(i, j, frames)`` volume, each frame through the greyscale pipeline (:mod:`.layouts.projection`).
    CINE_2D = "cine"
    #: A non-image object (RTSTRUCT, SEG, SR ...) or a unit set aside: never assembled.
    OBJECT = "object"


class Axis4(str, Enum):
    """What the 4th axis of a 4D unit means (the value is ``meta["axis4"]``)."""

    TIME = "time"
    ECHO = "echo"
    #: Diffusion weightings, or repeated volumes whose meaning the headers do not state.
    VOLUME = "volume"


class SplitKind(str, Enum):
    """Why a unit was split from the other units of its SeriesInstanceUID."""

    SERIES_NUMBER = "SeriesNumber"
    ORIENTATION = "orientation"
    MATRIX = "matrix"
    SAMPLES = "samples/pixel"
    LAYOUT = "layout"
    COPY = "copy"
    ECHO = "echo"
    ECHO_TIME = "echo time"
    TEMPORAL_POSITION = "temporal position"
    TRIGGER_TIME = "trigger time"
    ACQUISITION_NUMBER = "acquisition number"
    #: Magnitude / phase / real / imaginary (an :class:`ImageComponent`, from ImageType, e.g. ``P`` for phase).
    IMAGE_COMPONENT = "image component"
    MULTIFRAME_FILE = "multiframe file"
    FRAME_GROUP = "frame group"
    #: One of several 2D images of a series (radiographs: PA and lateral), each its own unit; value: InstanceNumber.
    IMAGE = "image"


class ImageComponent(str, Enum):
    """Which part of a complex MR signal an image holds (from ImageType, see :func:`.grouping.image_component`)."""

    MAGNITUDE = "magnitude"
    PHASE = "phase"
    REAL = "real"
    IMAGINARY = "imaginary"

    @property
    def label(self) -> str:
        """The output-name label, as dcm2niix's suffixes: none for magnitude, ``ph``, ``real``, ``imaginary``."""
        return {"magnitude": "", "phase": "ph"}.get(self.value, self.value)


@dataclass(frozen=True)
class Split:
    """One split decision: its kind and the value of this unit (``Split(SplitKind.ECHO, 2)``)."""

    kind: SplitKind
    value: object = None

    @property
    def text(self) -> str:
        """The readable form used in ``Source.info["split"]`` and source ids (``"echo 2"``)."""
        value = self.value
        if self.kind is SplitKind.COPY:
            return f"copy {value} of the same SOPInstanceUIDs"
        if self.kind is SplitKind.SAMPLES:
            return f"{value} samples/pixel"
        if self.kind in (SplitKind.ORIENTATION, SplitKind.MULTIFRAME_FILE):
            return self.kind.value
        if self.kind is SplitKind.LAYOUT:
            return str(value)
        if self.kind is SplitKind.IMAGE_COMPONENT:
            return f"{value.value if isinstance(value, ImageComponent) else value or 'unstated'} images"
        if isinstance(value, float):
            value = f"{value:g}"
        return f"{self.kind.value} {value}" if value is not None else self.kind.value

    @property
    def label(self) -> str:
        """The naming label of a split that output names must show (``echo-2``, ``ph``; ``""``: magnitude)."""
        if self.kind is SplitKind.IMAGE_COMPONENT:
            return self.value.label if isinstance(self.value, ImageComponent) else ""
        return self.text.replace(" ", "-")


@dataclass(frozen=True)
class FrameRef:
    """One acquired 2D frame of a unit: where its pixels are and what places it.

    Attributes
    ----------
    path:
        The file holding it.
    frame:
        0-based frame of a multi-frame file, tile of a mosaic; 0 for single-frame files.
    position:
        ImagePositionPatient (LPS mm of the centre of the first pixel); ``None`` when missing.
    sop_instance_uid:
        The SOPInstanceUID of the file (annotations reference it).
    echo:
        EchoTime (ms), when the unit separates echoes; ``None`` otherwise.
    temporal:
        The temporal index or time that orders time points (TemporalPositionIdentifier,
        TemporalPositionIndex, TriggerTime); ``None`` when not stated.
    diffusion:
        The b-value and gradient of a diffusion-weighted frame (:class:`.diffusion.Diffusion`).
    acquisition:
        The acquisition order key used when nothing above orders repeats (see
        :func:`.order.acquisition_key`).
    slope, intercept:
        Per-frame rescale (enhanced multi-frame); ``None``: the file's own.
    """

    path: str
    frame: int = 0
    position: tuple[float, float, float] | None = None
    sop_instance_uid: str = ""
    echo: float | None = None
    temporal: float | None = None
    diffusion: "Diffusion | None" = None
    acquisition: tuple = ()
    slope: float | None = None
    intercept: float | None = None


@dataclass(frozen=True)
class UnitPlan:
    """Everything reading one unit needs, decided at discovery.

    Attributes
    ----------
    layout:
        How the pixels are laid out (:class:`Layout`).
    frames:
        Every acquired frame of the unit, in file order (the assembly orders them).
    headers:
        The scanned header of each file of the unit (pixel attributes, pixel data
        offset, file stamp): reading uses them instead of parsing the files again.
    iop, pixel_spacing, rows, columns:
        The shared slice geometry (``None`` when the files carry none).
    axis4:
        The meaning of the 4th axis, ``None`` for a 3D unit.
    splits:
        Why this unit was split from the others of its series.
    label:
        The label that tells this unit apart in output names (``echo-2``, ``ph``,
        ``T1-FIELD_MAP-REAL``); ``""`` when none is needed.
    frame_group:
        Enhanced multi-frame: the frame group this unit reads (``""``: the only one).
    warnings:
        Decisions discovery took that the output must report.
    unreadable_nearby:
        Unreadable files in the unit's folder(s) (truncated, empty): a missing slice
        next to one of them is that file, so the gap is not filled (:func:`.stack.plan_stack`).
    """

    layout: Layout
    frames: tuple[FrameRef, ...] = ()
    headers: tuple["DicomHeader", ...] = ()
    iop: tuple[float, ...] | None = None
    pixel_spacing: tuple[float, float] | None = None
    rows: int = 0
    columns: int = 0
    axis4: Axis4 | None = None
    splits: tuple[Split, ...] = ()
    label: str = ""
    frame_group: str = ""
    warnings: tuple[str, ...] = ()
    unreadable_nearby: tuple[str, ...] = ()

    @property
    def first(self) -> "DicomHeader":
        """The header that describes the series (its first file)."""
        return self.headers[0]

    @property
    def paths(self) -> tuple[str, ...]:
        """The files of the unit, in the order of :attr:`headers`."""
        return tuple(header.path for header in self.headers)


@dataclass(frozen=True)
class PlanFailure:
    """Files discovery could not plan as a unit, and the typed error why.

    Discovery keeps them as a unit (``Source.plan`` is ``None``); reading plans
    the files again and raises the error, naming the file.
    """

    headers: tuple["DicomHeader", ...]
    error: Exception
