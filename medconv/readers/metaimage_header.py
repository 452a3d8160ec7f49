"""MetaImage (``.mhd``/``.mha``) headers and voxel data, read without ITK.

The header is a list of ``Key = Value`` lines that ends with ``ElementDataFile``.
The data is LOCAL (right after that line, in the ``.mha`` itself), one external
file (``.raw``, ``.zraw``), a ``LIST`` of slice files, or a printf-style file
pattern ``name%03d.raw first last step``. It is zlib/gzip-deflated when
``CompressedData = True``.

Reading raw data is a single ``np.fromfile`` into a C-ordered ``(k, j, i[, c])``
buffer (what MetaIO stores); compressed data is inflated once with ISA-L (or
zlib) and wrapped without a copy. Keys are matched case-insensitively, with
MetaIO's synonyms (``Offset``/``Origin``/``Position``, ``TransformMatrix``/
``Rotation``/``Orientation``, ``ElementByteOrderMSB``/``BinaryDataByteOrderMSB``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..errors import UnreadableFileError, UnsupportedFormatError

#: MetaIO element types and their numpy types (sizes as MetaIO defines them:
#: MET_LONG/MET_ULONG are 4 bytes in MetaIO, whatever the platform's ``long``).
ELEMENT_TYPES: dict[str, str] = {
    "MET_CHAR": "i1",
    "MET_UCHAR": "u1",
    "MET_SHORT": "i2",
    "MET_USHORT": "u2",
    "MET_INT": "i4",
    "MET_UINT": "u4",
    "MET_LONG": "i4",
    "MET_ULONG": "u4",
    "MET_LONG_LONG": "i8",
    "MET_ULONG_LONG": "u8",
    "MET_FLOAT": "f4",
    "MET_DOUBLE": "f8",
}

_HEADER_LIMIT = 1 << 20  # no real header is longer; a binary file without one stops here
_SYNONYMS = {
    "origin": "offset",
    "position": "offset",
    "rotation": "transformmatrix",
    "orientation": "transformmatrix",
    "binarydatabyteordermsb": "elementbyteordermsb",
    "elementsize": "elementsize",
}
_PATTERN = re.compile(r"^(?P<pattern>\S*%\S*)\s+(?P<first>-?\d+)\s+(?P<last>-?\d+)(?:\s+(?P<step>-?\d+))?\s*$")


@dataclass(frozen=True)
class MetaHeader:
    """The parsed header of one MetaImage file.

    Attributes
    ----------
    path:
        The header file (``.mhd`` or ``.mha``).
    fields:
        Every ``Key = Value`` pair as written (original key spelling).
    shape:
        ``DimSize``: sizes along ``i, j, k[, t]`` (MetaIO's x, y, z order).
    dtype:
        Element type, with the file's byte order.
    channels:
        ``ElementNumberOfChannels`` (1 for scalar images).
    spacing, offset, matrix:
        ``ElementSpacing``, ``Offset`` and ``TransformMatrix`` (row-major, NDims x NDims)
        exactly as stored; :mod:`medconv.readers.metaimage` turns them into a geometry.
    data_files:
        The data file(s): ``()`` for LOCAL data.
    data_offset:
        Byte offset of LOCAL data in the header file.
    header_size:
        ``HeaderSize``: bytes to skip in each data file (``-1``: data at the file's end).
    compressed, compressed_size:
        ``CompressedData`` and ``CompressedDataSize`` (``None`` if absent).
    warnings:
        What the parser had to assume.
    """

    path: str
    fields: dict[str, str]
    shape: tuple[int, ...]
    dtype: np.dtype
    channels: int
    spacing: tuple[float, ...]
    offset: tuple[float, ...]
    matrix: Optional[np.ndarray]
    element_type: str
    data_files: tuple[str, ...] = ()
    data_offset: int = 0
    header_size: int = 0
    compressed: bool = False
    compressed_size: Optional[int] = None
    slice_ndim: Optional[int] = None
    warnings: tuple[str, ...] = field(default=())

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def local(self) -> bool:
        """Whether the voxels are stored in the header file itself."""
        return not self.data_files

    @property
    def nbytes(self) -> int:
        """Uncompressed size of the voxel data."""
        return int(np.prod(self.shape, dtype=np.int64)) * self.channels * self.dtype.itemsize

    def get(self, key: str, default: Optional[str] = None) -> Optional[str]:
        """A header value by key, case-insensitive, MetaIO synonyms included."""
        wanted = _canonical(key)
        for name, value in self.fields.items():
            if _canonical(name) == wanted:
                return value
        return default


def _canonical(key: str) -> str:
    key = key.strip().lower()
    return _SYNONYMS.get(key, key)


def _read_header_lines(path: str) -> tuple[list[tuple[str, str]], int, list[str]]:
    """``(pairs, data_offset, trailing_lines)``; ``trailing_lines`` follow an ``ElementDataFile = LIST``."""
    with open(path, "rb") as handle:
        head = handle.read(_HEADER_LIMIT)
    pairs: list[tuple[str, str]] = []
    position = 0
    while position < len(head):
        end = head.find(b"\n", position)
        if end < 0:
            end = len(head)
        raw = head[position:end]
        position = end + 1
        line = raw.decode("latin-1").strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip() or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()):
            raise UnreadableFileError(f"not a MetaImage header: line {line[:60]!r} is not 'Key = Value'", path,
                                      "check that this is a .mhd/.mha file and not a truncated or binary one")
        pairs.append((key.strip(), value.strip()))
        if _canonical(key) == "elementdatafile":
            trailing: list[str] = []
            if value.strip().upper().startswith("LIST"):
                trailing = [t.strip() for t in head[position:].decode("latin-1").splitlines() if t.strip()]
            return pairs, position, trailing
    raise UnreadableFileError("the header has no ElementDataFile line", path,
                              "a MetaImage header must end with 'ElementDataFile = <file>|LOCAL|LIST'")


def _numbers(path: str, key: str, value: Optional[str], count: Optional[int], kind=float) -> Optional[tuple]:
    if value is None:
        return None
    try:
        numbers = tuple(kind(float(v)) if kind is int else kind(v) for v in value.split())
    except ValueError:
        raise UnreadableFileError(f"{key} = {value!r} is not a list of numbers", path) from None
    if count is not None and len(numbers) < count:
        raise UnreadableFileError(f"{key} has {len(numbers)} values, NDims needs {count}", path)
    return numbers[:count] if count is not None else numbers


def _flag(value: Optional[str]) -> bool:
    return value is not None and value.strip().lower() in ("true", "1", "yes")


def parse_header(path: str | os.PathLike) -> MetaHeader:
    """Parse a ``.mhd``/``.mha`` header (no voxel data is read).

    Raises
    ------
    UnreadableFileError
        The file is not a MetaImage header, or a field is malformed.
    UnsupportedFormatError
        An unknown ``ElementType``, ASCII (non-binary) data, or an unsupported ``ObjectType``.
    """
    path = os.fspath(path)
    try:
        pairs, data_offset, trailing = _read_header_lines(path)
    except OSError as exc:
        raise UnreadableFileError(f"cannot open the header ({exc.strerror or exc})", path) from exc
    fields = dict(pairs)
    lookup = {_canonical(k): v for k, v in pairs}
    warnings: list[str] = []
    object_type = lookup.get("objecttype", "Image")
    if object_type.lower() != "image":
        raise UnsupportedFormatError(f"ObjectType = {object_type} is not an image", path,
                                     "only MetaImage images (ObjectType = Image) can be converted")
    ndims = _numbers(path, "NDims", lookup.get("ndims"), 1, int)
    if ndims is None or not 2 <= ndims[0] <= 4:
        raise UnreadableFileError(f"NDims = {lookup.get('ndims')!r}: need 2, 3 or 4", path)
    ndim = ndims[0]
    shape = _numbers(path, "DimSize", lookup.get("dimsize"), ndim, int)
    if shape is None or any(s <= 0 for s in shape):
        raise UnreadableFileError(f"DimSize = {lookup.get('dimsize')!r} is missing or not positive", path)
    element_type = lookup.get("elementtype", "").upper()
    if element_type not in ELEMENT_TYPES:
        base = element_type[: -len("_ARRAY")] if element_type.endswith("_ARRAY") else None
        if base in ELEMENT_TYPES:
            element_type = base
        else:
            known = ", ".join(ELEMENT_TYPES)
            raise UnsupportedFormatError(f"ElementType = {lookup.get('elementtype')!r} is not supported", path,
                                         f"supported: {known}")
    msb = _flag(lookup.get("elementbyteordermsb"))
    dtype = np.dtype(ELEMENT_TYPES[element_type]).newbyteorder(">" if msb else "<")
    channels = _numbers(path, "ElementNumberOfChannels", lookup.get("elementnumberofchannels"), 1, int) or (1,)
    spacing = _numbers(path, "ElementSpacing", lookup.get("elementspacing"), ndim)
    if spacing is None:
        spacing = _numbers(path, "ElementSize", lookup.get("elementsize"), ndim)
        if spacing is None:
            spacing = (1.0,) * ndim
            warnings.append("the header has no ElementSpacing: used 1 mm")
    offset = _numbers(path, "Offset", lookup.get("offset"), ndim) or (0.0,) * ndim
    matrix_values = _numbers(path, "TransformMatrix", lookup.get("transformmatrix"), ndim * ndim)
    matrix = np.array(matrix_values, dtype=float).reshape(ndim, ndim) if matrix_values else None
    if lookup.get("binarydata") is not None and not _flag(lookup.get("binarydata")):
        raise UnsupportedFormatError("BinaryData = False (ASCII voxel data) is not supported", path,
                                     "convert the file to binary MetaImage with ITK first")
    header_size = _numbers(path, "HeaderSize", lookup.get("headersize"), 1, int) or (0,)
    compressed = _flag(lookup.get("compresseddata"))
    compressed_size = _numbers(path, "CompressedDataSize", lookup.get("compresseddatasize"), 1, int)
    data_value = lookup["elementdatafile"]
    data_files, slice_ndim = _data_files(path, data_value, trailing, ndim, warnings)
    return MetaHeader(
        path=path, fields=fields, shape=tuple(shape), dtype=dtype, channels=channels[0],
        spacing=tuple(float(s) for s in spacing), offset=tuple(float(o) for o in offset), matrix=matrix,
        element_type=element_type, data_files=data_files, data_offset=data_offset, header_size=header_size[0],
        compressed=compressed, compressed_size=compressed_size[0] if compressed_size else None,
        slice_ndim=slice_ndim, warnings=tuple(warnings),
    )


def _data_files(path: str, value: str, trailing: list[str], ndim: int,
                warnings: list[str]) -> tuple[tuple[str, ...], Optional[int]]:
    folder = os.path.dirname(path)
    listing: dict[str, str] | None = None

    def resolve(name: str) -> str:
        nonlocal listing
        resolved = name if os.path.isabs(name) else os.path.join(folder, name)
        if os.path.exists(resolved) or os.path.isabs(name) or os.path.dirname(name):
            return resolved
        if listing is None:  # headers written on Windows may name 'CASE.RAW' for 'case.raw'
            try:
                listing = {entry.lower(): entry for entry in os.listdir(folder or ".")}
            except OSError:
                listing = {}
        actual = listing.get(name.lower())
        if actual is None:
            return resolved
        warnings.append(f"ElementDataFile names {name!r}; used {actual!r} (the names differ in case)")
        return os.path.join(folder, actual)

    if value.upper() == "LOCAL":
        return (), None
    if value.upper().startswith("LIST"):
        rest = value[4:].strip()
        slice_ndim = int(rest.rstrip("D").rstrip("d")) if rest else ndim - 1
        if not trailing:
            raise UnreadableFileError("ElementDataFile = LIST names no files", path)
        return tuple(resolve(name) for name in trailing), slice_ndim
    match = _PATTERN.match(value)
    if match:
        first, last = int(match["first"]), int(match["last"])
        step = int(match["step"] or 1) or 1
        try:
            names = [match["pattern"] % index for index in range(first, last + (1 if step > 0 else -1), step)]
        except (TypeError, ValueError):
            raise UnreadableFileError(f"ElementDataFile pattern {value!r} is not a printf pattern", path) from None
        return tuple(resolve(name) for name in names), ndim - 1
    return (resolve(value),), None


def _inflate(data: bytes, expected: int, where: str) -> bytes:
    try:
        from isal import isal_zlib as zlib_module
    except ImportError:  # pragma: no cover - isal is a dependency; zlib is the fallback
        import zlib as zlib_module
    wbits = 31 if data[:2] == b"\x1f\x8b" else 15
    try:
        inflated = zlib_module.decompress(data, wbits, expected)
    except Exception as exc:
        raise UnreadableFileError(f"the compressed data cannot be inflated ({exc})", where,
                                  "the file is probably truncated or corrupt; download it again") from exc
    if len(inflated) != expected:
        raise UnreadableFileError(f"the compressed data inflates to {len(inflated)} bytes, the header needs {expected}",
                                  where, "the data file does not match its header (DimSize, ElementType)")
    return inflated


def _read_raw(path: str, header: MetaHeader, start: int, nbytes: int, header_size: int, out: np.ndarray) -> None:
    """Read ``nbytes`` of uncompressed data from ``path`` into the flat uint8 view ``out``."""
    try:
        size = os.path.getsize(path)
    except OSError:
        raise UnreadableFileError(f"the data file {os.path.basename(path)!r} it names does not exist",
                                  header.path, f"put {path} beside the header, or fix ElementDataFile") from None
    offset = start + (size - start - nbytes if header_size == -1 else header_size)
    if offset < 0 or size - offset < nbytes:
        have = max(0, size - max(offset, start))
        raise UnreadableFileError(
            f"the data file {os.path.basename(path)!r} is too short: {have} bytes, the header needs {nbytes}",
            header.path, "the download is probably truncated, or DimSize/ElementType are wrong; download it again")
    with open(path, "rb") as handle:
        handle.seek(offset)
        got = handle.readinto(memoryview(out))
    if got != nbytes:  # pragma: no cover - size was checked, only a concurrent truncation gets here
        raise UnreadableFileError(f"read {got} of {nbytes} bytes from {path}", header.path)


def read_voxels(header: MetaHeader) -> np.ndarray:
    """The voxels as a native-endian C-ordered ``(k, j, i)`` (or ``(t, k, j, i)``, ``(..., c)``) array.

    Raises :class:`UnreadableFileError` naming the file for a missing, short or
    corrupt data file.
    """
    shape_c = tuple(reversed(header.shape)) + ((header.channels,) if header.channels > 1 else ())
    nbytes = header.nbytes
    files = header.data_files or (header.path,)
    start = header.data_offset if header.local else 0
    if header.compressed:
        if len(files) > 1:
            chunks = [_read_compressed(name, header, 0, None) for name in files]
            raw = b"".join(chunks)
            if len(raw) != nbytes:
                raise UnreadableFileError(f"the slice files inflate to {len(raw)} bytes, the header needs {nbytes}",
                                          header.path)
        else:
            # MetaIO trusts CompressedDataSize only for LOCAL data; an external file is read whole
            size = header.compressed_size if header.local else None
            raw = _inflate(_read_compressed(files[0], header, start, size, inflate=False), nbytes, files[0])
        buffer = np.frombuffer(raw, dtype=header.dtype)
    else:
        buffer = np.empty(nbytes // header.dtype.itemsize, dtype=header.dtype)
        flat = buffer.view(np.uint8)
        per_file = nbytes // len(files)
        if per_file * len(files) != nbytes:
            raise UnreadableFileError(f"{len(files)} slice files cannot hold {nbytes} bytes evenly", header.path)
        for index, name in enumerate(files):
            _read_raw(name, header, start, per_file, header.header_size, flat[index * per_file:(index + 1) * per_file])
    buffer = buffer.reshape(shape_c)
    if not header.dtype.isnative:
        buffer = buffer.byteswap().view(header.dtype.newbyteorder("="))
    return buffer


def _read_compressed(path: str, header: MetaHeader, start: int, size: Optional[int], inflate: bool = True) -> bytes:
    try:
        with open(path, "rb") as handle:
            handle.seek(start + max(header.header_size, 0))
            data = handle.read() if size is None else handle.read(size)
    except FileNotFoundError:
        raise UnreadableFileError(f"the data file {os.path.basename(path)!r} it names does not exist",
                                  header.path, f"put {path} beside the header, or fix ElementDataFile") from None
    except OSError as exc:
        raise UnreadableFileError(f"cannot read the data file {path} ({exc.strerror or exc})", header.path) from exc
    if size is not None and len(data) < size:
        raise UnreadableFileError(
            f"the compressed data in {os.path.basename(path)!r} is too short: {len(data)} bytes, "
            f"CompressedDataSize says {size}", header.path, "the download is probably truncated; download it again")
    if not inflate:
        return data
    per_file = header.nbytes // max(1, len(header.data_files))
    return _inflate(data, per_file, path)
