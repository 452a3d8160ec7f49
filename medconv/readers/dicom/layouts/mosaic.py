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
other stack (sorting, checks, :mod:`..assemble`), and several mosaic files of
one series become the time axis of a 4D volume, ordered by AcquisitionNumber,
then InstanceNumber, then AcquisitionTime (:mod:`..order`); when the files carry
different diffusion weightings ((0019,100C) / (0019,100E), else the CSA
``B_value`` / ``DiffusionGradientDirection``) the 4th axis is "volume" instead.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from medconv.errors import GeometryError, UnsupportedFormatError

from ..decode import read_datasets
from ..diffusion import diffusion_from_csa, is_diffusion_series
from ..plan import Axis4, FrameRef, Layout, UnitPlan
from ..stack import orientation_direction

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
    direction = orientation_direction(iop, path)  # the stack's one orientation rule, before the tile offset uses it
    row_dir, col_dir = direction[:, 0], direction[:, 1]
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


def plan_mosaic(group) -> UnitPlan:
    """The plan of the mosaic files of one stack: one frame per tile, one volume per file.

    Each file is parsed once here (its CSA header gives the tile count and slice
    normal); reading then decodes the pixels without parsing again.

    Raises
    ------
    UnsupportedFormatError
        Not a mosaic (no slice count), or a tile grid that does not fit the matrix.
    GeometryError
        Geometry missing, or files whose orientation or matrix differ.
    """
    headers = tuple(group.headers)
    datasets = read_datasets([h.path for h in headers])
    frames: list[FrameRef] = []
    warnings: list[str] = []
    first_iop = tiles = spacing = None
    for header, ds in zip(headers, datasets):
        csa = _csa_image_header(ds)
        count = mosaic_slice_count(ds, csa)
        if not count:
            raise UnsupportedFormatError("a MOSAIC image without NumberOfImagesInMosaic (CSA or 0019,100A)",
                                         path=header.path, hint="convert this series with dcm2niix")
        positions, iop, pixel_spacing, tile_shape, notes = mosaic_geometry(ds, csa, count, header.path)
        if first_iop is None:
            first_iop, tiles, spacing = iop, tile_shape, pixel_spacing
            warnings.extend(notes)
        elif tile_shape != tiles or not np.allclose(iop, first_iop, atol=1e-4):
            raise GeometryError(f"mosaic time points do not share one geometry (compared with {headers[0].path})",
                                path=header.path, hint="the series mixes different acquisitions; convert them separately")
        acquisition = (_number(header.acquisition_number), _number(header.instance_number),
                       header.acquisition_time, header.path)
        diffusion = header.diffusion or diffusion_from_csa(csa)  # (0019,100C/E), else the CSA header's
        for tile in range(count):
            frames.append(FrameRef(path=header.path, frame=tile, position=tuple(float(v) for v in positions[tile]),
                                   sop_instance_uid=header.sop_instance_uid, echo=None, acquisition=acquisition,
                                   diffusion=diffusion))
    axis4 = None
    if len(headers) > 1:  # one volume per file: time points, or diffusion weightings
        axis4 = Axis4.VOLUME if is_diffusion_series(frames) else Axis4.TIME
    return UnitPlan(layout=Layout.MOSAIC, frames=tuple(frames), headers=headers,
                    iop=tuple(float(v) for v in first_iop), pixel_spacing=tuple(spacing), rows=tiles[0],
                    columns=tiles[1], axis4=axis4, splits=tuple(group.split),
                    label=group.frame_group, warnings=tuple(warnings))


def _number(value) -> float:
    return math.inf if value is None else float(value)


def decode_tiles(stored: np.ndarray, plan: UnitPlan) -> np.ndarray:
    """The ``(tiles, rows, columns)`` slices of one decoded mosaic ``(1, R, C)``."""
    count = sum(1 for frame in plan.frames if frame.path == plan.frames[0].path)
    out = np.empty((count, plan.rows, plan.columns), dtype=stored.dtype)
    unpack_mosaic(stored[0], count, out)
    return out
