"""Frozen option objects that travel with the work to worker processes.

The CLI builds them from its flags; the library never reads globals, because
worker processes (loky, Dask) never see globals set in the parent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Mapping, Optional

if TYPE_CHECKING:  # pragma: no cover  (the DICOM reader loads when a unit is read, not with the options)
    from .readers.dicom.greyscale import VoiChoice


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
    voi: Optional["VoiChoice"] = None
    voi_bits: Literal[8, 16] = 8
    pet: Optional[Literal["suv", "sul"]] = None
    extra: Mapping[str, Any] = field(default_factory=dict)


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
