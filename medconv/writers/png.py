"""PNG output for 2D images: 8 or 16 bits per sample, lossless, with the pixel size in ``pHYs``.

* **What fits.** A single-slice volume: ``(i, j)``, ``(i, j, 1)``, or with
  channels ``(i, j, 1, c)`` (``c`` = 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA). A
  volume with several slices or a time axis is refused (write NIfTI or npz).
* **Orientation.** The PNG shows the array as it is: column ``c`` is ``i = c``,
  row ``r`` is ``j = r`` (the DICOM display order of a radiograph). Nothing is
  reoriented; the direction and origin are in the sidecar.
* **Depth** (``WriteOptions.png_depth``): ``16`` stores integer values 0-65535
  as they are (a radiograph's modality values, lossless); ``8`` stores values
  0-255 (after a window or the DICOM VOI scaled to 8 bits, or an 8-bit photo);
  ``None`` takes 8 for 8-bit data and 16 for other integer data. Values that do
  not fit the depth (negative, above the top, fractional) are an error naming
  the range and what to do, never clipped or rescaled here.
* **Labels** are written like any integer image (values kept), so a mask PNG
  holds its label values.
* **Pixel size**: ``pHYs`` in pixels per metre (PNG's unit), rounded to an
  integer as the format requires (0.139 mm -> 7194 px/m -> 0.13900 mm), so
  medconv and other tools read the spacing back.
* **Encoder**: Pillow; 16-bit colour, which Pillow cannot write, goes through
  imagecodecs (the ``tiff`` extra). ``WriteOptions.compression_level`` is
  zlib's level (default :data:`DEFAULT_ZLIB_LEVEL`).
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from ..atomic import atomic_output
from ..errors import MissingDependencyError, UnsupportedFormatError
from ..options import WriteOptions
from ..volume import Volume
from .sidecar import sidecar_path, write_sidecar

#: zlib level when ``WriteOptions.compression_level`` is None. Measured on pydicom's CR radiographs (RG1, RG3:
#: 8-bit display, full size and 512 px): level 4 writes files within 2 % of Pillow's default level 6 in 1/2 to
#: 1/3.5 of the time; level 1 is faster still but 15-20 % larger (docs/2d.md).
DEFAULT_ZLIB_LEVEL = 4

MM_PER_INCH = 25.4

#: The integer range each depth holds.
DEPTH_RANGE = {8: (0, 255), 16: (0, 65535)}


def png_plane(volume: Volume) -> np.ndarray:
    """The volume as PNG's C-ordered ``(rows, columns[, channels])`` array (a view where possible).

    Raises
    ------
    UnsupportedFormatError
        The volume has several slices, a time axis, or more than 4 channels.
    """
    array = volume.array
    source = (volume.meta.get("source_files") or [None])[0]
    if array.ndim >= 3 and array.shape[2] != 1:
        raise UnsupportedFormatError(f"a PNG holds one 2D image; this volume has {array.shape[2]} slices", source,
                                     "write .nii.gz or .npz, or pick one slice first")
    if array.ndim == 4:
        axis4 = volume.meta.get("axis4")
        if axis4 not in (None, "channel") or array.shape[3] > 4:
            raise UnsupportedFormatError(f"a PNG holds 1 to 4 colour channels; this volume's 4th axis is "
                                         f"{array.shape[3]} x {axis4 or 'unknown'}", source,
                                         "write .nii.gz or .npz")
        plane = array[:, :, 0, :].transpose(1, 0, 2)
        return plane[:, :, 0] if plane.shape[2] == 1 else plane
    if array.ndim == 3:
        return array[:, :, 0].T
    return array.T


def choose_depth(plane: np.ndarray, asked: int | None, source: str | None = None) -> int:
    """The bits per sample to write ``plane`` with, checking that every value fits (module notes)."""
    if asked not in (None, 8, 16):
        raise UnsupportedFormatError(f"a PNG depth is 8 or 16 bits, not {asked}")
    dtype = plane.dtype
    if dtype == np.bool_:
        return asked or 8
    if dtype.kind == "f":
        finite = np.isfinite(plane)
        if not finite.all() or not np.array_equal(plane, np.round(plane)):
            raise UnsupportedFormatError(
                "the volume holds fractional (or non-finite) values, which a PNG cannot store", source,
                "window it to 8 bits first (--window L,W --scale uint8) or cast it (--dtype uint16)")
    elif dtype.kind not in "iu":
        raise UnsupportedFormatError(f"a PNG cannot store {dtype} values", source)
    depth = asked or (8 if dtype.itemsize == 1 else 16)
    low, high = DEPTH_RANGE[depth]
    if plane.size:
        found_low, found_high = plane.min(), plane.max()
        if found_low < low or found_high > high:
            hint = ("write --png-depth 16, or window it to 8 bits first (--window L,W --scale uint8)"
                    if depth == 8 and found_low >= 0 and found_high <= 65535 else
                    "window it first (--window L,W --scale uint8), or write .nii.gz or .npz")
            raise UnsupportedFormatError(f"values {found_low:g}..{found_high:g} do not fit a {depth}-bit PNG "
                                         f"({low}..{high})", source, hint)
    return depth


def _encode_with_imagecodecs(pixels: np.ndarray, path: str, level: int) -> None:
    try:
        import imagecodecs
    except ImportError as exc:
        raise MissingDependencyError("a 16-bit colour PNG needs imagecodecs (Pillow writes 8-bit colour only)",
                                     path, "pip install 'medconv[tiff]', or write --png-depth 8") from exc
    with open(path, "wb") as handle:
        handle.write(imagecodecs.png_encode(pixels, level=level))


def write_png(pixels: np.ndarray, path: str, spacing_mm: tuple[float, float] | None = None,
              compression_level: int | None = None) -> None:
    """Encode uint8/uint16 ``(rows, columns[, channels])`` ``pixels`` to ``path`` (not atomic: give a temporary)."""
    level = DEFAULT_ZLIB_LEVEL if compression_level is None else max(0, min(9, int(compression_level)))
    pixels = np.ascontiguousarray(pixels)
    if pixels.dtype == np.uint16 and pixels.ndim == 3:
        _encode_with_imagecodecs(pixels, path, level)
        return
    image = Image.fromarray(pixels)
    extra = {}
    if spacing_mm is not None:
        extra["dpi"] = (MM_PER_INCH / spacing_mm[0], MM_PER_INCH / spacing_mm[1])
    image.save(path, format="PNG", compress_level=level, **extra)


class PngWriter:
    """Writes ``.png`` files (and the JSON sidecar on request); see the module notes."""

    name = "png"
    suffixes = (".png",)

    def write(self, volume: Volume, dest: str | os.PathLike, options: WriteOptions = WriteOptions()) -> list[str]:
        dest = os.fspath(dest)
        source = (volume.meta.get("source_files") or [None])[0]
        plane = png_plane(volume)
        depth = choose_depth(plane, options.png_depth, source)
        pixels = plane.astype(np.uint8 if depth == 8 else np.uint16)
        with atomic_output(dest, overwrite=options.overwrite) as temp:
            write_png(pixels, temp, (volume.spacing[0], volume.spacing[1]), options.compression_level)
        written = [dest]
        if options.sidecar:
            written.append(write_sidecar(volume, sidecar_path(dest, ".png"), overwrite=True))
        return written
