"""MetaImage output: ``.mha`` (header and voxels in one file) and ``.mhd`` (header + ``.raw``/``.zraw``).

* The world space of MetaImage is LPS (ITK's), so ``Offset`` is the Volume's
  origin and ``TransformMatrix`` its direction, written as MetaIO stores it:
  the direction's columns (the axes) one after another, i.e. the transpose of
  ITK's row-major ``GetDirection()`` (DESIGN.md; checked against SimpleITK).
  ``AnatomicalOrientation`` carries the ITK letters ITK itself writes for that
  direction (``RAI`` for the identity; informative only, readers use the matrix).
* The element type is kept (labels stay integers); bool is written as
  ``MET_UCHAR`` and float16 as ``MET_FLOAT``. Little-endian
  (``BinaryDataByteOrderMSB = False``).
* ``.mha`` is zlib-deflated by default (``CompressedData = True``, ISA-L;
  ``compression_level=0`` writes raw). ``.mhd`` writes ``<stem>.raw`` by default
  (the LUNA16 layout, memory-mappable), ``<stem>.zraw`` when a level above 0 is
  asked; the data file is complete before the header appears.
* A 4D volume is written with ``NDims = 4`` (spacing 1 and no rotation along
  the fourth axis), as ITK writes a 4D image.
* A JSON sidecar like NIfTI's is written beside it on request.
"""

from __future__ import annotations

import os

import numpy as np

from ..options import WriteOptions
from ..volume import Volume
from .voxels import RawVoxelWriter, number, write_chunks, write_raw, zlib_chunks

#: numpy type -> MetaIO element type (MetaIO's MET_LONG is 4 bytes: 64-bit types are MET_LONG_LONG).
MET_TYPES = {"i1": "MET_CHAR", "u1": "MET_UCHAR", "i2": "MET_SHORT", "u2": "MET_USHORT", "i4": "MET_INT",
             "u4": "MET_UINT", "i8": "MET_LONG_LONG", "u8": "MET_ULONG_LONG", "f4": "MET_FLOAT", "f8": "MET_DOUBLE"}

#: ITK's orientation letter for an axis pointing along +/- each LPS world axis (ITK names the end it comes *from*).
_ITK_LETTERS = (("R", "L"), ("A", "P"), ("I", "S"))


def itk_orientation(direction: np.ndarray) -> str:
    """The ``AnatomicalOrientation`` ITK writes for an LPS direction (closest world axis of each column)."""
    letters = []
    for axis in range(direction.shape[1]):
        column = direction[:, axis]
        world = int(np.argmax(np.abs(column)))
        letters.append(_ITK_LETTERS[world][0 if column[world] > 0 else 1])
    return "".join(letters)


def _numbers(values) -> str:
    return " ".join(number(v) for v in values)


def metaimage_header(volume: Volume, dtype: np.dtype, data_file: str, compressed_size: int | None) -> bytes:
    """The MetaImage header of ``volume``; ``compressed_size`` set means ``CompressedData = True``."""
    ndims = volume.array.ndim
    direction = np.eye(ndims)
    direction[:3, :3] = volume.direction
    spacing = list(volume.spacing) + [1.0] * (ndims - 3)
    origin = list(volume.origin) + [0.0] * (ndims - 3)
    lines = [
        "ObjectType = Image",
        f"NDims = {ndims}",
        "BinaryData = True",
        "BinaryDataByteOrderMSB = False",
        f"CompressedData = {compressed_size is not None}",
    ]
    if compressed_size is not None:
        lines.append(f"CompressedDataSize = {compressed_size}")
    lines += [
        "TransformMatrix = " + _numbers(direction.T.reshape(-1)),  # the axes one after another
        "Offset = " + _numbers(origin),
        "CenterOfRotation = " + _numbers([0.0] * ndims),
        f"AnatomicalOrientation = {itk_orientation(volume.direction)}",
        "ElementSpacing = " + _numbers(spacing),
        "DimSize = " + " ".join(str(n) for n in volume.shape),
        f"ElementType = {MET_TYPES[f'{dtype.kind}{dtype.itemsize}']}",
        f"ElementDataFile = {data_file}",
    ]
    return ("\n".join(lines) + "\n").encode("ascii")


class MetaImageWriter(RawVoxelWriter):
    """Writes ``.mha`` and ``.mhd`` files (and the JSON sidecar on request)."""

    name = "metaimage"
    suffixes = (".mha", ".mhd")
    data_suffixes = (".raw", ".zraw")

    def write_attached(self, path: str, volume: Volume, dtype: np.dtype, compressed: bool,
                       options: WriteOptions) -> None:
        if compressed:  # the header holds the compressed size: the voxels are deflated first
            chunks = zlib_chunks(volume.array, dtype, options)
            write_chunks(path, metaimage_header(volume, dtype, "LOCAL", sum(len(chunk) for chunk in chunks)), chunks)
        else:
            write_raw(path, volume.array, dtype, gzip=False, options=options,
                      header=metaimage_header(volume, dtype, "LOCAL", None))

    def write_data(self, path: str, volume: Volume, dtype: np.dtype, compressed: bool, options: WriteOptions) -> None:
        if compressed:
            write_chunks(path, b"", zlib_chunks(volume.array, dtype, options))
        else:
            write_raw(path, volume.array, dtype, gzip=False, options=options)

    def detached_header(self, volume: Volume, dtype: np.dtype, data_path: str, compressed: bool) -> bytes:
        return metaimage_header(volume, dtype, os.path.basename(data_path),
                                os.path.getsize(data_path) if compressed else None)
