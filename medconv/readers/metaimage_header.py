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

import math
import os
import re
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..errors import UnreadableFileError, UnsupportedFormatError
from ..options import ReadOptions
from .bounded_io import check_data_size, inflate, read_into
from .limits import MAX_DATA_FILES, check_voxel_count, voxel_count

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
#: What MetaIO (C ``isspace``) strips around keys and values: ASCII white space only; a latin-1
#: no-break space (0xA0) is part of the value, so ``= \xa0True`` is not ``True``.
_SPACE = " \t\n\r\f\v"
_LINE_END = re.compile(rb"\r\n|\r|\n")
_LIST = re.compile(r"^LIST(?:\s+(?P<ndim>\d+)\s*D?)?\s*$", re.IGNORECASE)
#: No data-file name (from a LIST or a pattern) is longer than this (PATH_MAX on Linux).
_MAX_NAME = 4096


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
    def voxel_shape(self) -> tuple[int, ...]:
        """``DimSize`` plus the channels (when more than one): what a voxel limit counts."""
        return self.shape + ((self.channels,) if self.channels > 1 else ())

    @property
    def nbytes(self) -> int:
        """Uncompressed size of the voxel data (an exact integer, whatever the header declares)."""
        return voxel_count(self.shape) * self.channels * self.dtype.itemsize

    def get(self, key: str, default: Optional[str] = None) -> Optional[str]:
        """A header value by key, case-insensitive, MetaIO synonyms included."""
        wanted = _canonical(key)
        for name, value in self.fields.items():
            if _canonical(name) == wanted:
                return value
        return default


def _canonical(key: str) -> str:
    key = key.strip(_SPACE).lower()
    return _SYNONYMS.get(key, key)


def _read_header_lines(path: str) -> tuple[list[tuple[str, str]], int, list[str]]:
    """``(pairs, data_offset, trailing_lines)``; ``trailing_lines`` follow an ``ElementDataFile = LIST``.

    Lines end at ``\n``, ``\r\n`` or a lone ``\r`` (as MetaIO reads them: ``Key =\rTrue`` is two lines).
    """
    with open(path, "rb") as handle:
        head = handle.read(_HEADER_LIMIT)
    pairs: list[tuple[str, str]] = []
    position = 0
    while position < len(head):
        match = _LINE_END.search(head, position)
        end, after = (match.start(), match.end()) if match else (len(head), len(head))
        raw = head[position:end]
        position = after
        line = raw.decode("latin-1").strip(_SPACE)
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip(_SPACE) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip(_SPACE)):
            raise UnreadableFileError(f"not a MetaImage header: line {line[:60]!r} is not 'Key = Value'", path,
                                      "check that this is a .mhd/.mha file and not a truncated or binary one")
        pairs.append((key.strip(_SPACE), value.strip(_SPACE)))
        if _canonical(key) == "elementdatafile":
            trailing: list[str] = []
            if value.strip(_SPACE).upper().startswith("LIST"):
                trailing = [t.strip(_SPACE) for t in head[position:].decode("latin-1").splitlines() if t.strip(_SPACE)]
            return pairs, position, trailing
    raise UnreadableFileError("the header has no ElementDataFile line", path,
                              "a MetaImage header must end with 'ElementDataFile = <file>|LOCAL|LIST'")


def _lookup(pairs: list[tuple[str, str]], path: str) -> dict[str, str]:
    """Values by canonical key; a key given twice (or with a synonym) with different values is an error.

    ``BinaryDataByteOrderMSB = False`` and ``ElementByteOrderMSB = True`` in one
    header cannot both hold: ITK picks one by its own field order, medconv refuses.
    """
    lookup: dict[str, str] = {}
    spelled: dict[str, str] = {}
    for key, value in pairs:
        canonical = _canonical(key)
        if canonical in lookup and " ".join(lookup[canonical].lower().split()) != " ".join(value.lower().split()):
            raise UnreadableFileError(f"the header gives {spelled[canonical]} = {lookup[canonical][:40]} and "
                                      f"{key} = {value[:40]}, which contradict each other", path,
                                      "keep one of the two lines")
        lookup[canonical] = value
        spelled.setdefault(canonical, key)
    return lookup


def _numbers(path: str, key: str, value: Optional[str], count: Optional[int], kind=float) -> Optional[tuple]:
    """The first ``count`` numbers of a header value; finite, and whole for ``kind=int``."""
    if value is None:
        return None
    try:
        tokens = [t for t in re.split(r"[ \t\n\r\f\v]+", value) if t]
        if not all(t.isascii() for t in tokens):
            raise ValueError(value)  # float() would accept a no-break space, C's strtod does not
        floats = [float(v) for v in tokens]
    except ValueError:
        raise UnreadableFileError(f"{key} = {value[:80]!r} is not a list of numbers", path) from None
    if count is not None and len(floats) < count:
        raise UnreadableFileError(f"{key} has {len(floats)} values, NDims needs {count}", path)
    floats = floats[:count] if count is not None else floats
    if not all(math.isfinite(v) for v in floats):
        raise UnreadableFileError(f"{key} = {value[:80]!r} holds a value that is not finite", path,
                                  "the header is corrupt; fix the field")
    if kind is int:
        if not all(v.is_integer() for v in floats):
            raise UnreadableFileError(f"{key} = {value[:80]!r} is not a list of whole numbers", path)
        return tuple(int(v) for v in floats)
    return tuple(floats)


