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
from ..registry import matching_suffix
from ..resources import cores
from ..volume import Volume
from .nifti import isal_level, write_fortran_order
from .sidecar import sidecar_path, write_sidecar

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

        threads = options.threads if options.threads > 0 else cores()
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
    (a compressed size may go into it). An existing header, or an existing data
    file, is refused before anything is written unless ``overwrite``.
    """
    if not overwrite:
        for path in (dest, data_path):
            if os.path.exists(path):
                raise OutputExistsError("the output exists" if path == dest else "the output's data file exists",
                                        path, "pass --overwrite to replace it")
    with atomic_output(data_path, overwrite=True) as temp:  # a data file without its header is a leftover
        write_data(temp)
    with atomic_output(dest, overwrite=overwrite) as temp:
        with open(temp, "wb") as handle:
            handle.write(header())
    return [dest, data_path]


class RawVoxelWriter:
    """What the NRRD and MetaImage writers share: one suffix with the voxels attached to the header, one
    with a detached header and its data file, and the JSON sidecar on request.

    A subclass names its suffixes and writes its own header and bytes
    (:meth:`write_attached`, :meth:`write_data`, :meth:`detached_header`).
    """

    name: str
    #: (attached, detached) suffixes, e.g. ``(".nrrd", ".nhdr")``.
    suffixes: tuple[str, str]
    #: The detached header's data file suffixes: (raw, compressed), e.g. ``(".raw", ".raw.gz")``.
    data_suffixes: tuple[str, str]

    def data_path(self, dest: str, compressed: bool) -> str:
        """The data file a detached header ``dest`` points to."""
        suffix = matching_suffix(dest, self.suffixes) or ""
        return dest[: len(dest) - len(suffix)] + self.data_suffixes[compressed]

    def companion_files(self, dest: str | os.PathLike) -> tuple[str, ...]:
        """Every file besides ``dest`` and its sidecar that :meth:`write` may write for ``dest``, whatever the
        options: a detached header's data file, raw or compressed (planning checks them against the inputs)."""
        dest = os.fspath(dest)
        if matching_suffix(dest, self.suffixes) != self.suffixes[1]:
            return ()
        return tuple(self.data_path(dest, compressed) for compressed in (False, True))

    def write(self, volume: Volume, dest: str | os.PathLike, options: WriteOptions = WriteOptions()) -> list[str]:
        """Write ``volume`` to ``dest`` (and its data file, and the sidecar on request); returns the files."""
        dest = os.fspath(dest)
        attached, detached = self.suffixes
        suffix = matching_suffix(dest, self.suffixes) or attached
        dtype = element_dtype(volume.array, dest)
        if suffix == detached:
            compressed = compression_wanted(options, default_on=False)
            data_path = self.data_path(dest, compressed)
            written = write_detached(
                dest, data_path, lambda temp: self.write_data(temp, volume, dtype, compressed, options),
                lambda: self.detached_header(volume, dtype, data_path, compressed), options.overwrite)
        else:
            with atomic_output(dest, overwrite=options.overwrite) as temp:
                self.write_attached(temp, volume, dtype, compression_wanted(options, default_on=True), options)
            written = [dest]
        if options.sidecar:
            written.append(write_sidecar(volume, sidecar_path(dest, suffix), overwrite=True))
        return written

    def write_attached(self, path: str, volume: Volume, dtype: np.dtype, compressed: bool,
                       options: WriteOptions) -> None:
        """Write the header and the voxels into the one file ``path``."""
        raise NotImplementedError

    def write_data(self, path: str, volume: Volume, dtype: np.dtype, compressed: bool, options: WriteOptions) -> None:
        """Write the voxels alone (a detached header's data file) to ``path``."""
        raise NotImplementedError

    def detached_header(self, volume: Volume, dtype: np.dtype, data_path: str, compressed: bool) -> bytes:
        """The detached header naming ``data_path`` (called once the data file is complete)."""
        raise NotImplementedError


def number(value: float) -> str:
    """A float as the shortest text that reads back as the same float64 (integers without '.0')."""
    value = float(value)
    if value == 0.0:
        return "0"  # also turns -0.0 into 0
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text
