#!/usr/bin/env python3
"""Fuzz medconv's readers with mutated real files: every mutant ends in a typed error or the reference's volume.

Mutants are made from the corpora in ``../shared/corpora`` (DICOM, MetaImage,
NIfTI, TIFF): bit flips, changed length and header fields, swapped transfer
syntaxes, truncations, corrupt compressed data, inconsistent headers, looping
TIFF page chains, data files outside the dataset folder. Each one is converted
the way a batch does it (the reader's ``discover`` over the mutant's folder,
then ``read`` of every unit) in a **worker subprocess** watched from here, so a
crash, a hang or a memory blow-up is observed, not suffered. Every mutant must
end in one of:

* ``typed-error``: a medconv error (``MedconvError``), or
* ``equal``: a volume equal to what the independent reference reads from the
  same files (pydicom, nibabel, SimpleITK, tifffile: values, shape and geometry), or
* ``not-found``: discovery finds no unit (a DICOM file whose preamble is gone is
  not DICOM any more; the file readers always yield a unit per file).

Anything else is a **problem**, reported with its replay key ``SEED:INDEX`` and the
mutation: ``escaped`` (an exception that is not a medconv error), ``hang`` (more
than ``--timeout`` seconds), ``memory`` (RSS over ``--rss-limit``), ``crash``
(the worker died), ``differs`` (a volume that differs from the reference's),
``unverified`` (a volume from files the reference refuses to read), ``read-outside``
(a volume made from a file outside the dataset folder or a device).

Usage::

    python scripts/fuzz_inputs.py --seconds 600 --seed 1             # all formats, 2 workers
    python scripts/fuzz_inputs.py --seconds 60 --formats tiff,nifti --findings found.jsonl
    python scripts/fuzz_inputs.py --replay 1:4711 --save /tmp/mutant  # one mutant again, its files kept

The sequence of mutants is a function of ``--seed`` alone: mutant ``i`` of seed
``S`` is always the same files, whatever ran before it (``--count`` runs the
first N). Findings (``--findings``) are JSON lines with the replay key,
the format, the corpus file, the mutation and what happened.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import random
import re
import selectors
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

PROJECT = Path(__file__).resolve().parent.parent
DEFAULT_CORPORA = Path(os.environ.get("MEDCONV_CORPORA", PROJECT.parent / "shared" / "corpora"))
FORMATS = ("dicom", "metaimage", "nifti", "tiff")

#: Verdicts that are fine; every other verdict is a problem. ``unmodelled``: a volume from a
#: mutant of a seed whose own volume the reference model does not reproduce (so it cannot judge).
#: ``net``: a typed error, made by discovery's net for an exception the parser did not foresee (listed
#: in --findings so that the parser can be taught to say what is wrong).
GOOD_VERDICTS = ("typed-error", "equal", "not-found", "unmodelled", "net")
#: Seed files larger than this (uncompressed voxels included) are left out: they make mutants slow.
MAX_SEED_BYTES = 12 << 20


# -- seeds: the corpus files mutants are made from -----------------------------------------------------------

@dataclass(frozen=True)
class Seed:
    """One corpus unit to mutate: its files (relative name -> bytes) and the one to read."""

    fmt: str
    name: str  # corpus-relative path of the main file, for the report
    main: str  # relative name of the main file inside the mutant folder
    files: dict = field(hash=False, compare=False)


def _metaimage_data_names(header_text: str) -> list[str]:
    """The external data files a MetaImage header names (a LIST or a pattern is not used as a seed)."""
    match = re.search(r"^\s*ElementDataFile\s*=\s*(.+?)\s*$", header_text, re.MULTILINE | re.IGNORECASE)
    if not match or match.group(1).upper() == "LOCAL":
        return []
    return [match.group(1)]


def load_seeds(corpora: Path, formats: tuple[str, ...]) -> dict[str, list[Seed]]:
    """The seed units of each format, in a fixed order (sorted paths)."""
    seeds: dict[str, list[Seed]] = {fmt: [] for fmt in formats}

    def add(fmt: str, main: Path, extra: tuple[Path, ...] = ()) -> None:
        files = {main.name: main.read_bytes()}
        for path in extra:
            files[path.name] = path.read_bytes()
        if sum(len(b) for b in files.values()) <= MAX_SEED_BYTES:
            seeds[fmt].append(Seed(fmt, str(main.relative_to(corpora)), main.name, files))

    if "metaimage" in formats:
        for path in sorted((corpora / "metaimage").rglob("*")):
            if path.suffix.lower() not in (".mhd", ".mha") or not path.is_file():
                continue
            head = path.read_bytes()[:4096].decode("latin-1")
            data = [path.parent / name for name in _metaimage_data_names(head)]
            if all(d.is_file() for d in data) and _metaimage_raw_size(head) <= MAX_SEED_BYTES:
                add("metaimage", path, tuple(data))
    if "nifti" in formats:
        for base in (corpora / "nibabel_data" / "nibabel" / "tests" / "data", corpora / "metaimage" / "vtk-data" / "Data"):
            for path in sorted(base.glob("*")):
                lower = path.name.lower()
                if lower.endswith((".nii", ".nii.gz")) and "dconn" not in lower:
                    add("nifti", path)
                elif lower.endswith((".hdr", ".hdr.gz")):
                    img = path.with_name(path.name[:-len(".hdr.gz")] + ".img.gz") if lower.endswith(".gz") else \
                        path.with_suffix(".img")
                    if img.is_file():
                        add("nifti", path, (img,))
    if "tiff" in formats:
        for path in sorted((corpora / "tiff").rglob("*.tif")):
            add("tiff", path)
    if "dicom" in formats:
        dicom_files = sorted((corpora / "pydicom_test_files").glob("*.dcm"))
        dicom_files += sorted((corpora / "dcm_qa_ts" / "In").rglob("*.dcm"))
        dicom_files += sorted((corpora / "dcm_qa_12bit" / "In").rglob("*.dcm"))[:4]
        dicom_files += sorted((corpora / "lidc").rglob("*.dcm"))[:3]
        for path in dicom_files:
            add("dicom", path)
    return seeds


def _metaimage_raw_size(header_text: str) -> int:
    sizes = re.search(r"^\s*DimSize\s*=\s*([\d\s]+)$", header_text, re.MULTILINE | re.IGNORECASE)
    count = 1
    for value in (sizes.group(1).split() if sizes else []):
        count *= int(value)
    return count


# -- mutations ---------------------------------------------------------------------------------------------------

@dataclass
class Mutant:
    """The files of one mutant and what was done to make them."""

    seed: Seed
    files: dict  # relative name -> bytes, inside SRC
    description: str
    outside: dict = field(default_factory=dict)  # name -> bytes, in the folder that holds SRC
    must_refuse: bool = False  # names a file outside SRC or a device: only a typed error is right


HOSTILE_INTS = (0, 1, 2, 3, 4, 7, 8, 15, 16, 255, 256, 32767, 32768, 65535, 2**31 - 1, 2**31, 2**32 - 1)
HOSTILE_FLOATS = (0.0, -0.0, -1.0, 1e-38, 1e-300, 1e10, 1e38, 3.5e38, 1e308, float("inf"), float("-inf"),
                  float("nan"), 0.5, 2.0)


def _flip_bits(rng: random.Random, data: bytes, start: int = 0, end: int | None = None) -> tuple[bytes, str]:
    out = bytearray(data)
    end = len(out) if end is None else min(end, len(out))
    if end <= start:
        return bytes(out), "no-op flip"
    count = rng.choice((1, 1, 2, 4, 8, 32))
    places = sorted(rng.randrange(start, end) for _ in range(count))
    for place in places:
        out[place] ^= 1 << rng.randrange(8)
    return bytes(out), f"flip {count} bit(s) at {places[:4]}{'...' if count > 4 else ''}"


def _set_bytes(rng: random.Random, data: bytes, start: int = 0, end: int | None = None) -> tuple[bytes, str]:
    out = bytearray(data)
    end = len(out) if end is None else min(end, len(out))
    if end <= start:
        return bytes(out), "no-op set"
    place = rng.randrange(start, end)
    length = min(rng.choice((1, 2, 4, 8)), len(out) - place)
    value = rng.choice((b"\x00", b"\xff", b"\x7f", b"\x80"))
    out[place:place + length] = value * length
    return bytes(out), f"set {length} byte(s) at {place} to {value.hex()}"


def _truncate(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    cut = rng.choice((rng.randrange(0, max(1, len(data))), len(data) // 2, max(0, len(data) - rng.randrange(1, 64))))
    return data[:cut], f"truncate to {cut} of {len(data)} bytes"


def _extend(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    extra = rng.choice((1, 7, 512, 4096))
    return data + bytes(rng.randrange(256) for _ in range(extra)), f"append {extra} random bytes"


def _generic(rng: random.Random, data: bytes, start: int = 0, end: int | None = None) -> tuple[bytes, str]:
    operation = rng.choice(("flip", "flip", "set", "truncate", "extend"))
    if operation == "flip":
        return _flip_bits(rng, data, start, end)
    if operation == "set":
        return _set_bytes(rng, data, start, end)
    if operation == "truncate":
        return _truncate(rng, data)
    return _extend(rng, data)


def _gzip_or_zlib_bytes(data: bytes) -> tuple[bytes, str]:
    """The content of a gzip stream (and ``"gzip"``), else the bytes as they are (``""``)."""
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data), "gzip"
        except (OSError, EOFError, zlib.error):
            pass
    return data, ""


# MetaImage ------------------------------------------------------------------------------------------------------

_MHD_VALUES = {
    "NDims": ("1", "2", "3", "4", "5", "0", "-1", "3.5", "inf", "nan"),
    "DimSize": ("0 0 0", "-1 16 16", "16 16 inf", "16 16 nan", "100000 100000 100000", "32767 32767 32767",
                "2147483648 2 2", "1 1 1", "16.5 16 16", "16", "4294967296 4294967296 4294967296"),
    "ElementType": ("MET_UCHAR", "MET_SHORT", "MET_DOUBLE", "MET_LONG_LONG", "MET_FLOAT_ARRAY", "MET_STRING",
                    "MET_OTHER", "MET_UINT"),
    "ElementSpacing": ("0 0 0", "-1 -1 -1", "nan nan nan", "inf 1 1", "1e-300 1 1", "1e300 1 1", "1"),
    "ElementNumberOfChannels": ("0", "-3", "3", "1000000", "2.5"),
    "HeaderSize": ("-1", "-2", "1000000000000", "7", "0"),
    "CompressedData": ("True", "False"),
    "CompressedDataSize": ("0", "-5", "1", "99999999999"),
    "ElementByteOrderMSB": ("True", "False"),
    "TransformMatrix": ("0 0 0 0 0 0 0 0 0", "nan 0 0 0 1 0 0 0 1", "1 0 0 0 1 0 0 0 -1", "2 0 0 0 2 0 0 0 2",
                        "1 0.005 0 0 1 0 0 0 1", "1 0 0 1 0 0 0 0 1", "inf"),
    "Offset": ("nan 0 0", "inf inf inf", "1e308 0 0", "0"),
    "BinaryData": ("False", "True"),
    "ObjectType": ("Image", "Mesh", ""),
    "ElementDataFile": ("LOCAL", "LIST", "LIST 2D", "LIST abc", "s%09d.raw 1 50000000 1", "s%03d.raw 1 3 0",
                        "s%d.raw 5 1 -1", "%c.raw 1 99999999 1", "%09999999d.raw 1 2 1", "nothing.raw",
                        "/etc/hostname", "/dev/zero", "../outside.raw", "sub/../../outside.raw", "/dev/null",
                        "/proc/self/environ"),
}


def mutate_metaimage(rng: random.Random, seed: Seed) -> Mutant:
    header_name = seed.main
    header = seed.files[header_name]
    text_end = _metaimage_header_end(header)
    files = dict(seed.files)
    choice = rng.random()
    if choice < 0.55:  # a header field
        text = header[:text_end].decode("latin-1")
        key = rng.choice(tuple(_MHD_VALUES))
        value = rng.choice(_MHD_VALUES[key])
        pattern = re.compile(rf"^(\s*{key}\s*=).*$", re.MULTILINE | re.IGNORECASE)
        if pattern.search(text):
            text = pattern.sub(lambda m: f"{m.group(1)} {value}", text, count=1)
            what = f"header {key} = {value}"
        else:
            text = re.sub(r"^(\s*ElementDataFile\s*=)", f"{key} = {value}\n\\1", text, count=1,
                          flags=re.MULTILINE | re.IGNORECASE)
            what = f"header adds {key} = {value} before ElementDataFile"
        files[header_name] = text.encode("latin-1") + header[text_end:]
        mutant = Mutant(seed, files, what)
        if key == "ElementDataFile":
            if "outside" in value:
                data = next((b for n, b in seed.files.items() if n != header_name), header[text_end:])
                mutant.outside["outside.raw"] = data
                mutant.must_refuse = True
            elif value.startswith("/") and value != "/nonexistent":
                mutant.must_refuse = True
        return mutant
    data_names = [n for n in seed.files if n != header_name]
    if data_names and choice < 0.85:  # the external data file
        name = rng.choice(data_names)
        content, how = _generic(rng, seed.files[name])
        files[name] = content
        return Mutant(seed, files, f"data file {name}: {how}")
    if len(header) > text_end and choice < 0.85:  # LOCAL data of an .mha
        content, how = _generic(rng, header, text_end)
        files[header_name] = content
        return Mutant(seed, files, f"LOCAL data: {how}")
    content, how = _generic(rng, header, 0, text_end)
    files[header_name] = content
    return Mutant(seed, files, f"header bytes: {how}")


def _metaimage_header_end(data: bytes) -> int:
    match = re.search(rb"ElementDataFile\s*=[^\n]*\n", data, re.IGNORECASE)
    if not match:
        return min(len(data), 4096)
    end = match.end()
    if re.match(rb"\s*LIST", data[match.start() + len("ElementDataFile"):].lstrip(b" =")):
        return len(data)
    return end


# NIfTI ----------------------------------------------------------------------------------------------------------

_NIFTI_FIELDS = ("sizeof_hdr", "dim", "datatype", "bitpix", "pixdim", "vox_offset", "scl_slope", "scl_inter",
                 "qform_code", "sform_code", "quatern_b", "quatern_c", "quatern_d", "qoffset_x", "srow_x", "srow_y",
                 "srow_z", "magic", "intent_code", "xyzt_units", "dim_info", "slice_code", "cal_max")


def _nifti_header_dtype(block: bytes):
    import nibabel as nib

    for dtype in (nib.nifti1.header_dtype, nib.nifti2.header_dtype):
        for order in "<>":
            size = struct.unpack(order + "i", block[:4])[0] if len(block) >= 4 else 0
            if size == dtype.itemsize:
                return dtype.newbyteorder(order)
    return None


def mutate_nifti(rng: random.Random, seed: Seed) -> Mutant:
    import numpy

    name = seed.main
    original = seed.files[name]
    content, packing = _gzip_or_zlib_bytes(original)
    files = dict(seed.files)
    choice = rng.random()
    if packing and choice < 0.15:  # the compressed stream itself
        mutated, how = _generic(rng, original, 10)
        files[name] = mutated
        return Mutant(seed, files, f"gzip stream: {how}")
    dtype = _nifti_header_dtype(content)
    if dtype is not None and choice < 0.7:
        key = rng.choice([k for k in _NIFTI_FIELDS if k in dtype.names])
        field_dtype, offset = dtype.fields[key][:2]
        base = field_dtype.base
        count = int(field_dtype.itemsize // base.itemsize) if base.itemsize else 1
        element = rng.randrange(count)
        if base.kind in "iu":
            value = rng.choice(HOSTILE_INTS + (-1, -2, -32768))
            info = numpy.iinfo(base)
            value = max(info.min, min(info.max, value))
            raw = numpy.array(value, base).tobytes()
        elif base.kind == "f":
            value = rng.choice(HOSTILE_FLOATS)
            with numpy.errstate(over="ignore"):  # 1e308 as float32 is inf: that is the point
                raw = numpy.array(value, base).tobytes()
        else:
            value = rng.choice((b"n+1\x00", b"ni1\x00", b"n+2\x00", b"\x00\x00\x00\x00", b"abcd"))
            raw = value[:base.itemsize].ljust(base.itemsize, b"\x00")
        place = offset + element * base.itemsize
        block = bytearray(content)
        block[place:place + len(raw)] = raw
        files[name] = gzip.compress(bytes(block), 1) if packing else bytes(block)
        return Mutant(seed, files, f"header {key}[{element}] = {value!r}")
    if dtype is not None and choice < 0.8 and len(content) >= dtype.itemsize + 12:  # the header extensions
        block = bytearray(content)
        size = dtype.itemsize
        esize = rng.choice((8, 16, 17, 32, -8, 1 << 24, 2**31 - 8, len(content)))
        block[size:size + 4] = b"\x01\x00\x00\x00"
        block[size + 4:size + 12] = struct.pack(dtype.byteorder.replace("=", "<").replace("|", "<") + "ii", esize,
                                                rng.choice((0, 4, 6, 32, 99)))
        files[name] = gzip.compress(bytes(block), 1) if packing else bytes(block)
        return Mutant(seed, files, f"extension flag on, first esize = {esize}")
    data_names = [n for n in seed.files if n != name]
    target = rng.choice(data_names) if data_names and rng.random() < 0.5 else name
    target_content, target_packing = _gzip_or_zlib_bytes(seed.files[target])
    mutated, how = _generic(rng, target_content, 0 if target != name else 0)
    files[target] = gzip.compress(mutated, 1) if target_packing else mutated
    return Mutant(seed, files, f"{target}{' (inside gzip)' if target_packing else ''}: {how}")


# TIFF -----------------------------------------------------------------------------------------------------------

def tiff_entries(data: bytes) -> tuple[str, list[tuple[int, int, int, int, int]], list[int]]:
    """``(byte order, entries, IFD offsets)`` of a classic TIFF: entries are
    ``(entry offset, tag, type, count, IFD offset)`` over the main chain (cycle-safe)."""
    order = "<" if data[:2] == b"II" else ">"
    if len(data) < 8 or struct.unpack(order + "H", data[2:4])[0] != 42:
        return order, [], []
    offset = struct.unpack(order + "I", data[4:8])[0]
    entries, ifds = [], []
    while offset and offset not in ifds and offset + 2 <= len(data) and len(ifds) < 10000:
        ifds.append(offset)
        count = struct.unpack(order + "H", data[offset:offset + 2])[0]
        for index in range(count):
            place = offset + 2 + 12 * index
            if place + 12 > len(data):
                break
            tag, kind, number = struct.unpack(order + "HHI", data[place:place + 8])
            entries.append((place, tag, kind, number, offset))
        next_place = offset + 2 + 12 * count
        if next_place + 4 > len(data):
            break
        offset = struct.unpack(order + "I", data[next_place:next_place + 4])[0]
    return order, entries, ifds


#: Tags worth changing, and values to put there.
_TIFF_TAGS = {256: "ImageWidth", 257: "ImageLength", 258: "BitsPerSample", 259: "Compression", 262: "Photometric",
              273: "StripOffsets", 277: "SamplesPerPixel", 278: "RowsPerStrip", 279: "StripByteCounts",
              284: "PlanarConfiguration", 317: "Predictor", 322: "TileWidth", 323: "TileLength", 324: "TileOffsets",
              325: "TileByteCounts", 338: "ExtraSamples", 339: "SampleFormat", 330: "SubIFDs", 320: "ColorMap"}


def set_tiff_value(data: bytes, entry: int, order: str, kind: int, value: int) -> bytes:
    """``data`` with the inline value of the IFD entry at ``entry`` set to ``value`` (SHORT or LONG)."""
    out = bytearray(data)
    if kind == 3:
        struct.pack_into(order + "H", out, entry + 8, value & 0xFFFF)
    else:
        struct.pack_into(order + "I", out, entry + 8, value & 0xFFFFFFFF)
    return bytes(out)


def mutate_tiff(rng: random.Random, seed: Seed) -> Mutant:
    data = seed.files[seed.main]
    order, entries, ifds = tiff_entries(data)
    choice = rng.random()
    files = dict(seed.files)
    if entries and choice < 0.45:
        interesting = [e for e in entries if e[1] in _TIFF_TAGS] or entries
        place, tag, kind, number, ifd = rng.choice(interesting)
        out = bytearray(data)
        how = rng.random()
        name = _TIFF_TAGS.get(tag, str(tag))
        if how < 0.6:
            value = rng.choice(HOSTILE_INTS + (rng.randrange(len(data) + 1),))
            out = bytearray(set_tiff_value(data, place, order, kind, value))
            what = f"IFD@{ifd} {name} value = {value}"
        elif how < 0.8:
            value = rng.choice((0, 1, 2, number + 1, max(0, number - 1), 2**31, 65535))
            struct.pack_into(order + "I", out, place + 4, value)
            what = f"IFD@{ifd} {name} count {number} -> {value}"
        else:
            value = rng.choice((1, 2, 3, 4, 5, 7, 11, 12, 16, 0, 99))
            struct.pack_into(order + "H", out, place + 2, value)
            what = f"IFD@{ifd} {name} type {kind} -> {value}"
        files[seed.main] = bytes(out)
        return Mutant(seed, files, what)
    if ifds and choice < 0.6:  # the next-IFD offset of one page: a cycle, or anywhere
        page = rng.randrange(len(ifds))
        count = struct.unpack(order + "H", data[ifds[page]:ifds[page] + 2])[0]
        place = ifds[page] + 2 + 12 * count
        target = rng.choice((ifds[rng.randrange(page + 1)], ifds[0], rng.randrange(len(data)), ifds[page]))
        out = bytearray(data)
        if place + 4 <= len(out):
            struct.pack_into(order + "I", out, place, target)
        files[seed.main] = bytes(out)
        kind = "a cycle" if target in ifds[:page + 1] else "anywhere"
        return Mutant(seed, files, f"page {page + 1} next-IFD -> {target} ({kind})")
    if ifds and choice < 0.75:  # bytes of the IFD area
        start = ifds[0]
        content, how = _generic(rng, data, start, start + 2 + 12 * 40)
        files[seed.main] = content
        return Mutant(seed, files, f"first IFD: {how}")
    content, how = _generic(rng, data)
    files[seed.main] = content
    return Mutant(seed, files, f"file: {how}")


# DICOM ----------------------------------------------------------------------------------------------------------

_DICOM_TAGS = {0x00020010: "TransferSyntaxUID", 0x00280010: "Rows", 0x00280011: "Columns", 0x00280100: "BitsAllocated",
               0x00280101: "BitsStored", 0x00280102: "HighBit", 0x00280103: "PixelRepresentation",
               0x00280002: "SamplesPerPixel", 0x00280008: "NumberOfFrames", 0x00280004: "PhotometricInterpretation",
               0x00281053: "RescaleSlope", 0x00281052: "RescaleIntercept", 0x00280030: "PixelSpacing",
               0x00200032: "ImagePositionPatient", 0x00200037: "ImageOrientationPatient", 0x7FE00010: "PixelData",
               0x00280006: "PlanarConfiguration", 0x00020000: "FileMetaInformationGroupLength"}
_TRANSFER_SYNTAXES = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.5",
                      "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80",
                      "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.1.99", "1.2.3.4")
_LONG_LENGTH_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}


def dicom_elements(data: bytes) -> list[tuple[int, str, int, int, int]]:
    """``(tag, VR, length, value offset, length-field size)`` of the top-level elements of a Part 10 file."""
    from pydicom.filereader import data_element_generator

    if data[128:132] != b"DICM":
        return []
    elements = []
    stream = io.BytesIO(data)
    stream.seek(132)
    transfer_syntax = None
    try:
        for element in data_element_generator(stream, False, True, stop_when=lambda tag, vr, length: tag.group != 2):
            vr = element.VR or ""
            elements.append((int(element.tag), vr, element.length, element.value_tell,
                             4 if vr in _LONG_LENGTH_VRS else 2))
            if int(element.tag) == 0x00020010 and element.value:
                transfer_syntax = element.value.decode("ascii", "replace").strip("\x00 ")
        implicit = transfer_syntax == "1.2.840.10008.1.2"
        little = transfer_syntax != "1.2.840.10008.1.2.2"
        if transfer_syntax == "1.2.840.10008.1.2.1.99":
            return elements
        for element in data_element_generator(stream, implicit, little, defer_size=256):
            vr = element.VR or ""
            elements.append((int(element.tag), vr, element.length, element.value_tell,
                             4 if implicit or vr in _LONG_LENGTH_VRS else 2))
    except Exception:
        pass  # a file pydicom cannot walk: the elements found so far
    return elements


def mutate_dicom(rng: random.Random, seed: Seed) -> Mutant:
    data = seed.files[seed.main]
    elements = dicom_elements(data)
    files = dict(seed.files)
    choice = rng.random()
    known = [e for e in elements if e[0] in _DICOM_TAGS]
    if known and choice < 0.45:
        tag, vr, length, place, size = rng.choice(known)
        name = _DICOM_TAGS[tag]
        out = bytearray(data)
        little = "<"
        if tag == 0x00020010:
            value = rng.choice(_TRANSFER_SYNTAXES).encode()
            value = value + b"\x00" * (len(value) % 2)
            if len(value) == length:
                out[place:place + length] = value
                what = f"{name} = {value.decode().strip(chr(0))}"
            else:  # a longer or shorter UID: rewrite the length too
                out[place - 2:place] = struct.pack("<H", len(value))
                out[place:place + length] = value
                what = f"{name} = {value.decode().strip(chr(0))} (length {length} -> {len(value)})"
        elif vr in ("US", "SS") and length == 2 or (not vr and length == 2):
            value = rng.choice(HOSTILE_INTS + (0, 1, 12, 16, 7))
            struct.pack_into(little + "H", out, place, value & 0xFFFF)
            what = f"{name} = {value & 0xFFFF}"
        elif tag == 0x7FE00010:
            content, how = _generic(rng, data, place, place + max(length, 0) if length != 0xFFFFFFFF else None)
            return Mutant(seed, {**files, seed.main: content}, f"PixelData: {how}")
        else:
            text = rng.choice((b"1e308", b"-1e308", b"nan", b"inf", b"0", b"-1", b"1\\2\\3", b"x", b"1e38"))
            text = text.ljust(max(length, 0), b" ")[:max(length, 0)] if length > 0 else text
            out[place:place + len(text)] = text
            what = f"{name} = {text.strip().decode()}"
        files[seed.main] = bytes(out)
        return Mutant(seed, files, what)
    if elements and choice < 0.7:  # a length field
        tag, vr, length, place, size = rng.choice(elements)
        value = rng.choice((0, 1, 2, 3, length + 1, length - 1, 2**31, 0xFFFFFFFF, 0xFFFE))
        out = bytearray(data)
        if size == 4:
            struct.pack_into("<I", out, place - 4, value & 0xFFFFFFFF)
        else:
            struct.pack_into("<H", out, place - 2, value & 0xFFFF)
        files[seed.main] = bytes(out)
        return Mutant(seed, files, f"length of ({tag >> 16:04X},{tag & 0xFFFF:04X}) {vr} {length} -> {value}")
    content, how = _generic(rng, data, 132)
    files[seed.main] = content
    return Mutant(seed, files, f"file: {how}")


MUTATORS: dict[str, Callable[[random.Random, Seed], Mutant]] = {
    "dicom": mutate_dicom, "metaimage": mutate_metaimage, "nifti": mutate_nifti, "tiff": mutate_tiff}


def make_mutant(seed_number: int, index: int, seeds: dict[str, list[Seed]], formats: tuple[str, ...]) -> Mutant:
    """Mutant ``index`` of ``seed_number``: a function of these and the seed files alone."""
    rng = random.Random(f"{seed_number}:{index}")
    usable = [fmt for fmt in formats if seeds.get(fmt)]
    fmt = usable[index % len(usable)]
    seed = rng.choice(seeds[fmt])
    return MUTATORS[fmt](rng, seed)


# -- running medconv and the references ----------------------------------------------------------------------------

_READER = {"dicom": "dicom", "metaimage": "metaimage", "nifti": "nifti", "tiff": "tiff"}


def write_mutant(mutant: Mutant, folder: Path) -> Path:
    """Write the mutant under ``folder/src`` (SRC), its outside files in ``folder``; returns SRC."""
    src = folder / "src"
    src.mkdir(parents=True)
    for name, content in mutant.files.items():
        (src / name).write_bytes(content)
    for name, content in mutant.outside.items():
        (folder / name).write_bytes(content)
    return src


def run_medconv(fmt: str, src: Path):
    """``(outcome, detail, volumes)``: the reader's discover over SRC, then read of every unit."""
    from medconv.errors import MedconvError
    from medconv.options import ReadOptions
    from medconv.registry import readers

    reader = readers.get(_READER[fmt])
    options = ReadOptions(include_2d=True)
    try:
        sources = list(reader.discover(str(src)))
    except MedconvError as exc:
        return "typed-error", f"discover: {exc.code}: {exc.one_line()[:300]}", []
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        return "escaped", f"discover: {type(exc).__name__}: {exc}"[:600] + "\n" + _short_traceback(), []
    if not sources:
        return "not-found", "", []
    nets = [s.info["discovery_failure"]["message"] for s in sources
            if str((s.info.get("discovery_failure") or {}).get("message", "")).startswith("cannot be parsed (")]
    if nets:
        return "net", nets[0][:600], []
    volumes, errors = [], []
    for source in sources:
        try:
            volumes.append((source, reader.read(source, options)))
        except MedconvError as exc:
            errors.append(f"{exc.code}: {exc.one_line()[:300]}")
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # a pyo3 PanicException derives from BaseException
            return "escaped", f"read: {type(exc).__name__}: {exc}"[:600] + "\n" + _short_traceback(), []
    if not volumes:
        return "typed-error", "; ".join(errors)[:600], []
    return "volume", "; ".join(errors)[:600], volumes


