"""2D pictures through Pillow: PNG (1 to 16 bits), JPEG, BMP and GIF.

Radiograph sets (NIH ChestX-ray14, Shenzhen, Montgomery, COVID collections) and
fundus or microscopy sets (DRIVE, STARE, CHASE_DB1, IDRiD) ship these. One file
is one volume; 2D TIFF is read by :mod:`medconv.readers.tiff`, with the same layout.

Values
------
The values are Pillow's reading of the file (``numpy.asarray(PIL.Image.open(path))``),
with these decisions:

* **Grey** (``L`` 8-bit, ``I;16`` 16-bit) stays as it is: uint8, uint16;
  bilevel (``1``) becomes uint8 0/1.
* **Colour** (``RGB``, ``RGBA``, ``LA``) keeps its channels on the 4th axis
  (``meta["axis4"] = "channel"``). An alpha channel that is opaque everywhere is
  dropped (it carries nothing); any other alpha is kept as a channel. With
  ``ReadOptions.rgb_to_gray`` colour becomes one grey channel: Pillow's
  ``convert("L")`` (ITU-R 601 luma ``0.299 R + 0.587 G + 0.114 B``).
* **Palette** (``P``, every GIF): a palette of greys is applied (the values are
  the greys shown, equal to Pillow's ``convert("L")``); a colour palette keeps
  its indices when the image is a label mask (the palette colours go into
  ``meta["labels"]``), otherwise the image becomes RGB (Pillow's ``convert("RGB")``).
* **16-bit colour PNG**, which Pillow reduces to 8 bits, is decoded by imagecodecs
  (the ``tiff`` extra) so no bit is lost; without it the read fails saying so.
* Other modes (``CMYK`` JPEG, ``YCbCr``, ``PA``) are converted to RGB(A) by Pillow,
  with a warning.
* An animated GIF or multi-frame file: the first frame, with a warning.

Layout and geometry
-------------------
As TIFF: a grey image is the single-slice volume ``(i, j, 1)``, a colour image
``(i, j, 1, channels)``; ``i`` runs along the columns, ``j`` down the rows; the
array is a transposed view of Pillow's ``(rows, columns[, channels])`` buffer.
There is no patient frame: identity LPS direction, origin ``(0, 0, 0)``. The
spacing is the file's physical pixel size when it states one, else 1 mm with a
warning (``meta["header"]["spacing_from"]`` says which):

* a density per metre (PNG ``pHYs``, BMP) or per centimetre (JPEG JFIF units 2)
  is used, except the print resolutions that editors write by default
  (:data:`PRINT_DPI`: 72, 96, 150, 300, 600 dots per inch), which say nothing
  about the patient;
* a density per inch (JFIF units 1) is print DPI and ignored, as for TIFF;
* GIF states none.

Labels follow :mod:`medconv.labels` (option, then name, then content), as for
every format; a colour image is never a label map.
"""

from __future__ import annotations

import os
import struct
from typing import Any, Iterator, Optional

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import MissingDependencyError, UnreadableFileError, UnsupportedFormatError
from ..labels import compact_labels, decide_kind
from ..options import ReadOptions
from ..pixels import luma
from ..source import InfoKey, Source
from ..volume import Volume
from .files import file_source_id, walk_files

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")

#: The formats this reader takes, by Pillow's format name.
FORMATS = ("PNG", "JPEG", "BMP", "GIF")

_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"GIF87a", b"GIF89a")

#: Dots per inch that image editors write by default: a print size, not a pixel size.
PRINT_DPI = (72.0, 96.0, 150.0, 300.0, 600.0)

#: Two densities closer than this (dots per inch) are the same print resolution
#: (a density per metre is an integer, so 72 dpi is stored as 2835 px/m = 72.009 dpi).
PRINT_DPI_TOLERANCE = 0.5

MM_PER_INCH = 25.4

#: Where ``--preview`` puts its pictures (``medconv.batch.run.PREVIEW_DIR``): a folder of
#: medconv's own output, never images of a dataset, so discovery skips it.
PREVIEW_FOLDER = "_preview"

#: Pillow modes read as they are, with their channel count.
_DIRECT_MODES = {"L": 1, "I;16": 1, "I;16B": 1, "I;16L": 1, "I": 1, "F": 1, "LA": 2, "RGB": 3, "RGBA": 4}