def _flag(value: Optional[str]) -> bool:
    return value is not None and value.strip(_SPACE).lower() in ("true", "1", "yes")


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
    lookup = _lookup(pairs, path)
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
    if channels[0] < 1:
        raise UnreadableFileError(f"ElementNumberOfChannels = {channels[0]} is not positive", path)
    spacing = _numbers(path, "ElementSpacing", lookup.get("elementspacing"), ndim)
    size = _numbers(path, "ElementSize", lookup.get("elementsize"), ndim)  # parsed even when unused: ITK does
    if spacing is None:
        spacing = size
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
    if header_size[0] < -1:
        raise UnreadableFileError(f"HeaderSize = {header_size[0]}: need a byte count, or -1", path)
    compressed = _flag(lookup.get("compresseddata"))
    compressed_size = _numbers(path, "CompressedDataSize", lookup.get("compresseddatasize"), 1, int)
    if compressed_size and compressed_size[0] < 0:
        raise UnreadableFileError(f"CompressedDataSize = {compressed_size[0]} is negative", path)
    if compressed and header_size[0] == -1:
        raise UnreadableFileError("HeaderSize = -1 (data at the end of the file) cannot place compressed data", path,
                                  "set HeaderSize to the bytes before the compressed stream (ITK refuses it too)")
    data_value = lookup["elementdatafile"]
    data_files, slice_ndim = _data_files(path, data_value, trailing, tuple(shape), warnings)
    return MetaHeader(
        path=path, fields=fields, shape=tuple(shape), dtype=dtype, channels=channels[0],
        spacing=tuple(float(s) for s in spacing), offset=tuple(float(o) for o in offset), matrix=matrix,
        element_type=element_type, data_files=data_files, data_offset=data_offset, header_size=header_size[0],
        compressed=compressed, compressed_size=compressed_size[0] if compressed_size else None,
        slice_ndim=slice_ndim, warnings=tuple(warnings),
    )


def _data_files(path: str, value: str, trailing: list[str], shape: tuple[int, ...],
                warnings: list[str]) -> tuple[tuple[str, ...], Optional[int]]:
    """The data files an ``ElementDataFile`` value names (``()`` for LOCAL), and the dimension of each one.

    A LIST or a pattern must name exactly one file per slice the header declares
    (``prod(DimSize[slice_ndim:])``), checked before any name is built, and at most
    :data:`~medconv.readers.limits.MAX_DATA_FILES`; a name may not hold a NUL byte
    or be longer than 4096 characters. Names are resolved beside the header;
    whether they may be read (inside the dataset folder, regular files) is
    decided when reading (:func:`medconv.readers.files.check_dataset_file`).
    """
    folder = os.path.dirname(path)
    ndim = len(shape)
    listing: dict[str, str] | None = None

    def resolve(name: str) -> str:
        nonlocal listing
        if "\x00" in name or len(name) > _MAX_NAME:
            raise UnreadableFileError(f"ElementDataFile names {name[:60]!r}..., which is not a file name", path)
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

    def check_count(count: int, slice_ndim: int, form: str) -> None:
        slices = voxel_count(shape[slice_ndim:])
        if count != slices:
            raise UnreadableFileError(
                f"{form} names {count} files, but DimSize {' '.join(map(str, shape))} has "
                f"{slices} {slice_ndim}D slices", path, "the header is corrupt or incomplete: name one file per "
                "slice, or fix DimSize")
        if count > MAX_DATA_FILES:
            raise UnreadableFileError(f"{form} names {count} files, more than the "
                                      f"{MAX_DATA_FILES} medconv reads for one volume", path,
                                      "merge the slice files into one data file first")

    if value.upper() == "LOCAL":
        return (), None
    if value.upper().startswith("LIST"):
        match = _LIST.match(value)
        slice_ndim = int(match["ndim"]) if match and match["ndim"] else ndim - 1
        if match is None or not 1 <= slice_ndim <= ndim:
            raise UnreadableFileError(f"ElementDataFile = {value[:40]!r}: need LIST or LIST nD with n from 1 to "
                                      f"NDims ({ndim})", path)
        if not trailing:
            raise UnreadableFileError("ElementDataFile = LIST names no files", path)
        check_count(len(trailing), slice_ndim, f"ElementDataFile = {value[:20]}")
        return tuple(resolve(name) for name in trailing), slice_ndim
    match = _PATTERN.match(value)
    if match:
        first, last = int(match["first"]), int(match["last"])
        step = int(match["step"] or 1) or 1
        indices = range(first, last + (1 if step > 0 else -1), step)
        check_count(len(indices), ndim - 1, f"the file-name pattern {value[:80]!r}")
        try:
            if len(match["pattern"] % indices[0]) > _MAX_NAME:  # before building them all: "%09999999d"
                raise UnreadableFileError(f"ElementDataFile pattern {value[:60]!r}... makes names longer than "
                                          f"{_MAX_NAME} characters", path)
            names = [match["pattern"] % index for index in indices]
        except (TypeError, ValueError, OverflowError, MemoryError):
            raise UnreadableFileError(f"ElementDataFile pattern {value[:80]!r} is not a printf pattern", path) from None
        return tuple(resolve(name) for name in names), ndim - 1
    return (resolve(value),), None