def _short_traceback() -> str:
    lines = traceback.format_exc().strip().splitlines()
    return "\n".join(lines[-8:])


class ReferenceRefused(Exception):
    """The reference reader cannot read the mutant (so a medconv volume from it is unverified)."""


class Differs(Exception):
    """The medconv volume differs from the reference's."""


def _compare_arrays(ours, reference, what: str, exact: bool = True) -> None:
    import numpy as np

    if tuple(ours.shape) != tuple(reference.shape):
        raise Differs(f"{what}: shape {tuple(ours.shape)} != reference {tuple(reference.shape)}")
    a = np.asarray(ours, dtype=np.float64) if ours.dtype.kind != "c" else np.asarray(ours)
    b = np.asarray(reference, dtype=np.float64) if reference.dtype.kind != "c" else np.asarray(reference)
    # float32 results (medconv's documented rescale type) carry float32's precision at the range's magnitude:
    # stored * slope + intercept rounds to about 2^-24 of the largest value, which near 0 is more than rtol
    finite = np.abs(b[np.isfinite(b)])
    atol = 4 * 2.0**-24 * float(finite.max()) if ours.dtype == np.float32 and finite.size else 0.0
    if exact and ours.dtype.kind in "iub" and reference.dtype.kind in "iub":
        equal = np.array_equal(np.asarray(ours).astype(np.int64, copy=False), np.asarray(reference).astype(np.int64))
    else:
        equal = np.allclose(a, b, rtol=1e-6, atol=atol, equal_nan=True)
    if not equal:
        bad = int(np.count_nonzero(~np.isclose(a, b, rtol=1e-6, atol=atol, equal_nan=True)))
        raise Differs(f"{what}: {bad} of {a.size} values differ")