#: PNG colour types that have several samples per pixel (grey+alpha, RGB, RGBA).
_PNG_COLOUR_TYPES = (2, 4, 6)


#: Samples per pixel of each PNG colour type (a palette image counts as one).
_PNG_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _png_header(path: str) -> Optional[tuple[int, int, int, int]]:
    """``(width, height, bit depth, colour type)`` from a PNG's IHDR chunk; ``None`` if it has none."""
    with open(path, "rb") as handle:
        head = handle.read(26)
    if len(head) < 26 or not head.startswith(_MAGIC[0]) or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return width, height, head[24], head[25]


def _is_print_density(dpi: float) -> bool:
    return any(abs(dpi - value) <= PRINT_DPI_TOLERANCE for value in PRINT_DPI)


def stated_spacing(image: "Image.Image") -> tuple[Optional[tuple[float, float]], str]:
    """The physical pixel size ``(column step, row step)`` in mm a file states, and where it came from.

    ``(None, reason)`` when it states none that describes the patient (module notes).
    """
    info = image.info
    if image.format == "JPEG":
        unit = info.get("jfif_unit")
        density = info.get("jfif_density")
        if unit == 2 and density and min(density) > 0:  # dots per centimetre
            if not _is_print_density(density[0] * 2.54):
                return (10.0 / density[0], 10.0 / density[1]), "JFIF density (dots per cm)"
            return None, "JFIF density is a print resolution (ignored)"
        if unit == 1:
            return None, "JFIF density in dots per inch is a print resolution (ignored)"
        return None, "none"
    dpi = info.get("dpi")
    if image.format in ("PNG", "BMP") and dpi and min(dpi) > 0:
        if _is_print_density(dpi[0]) and _is_print_density(dpi[1]):
            return None, f"{image.format} density {dpi[0]:.0f} dpi is a print resolution (ignored)"
        label = "PNG pHYs (pixels per metre)" if image.format == "PNG" else "BMP pixels per metre"
        return (MM_PER_INCH / dpi[0], MM_PER_INCH / dpi[1]), label
    return None, "none"


def _open(path: str) -> "Image.Image":
    try:
        return Image.open(path)
    except FileNotFoundError:
        raise UnreadableFileError("the file does not exist", path) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UnreadableFileError(f"not a readable image ({exc})", path,
                                  "the file is probably truncated or not a PNG/JPEG/BMP/GIF") from exc


def _decode_16bit_colour(path: str) -> np.ndarray:
    """A 16-bit grey+alpha, RGB or RGBA PNG at full depth (Pillow would keep only the high 8 bits)."""
    try:
        import imagecodecs
    except ImportError as exc:
        raise MissingDependencyError("this is a 16-bit colour PNG, which Pillow reads as 8 bits only, and "
                                     "imagecodecs is not installed", path, "pip install 'medconv[tiff]'") from exc
    try:
        with open(path, "rb") as handle:
            return imagecodecs.png_decode(handle.read())
    except Exception as exc:  # imagecodecs raises its own PngError on a broken stream
        raise UnreadableFileError(f"the PNG cannot be decoded ({exc})", path, "the file is probably truncated") from exc


def _load(image: "Image.Image", path: str) -> None:
    try:
        image.load()
    except (OSError, ValueError, SyntaxError, struct.error) as exc:
        raise UnreadableFileError(f"the pixel data cannot be decoded ({exc})", path,
                                  "the file is probably truncated or corrupt; download it again") from exc


