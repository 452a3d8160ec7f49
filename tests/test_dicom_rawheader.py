"""The pydicom-free header parser (:mod:`medconv.readers.dicom.rawheader`) and the direct pixel read.

References: pydicom's own parse (``read_header_pydicom``, ``dcmread``) and
pydicom's ``pixel_array``, on every DICOM file of the real corpora and on
synthetic files with the structures that trip a hand-written parser (nested
sequences of undefined length, UN sequences in implicit VR, a data set encoded
other than its transfer syntax says, truncation).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import warnings

import numpy as np
import pytest

from medconv.readers.dicom import headers as H
from medconv.readers.dicom.pixels import direct_pixel_header, read_pixel_stack
from medconv.readers.dicom.rawheader import parse_file
from conftest import corpus_path

CORPORA = ["lidc", "dcm_qa_ts", "dcm_qa_12bit", "dcm_qa_ct", "dcm_qa_frag", "dcm_qa_enh", "pydicom_test_files",
           "nibabel_data"]
PIXEL_FIELDS = ("pixel_offset", "pixel_length", "pixel_vr", "file_stamp")


def _dicom_files(root) -> list[str]:
    paths = sorted(str(p) for p in root.rglob("*") if p.is_file())
    return [p for p in paths if H.classify_path(p) is None]


def _outcome(function, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            header = function(path)
        except Exception as exc:  # compare failures by kind only
            return "error", type(exc).__name__
    values = dataclasses.asdict(header)
    for key in PIXEL_FIELDS:
        values.pop(key)
    return "ok", values


@pytest.mark.parametrize("corpus", [pytest.param(name, id=name) for name in CORPORA])
def test_raw_header_equals_pydicom_on_every_corpus_file(corpus):
    """Every field of every file: the raw parse (or its pydicom fallback) equals pydicom's parse."""
    paths = _dicom_files(corpus_path(corpus))
    assert paths
    raw_parsed = 0
    for path in paths:
        ours = _outcome(H.read_header, path)
        reference = _outcome(H.read_header_pydicom, path)
        if ours[0] == "error" or reference[0] == "error":
            assert ours[0] == reference[0], (path, ours, reference)
            continue
        assert ours == reference, path
        raw_parsed += H.read_header_raw(path) is not None
    assert raw_parsed > 0  # the fast path really ran on this corpus


@pytest.mark.parametrize("corpus", [pytest.param(name, id=name) for name in ("lidc", "dcm_qa_ts", "dcm_qa_12bit",
                                                                               "pydicom_test_files")])
def test_pixel_offset_points_at_pydicoms_pixel_bytes(corpus):
    import pydicom

    checked = 0
    for path in _dicom_files(corpus_path(corpus)):
        header = H.read_header_raw(path)
        if header is None or header.pixel_offset < 0 or header.pixel_length == 0xFFFFFFFF:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, force=True)
        expected = bytes(ds.PixelData)
        with open(path, "rb") as handle:
            handle.seek(header.pixel_offset)
            got = handle.read(header.pixel_length)
        assert got == expected[:header.pixel_length], path
        checked += 1
    assert checked


def _pydicom_values(path: str) -> np.ndarray:
    """pydicom's decoded, rescaled values of one single-frame file (the reference)."""
    import pydicom
    from pydicom.pixels import apply_rescale

    ds = pydicom.dcmread(path, force=True)
    return apply_rescale(ds.pixel_array, ds).astype(np.float64)