def _compare_geometry(volume, spacing, origin, direction, what: str, direction_tolerance: float = 1e-3) -> None:
    import numpy as np

    if not np.allclose(volume.spacing, spacing, rtol=1e-5, atol=1e-9):
        raise Differs(f"{what}: spacing {volume.spacing} != reference {tuple(spacing)}")
    if not np.allclose(volume.origin, origin, rtol=1e-6, atol=1e-4):
        raise Differs(f"{what}: origin {volume.origin} != reference {tuple(origin)}")
    if not np.allclose(volume.direction, direction, atol=direction_tolerance):
        raise Differs(f"{what}: direction {volume.direction.tolist()} != reference {np.asarray(direction).tolist()}")


#: MetaIO's keys as ITK spells them (ITK matches keys case-sensitively; medconv, as documented, does not).
_ITK_KEYS = ("ObjectType", "ObjectSubType", "NDims", "BinaryData", "BinaryDataByteOrderMSB", "ElementByteOrderMSB",
             "CompressedData", "CompressedDataSize", "TransformMatrix", "Rotation", "Orientation", "Offset", "Origin",
             "Position", "CenterOfRotation", "AnatomicalOrientation", "ElementSpacing", "ElementSize", "DimSize",
             "HeaderSize", "Modality", "ElementType", "ElementNumberOfChannels", "ElementDataFile", "ElementMin",
             "ElementMax", "Comment", "Name", "ID", "ParentID", "Color", "SequenceID", "AcquisitionDate")