def read_voxels(header: MetaHeader, options: ReadOptions = ReadOptions()) -> np.ndarray:
    """The voxels as a native-endian C-ordered ``(k, j, i)`` (or ``(t, k, j, i)``, ``(..., c)``) array.

    Before anything is allocated, the declared size is checked against
    ``options.max_voxels`` and, for uncompressed data, against the size of every
    data file; compressed data is inflated into the final buffer and stops at the
    declared size (:func:`medconv.readers.bounded_io.inflate`). Raises
    :class:`UnreadableFileError` naming the file for a missing, short or corrupt
    data file, :class:`VolumeTooLargeError` past the voxel limit. Whether the data
    files may be read at all (inside the dataset folder) is the caller's check.
    """
    check_voxel_count(header.voxel_shape, header.path, options)
    shape_c = tuple(reversed(header.shape)) + ((header.channels,) if header.channels > 1 else ())
    nbytes = header.nbytes
    files = header.data_files or (header.path,)
    start = header.data_offset if header.local else 0
    per_file = nbytes // len(files)
    if per_file * len(files) != nbytes:
        raise UnreadableFileError(f"{len(files)} slice files cannot hold {nbytes} bytes evenly", header.path)
    if header.compressed:
        if header.local and header.compressed_size:
            check_data_size(header.path, start, header.compressed_size, header.path, what="the compressed data in")
        offsets = [start + max(header.header_size, 0)] * len(files)
    else:
        offsets = [_raw_offset(name, header, start, per_file) for name in files]  # every size, before allocating
    single_stream = header.compressed and len(files) == 1
    buffer = None if single_stream else np.empty(nbytes // header.dtype.itemsize, dtype=header.dtype)
    flat = None if single_stream else memoryview(buffer.view(np.uint8))
    for index, (name, offset) in enumerate(zip(files, offsets)):
        what = f"the data file {os.path.basename(name)!r}" if header.data_files else "the LOCAL data"
        try:
            with open(name, "rb") as handle:
                handle.seek(offset)
                if header.compressed:
                    # MetaIO trusts CompressedDataSize only for LOCAL data; an external file is read whole
                    limit = header.compressed_size if header.local else None
                    data = inflate(handle, per_file, header.path, what=what, limit=limit)
                    if single_stream:
                        buffer = np.frombuffer(data, dtype=header.dtype)  # no copy of the inflated bytes
                    else:
                        flat[index * per_file:(index + 1) * per_file] = data
                else:
                    read_into(handle, flat[index * per_file:(index + 1) * per_file], header.path, what)
        except FileNotFoundError:
            raise _missing(name, header) from None
        except OSError as exc:
            raise UnreadableFileError(f"cannot read {what} ({exc.strerror or exc})", header.path) from exc
    buffer = buffer.reshape(shape_c)
    if not header.dtype.isnative:
        buffer = buffer.byteswap().view(header.dtype.newbyteorder("="))
    return buffer


def _missing(name: str, header: MetaHeader) -> UnreadableFileError:
    return UnreadableFileError(f"the data file {os.path.basename(name)!r} it names does not exist",
                               header.path, f"put {name} beside the header, or fix ElementDataFile")


def check_data_files_exist(header: MetaHeader) -> None:
    """Raise the "it names does not exist" error for the first data file that is missing."""
    for name in header.data_files:
        if not os.path.lexists(name):
            raise _missing(name, header)


def _raw_offset(name: str, header: MetaHeader, start: int, nbytes: int) -> int:
    """Where ``nbytes`` of uncompressed data start in ``name`` (``HeaderSize``), after checking its size."""
    try:
        size = os.path.getsize(name)
    except FileNotFoundError:
        raise _missing(name, header) from None
    except OSError as exc:
        raise UnreadableFileError(f"cannot read the data file {name} ({exc.strerror or exc})", header.path) from exc
    offset = start + (size - start - nbytes if header.header_size == -1 else header.header_size)
    check_data_size(name, max(offset, start), nbytes, header.path, what="the LOCAL data in" if header.local else
                    "the data file",
                    hint="the download is probably truncated, or DimSize/ElementType are wrong; download it again")
    return offset
