"""Memory and time bombs of every format fail in under a second with RSS under 200 MB (issue 16 items
10-13), measured in one fresh process (:func:`hostile_inputs.read_in_subprocess`)."""

from __future__ import annotations

import gzip
import shutil
import struct

import nibabel as nib
import numpy as np
import pytest
import tifffile

from conftest import corpus_path
from hostile_inputs import fuzz_inputs, read_in_subprocess

#: The bounds the issue sets for a bomb header: fail within this long, with at most this much RSS.
MAX_SECONDS = 1.0
MAX_RSS_MB = 200


def _mhd(folder, name: str, text: str):
    path = folder / f"{name}.mhd"
    path.write_text(text)
    return path


def _tiff_with(data: bytes, **values: int) -> bytes:
    """``data`` with ImageWidth / ImageLength set to these values on every page."""
    order, entries, _ = fuzz_inputs.tiff_entries(data)
    codes = {"width": 256, "length": 257}
    for key, value in values.items():
        for place, _, kind, _, _ in (e for e in entries if e[1] == codes[key]):
            data = fuzz_inputs.set_tiff_value(data, place, order, kind, value)
    return data


def _nifti_header(shape) -> bytes:
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(np.int16)
    header["qform_code"] = header["sform_code"] = 1
    header["vox_offset"] = 352
    return header.binaryblock + b"\x00" * 4


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    """``{name: (path, read options, expected error, expected message part)}``, all built from corpus files."""
    from isal import isal_zlib

    folder = tmp_path_factory.mktemp("bombs")
    head = corpus_path("metaimage", "vtk-data", "Data", "HeadMRVolume.mhd")
    shutil.copy(head.with_suffix(".raw"), folder / "HeadMRVolume.raw")
    text = head.read_text()
    cases = {}
    cases["metaimage 100000^3"] = (_mhd(folder, "huge", text.replace("48 62 42", "100000 100000 100000")), {},
                                   "VolumeTooLargeError", "1,000,000,000,000,000 voxels")
    cases["metaimage 10000^3 in 125 kB"] = (_mhd(folder, "long", text.replace("48 62 42", "10000 10000 10000")),
                                            {"max_voxels": 10**13}, "UnreadableFileError", "too short: 124992 bytes")
    cases["metaimage 50M-name pattern"] = (
        _mhd(folder, "pattern", text.replace("HeadMRVolume.raw", "s%09d.raw 1 50000000 1")), {},
        "UnreadableFileError", "names 50000000 files")
    compressor, block = isal_zlib.compressobj(0), bytes(1 << 20)
    with open(folder / "bomb.zraw", "wb") as handle:  # 29 MB that inflate to 3 GiB
        for _ in range(3 << 10):
            handle.write(compressor.compress(block))
        handle.write(compressor.flush())
    cases["metaimage .zraw of 3 GiB for 16^3"] = (
        _mhd(folder, "bomb", "NDims = 3\nDimSize = 16 16 16\nElementType = MET_UCHAR\nCompressedData = True\n"
                             "ElementDataFile = bomb.zraw\n"), {},
        "UnreadableFileError", "inflates to more than the 4096 bytes")
    (folder / "bomb.nii.gz").write_bytes(gzip.compress(_nifti_header((32767, 32767, 32767))))
    cases["nifti 32767^3 in 57 bytes"] = (folder / "bomb.nii.gz", {}, "VolumeTooLargeError", "voxels")
    (folder / "short.nii.gz").write_bytes(gzip.compress(_nifti_header((1000, 1000, 500)) + b"\x01" * 1000))
    cases["nifti 1 GB declared in 1 kB"] = (folder / "short.nii.gz", {"max_voxels": 10**9}, "UnreadableFileError",
                                            "inflates to 1000 bytes, the header needs 1000000000")
    extension = struct.pack("<4B2i", 1, 0, 0, 0, 2**31 - 8, 0)  # one extension announcing 2 GiB
    compressor = isal_zlib.compressobj(0, isal_zlib.DEFLATED, 31)
    with open(folder / "extension.nii.gz", "wb") as handle:  # 20 MB whose stream holds those 2 GiB
        header = bytearray(_nifti_header((4, 4, 4))[:348])
        header[108:112] = struct.pack("<f", 2.0**31)  # vox_offset: extensions may fill 2 GiB before the voxels
        handle.write(compressor.compress(bytes(header) + extension))
        for _ in range(2 << 10):
            handle.write(compressor.compress(block))
        handle.write(compressor.flush())
    cases["nifti 2 GiB header extension"] = (folder / "extension.nii.gz", {}, "UnreadableFileError",
                                             "extensions declare 2147483640 bytes")
    mri = corpus_path("tiff", "mri.tif").read_bytes()
    (folder / "huge.tif").write_bytes(_tiff_with(mri, width=65535, length=65535))  # SHORT tags: 65535 at most
    cases["tiff 27 pages of 65535^2"] = (folder / "huge.tif", {}, "VolumeTooLargeError", "27x65535x65535")
    tifffile.imwrite(folder / "loop.tif", np.zeros((150, 8, 8), np.uint8))
    data = (folder / "loop.tif").read_bytes()
    order, _, ifds = fuzz_inputs.tiff_entries(data)
    count = struct.unpack(order + "H", data[ifds[-1]:ifds[-1] + 2])[0]
    looped = bytearray(data)
    struct.pack_into(order + "I", looped, ifds[-1] + 2 + 12 * count, ifds[75])  # tifffile never ends on this
    (folder / "loop.tif").write_bytes(bytes(looped))
    cases["tiff 150-page IFD cycle"] = (folder / "loop.tif", {}, "UnreadableFileError", "is page 76 again")
    rgb = corpus_path("tiff", "shapes_zstd.tif").read_bytes()  # fuzz finding 21:11204
    order, entries, _ = fuzz_inputs.tiff_entries(rgb)
    width = next(e[0] for e in entries if e[1] == 256)
    signed = bytearray(rgb)
    struct.pack_into(order + "Hi", signed, width + 2, 8, 1)  # ImageWidth as SSHORT ...
    struct.pack_into(order + "h", signed, width + 8, -128)  # ... -128: tifffile 2026.3.3 counts pages backwards forever
    (folder / "negative.tif").write_bytes(bytes(signed))
    cases["tiff ImageWidth -128"] = (folder / "negative.tif", {}, "UnreadableFileError", "ImageWidth is -128")
    return cases


def test_every_bomb_fails_typed_in_under_a_second_and_200_mb(bombs):
    results = read_in_subprocess([(path, options) for path, options, _, _ in bombs.values()])
    assert len(results) == len(bombs)
    for (name, (_, _, error, message)), result in zip(bombs.items(), results):
        print(f"{name:36} {result['outcome']:20} {result['seconds'] * 1000:7.1f} ms  peak RSS {result['rss_mb']:5.0f} MB"
              f" (before {result['before_mb']:.0f} MB)")  # shown with -s: the figures in docs/reliability.md
        assert result["outcome"] == error and message in result["message"], (name, result)
        assert result["seconds"] < MAX_SECONDS, (name, result)
        assert result["rss_mb"] < MAX_RSS_MB, (name, result)