def _itk_normalized(path: Path) -> Path:
    """A copy of the header beside it that ITK reads as docs/metaimage.md says medconv does: keys (and the
    ElementType value, the LOCAL / LIST keywords) in ITK's spelling, the data file as found on disk, and ``CompressedDataSize`` set to the length of the zlib stream (medconv inflates the whole
    stream; ITK stops at ``CompressedDataSize``). The stream's length comes from Python's zlib."""
    data = path.read_bytes()
    end = _metaimage_header_end(data)
    lines = data[:end].decode("latin-1").splitlines()
    spelled = {key.lower(): key for key in _ITK_KEYS}
    fields = {}
    for n, line in enumerate(lines):
        key, sep, value = line.partition("=")
        if sep and key.strip().lower() in spelled:
            if key.strip().lower() == "elementtype":
                value = value.upper()  # medconv matches ElementType values case-insensitively too
            if key.strip().lower() == "elementdatafile" and value.strip().upper().startswith(("LOCAL", "LIST")):
                value = " " + value.strip()[:4].upper() + value.strip()[4:]  # and the LOCAL / LIST keywords
            lines[n] = f"{spelled[key.strip().lower()]} ={value}"
            fields[key.strip().lower()] = value.strip()
    name = fields.get("elementdatafile", "")
    if name and name.upper() != "LOCAL" and not (path.parent / name).exists():  # medconv's case-insensitive match
        actual = {entry.lower(): entry for entry in os.listdir(path.parent)}.get(name.lower())
        if actual:
            lines = [f"ElementDataFile = {actual}" if line.startswith("ElementDataFile") else line for line in lines]
            fields["elementdatafile"] = actual
    if fields.get("compresseddata", "").lower() in ("true", "1"):
        source = data[end:] if fields.get("elementdatafile", "").upper() == "LOCAL" else \
            (path.parent / fields.get("elementdatafile", "")).read_bytes()
        try:
            decompressor = zlib.decompressobj(31 if source[:2] == b"\x1f\x8b" else 15)
            decompressor.decompress(source)
            length = len(source) - len(decompressor.unused_data)
        except zlib.error:
            length = len(source)
        lines = [line for line in lines if not line.startswith("CompressedDataSize")]
        lines.insert(len(lines) - 1, f"CompressedDataSize = {length}")
    copy = path.with_name("itk-" + path.name)
    copy.write_bytes("\n".join(lines).encode("latin-1") + b"\n" + data[end:])
    return copy


