"""Frozen option objects that travel with the work to worker processes.

The CLI builds them from its flags; the library never reads globals, because
worker processes (the batch's workers, Dask) never see globals set in the parent.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal, Mapping, Optional

if TYPE_CHECKING:  # pragma: no cover  (the DICOM reader loads when a unit is read, not with the options)
    from .readers.dicom.greyscale import VoiChoice

from .errors import UsageError


class MaskLayout(str, Enum):
    """The shape of the label output of one annotation object (RTSTRUCT, DICOM SEG, LIDC-IDRI XML).

    ``MAP``: one label volume, values 1..N (overlaps resolved, with a warning);
    ``SPLIT``: one binary volume per ROI / segment / nodule;
    ``STACK``: one 4D one-hot volume ``(i, j, k, N)``, channel ``n`` is label ``n + 1``
    (keeps overlaps; see docs/annotations.md for why not bit-packed).
    """

    MAP = "map"
    SPLIT = "split"
    STACK = "stack"


class FractionalHandling(str, Enum):
    """What a FRACTIONAL DICOM SEG becomes: a binary mask at a threshold, or float probabilities."""

    THRESHOLD = "threshold"
    KEEP = "keep"


#: FRACTIONAL SEG default: a voxel belongs to a segment when its fraction is >= this.
DEFAULT_FRACTIONAL_THRESHOLD = 0.5

#: LIDC default consensus level: at least half of the readers who marked a nodule (pylidc's clevel=0.5).
DEFAULT_CONSENSUS = 0.5


@dataclass(frozen=True)
class AnnotationOptions:
    """How annotation objects (RTSTRUCT, DICOM SEG, LIDC-IDRI XML) become label volumes.

    Defined here, beside :class:`ReadOptions` which carries it (``ReadOptions.annotations``),
    so that the CLI builds it without importing the annotation readers; they re-export it
    (``medconv.readers.annotations.AnnotationOptions``).

    Parameters
    ----------
    masks:
        Output layout (:class:`MaskLayout` or its value ``"map"``, ``"split"``, ``"stack"``).
    consensus:
        LIDC-IDRI: a voxel is in a nodule's consensus mask when at least this fraction
        of the readers who marked that nodule include it (0 < consensus <= 1).
    fractional:
        DICOM SEG FRACTIONAL: ``"threshold"`` (binary at ``fractional_threshold``) or
        ``"keep"`` (float32 fractions; only with ``masks="split"`` or ``"stack"``).
    fractional_threshold:
        The threshold for ``fractional="threshold"`` (0 < t <= 1).
    """

    masks: MaskLayout = MaskLayout.MAP
    consensus: float = DEFAULT_CONSENSUS
    fractional: FractionalHandling = FractionalHandling.THRESHOLD
    fractional_threshold: float = DEFAULT_FRACTIONAL_THRESHOLD

    def __post_init__(self):
        try:
            object.__setattr__(self, "masks", MaskLayout(self.masks))
            object.__setattr__(self, "fractional", FractionalHandling(self.fractional))
        except ValueError as error:
            raise UsageError(f"annotation options: {error}",
                             hint="masks is map, split or stack; fractional is threshold or keep") from None
        for name in ("consensus", "fractional_threshold"):
            value = float(getattr(self, name))
            if not 0.0 < value <= 1.0:
                raise UsageError(f"annotation options: {name} must be in (0, 1], got {value}")
            object.__setattr__(self, name, value)
        if self.fractional is FractionalHandling.KEEP and self.masks is MaskLayout.MAP:
            raise UsageError("annotation options: fractional='keep' cannot make one label map",
                             hint="use masks='split' or masks='stack' to keep fractions")


def _changed_fields(options: Any, ignored: frozenset[str]) -> dict[str, Any]:
    """The fields of a frozen options object that differ from their defaults, minus ``ignored``."""
    defaults = type(options)()
    return {f.name: getattr(options, f.name) for f in fields(options)
            if f.name not in ignored and getattr(options, f.name) != getattr(defaults, f.name)}


@dataclass(frozen=True)
class ReadOptions:
    """How readers interpret their inputs.

    Parameters
    ----------
    on_tilt:
        DICOM gantry tilt: ``"resample"`` onto an orthogonal grid (default) or
        ``"error"`` to refuse the series.
    on_uneven:
        Uneven slice spacing or missing slices: ``"resample"`` onto a regular grid
        (default) or ``"error"``.
    include_2d:
        Convert single 2D images (and lone slices) as one-slice volumes instead of
        excluding them.
    kind:
        Force every volume to be ``"intensity"`` or ``"label"``; ``None`` lets the
        reader decide (file-name patterns, content).
    label_patterns:
        Glob patterns (matched against the path relative to the dataset root) that
        mark label masks; ``None`` means the documented defaults.
    tiff_spacing:
        Spacing (mm) to use for TIFF files that carry none.
    rgb_to_gray:
        Convert RGB images to one grey channel instead of keeping channels.
    max_voxels:
        Refuse (``VolumeTooLargeError``) a unit whose header declares more voxels
        (all axes, channels included) than this, before anything is allocated;
        ``None``: as many 4-byte values as the memory available at read time holds
        (:func:`medconv.readers.limits.default_max_voxels`).
    follow_outside:
        Read data files and symbolic links that resolve outside the dataset folder
        (a MetaImage ``ElementDataFile = ../x.raw``, a link to another disk);
        refused with ``OutsideDatasetError`` by default. Device files, FIFOs and
        sockets are refused whatever this says.
    annotations:
        How annotation objects (RTSTRUCT, DICOM SEG, LIDC-IDRI XML) found beside their
        image series become label volumes (:class:`AnnotationOptions`); ``None`` turns
        them off (each annotation unit is then excluded, not read). Left out of
        :meth:`describe`: these options shape only annotation units (whose fingerprint
        adds them), never an image, so changing them does not redo the images.
    voi:
        2D DICOM images (radiographs, cine): ``None`` (default) keeps the **modality
        values**, lossless (MONOCHROME1 inverted by bit depth); a
        :class:`~medconv.readers.dicom.greyscale.VoiChoice` gives **display values**
        after that VOI (the file's VOI LUT or window, a window of yours, min..max),
        quantised to ``voi_bits``. Volumes (CT, MR) are not affected: use a window.
    voi_bits:
        8 (uint8, for 8-bit PNG) or 16 (uint16): the depth of display values.
    pet:
        PET units in Bq/ml (or Philips CNTS): ``"suv"`` converts them to SUVbw,
        ``"sul"`` to SUL (lean body mass), float32; ``None`` (default) keeps the
        stored activity. Other modalities are not affected.
    extra:
        Options for third-party readers, by reader name.
    """

    on_tilt: Literal["resample", "error"] = "resample"
    on_uneven: Literal["resample", "error"] = "resample"
    include_2d: bool = False
    kind: Optional[Literal["intensity", "label"]] = None
    label_patterns: Optional[tuple[str, ...]] = None
    tiff_spacing: Optional[tuple[float, float, float]] = None
    rgb_to_gray: bool = False
    # hostile input (docs/reliability.md)
    max_voxels: Optional[int] = None
    follow_outside: bool = False
    annotations: Optional[AnnotationOptions] = field(default=AnnotationOptions(), repr=False)
    voi: Optional["VoiChoice"] = None
    voi_bits: Literal[8, 16] = 8
    pet: Optional[Literal["suv", "sul"]] = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    #: Fields that decide whether a unit is read at all, never what it reads to: left out of :meth:`describe`.
    NOT_IN_RESULT = frozenset({"max_voxels", "follow_outside"})
    #: Fields that shape only annotation units: left out of :meth:`describe` (the fingerprint adds them to those units).
    ANNOTATION_ONLY = frozenset({"annotations"})

    def describe(self) -> dict[str, Any]:
        """The choices that change what is read, as the fields set to other than their defaults.

        A batch records this in each output's fingerprint (:func:`medconv.batch.unit.unit_fingerprint`),
        so a field added later with a default leaves the fingerprints of earlier outputs
        as they were: they resume. Limits that only refuse a unit (:attr:`NOT_IN_RESULT`)
        and the annotation options (:attr:`ANNOTATION_ONLY`) are left out.
        """
        return _changed_fields(self, self.NOT_IN_RESULT | self.ANNOTATION_ONLY)


@dataclass(frozen=True)
class WriteOptions:
    """How writers write.

    Parameters
    ----------
    compression_level:
        0-9, gzip-style (0: store, 9: smallest), or ``None`` for each format's
        default. ``.nii.gz`` maps it onto ISA-L's levels 0-3 (1-3 -> 1, 4-6 -> 2,
        7-9 -> 3); its default is ISA-L level 3, which on CT costs the same time
        as the lower levels and comes within 3 % of dcm2niix's default output
        size (docs/benchmarks.md). ``.npz`` uses zlib, whose default here is
        level 1 (zlib's higher levels are several times slower).
    threads:
        Threads used for gzip compression of one file (0: as many as cores).
    sidecar:
        Also write ``<output>.json`` with the meta, geometry and history.
    overwrite:
        Replace an existing output instead of raising ``OutputExistsError``.
    npz_compressed:
        Deflate the arrays inside ``.npz`` files.
    png_depth:
        Bits per sample of ``.png`` outputs: ``16`` (lossless integer values
        0-65535, e.g. a radiograph's modality values), ``8`` (values 0-255, e.g.
        after a window or the DICOM VOI), or ``None``: 8 for 8-bit data, 16 for
        other integer data that fits. Values that do not fit are an error, never
        clipped (see :mod:`medconv.writers.png`).
    """

    compression_level: Optional[int] = None
    threads: int = 0
    sidecar: bool = True
    overwrite: bool = False
    npz_compressed: bool = True
    png_depth: Optional[Literal[8, 16]] = None

    #: Fields that change how an output is stored or run, never the values it holds:
    #: left out of :meth:`describe`.
    NOT_IN_RESULT = frozenset({"compression_level", "threads", "sidecar", "overwrite", "npz_compressed"})

    def describe(self) -> dict[str, Any]:
        """The choices that change the values an output holds (``png_depth``), where set to other than
        their defaults; for the batch's fingerprint, like :meth:`ReadOptions.describe`."""
        return _changed_fields(self, self.NOT_IN_RESULT)
