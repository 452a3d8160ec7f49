"""Hostile DICOM inputs built at test time from corpus files: element values and length fields edited in place.

The byte offsets come from ``scripts/fuzz_inputs.py``'s ``dicom_elements`` (pydicom's
element generator over the file), which shares no code with medconv's parsers, so a
test edits exactly the bytes the fuzz harness mutates. References are pydicom's.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np

from conftest import corpus_path
from hostile_inputs import fuzz_inputs

#: The 16-slice LIDC-IDRI-0001 series (GE CT, 512x512, int16, explicit VR little endian).
LIDC_SERIES = ("lidc", "LIDC-IDRI-0001", "1.3.6.1.4.1.14519.5.2.1.6279.6001.298806137288633453246975630178",
               "1.3.6.1.4.1.14519.5.2.1.6279.6001.179049373636438705059720603192")


def lidc_files(count: int | None = None) -> list[Path]:
    """The LIDC-IDRI-0001 slices in file-name order (the first ``count``)."""
    files = sorted(corpus_path(*LIDC_SERIES).glob("*.dcm"))
    return files[:count] if count else files


def copy_files(files, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    copies = []
    for path in files:
        shutil.copy(path, folder / path.name)
        copies.append(folder / path.name)
    return copies


def element(data: bytes, tag: int) -> tuple[str, int, int, int]:
    """``(VR, length, value offset, length-field size)`` of the top-level element ``tag``."""
    for found, vr, length, place, size in fuzz_inputs.dicom_elements(data):
        if found == tag:
            return vr, length, place, size
    raise KeyError(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) not in the file")


def set_text(path: Path, tag: int, text: bytes) -> None:
    """Overwrite the value of a string element with ``text``, padded with spaces to its length (as the fuzzer)."""
    data = bytearray(path.read_bytes())
    _, length, place, _ = element(bytes(data), tag)
    assert len(text) <= length, (text, length)
    data[place:place + length] = text.ljust(length, b" ")
    path.write_bytes(bytes(data))


def set_us(path: Path, tag: int, value: int) -> None:
    """Overwrite the value of a 2-byte US element."""
    data = bytearray(path.read_bytes())
    _, length, place, _ = element(bytes(data), tag)
    assert length == 2
    struct.pack_into("<H", data, place, value)
    path.write_bytes(bytes(data))


def set_length(path: Path, tag: int, length: int) -> None:
    """Overwrite the length field of an element (its value left as it is), as the fuzzer's length mutation."""
    data = bytearray(path.read_bytes())
    _, _, place, size = element(bytes(data), tag)
    if size == 4:
        struct.pack_into("<I", data, place - 4, length & 0xFFFFFFFF)
    else:
        struct.pack_into("<H", data, place - 2, length & 0xFFFF)
    path.write_bytes(bytes(data))


def set_transfer_syntax(path: Path, uid: str) -> None:
    """Rewrite (0002,0010) in place (NUL padded to the old length), leaving the data set as it is encoded."""
    data = bytearray(path.read_bytes())
    _, length, place, _ = element(bytes(data), 0x00020010)
    value = uid.encode()
    assert len(value) <= length
    data[place:place + length] = value.ljust(length, b"\x00")
    path.write_bytes(bytes(data))


def pydicom_values(path: Path) -> np.ndarray:
    """pydicom's rescaled values of a single-frame file, ``(rows, columns)`` float64."""
    import pydicom

    dataset = pydicom.dcmread(str(path))
    slope = float(dataset.get("RescaleSlope", 1) or 1)
    return dataset.pixel_array.astype(np.float64) * slope + float(dataset.get("RescaleIntercept", 0) or 0)


def pydicom_stack(paths) -> np.ndarray:
    """pydicom's rescaled values of single-frame files sorted along the slice normal, ``(i, j, k)``."""
    import pydicom

    datasets = [pydicom.dcmread(str(p)) for p in paths]
    iop = np.array([float(v) for v in datasets[0].ImageOrientationPatient])
    normal = np.cross(iop[:3], iop[3:])
    datasets.sort(key=lambda d: float(np.dot(normal, [float(v) for v in d.ImagePositionPatient])))
    return np.stack([pydicom_values(Path(d.filename)).T for d in datasets], axis=2)