def reference_metaimage(path: Path, volume) -> None:
    import numpy as np
    import SimpleITK as sitk

    try:
        image = sitk.ReadImage(str(_itk_normalized(path)))
        array = sitk.GetArrayFromImage(image)
    except Exception as exc:
        raise ReferenceRefused(f"SimpleITK: {exc}".splitlines()[0][:200]) from None
    dim = image.GetDimension()
    vector = image.GetNumberOfComponentsPerPixel() > 1
    order = tuple(range(dim - 1, -1, -1)) + ((dim,) if vector else ())
    expected = array.transpose(order)
    if vector and dim == 2:
        expected = expected[:, :, np.newaxis, :]
    spatial = min(dim, 3)
    spacing = list(image.GetSpacing()[:spatial]) + [1.0] * (3 - spatial)
    origin = list(image.GetOrigin()[:spatial]) + [0.0] * (3 - spatial)
    direction = np.eye(3)
    direction[:spatial, :spatial] = np.array(image.GetDirection()).reshape(dim, dim)[:spatial, :spatial]
    warned = " ".join(volume.warnings)
    tolerance = 2e-2 if "orthonormalized" in warned else 1e-3
    _compare_arrays(volume.array, expected, "voxels")
    _compare_geometry(volume, spacing, origin, direction, "geometry", tolerance)


