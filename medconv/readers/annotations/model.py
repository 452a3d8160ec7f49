"""The typed results of reading an annotation object onto an image grid.

Every decision a reader makes about a ROI, a segment, a nodule or one contour is
a value here (an enum member in a frozen dataclass), never a sentence parsed
back: the annotation reader (:func:`~.reader.record_of`) turns them into the unit's record and
the batch into its manifest row and warnings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Optional

from ...volume import Volume


class AnnotationKind(str, Enum):
    """The annotation object formats medconv reads."""

    RTSTRUCT = "rtstruct"
    SEG = "seg"
    LIDC_XML = "lidc-xml"


#: What an object's two header counts are called, per kind (``AnnotationHeader.roi_names`` and
#: ``.contours``): an RTSTRUCT's ROIs and their contours, a SEG's segments and its frames, a LIDC
#: reading's marks and their slice outlines.
COUNT_NOUNS: dict[AnnotationKind, tuple[str, str]] = {
    AnnotationKind.RTSTRUCT: ("ROI", "contour"),
    AnnotationKind.SEG: ("segment", "frame"),
    AnnotationKind.LIDC_XML: ("mark", "outline"),
}


class RoiStatus(str, Enum):
    """What happened to one ROI / segment / nodule annotation."""

    RASTERISED = "rasterised"  #: at least one voxel on the grid
    EMPTY = "empty"  #: drawable, but no voxel centre is inside (sub-pixel, off the grid, all unmatched)
    POINTS = "points"  #: POINT ROIs, LIDC nodules < 3 mm and non-nodules: listed, not rasterised
    OPEN = "open"  #: OPEN_PLANAR / OPEN_NONPLANAR contours: listed, not rasterised
    NO_CONTOURS = "no-contours"  #: declared but holds no contour at all
    FAILED = "failed"  #: unusable values (NaN / absurd coordinates): left out, with the reason


class ContourPlacement(str, Enum):
    """Where one contour (one planar polygon) went."""

    PLACED = "placed"  #: rasterised on the grid slice nearest its plane
    OFF_GRID = "off-grid"  #: its plane is more than half a slice step beyond the first or last slice
    NOT_PARALLEL = "not-parallel"  #: its points are not on one plane parallel to the grid's slices
    SUPERSEDED = "superseded"  #: another contour plane of the same ROI is nearer that slice's centre
    DEGENERATE = "degenerate"  #: fewer than 3 points (no area): nothing drawn


@dataclass(frozen=True)
class ContourReport:
    """One contour's placement.

    ``plane_index`` is the continuous slice index of its plane on the grid (an
    integer = exactly on a slice centre); ``slice_index`` the slice it was drawn
    on (``None`` unless placed); ``clipped``: part of it lies outside the grid's
    field of view (drawn clipped, never dropped).
    """

    placement: ContourPlacement
    plane_index: float
    slice_index: Optional[int] = None
    points: int = 0
    clipped: bool = False
    referenced_sop_uid: str = ""


@dataclass(frozen=True)
class RoiReport:
    """What happened to one ROI (RTSTRUCT), segment (SEG) or reader annotation (LIDC).

    ``value`` is its label value in the map (``None`` when not rasterisable);
    ``voxels`` its voxel count on the grid; ``reason`` says why it failed;
    ``gap_slices`` counts grid slices inside its extent that no contour reached (the
    image grid is finer than the contour planes: they stay empty, never interpolated).
    """

    number: int
    name: str
    status: RoiStatus
    value: Optional[int] = None
    voxels: int = 0
    contours: tuple[ContourReport, ...] = ()
    reason: str = ""
    gap_slices: int = 0  #: grid slices between its first and last drawn slice that no contour plane reached

    def count(self, placement: ContourPlacement) -> int:
        """How many of its contours had this placement."""
        return sum(1 for contour in self.contours if contour.placement is placement)

    @property
    def clipped_contours(self) -> int:
        """Contours drawn clipped at the field of view."""
        return sum(1 for contour in self.contours if contour.clipped)


@dataclass(frozen=True)
class LabelEntry:
    """One row of a label table (``meta["labels"]`` and the JSON sidecar).

    ``number`` is the object's own identifier (ROINumber, SegmentNumber, nodule
    index), ``value`` the consecutive label value in the map (background 0 is never
    listed), ``codes`` coded concepts as ``{scheme, value, meaning}`` dicts.
    """

    value: int
    name: str
    color: Optional[tuple[int, int, int]] = None
    codes: tuple[dict, ...] = ()
    source: str = ""
    number: Optional[int] = None

    def as_meta(self) -> dict[str, Any]:
        """The JSON-serialisable row of ``meta["labels"]``."""
        row: dict[str, Any] = {"value": self.value, "name": self.name,
                               "color": list(self.color) if self.color is not None else None,
                               "codes": [dict(code) for code in self.codes], "source": self.source}
        if self.number is not None:
            row["number"] = self.number
        return row


class OutputRole(str, Enum):
    """What one output volume of an annotation object is."""

    MAP = "map"  #: every label of the object in one label map
    ROI = "roi"  #: one label alone (``--masks split``)
    STACK = "stack"  #: 4D one-hot, one channel per label
    READER = "reader"  #: LIDC: one reader's nodules (values = nodule ids)
    CONSENSUS = "consensus"  #: LIDC: the nodules' consensus masks (values = nodule ids)


@dataclass(frozen=True)
class LabelOutput:
    """One volume to write beside the image: its role, the name suffix it takes, the Volume.

    ``suffix`` is appended to the image's output name (before the extension);
    ``labels`` are the label values it holds.
    """

    role: OutputRole
    suffix: str
    volume: Volume
    labels: tuple[int, ...] = ()


@dataclass(frozen=True)
class AnnotationResult:
    """An annotation object read onto its image's grid.

    ``outputs`` are the volumes to write (per :class:`~.options.MaskLayout`),
    ``labels`` the object's label table, ``rois`` what happened to each
    ROI / segment / reader annotation, ``rows`` extra table rows (LIDC: the nine
    characteristics per reader and nodule), ``warnings`` one line each, ``name_suffix``
    the part every output suffix starts with (``_rtstruct-<label>``, ``_seg-<label>``,
    ``_lidc``: :func:`~.labelmap.object_suffix`).
    """

    path: str
    kind: AnnotationKind
    annotates: str
    labels: tuple[LabelEntry, ...]
    rois: tuple[RoiReport, ...]
    outputs: tuple[LabelOutput, ...]
    warnings: tuple[str, ...] = ()
    rows: tuple[Any, ...] = field(default=())  #: LIDC: :class:`~.lidc.LidcRow` (``as_row()`` for a CSV)
    name_suffix: str = ""

    def output(self, role: OutputRole) -> LabelOutput:
        """The first output with this role (``KeyError`` when there is none)."""
        for output in self.outputs:
            if output.role is role:
                return output
        raise KeyError(role)
