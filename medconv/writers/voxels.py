"""The voxel bytes of the raw-data formats (NRRD, MetaImage): element types, byte streams, compression.

Both formats store the voxels with the first index fastest, which is NIfTI's
(Fortran) order of a Volume's ``(i, j, k[, t])`` array, so the bytes come from
:func:`~medconv.writers.nifti.write_fortran_order` without a copy of the whole
array. Both are written little-endian.
"""

from __future__ import annotations

import os
from typing import Callable, Iterator

import numpy as np

from ..atomic import atomic_output
from ..errors import OutputExistsError, UnsupportedFormatError
from ..options import WriteOptions
from .nifti import isal_level, write_fortran_order

#: Types the raw-data formats lack, and the nearest type they have (no value changes).
WRITE_CASTS = {np.dtype(bool): np.dtype(np.uint8), np.dtype(np.float16): np.dtype(np.float32)}

#: The numpy kinds both formats can hold: signed and unsigned integers up to 64 bits, float32/64.
_SUPPORTED = frozenset("i1 u1 i2 u2 i4 u4 i8 u8 f4 f8".split())


def element_dtype(array: np.ndarray, dest: str) -> np.dtype:
    """The little-endian type ``array`` is written as; complex or object data is refused naming ``dest``."""
    dtype = WRITE_CASTS.get(array.dtype, array.dtype)
    code = f"{dtype.kind}{dtype.itemsize}"
    if code not in _SUPPORTED:
        raise UnsupportedFormatError(f"{array.dtype} voxels cannot be written to this format", dest,
                                     "cast them first (--dtype float32) or write .nii.gz / .npz")
    return dtype.newbyteorder("<")


def compression_wanted(options: WriteOptions, default_on: bool) -> bool:
    """Whether to deflate: ``compression_level`` 0 never, 1-9 always, ``None`` the format's default."""
    if options.compression_level is None:
        return default_on
    return options.compression_level > 0


def write_raw(path: str, array: np.ndarray, dtype: np.dtype, *, gzip: bool, options: WriteOptions,
              header: bytes = b"") -> None:
    """Write ``header`` then the voxels to ``path``: plain, or (``gzip``) header plain and voxels as one gzip member.

    gzip is ISA-L's threaded compressor, the one ``.nii.gz`` uses.
    """
    with open(path, "wb", buffering=8 << 20) as stream:
        stream.write(header)
        if not gzip:
            write_fortran_order(stream, array, dtype)
            return
        from isal import igzip_threaded

        threads = options.threads if options.threads > 0 else (os.cpu_count() or 1)
        with igzip_threaded.open(stream, "wb", compresslevel=isal_level(options.compression_level),
                                 threads=threads) as packed:
            write_fortran_order(packed, array, dtype)


class _Deflater:
    """A write-only stream that zlib-compresses what it is given into a list of chunks."""

    def __init__(self, level: int):
        from isal import isal_zlib

        self._compressor = isal_zlib.compressobj(level)
        self.chunks: list[bytes] = []

    def write(self, data) -> int:
        packed = self._compressor.compress(data)
        if packed:
            self.chunks.append(packed)
        return len(data)

    def finish(self) -> list[bytes]:
        self.chunks.append(self._compressor.flush())
        return self.chunks


def zlib_chunks(array: np.ndarray, dtype: np.dtype, options: WriteOptions) -> list[bytes]:
    """The voxels as one zlib stream (what MetaImage's ``CompressedData = True`` means), in chunks."""
    deflater = _Deflater(isal_level(options.compression_level))
    write_fortran_order(deflater, array, dtype)
    return deflater.finish()


def write_chunks(path: str, header: bytes, chunks: Iterator[bytes] | list[bytes]) -> None:
    """Write ``header`` and then each chunk to ``path``."""
    with open(path, "wb", buffering=8 << 20) as stream:
        stream.write(header)
        for chunk in chunks:
            stream.write(chunk)


def write_detached(dest: str, data_path: str, write_data: Callable[[str], None], header: Callable[[], bytes],
                   overwrite: bool) -> list[str]:
    """A detached header and its data file: the data first, then the header, each under its final name when complete.

    The header is the unit's output (what a rerun looks for), so it appears only
    once its data file is complete. ``header`` is called after the data exists
    (a compressed size may go into it). An existing header is refused before
    anything is written unless ``overwrite``.
    """
    if not overwrite and os.path.exists(dest):
        raise OutputExistsError("the output exists", dest, "pass --overwrite to replace it")
    with atomic_output(data_path, overwrite=True) as temp:  # a data file without its header is a leftover
        write_data(temp)
    with atomic_output(dest, overwrite=overwrite) as temp:
        with open(temp, "wb") as handle:
            handle.write(header())
    return [dest, data_path]


def number(value: float) -> str:
    """A float as the shortest text that reads back as the same float64 (integers without '.0')."""
    value = float(value)
    if value == 0.0:
        return "0"  # also turns -0.0 into 0
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text