def reference_nifti(path: Path, volume) -> None:
    import nibabel as nib
    import numpy as np

    try:
        image = nib.load(str(path))
        data = np.asanyarray(image.dataobj)
        affine = image.affine
    except Exception as exc:
        raise ReferenceRefused(f"nibabel: {type(exc).__name__}: {exc}"[:200]) from None
    while data.ndim > 4 and data.shape[-1] == 1:
        data = data[..., 0]
    if "used the qform instead" in " ".join(volume.warnings):
        affine = image.get_qform()
    if affine is None or not np.all(np.isfinite(affine)):
        raise ReferenceRefused("nibabel: the affine is not finite")
    _compare_arrays(volume.array, data, "voxels", exact=data.dtype.kind in "iub")
    if not np.allclose(volume.affine_ras, affine, rtol=1e-5, atol=1e-4):
        raise Differs(f"affine {volume.affine_ras.round(4).tolist()} != nibabel {np.round(affine, 4).tolist()}")


def reference_tiff(path: Path, volume) -> None:
    import numpy as np
    import tifffile

    try:
        with tifffile.TiffFile(str(path)) as tif:
            series = tif.series[0]
            plain = series.asarray()  # the values, read as medconv reads them
            filled = []
            for fill in (0, 1):  # read into zeros and into ones: a part tifffile never writes differs
                out = np.zeros(series.shape, series.dtype) if fill == 0 else \
                    np.full(series.shape, _ones(series.dtype), dtype=series.dtype)
                filled.append(series.asarray(out=out))
            axes = series.axes
    except Exception as exc:
        raise ReferenceRefused(f"tifffile: {type(exc).__name__}: {exc}"[:200]) from None
    a, b = filled
    if a.dtype.kind == "f":
        same = np.array_equal(a.view(np.uint8), b.view(np.uint8))
    else:
        same = np.array_equal(a, b)
    if not same:
        raise Differs("tifffile leaves part of the image unfilled (two reads into different buffers differ), "
                      "but medconv made a volume of it")
    expected = _tiff_volume_axes(plain, axes)
    _compare_arrays(volume.array, expected, "voxels")


def _ones(dtype):
    import numpy as np

    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return True
    if dtype.kind in "iu":
        return np.iinfo(dtype).max
    return np.nan


def _tiff_volume_axes(array, axes: str):
    """The documented axis table of docs/tiff.md, written here independently of medconv's code."""
    import numpy as np

    keep = [n for n, letter in enumerate(axes) if array.shape[n] > 1 or letter in "XY"]
    array = array.reshape([array.shape[n] for n in keep])
    letters = "".join(axes[n] for n in keep)
    stack = [n for n, letter in enumerate(letters) if letter not in "XYTCS"]
    extra = [n for n, letter in enumerate(letters) if letter in "TCS"]
    view = array.transpose([letters.index("X"), letters.index("Y")] + stack + extra)
    return view if stack else view[:, :, np.newaxis, ...]


