"""Synthetic MetaImage files and dataset trees with known geometry, for tests and benchmarks.

Images are written with SimpleITK (the reference MetaImage writer) where it can,
and by hand (:func:`write_mhd_by_hand`) for what it cannot produce on request:
``ElementDataFile = LIST`` and file patterns, big-endian data, ``HeaderSize``,
a chosen ``TransformMatrix`` text, broken files.

``write_luna_tree(dest, n_images, size)`` is meant for the benchmark helper too
(``scripts/bench_workloads.py`` currently has its own, simpler generator).
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

#: A LUNA16 SeriesInstanceUID prefix; the generated names append digits to it.
LUNA_PREFIX = "1.3.6.1.4.1.14519.5.2.1.6279.6001."

_MET_TYPES = {
    np.dtype("int8"): "MET_CHAR", np.dtype("uint8"): "MET_UCHAR", np.dtype("int16"): "MET_SHORT",
    np.dtype("uint16"): "MET_USHORT", np.dtype("int32"): "MET_INT", np.dtype("uint32"): "MET_UINT",
    np.dtype("int64"): "MET_LONG_LONG", np.dtype("uint64"): "MET_ULONG_LONG",
    np.dtype("float32"): "MET_FLOAT", np.dtype("float64"): "MET_DOUBLE",
}


def rotation(angles_deg: Sequence[float] = (20.0, -10.0, 35.0)) -> np.ndarray:
    """A proper rotation (ITK direction: columns are the LPS axes of i, j, k), not symmetric."""
    ax, ay, az = np.radians(angles_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def ct_phantom(size: Sequence[int] = (24, 20, 12), seed: int = 0) -> np.ndarray:
    """An int16 CT-like phantom, C-ordered ``(k, j, i)`` for ``size = (i, j, k)``: air, body, two 'lungs'."""
    i, j, k = size
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(np.linspace(-1, 1, k), np.linspace(-1, 1, j), np.linspace(-1, 1, i), indexing="ij")
    image = np.full((k, j, i), -1000, dtype=np.int16)
    image[(x / 0.9) ** 2 + (y / 0.7) ** 2 < 1] = 40
    image[((x - 0.4) / 0.3) ** 2 + (y / 0.45) ** 2 + (z / 1.2) ** 2 < 1] = -850
    image[((x + 0.4) / 0.3) ** 2 + (y / 0.45) ** 2 + (z / 1.2) ** 2 < 1] = -820
    image += rng.integers(-20, 20, size=image.shape, dtype=np.int16)
    image[0, 0, 0] = 3000  # an asymmetric marker: voxel (0, 0, 0)
    return image


def lung_mask(image: np.ndarray) -> np.ndarray:
    """A LUNA16-style lung mask for :func:`ct_phantom` (uint8, values 0, 3, 4, 5)."""
    mask = np.zeros(image.shape, dtype=np.uint8)
    half = image.shape[2] // 2
    lungs = image < -700
    mask[:, :, :half][lungs[:, :, :half]] = 3
    mask[:, :, half:][lungs[:, :, half:]] = 4
    mask[0, :2, :2] = 5  # trachea-ish corner
    return mask


def write_sitk(array_kji: np.ndarray, path: str | os.PathLike, spacing=(0.7, 0.8, 2.5), origin=(-100.0, -120.0, -300.0),
               direction: np.ndarray | None = None, compress: bool = False, vector: bool = False) -> Path:
    """Write a C-ordered array with SimpleITK (``.mhd`` gets a ``.raw``, or ``.zraw`` when compressed)."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array_kji, isVector=vector)
    dims = image.GetDimension()
    image.SetSpacing(tuple(float(s) for s in spacing[:dims]))
    image.SetOrigin(tuple(float(o) for o in origin[:dims]))
    if direction is not None:
        image.SetDirection(tuple(np.asarray(direction, dtype=float).ravel()))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path), useCompression=compress)
    return path


