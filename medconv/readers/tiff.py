"""TIFF input through tifffile (+ imagecodecs for the compressions): stacks, ImageJ, OME-TIFF.

What becomes a volume
---------------------
* **One file** is one volume: its first series (tifffile's ``series[0]``; a file
  holding more series gets a warning). A multi-page stack gives ``k`` = page, a
  2D image becomes a single-slice volume ``(i, j, 1)``.
* **A folder of single-slice TIFFs** is one volume when it holds two or more TIFF
  files whose names are identical once their digits are removed
  (``slice_001.tif``, ``slice_002.tif`` ...) and whose first and last files are
  single 2D greyscale pages of the same size (colour pages are photographs, each its own image). Slices are stacked in natural sort order
  (``2`` before ``10``); every slice must have the first one's size and type, or
  the read fails naming the odd file. Any other folder's files are separate volumes.

Axes (tifffile's axis letters, its array is C-ordered like ``(Z, Y, X)``):
``X`` -> ``i`` (image columns), ``Y`` -> ``j`` (rows), ``Z`` (or the page axis
``I``/``Q`` of a plain stack) -> ``k``, ``T`` -> the 4th axis (``axis4="time"``),
``C``/``S`` (channels, RGB samples) -> the 4th axis (``axis4="channel"``).
Axes of length 1 are dropped. ``Volume.array`` is a transposed view of
tifffile's array (no copy). RGB(A) is converted to grey on request
(``ReadOptions.rgb_to_gray``: ITU-R 601 luma ``0.299 R + 0.587 G + 0.114 B``,
alpha dropped, rounded back to the input type). Palette images keep their
palette indices (as tifffile returns them), with a warning.

Geometry: TIFF has no world frame. Every volume gets the identity direction in
LPS (``i`` towards patient Left, ``j`` towards Posterior, ``k`` towards Superior;
axis codes ``LPS``, NIfTI affine ``diag(-sx, -sy, sz)``) and origin ``(0, 0, 0)``.
Spacing per axis, first found wins:

1. OME-TIFF ``PhysicalSizeX/Y/Z`` with their units (default µm), converted to mm;
2. ImageJ: ``XResolution``/``YResolution`` (pixels per ``unit``) and ``spacing``
   (the z step), in the ImageJ ``unit`` (micron, um, mm, cm, m, nm, inch);
3. TIFF ``XResolution``/``YResolution`` with ``ResolutionUnit = CENTIMETER``
   (resolutions in inches are print DPI such as 72 or 300, not a pixel size,
   and are ignored);
4. ``ReadOptions.tiff_spacing`` (``--tiff-spacing``);
5. 1 mm, with a warning naming the axes.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from typing import Any, Iterator, Optional

import numpy as np
import tifffile  # the "tiff" extra: a missing install becomes MissingDependencyError in the registry

from ..errors import MedconvError, UnreadableFileError, UnsupportedFormatError, VolumeTooLargeError
from ..labels import compact_labels, decide_kind
from ..options import ReadOptions
from ..pixels import luma
from ..source import InfoKey, Source
from ..volume import Volume
from .files import (check_discovered_file, check_source, discovery_failure_source, file_source_id, guarded_source,
                    natural_key, outside_source, walk_files)
from .limits import check_voxel_count
from .tiff_structure import IfdChain, check_ifd_chain, check_series_layout

TIFF_SUFFIXES = (".tif", ".tiff", ".ome.tif", ".ome.tiff")

#: Length units (OME, ImageJ, TIFF) in millimetres.
UNIT_MM: dict[str, float] = {
    "m": 1e3, "cm": 10.0, "mm": 1.0, "µm": 1e-3, "μm": 1e-3, "um": 1e-3, "micron": 1e-3, "microns": 1e-3,
    "\\u00b5m": 1e-3, "nm": 1e-6, "å": 1e-7, "angstrom": 1e-7, "pm": 1e-9, "in": 25.4, "inch": 25.4,
}
_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_PAGE_AXES = "ZIQ"  # axes that become k when they are the only stacking axis


def _unit_mm(unit: Optional[str]) -> Optional[float]:
    if unit is None:
        return None
    return UNIT_MM.get(str(unit).strip().lower())


def _ome_spacing(tif: "tifffile.TiffFile") -> dict[str, float]:
    import xml.etree.ElementTree as ElementTree

    try:
        root = ElementTree.fromstring(tif.ome_metadata)
    except (ElementTree.ParseError, TypeError):
        return {}
    pixels = next((element for element in root.iter() if element.tag.endswith("Pixels")), None)
    if pixels is None:
        return {}
    spacing = {}
    for axis in "XYZ":
        value = pixels.get(f"PhysicalSize{axis}")
        scale = _unit_mm(pixels.get(f"PhysicalSize{axis}Unit", "µm"))
        if value is not None and scale is not None and float(value) > 0:
            spacing[axis] = float(value) * scale
    return spacing


def _resolution_spacing(page: "tifffile.TiffPage", scale: float) -> dict[str, float]:
    spacing = {}
    for axis, tag in (("X", "XResolution"), ("Y", "YResolution")):
        value = page.tags.get(tag)
        if value is None:
            continue
        numerator, denominator = value.value if isinstance(value.value, tuple) else (value.value, 1)
        if numerator > 0 and denominator > 0:
            spacing[axis] = denominator / numerator * scale
    return spacing


def file_spacing(tif: "tifffile.TiffFile") -> tuple[dict[str, float], str]:
    """The physical spacing (mm) a TIFF file states, by axis letter, and where it came from."""
    if tif.is_ome:
        spacing = _ome_spacing(tif)
        if spacing:
            return spacing, "OME PhysicalSize"
    page = tif.pages.first
    if tif.is_imagej:
        metadata = tif.imagej_metadata or {}
        scale = _unit_mm(metadata.get("unit"))
        if scale is not None:
            spacing = _resolution_spacing(page, scale)
            if metadata.get("spacing"):
                spacing["Z"] = float(metadata["spacing"]) * scale
            return spacing, f"ImageJ (unit {metadata.get('unit')})"
    unit = page.tags.get("ResolutionUnit")
    if unit is not None and int(unit.value) == 3:  # CENTIMETER
        return _resolution_spacing(page, 10.0), "TIFF resolution (cm)"
    return {}, "none"


def _choose_spacing(stated: dict[str, float], options: ReadOptions, slices: int,
                    warnings: list[str]) -> tuple[float, float, float]:
    spacing = []
    defaulted = []
    for index, axis in enumerate("XYZ"):
        if axis in stated:
            spacing.append(stated[axis])
        elif options.tiff_spacing is not None:
            spacing.append(float(options.tiff_spacing[index]))
        else:
            spacing.append(1.0)
            if axis != "Z" or slices > 1:  # a single slice has no meaningful z step
                defaulted.append("ijk"[index])
    if defaulted:
        warnings.append(f"the TIFF states no physical spacing along {', '.join(defaulted)}: used 1 mm "
                        "(give it with --tiff-spacing SX,SY,SZ; in Python ReadOptions.tiff_spacing)")
    return (spacing[0], spacing[1], spacing[2])


def volume_axes(array: np.ndarray, axes: str, path: str) -> tuple[np.ndarray, Optional[str], str]:
    """Reorder tifffile's ``array`` (with axis letters ``axes``) into ``(i, j, k[, 4th])`` as a view.

    Returns the view, the 4th axis' meaning (``"time"``, ``"channel"`` or ``None``),
    and the letters of the 4th axis (for ``rgb_to_gray``).
    """
    axes = axes.upper()
    keep = [n for n, letter in enumerate(axes) if array.shape[n] > 1 or letter in "XY"]
    squeezed = array.reshape([array.shape[n] for n in keep])
    letters = "".join(axes[n] for n in keep)
    if "X" not in letters or "Y" not in letters:
        raise UnsupportedFormatError(f"the image has no X and Y axes (tifffile axes {axes!r})", path)
    stack = [n for n, letter in enumerate(letters) if letter not in "XYTCS"]
    if len(stack) > 1:
        raise UnsupportedFormatError(f"the image has several stacking axes ({letters!r})", path,
                                     "medconv volumes have one slice axis; split the file first")
    extra = [n for n, letter in enumerate(letters) if letter in "TCS"]
    if len(extra) > 1:
        raise UnsupportedFormatError(
            f"the image has {len(extra) + 3} axes ({letters!r}: {squeezed.shape}); a volume has at most 4", path,
            "convert RGB to grey (rgb_to_gray) or split the channels or time points first")
    order = [letters.index("X"), letters.index("Y")] + stack + extra
    view = squeezed.transpose(order)
    if not stack:
        view = view[:, :, np.newaxis, ...]
    if not extra:
        return view, None, ""
    letter = letters[extra[0]]
    return view, "time" if letter == "T" else "channel", letter


def _open(path: str) -> tuple["tifffile.TiffFile", IfdChain]:
    """tifffile's view of ``path``, after :func:`check_ifd_chain` (a looping chain would never end),
    and the chain that walk found (for :func:`check_series_layout`)."""
    chain = check_ifd_chain(path)
    try:
        return tifffile.TiffFile(path), chain
    except FileNotFoundError:
        raise UnreadableFileError("the file does not exist", path) from None
    except Exception as exc:  # tifffile raises TiffFileError, ValueError, struct.error on bad files
        raise UnreadableFileError(f"not a readable TIFF file ({exc})", path,
                                  "the file is probably truncated or not a TIFF") from exc


def _decode(series: "tifffile.TiffPageSeries", path: str) -> np.ndarray:
    """The series' pixels; anything but an array of the series' shape is an error (tifffile returns an
    empty array for a sample format it cannot decode)."""
    try:
        array = series.asarray()
    except Exception as exc:
        hint = "install imagecodecs: pip install 'medconv[tiff]'" if "imagecodecs" in str(exc) else \
            "the file is probably truncated or corrupt"
        raise UnreadableFileError(f"the pixel data cannot be decoded ({exc})", path, hint) from exc
    if tuple(array.shape) != tuple(series.shape):
        raise UnreadableFileError(f"tifffile decoded an array of shape {array.shape} for an image of shape "
                                  f"{tuple(series.shape)}", path,
                                  "the file is probably corrupt, or its BitsPerSample/SampleFormat is not supported")
    return array


def _read_file(path: str, warnings: list[str],
               options: ReadOptions = ReadOptions()) -> tuple[np.ndarray, str, dict[str, Any]]:
    """``(array, axes, header)`` of the first series of one file, after the checks of
    :mod:`medconv.readers.tiff_structure` and the voxel limit."""
    tif, chain = _open(path)
    with tif:
        try:
            series_list = tif.series
            if not series_list:
                raise UnreadableFileError("the TIFF holds no image", path)
            series = series_list[0]
            check_voxel_count(series.shape, path, options)
            check_series_layout(series, path, chain)
            page = series.pages[0] if series.pages else tif.pages.first
        except (UnreadableFileError, VolumeTooLargeError):
            raise
        except Exception as exc:  # tifffile parses pages lazily: a corrupt one raises here
            raise UnreadableFileError(f"not a readable TIFF file ({exc})", path,
                                      "the file is probably truncated or corrupt") from exc
        if len(series_list) > 1:
            warnings.append(f"the file holds {len(series_list)} image series; read the first")
        array = _decode(series, path)
        if not array.dtype.isnative:
            array = array.astype(array.dtype.newbyteorder("="))
        try:
            header = _header_facts(tif, series, page, warnings)
        except Exception as exc:  # a corrupt tag tifffile decoded lazily
            raise UnreadableFileError(f"the TIFF tags cannot be read ({exc})", path,
                                      "the file is probably corrupt") from exc
    return array, series.axes, header


def _header_facts(tif: "tifffile.TiffFile", series, page, warnings: list[str]) -> dict[str, Any]:
    """The ``meta["header"]`` of a TIFF volume: axes, photometric, compression, bits, spacing source."""
    photometric = getattr(page.photometric, "name", str(page.photometric))
    if photometric == "PALETTE":
        warnings.append("palette-colour image: kept the palette indices as values (the colormap is not applied)")
    bits = page.bitspersample
    header = {
        "axes": series.axes, "kind": series.kind, "photometric": photometric,
        "compression": getattr(page.compression, "name", str(page.compression)),
        "bits_per_sample": [int(b) for b in bits] if isinstance(bits, tuple) else int(bits),
        "imagej": bool(tif.is_imagej), "ome": bool(tif.is_ome),
    }
    stated, spacing_from = file_spacing(tif)
    header["spacing_from"] = spacing_from
    header["stated_spacing_mm"] = stated
    return header


class TiffReader:
    """TIFF files and folders of single-slice TIFFs (see the module notes)."""

    name = "tiff"
    suffixes = TIFF_SUFFIXES

    def sniff(self, path: str) -> bool:
        try:
            with open(path, "rb") as handle:
                return handle.read(4) in _MAGIC
        except Exception:
            return False

    def discover(self, root: str) -> Iterator[Source]:
        """Every TIFF file under ``root``, with slice folders (module notes) as one Source each."""
        by_folder: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for path, suffix in walk_files(root, TIFF_SUFFIXES):
            by_folder[os.path.dirname(path)].append((path, suffix))
        is_dir = os.path.isdir(root)
        for folder, found in by_folder.items():
            files = []
            for path, suffix in found:  # special files and links out of the dataset are never opened
                try:
                    outside = check_discovered_file(path, root)
                except Exception as exc:
                    yield discovery_failure_source(self.name, path, root, suffix, exc)
                    continue
                if outside is not None:
                    yield outside_source(self.name, path, root, suffix, outside)
                else:
                    files.append((path, suffix))
            slice_shape = _slice_folder_shape([path for path, _ in files]) if is_dir else None
            if slice_shape is not None:
                relative = os.path.relpath(folder, root)
                source_id = os.path.basename(os.path.abspath(root)) if relative == "." else relative.replace(os.sep, "/")
                rows, columns = slice_shape[:2]
                info = {InfoKey.LAYOUT: "slice folder", "slices": len(files),
                        InfoKey.SHAPE: [columns, rows, len(files)] + list(slice_shape[2:]),
                        "kind_guess": decide_kind(relative, None)[0]}
                yield Source(id=source_id, reader=self.name, paths=tuple(path for path, _ in files), root=root,
                             info=info)
                continue
            for path, suffix in files:
                yield guarded_source(self.name, path, root, suffix, lambda: Source(
                    id=file_source_id(path, root, suffix), reader=self.name, paths=(path,),
                    root=root if is_dir else "", info=_file_info(path)))

    def read(self, source: Source, options: ReadOptions = ReadOptions()) -> Volume:
        check_source(source, options)
        warnings: list[str] = []
        if len(source.paths) > 1:
            array, axes, header = _read_slice_folder(source.paths, warnings, options)
        else:
            array, axes, header = _read_file(source.path, warnings, options)
        view, axis4, letter = volume_axes(array, axes, source.path)
        if axis4 == "channel" and options.rgb_to_gray:
            if letter == "S" and view.shape[3] in (3, 4):
                view = luma(view)
                axis4 = None
                header["converted"] = "rgb_to_gray (ITU-R 601 luma)"
            else:
                warnings.append(f"rgb_to_gray asked for, but the {view.shape[3]} channels are not RGB: kept them")
        spacing = _choose_spacing(header["stated_spacing_mm"], options, view.shape[2], warnings)
        kind, reason = decide_kind(source.relative_path, view, options)
        if kind == "label":
            view = compact_labels(view)
        header["kind_reason"] = reason
        meta: dict[str, Any] = {"source_format": self.name, "source_files": list(source.paths),
                                "warnings": warnings, "header": header}
        if axis4:
            meta["axis4"] = axis4
        return Volume(array=view, spacing=spacing, origin=(0.0, 0.0, 0.0), direction=np.eye(3), kind=kind, meta=meta)


def _file_info(path: str) -> dict[str, Any]:
    """Header facts for ``medconv scan`` (pages are not decoded)."""
    try:
        with _open(path)[0] as tif:
            series = tif.series[0]
            stated, spacing_from = file_spacing(tif)
            page = series.pages[0] if series.pages else tif.pages.first
            placeholder = np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), series.shape, (0,) * len(series.shape))
            shape, axis4, _ = volume_axes(placeholder, series.axes, path)  # (i, j, k[, 4th]) without decoding
            return {InfoKey.SHAPE: list(shape.shape), "tiff_shape": list(series.shape), "axes": series.axes,
                    "dtype": str(series.dtype), "series": len(tif.series), "spacing_mm": stated,
                    "spacing_from": spacing_from, "rgb": getattr(page.photometric, "name", "") == "RGB",
                    "4d": axis4 is not None and shape.shape[2] > 1,
                    "kind_guess": decide_kind(os.path.basename(path), None)[0]}
    except MedconvError as exc:  # a broken file is reported when it is read
        return {InfoKey.ERROR: exc.one_line()}
    except Exception as exc:
        return {InfoKey.ERROR: f"not a readable TIFF file ({exc})"}


def _single_2d_page(path: str) -> Optional[tuple]:
    try:
        with _open(path)[0] as tif:
            if len(tif.pages) != 1 or len(tif.series) != 1:
                return None
            series = tif.series[0]
            if series.axes.upper() != "YX":  # colour pages (YXS) are 2D photos (DRIVE's 21_training.tif ...)
                return None
            return series.shape, str(series.dtype)
    except Exception:
        return None


def _slice_folder_shape(paths: list[str]) -> Optional[tuple]:
    """The slice shape (tifffile's, e.g. ``(Y, X)``) when these files form a slice folder, else ``None``."""
    if len(paths) < 2:
        return None
    patterns = {re.sub(r"\d+", "#", os.path.basename(path).lower()) for path in paths}
    if len(patterns) != 1 or "#" not in next(iter(patterns)):
        return None
    first, last = _single_2d_page(paths[0]), _single_2d_page(paths[-1])
    return first[0] if first is not None and first == last else None


def _read_slice_folder(paths: tuple[str, ...], warnings: list[str],
                       options: ReadOptions = ReadOptions()) -> tuple[np.ndarray, str, dict[str, Any]]:
    """Stack single-page files (natural order) into one ``(Z, Y, X[, S])`` array."""
    ordered = sorted(paths, key=lambda p: natural_key(os.path.basename(p)))
    first, axes, header = _read_file(ordered[0], warnings, options)
    check_voxel_count((len(ordered),) + first.shape, ordered[0], options)
    stack = np.empty((len(ordered),) + first.shape, dtype=first.dtype)
    stack[0] = first
    for index, path in enumerate(ordered[1:], start=1):
        slice_warnings: list[str] = []
        array, slice_axes, _ = _read_file(path, slice_warnings, options)
        if array.shape != first.shape or array.dtype != first.dtype or slice_axes != axes:
            raise UnreadableFileError(
                f"slice {index + 1} of {len(ordered)} is {array.shape} {array.dtype}, the first slice "
                f"({os.path.basename(ordered[0])}) is {first.shape} {first.dtype}", path,
                "a slice folder needs slices of one size and type; move the odd file out")
        stack[index] = array
    header["slices"] = len(ordered)
    return stack, "Z" + axes, header