def reference_dicom(path: Path, volume) -> None:
    import numpy as np
    import pydicom

    try:
        dataset = pydicom.dcmread(str(path))
        if "TransferSyntaxUID" not in dataset.file_meta:  # what pydicom's error says to do: name the encoding
            # its parser found (a file meta group whose first tag was mutated ends before (0002,0010))
            dataset.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian if dataset.is_implicit_VR \
                else pydicom.uid.ExplicitVRLittleEndian if dataset.is_little_endian else pydicom.uid.ExplicitVRBigEndian
        pixels = dataset.pixel_array
    except Exception as exc:
        raise ReferenceRefused(f"pydicom: {type(exc).__name__}: {exc}"[:200]) from None
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    if frames > 1 or int(dataset.get("SamplesPerPixel", 1) or 1) != 1 or pixels.ndim != 2:
        raise ReferenceRefused("reference model covers single-frame grey images only")
    values = pixels.astype(np.float64)
    if str(dataset.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1":
        bits = int(dataset.BitsStored)
        low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if dataset.PixelRepresentation else (0, 2**bits - 1)
        values = low + high - values
    slope = float(dataset.get("RescaleSlope", 1) or 1)
    intercept = float(dataset.get("RescaleIntercept", 0) or 0)
    values = values * slope + intercept
    ours = volume.array
    if ours.ndim != 3:
        raise ReferenceRefused(f"reference model covers 3-axis volumes only, not {ours.shape}")
    if ours.shape[2] > 1:  # a Siemens mosaic: slices are the image's tiles, row by row
        width, height, count = ours.shape
        if values.shape[0] % height or values.shape[1] % width:
            raise Differs(f"{count} slices of {width}x{height} do not tile the {values.shape} image")
        across = values.shape[1] // width
        tiles = [values[(n // across) * height:(n // across + 1) * height, (n % across) * width:(n % across + 1) * width]
                 for n in range(count)]
        if count > len(tiles) or count > (values.shape[0] // height) * across:
            raise Differs(f"{count} slices, but the image holds {(values.shape[0] // height) * across} tiles")
        for n, tile in enumerate(tiles):
            _compare_arrays(ours[:, :, n], tile.T, f"mosaic slice {n}", exact=False)
        return
    _compare_arrays(ours[:, :, 0], values.T, "voxels", exact=False)
    if "PixelSpacing" in dataset and "ImageOrientationPatient" in dataset and "ImagePositionPatient" in dataset:
        rows, columns = (float(v) for v in dataset.PixelSpacing)
        iop = np.array([float(v) for v in dataset.ImageOrientationPatient])
        # the directions IOP gives, as unit vectors (medconv documents normalising them: docs/reliability.md)
        iop = np.concatenate([iop[:3] / np.linalg.norm(iop[:3]), iop[3:] / np.linalg.norm(iop[3:])])
        origin = [float(v) for v in dataset.ImagePositionPatient]
        if np.allclose(volume.spacing[:2], (columns, rows), rtol=1e-5) is False:
            raise Differs(f"spacing {volume.spacing[:2]} != PixelSpacing ({columns}, {rows})")
        if not np.allclose(volume.origin, origin, atol=1e-3):
            raise Differs(f"origin {volume.origin} != ImagePositionPatient {origin}")
        if not np.allclose(volume.direction[:, 0], iop[:3], atol=1e-3) or \
                not np.allclose(volume.direction[:, 1], iop[3:], atol=1e-3):
            raise Differs(f"direction {volume.direction[:, :2].T.tolist()} != ImageOrientationPatient {iop.tolist()}")


REFERENCES = {"dicom": reference_dicom, "metaimage": reference_metaimage, "nifti": reference_nifti,
              "tiff": reference_tiff}


def judge(mutant: Mutant, src: Path, volumes) -> tuple[str, str]:
    """The verdict on the volumes medconv made of ``mutant``."""
    if mutant.must_refuse:
        return "read-outside", "made a volume although the mutant names a file outside SRC or a device"
    for source, volume in volumes:
        files = [Path(p) for p in volume.meta.get("source_files", [])]
        if any(not str(p.resolve()).startswith(str(src.resolve())) for p in files):
            return "read-outside", f"source files {volume.meta.get('source_files')}"
        main = Path(source.path)
        try:
            REFERENCES[mutant.seed.fmt](main, volume)
        except ReferenceRefused as exc:
            return "unverified", str(exc)
        except Differs as exc:
            return "differs", str(exc)
        except Exception as exc:  # the harness's own reference code failed: nothing is verified
            return "unverified", f"reference code: {type(exc).__name__}: {exc}"[:300]
    return "equal", ""


def seed_verdict(seed: Seed, base: Path, cache: dict) -> str:
    """The verdict on the unmutated seed (cached): a seed the reference model does not cover
    (not ``equal`` or ``typed-error`` itself) cannot judge its mutants' volumes."""
    if seed.name not in cache:
        folder = Path(tempfile.mkdtemp(dir=base))
        src = write_mutant(Mutant(seed, dict(seed.files), "unmutated"), folder)
        outcome, _, volumes = run_medconv(seed.fmt, src)
        cache[seed.name] = judge(Mutant(seed, {}, ""), src, volumes)[0] if outcome == "volume" else outcome
        shutil.rmtree(folder, ignore_errors=True)
    return cache[seed.name]


# -- the worker process -------------------------------------------------------------------------------------------

def worker_main(args) -> None:
    """Read mutant indices from stdin, answer JSON lines on the original stdout (fd 1 goes to stderr)."""
    answer = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever a library prints must not reach the answer channel
    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)
    try:
        import resource

        limit = int(args.rss_limit * 8)  # a backstop for the machine; the parent's RSS watch is the measure
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    import medconv  # noqa: F401  (imported before the first mutant, so its time is not counted)
    seeds = load_seeds(Path(args.corpora), tuple(args.formats))
    base = Path(tempfile.mkdtemp(prefix="medconv-fuzz-"))
    calibration: dict[str, str] = {}
    answer.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        index = json.loads(line)["index"]
        mutant = make_mutant(args.seed, index, seeds, tuple(args.formats))
        folder = base / str(index)
        src = write_mutant(mutant, folder)
        start = time.perf_counter()
        outcome, detail, volumes = run_medconv(mutant.seed.fmt, src)
        seconds = time.perf_counter() - start
        answer.write(json.dumps({"index": index, "stage": "medconv", "outcome": outcome, "seconds": seconds}) + "\n")
        verdict = outcome
        if outcome == "volume":
            verdict, detail = judge(mutant, src, volumes)
            if verdict in ("differs", "unverified") and seed_verdict(mutant.seed, base, calibration) not in (
                    "equal", "typed-error"):
                verdict, detail = "unmodelled", f"the unmutated seed is not 'equal' either; {detail}"
        elif outcome == "not-found" and mutant.must_refuse:
            verdict = "not-found"
        del volumes
        if args.save:  # before the answer: the parent may stop this worker as soon as it has it
            shutil.copytree(folder, Path(args.save) / str(index), dirs_exist_ok=True)
        answer.write(json.dumps({"index": index, "stage": "verdict", "verdict": verdict, "detail": detail,
                                 "seconds": seconds}) + "\n")
        shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(base, ignore_errors=True)


# -- the parent: workers, watchdog, report ------------------------------------------------------------------------

@dataclass
class Worker:
    process: subprocess.Popen
    buffer: bytes = b""
    index: int | None = None
    stage: str = ""
    started: float = 0.0
    peak_rss: int = 0
    ready: bool = False


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _start_worker(args, selector) -> Worker:
    command = [sys.executable, "-P", str(Path(__file__).resolve()), "--worker", "--seed", str(args.seed),
               "--formats", ",".join(args.formats), "--corpora", str(args.corpora), "--rss-limit", str(args.rss_limit)]
    if args.save:
        command += ["--save", str(args.save)]
    log = open(args.worker_log, "ab") if args.worker_log else subprocess.DEVNULL
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                               cwd=tempfile.gettempdir(), start_new_session=True)
    worker = Worker(process)
    os.set_blocking(process.stdout.fileno(), False)
    selector.register(process.stdout, selectors.EVENT_READ, worker)
    return worker


def _stop_worker(worker: Worker, selector) -> None:
    try:
        selector.unregister(worker.process.stdout)
    except (KeyError, ValueError):
        pass
    try:
        os.killpg(worker.process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    worker.process.wait()


def run(args) -> int:
    seeds = load_seeds(Path(args.corpora), tuple(args.formats))
    formats = tuple(fmt for fmt in args.formats if seeds.get(fmt))
    missing = [fmt for fmt in args.formats if not seeds.get(fmt)]
    if missing:
        print(f"no seed files for {', '.join(missing)} under {args.corpora}", file=sys.stderr)
        return 2
    args.formats = formats
    indices = [int(args.replay.split(":")[1])] if args.replay else None
    if args.replay:
        args.seed = int(args.replay.split(":")[0])
    deadline = time.monotonic() + args.seconds
    selector = selectors.DefaultSelector()
    workers = [_start_worker(args, selector) for _ in range(1 if args.replay else args.workers)]
    next_index = 0
    results: dict[int, dict] = {}
    started = time.monotonic()

    def issue(worker: Worker) -> bool:
        nonlocal next_index
        if indices is not None:
            if not indices:
                return False
            index = indices.pop()
        else:
            if time.monotonic() >= deadline or (args.count is not None and next_index >= args.count):
                return False
            index = next_index
            next_index += 1
        worker.index, worker.stage, worker.started, worker.peak_rss = index, "medconv", time.monotonic(), 0
        worker.process.stdin.write(json.dumps({"index": index}).encode() + b"\n")
        worker.process.stdin.flush()
        return True

    def finish(worker: Worker, verdict: str, detail: str, seconds: float | None = None) -> None:
        mutant = make_mutant(args.seed, worker.index, seeds, formats)
        results[worker.index] = {
            "key": f"{args.seed}:{worker.index}", "format": mutant.seed.fmt, "seed_file": mutant.seed.name,
            "mutation": mutant.description, "verdict": verdict, "detail": detail,
            "seconds": round(seconds if seconds is not None else time.monotonic() - worker.started, 3),
            "peak_rss_mb": round(worker.peak_rss / 2**20, 1)}
        if not args.quiet and (verdict not in GOOD_VERDICTS or args.replay):
            print(f"[{verdict}] {args.seed}:{worker.index} {mutant.seed.fmt} {mutant.seed.name}: "
                  f"{mutant.description} -> {detail.splitlines()[0] if detail else ''}", flush=True)
        worker.index = None

    issuing = True
    while True:
        for worker in workers:
            if issuing and worker.ready and worker.index is None:
                issuing = issue(worker)
        if not issuing and all(w.index is None for w in workers):
            break
        for key, _ in selector.select(timeout=0.05):
            worker: Worker = key.data
            try:
                chunk = os.read(worker.process.stdout.fileno(), 65536)
            except BlockingIOError:
                continue
            if not chunk:
                continue
            worker.buffer += chunk
            while b"\n" in worker.buffer:
                line, worker.buffer = worker.buffer.split(b"\n", 1)
                message = json.loads(line)
                if message.get("ready"):
                    worker.ready = True
                elif message["stage"] == "medconv":
                    worker.stage = "reference"
                elif message["stage"] == "verdict":
                    finish(worker, message["verdict"], message["detail"], message["seconds"])
        now = time.monotonic()
        for worker in list(workers):
            if worker.index is not None:
                worker.peak_rss = max(worker.peak_rss, _rss(worker.process.pid))
            dead = worker.process.poll() is not None
            problem = None
            if worker.index is not None:
                limit = args.timeout if worker.stage == "medconv" else args.reference_timeout
                if dead:
                    code = worker.process.returncode
                    how = f"signal {-code}" if code < 0 else f"exit {code}"
                    problem = ("crash", f"the worker died ({how}) in {worker.stage}")
                elif worker.peak_rss > args.rss_limit:
                    problem = ("memory", f"RSS {worker.peak_rss / 2**30:.2f} GiB in {worker.stage}")
                elif now - worker.started > limit:
                    problem = ("hang", f"no answer after {limit} s in {worker.stage}")
            elif dead:
                problem = ("startup", "")
            if problem is None:
                continue
            verdict, detail = problem
            if worker.index is not None:
                if worker.stage == "reference":
                    verdict, detail = "unverified", f"the reference {verdict}ed: {detail}"
                finish(worker, verdict, detail)
            elif not worker.ready:
                print("a worker could not start; run with --worker-log FILE to see why", file=sys.stderr)
                return 2
            _stop_worker(worker, selector)
            workers.remove(worker)
            workers.append(_start_worker(args, selector))
    for worker in workers:
        try:
            worker.process.stdin.close()
        except OSError:
            pass
        _stop_worker(worker, selector)
    return report(args, results, time.monotonic() - started)


def report(args, results: dict[int, dict], elapsed: float) -> int:
    rows = [results[index] for index in sorted(results)]
    if args.findings:
        with open(args.findings, "w", encoding="utf-8") as handle:
            for row in rows:
                if row["verdict"] not in GOOD_VERDICTS or row["verdict"] == "net" or args.all_findings:
                    handle.write(json.dumps(row) + "\n")
    verdicts = sorted({row["verdict"] for row in rows}, key=lambda v: (v not in GOOD_VERDICTS, v))
    print(f"\nseed {args.seed}: {len(rows)} mutants in {elapsed:.0f} s "
          f"({len(rows) / max(elapsed, 1e-9):.1f}/s), {args.workers} workers, timeout {args.timeout} s, "
          f"RSS limit {args.rss_limit / 2**30:.1f} GiB")
    header = f"{'format':10}" + "".join(f"{v:>13}" for v in verdicts) + f"{'max s':>8}{'max MB':>8}"
    print(header)
    for fmt in args.formats:
        mine = [row for row in rows if row["format"] == fmt]
        if not mine:
            continue
        line = f"{fmt:10}" + "".join(f"{sum(r['verdict'] == v for r in mine):>13}" for v in verdicts)
        line += f"{max(r['seconds'] for r in mine):>8.2f}{max(r['peak_rss_mb'] for r in mine):>8.0f}"
        print(line)
    problems = [row for row in rows if row["verdict"] not in GOOD_VERDICTS]
    print(f"problems: {len(problems)}" + (f" (replay with --replay KEY; listed in {args.findings})"
                                          if problems and args.findings else ""))
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60, help="stop issuing mutants after this (default 60)")
    parser.add_argument("--count", type=int, default=None, help="run at most this many mutants")
    parser.add_argument("--seed", type=int, default=1, help="the mutant sequence (default 1)")
    parser.add_argument("--formats", default=",".join(FORMATS), help=f"comma-separated, from {', '.join(FORMATS)}")
    parser.add_argument("--corpora", default=str(DEFAULT_CORPORA), help="the corpora folder (../shared/corpora)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--timeout", type=float, default=10, help="seconds medconv may take per mutant (default 10)")
    parser.add_argument("--reference-timeout", type=float, default=60, help="seconds for the reference reader")
    parser.add_argument("--rss-limit", type=float, default=2 * 2**30, help="bytes of RSS per worker (default 2 GiB)")
    parser.add_argument("--findings", default=None, help="write the problems as JSON lines here")
    parser.add_argument("--all-findings", action="store_true", help="write every mutant's row to --findings")
    parser.add_argument("--replay", default=None, metavar="SEED:INDEX", help="run one mutant again, verbosely")
    parser.add_argument("--save", default=None, metavar="DIR", help="keep the mutants' files under DIR/INDEX")
    parser.add_argument("--worker-log", default=None, help="append the workers' stderr to this file")
    parser.add_argument("--quiet", action="store_true", help="only the summary")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    unknown = [f for f in args.formats if f not in FORMATS]
    if unknown:
        parser.error(f"unknown format(s): {', '.join(unknown)}")
    if args.worker:
        worker_main(args)
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