def write_mhd_by_hand(path: str | os.PathLike, array_kji: np.ndarray, *, spacing=(1.0, 1.0, 1.0),
                      offset=(0.0, 0.0, 0.0), matrix_text: str | None = None, data: str = "raw",
                      msb: bool = False, header_size: int = 0, compress: bool = False, channels: int = 1,
                      extra: Sequence[str] = ()) -> Path:
    """Write a MetaImage header and data the way MetaIO lays them out.

    ``data`` is ``"raw"`` (one external file), ``"local"`` (in the header file),
    ``"list"`` (one file per slice, ``ElementDataFile = LIST``) or ``"pattern"``
    (``slice%03d.raw 1 N 1``). ``header_size`` junk bytes precede the data.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    array_kji = np.ascontiguousarray(array_kji)
    ndim = array_kji.ndim - (1 if channels > 1 else 0)
    shape = array_kji.shape[:ndim][::-1]
    stored = array_kji.astype(array_kji.dtype.newbyteorder(">" if msb else "<"))
    lines = ["ObjectType = Image", f"NDims = {ndim}", "BinaryData = True",
             f"BinaryDataByteOrderMSB = {msb}", f"CompressedData = {compress}"]
    if matrix_text is not None:
        lines.append(f"TransformMatrix = {matrix_text}")
    lines += [f"Offset = {' '.join(repr(float(o)) for o in offset[:ndim])}",
              f"ElementSpacing = {' '.join(repr(float(s)) for s in spacing[:ndim])}",
              f"DimSize = {' '.join(str(s) for s in shape)}"]
    if channels > 1:
        lines.append(f"ElementNumberOfChannels = {channels}")
    if header_size:
        lines.append(f"HeaderSize = {header_size}")
    lines += list(extra)
    lines.append(f"ElementType = {_MET_TYPES[array_kji.dtype]}")
    junk = b"\xab" * header_size
    body = stored.tobytes()
    if compress:
        body = zlib.compress(body)
    if data == "local":
        if compress:
            lines.insert(5, f"CompressedDataSize = {len(body)}")
        text = "\n".join(lines + ["ElementDataFile = LOCAL"]) + "\n"
        path.write_bytes(text.encode() + junk + body)
    elif data == "raw":
        raw = path.with_suffix(".zraw" if compress else ".raw")
        raw.write_bytes(junk + body)
        path.write_text("\n".join(lines + [f"ElementDataFile = {raw.name}"]) + "\n")
    elif data in ("list", "pattern"):
        names = []
        for index, plane in enumerate(stored, start=1):
            name = f"{path.stem}_slice{index:03d}.raw"
            (path.parent / name).write_bytes(junk + plane.tobytes())
            names.append(name)
        if data == "list":
            tail = ["ElementDataFile = LIST"] + names
        else:
            tail = [f"ElementDataFile = {path.stem}_slice%03d.raw 1 {len(names)} 1"]
        path.write_text("\n".join(lines + tail) + "\n")
    else:
        raise ValueError(f"unknown data layout {data!r}")
    return path


def luna_name(index: int) -> str:
    """A LUNA16-style file stem: a SeriesInstanceUID."""
    return f"{LUNA_PREFIX}{100000000000000000000000000000 + index * 7919}"


def write_luna_tree(dest: str | os.PathLike, n_images: int = 3, size: Sequence[int] = (24, 20, 12),
                    subsets: int = 2, masks: bool = True) -> dict[str, list[Path]]:
    """A LUNA16-shaped tree: ``subset<n>/<uid>.mhd`` + ``.raw`` and ``seg-lungs-LUNA16/<uid>.mhd`` masks.

    Written by SimpleITK like the real files (int16 CT, ``MET_UCHAR`` masks with
    values 0/3/4/5, same stems). Returns ``{"images": [...], "masks": [...]}``.
    """
    dest = Path(dest)
    written: dict[str, list[Path]] = {"images": [], "masks": []}
    for index in range(n_images):
        stem = luna_name(index)
        image = ct_phantom(size, seed=index)
        spacing = (0.7 + 0.01 * index, 0.7 + 0.01 * index, 1.25 * (1 + index % 2))
        origin = (-180.0 - index, -170.0, -320.5 + 3 * index)
        written["images"].append(
            write_sitk(image, dest / f"subset{index % subsets}" / f"{stem}.mhd", spacing=spacing, origin=origin))
        if masks:
            written["masks"].append(
                write_sitk(lung_mask(image), dest / "seg-lungs-LUNA16" / f"{stem}.mhd", spacing=spacing, origin=origin))
    return written


def write_sliver_tree(dest: str | os.PathLike, n_cases: int = 2, size: Sequence[int] = (20, 18, 10)) -> dict[str, list[Path]]:
    """A Sliver07-shaped folder: ``liver-orig00N.mhd`` (int16) and ``liver-seg00N.mhd`` (uint8 0/1), ``.raw`` data."""
    dest = Path(dest)
    written: dict[str, list[Path]] = {"images": [], "masks": []}
    for case in range(1, n_cases + 1):
        image = ct_phantom(size, seed=10 + case)
        mask = (image > 0).astype(np.uint8)
        spacing, origin = (0.65, 0.65, 1.5), (-160.0, -150.0, 100.0 * case)
        written["images"].append(write_sitk(image, dest / f"liver-orig{case:03d}.mhd", spacing=spacing, origin=origin))
        written["masks"].append(write_sitk(mask, dest / f"liver-seg{case:03d}.mhd", spacing=spacing, origin=origin))
    return written


def write_problem_cases(dest: str | os.PathLike) -> dict[str, Path]:
    """The cases a real download contains besides plain files, one each, in ``dest``.

    ``oblique`` (rotated TransformMatrix), ``compressed`` (``.mhd`` + ``.zraw``),
    ``embedded`` (``.mha``, zlib LOCAL data), ``missing`` (header whose ``.raw`` is
    absent), ``truncated`` (``.raw`` cut short). The last two must fail, each with
    its own clear error, while the others convert.
    """
    dest = Path(dest)
    cases = {
        "oblique": write_sitk(ct_phantom(seed=21), dest / "oblique.mhd", direction=rotation()),
        "compressed": write_sitk(ct_phantom(seed=22), dest / "compressed.mhd", compress=True),
        "embedded": write_sitk(ct_phantom(seed=23), dest / "embedded.mha", compress=True),
        "missing": write_sitk(ct_phantom(seed=24), dest / "missing.mhd"),
        "truncated": write_sitk(ct_phantom(seed=25), dest / "truncated.mhd"),
    }
    os.remove(dest / "missing.raw")
    raw = dest / "truncated.raw"
    raw.write_bytes(raw.read_bytes()[: raw.stat().st_size // 2])
    return cases
