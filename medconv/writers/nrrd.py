"""NRRD output: ``.nrrd`` (header and voxels in one file) and ``.nhdr`` (detached header + data file).

* ``space: left-posterior-superior`` is written explicitly, with ``space origin``
  and ``space directions`` (each axis' LPS direction times its spacing): the
  Volume's geometry as it is, no conversion (NRRD, like DICOM and ITK, names
  its world space; 3D Slicer, ITK/SimpleITK and pynrrd read it).
* The voxel type is kept (int16 CT stays int16, labels stay integers); bool is
  written as uint8 and float16 as float32. Little-endian.
* ``.nrrd`` is gzip-encoded by default (ISA-L, threaded; ``compression_level=0``
  writes raw). ``.nhdr`` writes its voxels to ``<stem>.raw`` (raw by default, so
  they can be memory-mapped) or ``<stem>.raw.gz`` when a level above 0 is asked.
  The data file is complete before the header appears under its final name.
* A 4D volume gets a fourth axis of kind ``time`` (``meta["axis4"] == "time"``)
  or ``list`` (echoes, channels), with ``none`` as its space direction.
* A JSON sidecar like NIfTI's is written beside it on request.

The format: https://teem.sourceforge.net/nrrd/format.html (NRRD0004).
"""

from __future__ import annotations

import os

import numpy as np

from ..options import WriteOptions
from ..volume import Volume
from .voxels import RawVoxelWriter, number, write_raw

#: numpy type -> NRRD type name.
NRRD_TYPES = {"i1": "int8", "u1": "uint8", "i2": "int16", "u2": "uint16", "i4": "int32", "u4": "uint32",
              "i8": "int64", "u8": "uint64", "f4": "float", "f8": "double"}


def _vector(values) -> str:
    return "(" + ",".join(number(v) for v in values) + ")"


def nrrd_header(volume: Volume, dtype: np.dtype, encoding: str, data_file: str | None = None) -> bytes:
    """The NRRD0004 header of ``volume`` (ending with the blank line that precedes attached data)."""
    shape = volume.shape
    axes = [_vector(volume.direction[:, axis] * volume.spacing[axis]) for axis in range(3)]
    kinds = ["domain"] * 3
    if len(shape) == 4:
        axes.append("none")
        kinds.append("time" if volume.meta.get("axis4") == "time" else "list")
    lines = [
        "NRRD0004",
        "# written by medconv; format: https://teem.sourceforge.net/nrrd/format.html",
        f"type: {NRRD_TYPES[f'{dtype.kind}{dtype.itemsize}']}",
        f"dimension: {len(shape)}",
        "space: left-posterior-superior",
        "sizes: " + " ".join(str(n) for n in shape),
        "space directions: " + " ".join(axes),
        "kinds: " + " ".join(kinds),
        "endian: little",
        f"encoding: {encoding}",
        "space origin: " + _vector(volume.origin),
    ]
    if data_file is not None:
        lines.append(f"data file: {data_file}")
    return ("\n".join(lines) + "\n\n").encode("ascii")


class NrrdWriter(RawVoxelWriter):
    """Writes ``.nrrd`` and ``.nhdr`` files (and the JSON sidecar on request)."""

    name = "nrrd"
    suffixes = (".nrrd", ".nhdr")
    data_suffixes = (".raw", ".raw.gz")

    def write_attached(self, path: str, volume: Volume, dtype: np.dtype, compressed: bool,
                       options: WriteOptions) -> None:
        header = nrrd_header(volume, dtype, "gzip" if compressed else "raw")
        write_raw(path, volume.array, dtype, gzip=compressed, options=options, header=header)

    def write_data(self, path: str, volume: Volume, dtype: np.dtype, compressed: bool, options: WriteOptions) -> None:
        write_raw(path, volume.array, dtype, gzip=compressed, options=options)

    def detached_header(self, volume: Volume, dtype: np.dtype, data_path: str, compressed: bool) -> bytes:
        return nrrd_header(volume, dtype, "gzip" if compressed else "raw", os.path.basename(data_path))