@pytest.mark.parametrize("parts", [
    pytest.param(("lidc",), id="lidc-signed-ct"),
    pytest.param(("dcm_qa_ts", "In", "1.dcm"), id="explicit-little"),
    pytest.param(("dcm_qa_ts", "In", "2.dcm"), id="implicit-little"),
    pytest.param(("dcm_qa_ts", "In", "3.dcm"), id="big-endian-fallback"),
    pytest.param(("dcm_qa_12bit",), id="12-bit-with-high-bit-garbage"),
    pytest.param(("pydicom_test_files", "MR_small_implicit.dcm"), id="pydicom-implicit"),
    pytest.param(("pydicom_test_files", "MR_small_bigendian.dcm"), id="pydicom-big-endian"),
    pytest.param(("pydicom_test_files", "CT_small.dcm"), id="pydicom-ct-small"),
])
def test_direct_pixel_read_equals_pydicom_pixel_array(parts):
    root = corpus_path(*parts)
    paths = _dicom_files(root) if root.is_dir() else [str(root)]
    checked = 0
    for path in paths:
        header = H.read_header(path)
        if not header.has_pixels or header.number_of_frames != 1 or header.samples_per_pixel != 1:
            continue
        direct = direct_pixel_header(header)
        if "big-endian" in str(path).lower() or header.transfer_syntax == "1.2.840.10008.1.2.2":
            assert direct is None  # parsed and decoded by pydicom
        stack = read_pixel_stack([path], [header])
        np.testing.assert_array_equal(stack.array[0].astype(np.float64), _pydicom_values(path), err_msg=path)
        checked += 1
    assert checked


def test_direct_read_is_used_for_plain_series(tmp_path):
    """LIDC files take the direct path: the header scan found where their pixels start."""
    paths = _dicom_files(corpus_path("lidc"))
    headers = [H.read_header(p) for p in paths]
    usable = [h for h in headers if h.has_pixels]
    assert usable and all(direct_pixel_header(h) is not None for h in usable)