def _palette_rgb(image: "Image.Image") -> np.ndarray:
    """The palette as a ``(256, 3)`` uint8 array (missing entries black)."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    entries = np.asarray(image.getpalette() or [], dtype=np.uint8)[: 256 * 3]
    entries = entries[: len(entries) // 3 * 3].reshape(-1, 3)
    palette[: len(entries)] = entries
    return palette


def _drop_opaque_alpha(array: np.ndarray, header: dict[str, Any]) -> np.ndarray:
    """``array`` (rows, columns, channels) without its last channel when that is an alpha opaque everywhere."""
    opaque = np.iinfo(array.dtype).max
    if np.all(array[..., -1] == opaque):
        header["alpha"] = "opaque everywhere: dropped"
        array = array[..., :-1]
        return array[..., 0] if array.shape[-1] == 1 else array
    header["alpha"] = "kept as the last channel"
    return array


def _palette_pixels(image: "Image.Image", relpath: str, options: ReadOptions, header: dict[str, Any],
                    warnings: list[str]) -> tuple[np.ndarray, Optional[list[dict[str, Any]]]]:
    """The pixels of a palette image (module notes) and, for a label mask, its label table."""
    indices = np.asarray(image)
    palette = _palette_rgb(image)
    used = np.flatnonzero(np.bincount(indices.reshape(-1), minlength=256))
    colours = palette[used]
    if np.all(colours[:, 0] == colours[:, 1]) and np.all(colours[:, 1] == colours[:, 2]):
        header["palette"] = "greys: applied (values are the greys shown)"
        return palette[:, 0][indices], None
    kind, _ = decide_kind(relpath, indices, options)
    if kind == "label":
        header["palette"] = "colours: a label mask, the indices kept"
        table = [{"value": int(v), "name": f"palette index {int(v)}", "color": palette[v].tolist(), "source": "palette"}
                 for v in used if v != 0]
        return indices, table
    header["palette"] = "colours: converted to RGB"
    if "transparency" in image.info:
        return _drop_opaque_alpha(np.asarray(image.convert("RGBA")), header), None
    return np.asarray(image.convert("RGB")), None


def read_pixels(path: str, relpath: str, options: ReadOptions = ReadOptions()
                ) -> tuple[np.ndarray, dict[str, Any], list[str], Optional[list[dict[str, Any]]]]:
    """Pillow's ``(rows, columns[, channels])`` array of one file, its header facts, warnings and label table."""
    warnings: list[str] = []
    with _open(path) as image:
        if image.format not in FORMATS:
            raise UnsupportedFormatError(f"a {image.format} file is not read by the image2d reader", path,
                                         "PNG, JPEG, BMP and GIF are; TIFF goes through the tiff reader")
        frames = int(getattr(image, "n_frames", 1) or 1)
        if frames > 1:
            warnings.append(f"the file holds {frames} frames; read the first")
        spacing, spacing_from = stated_spacing(image)
        header: dict[str, Any] = {"format": image.format, "mode": image.mode, "frames": frames,
                                  "spacing_from": spacing_from}
        if image.format == "JPEG":
            header["lossy"] = True
        labels = None
        _, _, bit_depth, colour_type = (_png_header(path) or (0, 0, 0, 0)) if image.format == "PNG" else (0, 0, 0, 0)
        header["bits"] = bit_depth or (16 if image.mode.startswith("I;16") else 8)
        if bit_depth == 16 and colour_type in _PNG_COLOUR_TYPES:
            array = _decode_16bit_colour(path)
            header["decoder"] = "imagecodecs (16-bit colour)"
        else:
            _load(image, path)
            mode = image.mode
            if mode == "P":
                array, labels = _palette_pixels(image, relpath, options, header, warnings)
            elif mode == "1":
                array = np.asarray(image).astype(np.uint8)  # Pillow's bool bytes are 0/255: make them 0/1
            elif mode in _DIRECT_MODES:
                array = np.asarray(image)
            else:
                target = "RGBA" if mode.endswith("A") else "RGB"
                warnings.append(f"{mode} image converted to {target} by Pillow")
                array = np.asarray(image.convert(target))
        if array.ndim == 3:
            if array.shape[-1] in (2, 4):
                array = _drop_opaque_alpha(array, header)
            if array.ndim == 3 and options.rgb_to_gray:
                if array.shape[-1] == 2:
                    array = array[..., 0]
                elif array.dtype == np.uint8:
                    array = np.asarray(Image.fromarray(np.ascontiguousarray(array)).convert("L"))
                else:
                    array = luma(array)
                header["converted"] = "rgb_to_gray (ITU-R 601 luma)"
    if spacing is None:
        warnings.append("the image states no physical pixel size: used 1 mm")
    header["spacing_mm"] = list(spacing) if spacing else None
    return array, header, warnings, labels


