"""Siemens mosaic: several slices tiled in one image, unpacked to a 3D (or 4D) volume.

A mosaic file holds ``n`` slices of ``r x c`` pixels tiled row by row in a
square grid of ``m = ceil(sqrt(n))`` tiles per side. ``n`` comes from the CSA
image header (``NumberOfImagesInMosaic``, read with :mod:`nibabel.nicom.csareader`)
or the private tag (0019,100A).

Geometry (as nibabel's ``MosaicWrapper`` and dcm2niix do): the file's
ImagePositionPatient is the corner of the *whole mosaic* seen as one big slice,
not the first tile's position. The first tile's centre is found by moving from
it by ``(m*r - r)/2`` rows and ``(m*c - c)/2`` columns along the IOP directions.
Tile ``t`` lies ``t * SpacingBetweenSlices`` (or ``SliceThickness``) further
along the CSA ``SliceNormalVector`` (the IOP cross product when the CSA header
has none). The positions then go through :func:`stack.plan_stack` like any
other stack (sorting, checks), and several mosaic files of one series become
the time axis of a 4D volume, ordered by AcquisitionNumber, then InstanceNumber.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from medconv.errors import GeometryError, UnsupportedFormatError
from medconv.options import ReadOptions
from medconv.source import Source
from medconv.volume import Volume

from .decode import decode_into, pixel_header, read_datasets
from .pixels import finish_stack
from .series_meta import meta_from_dataset

MOSAIC_IMAGES_TAG = 0x0019100A


def _csareader():
    import warnings

    with warnings.catch_warnings():  # nibabel.nicom warns that its DICOM readers are experimental
        warnings.simplefilter("ignore", UserWarning)
        from nibabel.nicom import csareader
    return csareader


def _csa_image_header(ds: Any) -> dict | None:
    csareader = _csareader()
    try:
        return csareader.get_csa_header(ds, "image")
    except Exception:  # a damaged private CSA block: fall back to public tags
        return None


def mosaic_slice_count(ds: Any, csa: dict | None) -> int | None:
    """NumberOfImagesInMosaic from the CSA header, else the (0019,100A) tag; None if absent."""
    csareader = _csareader()
    if csa is not None:
        try:
            count = csareader.get_n_mosaic(csa)
            if count:
                return int(count)
        except Exception:  # missing or malformed CSA field
            pass
    element = ds.get(MOSAIC_IMAGES_TAG)
    if element is None:
        return None
    value = element.value
    if isinstance(value, (bytes, bytearray)):
        if len(value) in (2, 4):
            return int.from_bytes(value, "little") or None
        try:
            return int(value.decode("ascii").strip("\x00 ")) or None
        except ValueError:
            return None
    try:
        return int(value) or None
    except (TypeError, ValueError):
        return None


def mosaic_geometry(ds: Any, csa: dict | None, count: int, path: str) -> tuple[np.ndarray, np.ndarray, tuple[float, float], tuple[int, int], list[str]]:
    """``(tile positions (count, 3), iop (6,), pixel spacing, tile (rows, cols), warnings)`` of one mosaic."""
    csareader = _csareader()
    warnings: list[str] = []
    try:
        iop = np.array([float(v) for v in ds.ImageOrientationPatient], dtype=np.float64)
        ipp = np.array([float(v) for v in ds.ImagePositionPatient], dtype=np.float64)
        spacing = tuple(float(v) for v in ds.PixelSpacing)
    except (AttributeError, TypeError, ValueError) as exc:
        raise GeometryError(f"mosaic without usable ImagePositionPatient/Orientation/PixelSpacing ({exc})",
                            path=path) from exc
    rows, columns = int(ds.Rows), int(ds.Columns)
    tiles = math.ceil(math.sqrt(count))
    if rows % tiles or columns % tiles:
        raise UnsupportedFormatError(
            f"a {rows}x{columns} mosaic cannot hold {count} slices in a {tiles}x{tiles} grid", path=path,
            hint="NumberOfImagesInMosaic disagrees with the image size: the file may be a cut-down or edited copy",
        )
    tile_rows, tile_cols = rows // tiles, columns // tiles
    row_dir, col_dir = iop[:3], iop[3:]
    # Move from the mosaic's corner pixel to the first tile's: half the size difference
    # in rows (along the column direction) and in columns (along the row direction).
    first = ipp + col_dir * spacing[0] * (rows - tile_rows) / 2 + row_dir * spacing[1] * (columns - tile_cols) / 2
    normal = None
    if csa is not None:
        try:
            vector = csareader.get_slice_normal(csa)
            if vector is not None and np.all(np.isfinite(vector)) and np.linalg.norm(vector) > 0.5:
                normal = np.asarray(vector, dtype=np.float64) / np.linalg.norm(vector)
        except Exception:  # malformed CSA field
            normal = None
    if normal is None:
        normal = np.cross(row_dir, col_dir)
        warnings.append("mosaic without a CSA SliceNormalVector: slices assumed along the IOP normal, ascending")
    step = None
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        value = ds.get(keyword)
        try:
            if value not in (None, "") and float(value) > 0:
                step = float(value)
                break
        except (TypeError, ValueError):
            continue
    if step is None:
        raise GeometryError("mosaic without SpacingBetweenSlices or SliceThickness: slice positions unknown",
                            path=path)
    positions = first[None, :] + np.arange(count, dtype=np.float64)[:, None] * step * normal[None, :]
    return positions, iop, spacing, (tile_rows, tile_cols), warnings


def unpack_mosaic(mosaic: np.ndarray, count: int, out: np.ndarray) -> None:
    """Copy the ``count`` tiles of a 2D ``mosaic`` into ``out`` of shape ``(count, r, c)``."""
    tile_rows, tile_cols = out.shape[1:]
    tiles = mosaic.shape[0] // tile_rows
    grid = mosaic.reshape(tiles, tile_rows, tiles, tile_cols).transpose(0, 2, 1, 3).reshape(tiles * tiles, tile_rows, tile_cols)
    out[...] = grid[:count]


def _time_key(ds: Any, path: str) -> tuple:
    def number(keyword: str) -> float:
        try:
            return float(ds.get(keyword))
        except (TypeError, ValueError):
            return math.inf

    return (number("AcquisitionNumber"), number("InstanceNumber"), str(ds.get("AcquisitionTime", "")), path)


def read_mosaic_series(source: Source, options: ReadOptions = ReadOptions()) -> Volume:
    """Read the Siemens mosaic files of ``source`` into a 3D volume (one file) or 4D (time points).

    Raises
    ------
    UnsupportedFormatError
        Not a mosaic (no slice count), or files of different mosaic layouts.
    GeometryError
        Geometry missing, or time points whose slice positions differ.
    UnreadableFileError
        A file cannot be parsed or decoded.
    """
    from .stack import plan_stack, volume_from_stack

    entries = [(_time_key(ds, path), path, ds) for path, ds in zip(source.paths, read_datasets(source.paths))]
    entries.sort(key=lambda entry: entry[0])
    _, first_path, first_ds = entries[0]
    csa = _csa_image_header(first_ds)
    count = mosaic_slice_count(first_ds, csa)
    if not count:
        raise UnsupportedFormatError("a MOSAIC image without NumberOfImagesInMosaic (CSA or 0019,100A)",
                                     path=first_path, hint="convert this series with dcm2niix")
    positions, iop, spacing, (tile_rows, tile_cols), warnings = mosaic_geometry(first_ds, csa, count, first_path)
    headers = []
    for _, path, ds in entries[1:]:
        other_positions, other_iop, _, _, _ = mosaic_geometry(ds, _csa_image_header(ds), count, path)
        if (int(ds.Rows), int(ds.Columns)) != (int(first_ds.Rows), int(first_ds.Columns)) or not (
            np.allclose(other_positions, positions, atol=0.01) and np.allclose(other_iop, iop, atol=1e-4)
        ):
            raise GeometryError(
                f"mosaic time points do not share one geometry (compared with {first_path})", path=path,
                hint="the series mixes different acquisitions; convert them separately",
            )
    plan = plan_stack(positions, iop, spacing, options, path=first_path,
                      rows=tile_rows, columns=tile_cols, slice_thickness=None)
    stored = None
    mosaic = None
    for index, (_, path, ds) in enumerate(entries):
        header = pixel_header(ds, path)
        if header.samples != 1:
            raise UnsupportedFormatError("colour mosaic images are not supported", path=path)
        if mosaic is None or mosaic.dtype != header.stored_dtype:
            mosaic = np.empty((1, header.rows, header.columns), dtype=header.stored_dtype)
        if stored is None:
            stored = np.empty((len(entries), count, tile_rows, tile_cols), dtype=header.stored_dtype)
        decode_into(path, header, mosaic)
        unpack_mosaic(mosaic[0], count, stored[index])
        headers.append(header)
    stack = finish_stack(stored, headers)
    array = stack.array
    if not np.array_equal(plan.order, np.arange(count)):
        array = array[:, plan.order]
    if len(entries) == 1:
        array = array[0]
    array = np.ascontiguousarray(array)
    meta = meta_from_dataset(first_ds, [path for _, path, _ in entries], stack.units,
                             list(warnings) + list(stack.warnings))
    if len(entries) > 1:
        meta["axis4"] = "time"
    meta.setdefault("dicom", {})["NumberOfImagesInMosaic"] = count
    return volume_from_stack(array, plan, meta, options.kind or "intensity", options)