def test_hand_built_source_reads_the_same_as_discovered():
    """A Source made by hand (no discovery info) reads; voxels equal pydicom's, in position order."""
    from medconv.readers.dicom.reader import DicomReader
    from medconv.source import Source

    reader = DicomReader(jobs=1)
    discovered = [s for s in reader.discover(str(corpus_path("lidc"))) if not s.info.get("excluded")]
    source = max(discovered, key=lambda s: len(s.paths))
    by_hand = Source("by-hand", "dicom", tuple(reversed(source.paths)))
    volume = reader.read(by_hand)
    reference = reader.read(source)
    np.testing.assert_array_equal(volume.array, reference.array)
    np.testing.assert_allclose(volume.affine_lps, reference.affine_lps)
    # independent check: each k-slice equals pydicom's values of the file at that position
    files = volume.meta["source_files"]
    for k in (0, len(files) // 2, len(files) - 1):
        np.testing.assert_array_equal(volume.array[:, :, k].T, _pydicom_values(files[k]))


# -- synthetic files with the structures a hand-written parser can get wrong -------------------
def _dataset(explicit: bool = True):
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = "2.25.1"
    meta.TransferSyntaxUID = "1.2.840.10008.1.2.1" if explicit else "1.2.840.10008.1.2"
    ds = pydicom.dataset.FileDataset("x", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SeriesInstanceUID = "2.25.7"
    ds.Modality = "CT"
    inner = Dataset()
    inner.CodeValue = "X"
    inner.ImagePositionPatient = [9, 9, 9]  # nested: must not be taken for the top-level one
    nested = Dataset()
    nested.ReferencedSOPInstanceUID = "2.25.3"
    inner.ReferencedImageSequence = Sequence([nested])
    ds.ProcedureCodeSequence = Sequence([inner, Dataset()])
    ds.ImagePositionPatient = [1.5, -2, 3]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [0.5, 0.75]
    ds.add_new(0x00290010, "LO", "MEDCONV TEST")
    ds.add_new(0x00291010, "OB", b"\x01\x02" * 50)  # a private blob to skip
    ds.Rows, ds.Columns = 4, 3
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 1
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.RescaleSlope, ds.RescaleIntercept = "2", "-1024"
    values = (np.arange(12, dtype=np.int16).reshape(4, 3) - 6) | np.int16(0x3000)  # garbage above bit 11
    ds.PixelData = values.tobytes()
    return ds


def _save(ds, path, undefined_sequences: bool) -> str:
    if undefined_sequences:
        for element in ds.iterall():
            if element.VR == "SQ":
                element.is_undefined_length = True
                for item in element.value:
                    item.is_undefined_length_sequence_item = True
    ds.save_as(path, enforce_file_format=False, implicit_vr=ds.file_meta.TransferSyntaxUID.endswith(".1.2"),
               little_endian=True)
    return str(path)


@pytest.mark.parametrize("explicit", [pytest.param(True, id="explicit"), pytest.param(False, id="implicit")])
@pytest.mark.parametrize("undefined", [pytest.param(True, id="undefined-length-sequences"),
                                       pytest.param(False, id="defined-length-sequences")])
def test_synthetic_sequences_and_private_blobs(tmp_path, explicit, undefined):
    path = _save(_dataset(explicit), tmp_path / "a.dcm", undefined)
    raw = H.read_header_raw(path)
    assert raw is not None
    assert raw.ipp == (1.5, -2.0, 3.0) and raw.pixel_spacing == (0.5, 0.75)
    assert (raw.slope, raw.intercept, raw.bits_stored, raw.high_bit) == (2.0, -1024.0, 12, 11)
    reference = _outcome(H.read_header_pydicom, path)
    assert _outcome(H.read_header, path) == reference
    stack = read_pixel_stack([path], [raw])
    np.testing.assert_array_equal(stack.array[0], _pydicom_values(path))


@pytest.mark.parametrize("explicit", [pytest.param(True, id="explicit"), pytest.param(False, id="implicit")])
def test_undefined_length_sequence_longer_than_the_read_window(tmp_path, explicit):
    """A sequence of undefined length spanning many of the parser's 16 kB windows (as a real enhanced file's
    per-frame groups do), nested sequences of undefined length inside its items; and the same file cut
    inside it, at an element boundary and inside a value: pydicom's answer each time."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = _dataset(explicit)
    items = []
    for n in range(600):
        item = Dataset()
        item.CodeValue = f"V{n}"
        item.ImagePositionPatient = [n, 9, 9]  # nested: must not be taken for the top-level one
        nested = Dataset()
        nested.ReferencedSOPInstanceUID = f"2.25.{n}"
        item.ReferencedImageSequence = Sequence([nested, Dataset()])
        items.append(item)
    ds.ProcedureCodeSequence = Sequence(items)
    path = _save(ds, tmp_path / "a.dcm", undefined_sequences=True)
    data = open(path, "rb").read()
    assert data.index(b"V599") > 4 * 16384
    raw = H.read_header_raw(path)
    assert raw is not None and raw.ipp == (1.5, -2.0, 3.0)
    assert _outcome(H.read_header, path) == _outcome(H.read_header_pydicom, path)
    np.testing.assert_array_equal(read_pixel_stack([path], [raw]).array[0], _pydicom_values(path))
    for cut_at in (data.index(_tag(0x0008, 0x1155), 3 * 16384), data.index(b"V400") + 2):
        cut = tmp_path / f"cut{cut_at}.dcm"
        cut.write_bytes(data[:cut_at])
        assert parse_file(str(cut), frozenset()) is None
        assert _outcome(H.read_header, str(cut)) == _outcome(H.read_header_pydicom, str(cut))


def _tag(group: int, element: int) -> bytes:
    return group.to_bytes(2, "little") + element.to_bytes(2, "little")


def test_un_sequence_of_undefined_length_in_explicit_file(tmp_path):
    """An explicit-VR file holding a VR UN element of undefined length (implicit VR inside, PS3.5 6.2.2)."""
    path = _save(_dataset(True), tmp_path / "a.dcm", False)
    data = open(path, "rb").read()
    start = data.index(_tag(0x0008, 0x1032) + b"SQ")  # ProcedureCodeSequence ...
    end = data.index(_tag(0x0020, 0x000E) + b"UI")  # ... up to SeriesInstanceUID
    undefined, item, item_end, sequence_end = b"\xff\xff\xff\xff", _tag(0xFFFE, 0xE000), _tag(0xFFFE, 0xE00D), \
        _tag(0xFFFE, 0xE0DD)
    implicit_item = (_tag(0x0008, 0x0100) + (2).to_bytes(4, "little") + b"X "  # CodeValue
                     + _tag(0x0020, 0x0032) + (6).to_bytes(4, "little") + b"9\\9\\9 "  # a nested IPP: not ours
                     + _tag(0x0008, 0x1140) + undefined  # ReferencedImageSequence, undefined length
                     + item + (10).to_bytes(4, "little") + _tag(0x0008, 0x1155) + (2).to_bytes(4, "little") + b"1\x00"
                     + sequence_end + bytes(4))
    un_element = (_tag(0x0008, 0x1032) + b"UN\x00\x00" + undefined + item + undefined + implicit_item
                  + item_end + bytes(4) + sequence_end + bytes(4))
    data = data[:start] + un_element + data[end:]
    with open(path, "wb") as handle:
        handle.write(data)
    raw = H.read_header_raw(path)
    assert raw is not None and raw.ipp == (1.5, -2.0, 3.0)
    assert raw.pixel_offset == len(data) - 4 * 3 * 2  # Pixel Data is the last element
    assert _outcome(H.read_header, path) == _outcome(H.read_header_pydicom, path)
    np.testing.assert_array_equal(read_pixel_stack([path], [raw]).array[0], _pydicom_values(path))


def test_files_the_raw_parser_leaves_to_pydicom(tmp_path):
    """No preamble, a data set encoded against its transfer syntax, a cut inside the header: ``None``."""
    path = _save(_dataset(True), tmp_path / "a.dcm", False)
    data = open(path, "rb").read()
    no_preamble = tmp_path / "b.dcm"
    no_preamble.write_bytes(data[132:])
    assert parse_file(str(no_preamble), frozenset()) is None
    cut = tmp_path / "c.dcm"
    cut.write_bytes(data[:data.index(b"MONOCHROME2") + 4])
    assert parse_file(str(cut), frozenset()) is None
    # an explicit-VR file meta group followed by an implicit-VR data set
    implicit = open(_save(_dataset(False), tmp_path / "d.dcm", False), "rb").read()
    liar = tmp_path / "e.dcm"
    liar.write_bytes(data[:_meta_end(data)] + implicit[_meta_end(implicit):])
    assert parse_file(str(liar), frozenset()) is None
    # and the header scan still gives pydicom's answer for each of them
    for candidate in (no_preamble, liar):
        assert _outcome(H.read_header, str(candidate)) == _outcome(H.read_header_pydicom, str(candidate))


def _meta_end(data: bytes) -> int:
    """Where the data set starts: its first element is SOPClassUID (0008,0016)."""
    return data.index(_tag(0x0008, 0x0016), 132)


def test_truncated_pixel_data_names_the_file(tmp_path):
    from medconv.errors import UnreadableFileError

    path = _save(_dataset(True), tmp_path / "a.dcm", False)
    header = H.read_header_raw(path)
    shutil.copy(path, tmp_path / "b.dcm")
    with open(tmp_path / "b.dcm", "r+b") as handle:
        handle.truncate(os.path.getsize(path) - 4)
    header = H.read_header_raw(str(tmp_path / "b.dcm"))
    with pytest.raises(UnreadableFileError, match="truncated"):
        read_pixel_stack([str(tmp_path / "b.dcm")], [header])


def test_field_tags_match_pydicoms_dictionary():
    from pydicom.datadict import tag_for_keyword

    assert {keyword for keyword, _, _ in H.FIELDS} == set(H.FIELD_TAGS)
    for keyword, tag in H.FIELD_TAGS.items():
        assert tag_for_keyword(keyword) == tag, keyword


def test_read_after_discover_parses_no_header_again_unless_a_file_changed(tmp_path, monkeypatch):
    """Discovery's headers serve read() in the same process; a file rewritten since is parsed again."""
    import pydicom

    from medconv.readers.dicom import reader as reader_module
    from medconv.readers.dicom.reader import DicomReader
    from dicom_synth import axial, write_series

    iop, positions = axial(5)
    series = write_series(tmp_path / "s", positions, iop)
    reader = DicomReader(jobs=1)
    (source,) = list(reader.discover(str(tmp_path / "s")))
    parsed: list[str] = []
    real = H.read_header

    def counting(path):
        parsed.append(path)
        return real(path)

    monkeypatch.setattr(H, "read_header", counting)  # what reuse_or_read falls back to
    monkeypatch.setattr(reader_module, "read_header", counting)
    first = reader.read(source)
    assert parsed == []
    # rewrite one slice with other stored values; its size stays, its mtime moves
    changed = str(series.paths[2])
    ds = pydicom.dcmread(changed)
    ds.PixelData = (ds.pixel_array + 7).astype(ds.pixel_array.dtype).tobytes()
    stamp = os.stat(changed)
    ds.save_as(changed)
    os.utime(changed, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1_000_000))
    second = reader.read(source)
    assert parsed == [changed]
    k = second.meta["source_files"].index(changed)
    np.testing.assert_array_equal(second.array[:, :, k].T, _pydicom_values(changed))
    np.testing.assert_array_equal(second.array[:, :, k], first.array[:, :, k] + 7)


def _pydicom_pixel_bytes(path: str) -> bytes:
    """The Pixel Data value as pydicom reads it (the reference)."""
    import pydicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bytes(pydicom.dcmread(path).PixelData)


def _with_trailing_padding(source: str, target) -> str:
    """``source`` with a Data Set Trailing Padding element (FFFC,FFFC) after its pixel data."""
    import pydicom

    ds = pydicom.dcmread(source)
    ds.add_new(0xFFFCFFFC, "OB", b"\x00" * 6)
    ds.save_as(target, enforce_file_format=True)
    return str(target)


@pytest.mark.parametrize("encoding", [pytest.param({}, id="explicit"), pytest.param({"implicit": True}, id="implicit")])
def test_per_frame_groups_of_undefined_length_are_skipped_to_pixel_data_at_the_end(tmp_path, monkeypatch, encoding):
    """Real enhanced files (dcm_qa_enh's Siemens XA10 and Philips) write their per-frame groups with undefined
    lengths: the scan finds native pixel data ending the file in one read instead of walking every element, and
    falls back to the walk when the file does not end with them (trailing padding)."""
    import pydicom

    from medconv.readers.dicom import rawheader
    from test_dicom_multiframe import _as_written

    walks = []
    full_skip = rawheader._Parser.skip_undefined
    monkeypatch.setattr(rawheader._Parser, "skip_undefined",
                        lambda self, pos, explicit, vr: walks.append(pos) or full_skip(self, pos, explicit, vr))
    sources = sorted(str(p) for p in corpus_path("dcm_qa_enh", "In").rglob("*.dcm"))
    assert len(sources) >= 2
    for index, source in enumerate(sources):
        path = str(_as_written(source, tmp_path / f"u{index}.dcm", undefined_lengths=True, **encoding))
        padded = _with_trailing_padding(path, tmp_path / f"p{index}.dcm")
        for name, jumped in ((path, True), (padded, False)):
            top = pydicom.dcmread(name, stop_before_pixels=True)
            undefined = [e.tag for e in top if e.VR == "SQ" and e.is_undefined_length]
            assert 0x52009230 in undefined, name
            walks.clear()
            header = parse_file(name, H._WANTED)
            assert header is not None, name
            with open(name, "rb") as handle:
                handle.seek(header.pixel_offset)
                assert handle.read(header.pixel_length) == _pydicom_pixel_bytes(name), name
            # every top-level sequence of undefined length is walked, but the per-frame groups when jumped over
            assert len(walks) == len(undefined) - jumped, (name, walks, undefined)
            assert _outcome(H.read_header, name) == _outcome(H.read_header_pydicom, name), name