def plane_volume_array(array: np.ndarray) -> np.ndarray:
    """``(rows, columns[, channels])`` as the volume view ``(i, j, 1[, channels])`` (no copy)."""
    if array.ndim == 2:
        return array.T[:, :, np.newaxis]
    return array.transpose(1, 0, 2)[:, :, np.newaxis, :]


#: Why a 1-bit (bilevel) image is a label mask: its format says so (kind decided from the header, like scan).
BILEVEL_REASON = "a 1-bit image is a mask"


class Image2DReader:
    """PNG, JPEG, BMP and GIF files, one volume each (see the module notes)."""

    name = "image2d"
    suffixes = IMAGE_SUFFIXES

    def sniff(self, path: str) -> bool:
        try:
            with open(path, "rb") as handle:
                head = handle.read(8)
        except Exception:
            return False
        return any(head.startswith(magic) for magic in _MAGIC)

    def discover(self, root: str) -> Iterator[Source]:
        """Every PNG, JPEG, BMP and GIF file under ``root`` (headers only)."""
        is_dir = os.path.isdir(root)
        for path, suffix in walk_files(root, IMAGE_SUFFIXES):
            if is_dir and _in_preview_folder(path, root):
                continue
            yield Source(id=file_source_id(path, root, suffix), reader=self.name, paths=(path,),
                         root=root if is_dir else "", info=_file_info(path))

    def read(self, source: Source, options: ReadOptions = ReadOptions()) -> Volume:
        array, header, warnings, labels = read_pixels(source.path, source.relative_path, options)
        colour = array.ndim == 3
        view = plane_volume_array(array)
        if colour:
            if options.kind == "label":
                raise UnsupportedFormatError(f"a colour image ({array.shape[-1]} channels) cannot be a label map",
                                             source.path, "store masks as grey or palette images")
            kind, reason = "intensity", "a colour image is an intensity image"
        elif header["mode"] == "1" and options.kind is None:  # the format says so, as scan sees too
            kind, reason = "label", BILEVEL_REASON
        else:
            kind, reason = decide_kind(source.relative_path, view, options)
        if kind == "label":
            view = compact_labels(view)
        header["kind_reason"] = reason
        spacing = header["spacing_mm"] or [1.0, 1.0]
        meta: dict[str, Any] = {"source_format": self.name, "source_files": list(source.paths), "warnings": warnings,
                                "header": header}
        if colour:
            meta["axis4"] = "channel"
        if kind == "label" and labels:
            meta["labels"] = labels
        return Volume(array=view, spacing=(spacing[0], spacing[1], 1.0), kind=kind, meta=meta)


def _in_preview_folder(path: str, root: str) -> bool:
    """Whether ``path`` lies in a preview folder of an earlier medconv run (with its ``index.html``)."""
    folder = os.path.dirname(path)
    while len(folder) >= len(root):
        if os.path.basename(folder) == PREVIEW_FOLDER and os.path.isfile(os.path.join(folder, "index.html")):
            return True
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return False


def _file_info(path: str) -> dict[str, Any]:
    """Header facts for planning and ``medconv scan`` (no pixel is decoded)."""
    try:
        png = _png_header(path) if path.lower().endswith(".png") else None
        if png is not None:  # 26 bytes instead of Pillow's open: ChestX-ray14 has 112,120 of them
            columns, rows, _, colour_type = png
            samples = _PNG_SAMPLES.get(colour_type, 1)
            bilevel = png[2] == 1 and colour_type == 0
            return {InfoKey.SHAPE: [columns, rows, 1] + ([samples] if samples > 1 else []), "format": "PNG",
                    "kind_guess": "label" if bilevel else decide_kind(os.path.basename(path), None)[0]}
        with Image.open(path) as image:
            columns, rows = image.size
            channels = {"RGB": 3, "RGBA": 4, "LA": 2, "CMYK": 3, "YCbCr": 3}.get(image.mode, 1)
            shape = [columns, rows, 1] + ([channels] if channels > 1 else [])
            return {InfoKey.SHAPE: shape, "format": image.format, "mode": image.mode,
                    "kind_guess": "label" if image.mode == "1" else decide_kind(os.path.basename(path), None)[0]}
    except Exception as exc:  # a broken file is reported when it is read
        return {InfoKey.ERROR: f"not a readable image ({exc})"}
