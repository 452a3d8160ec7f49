"""Discovery, grouping and classification of DICOM trees the tests write themselves."""

from __future__ import annotations

import gzip
import json
import os
import shutil

import numpy as np
import pytest

from dicom_synth import axial, oriented, phantom, truncate, write_junk, write_rtstruct, write_series
from medconv.errors import NotAVolumeError, UnreadableFileError
from medconv.options import ReadOptions
from medconv.readers.dicom import DicomReader
from medconv.registry import readers


def discover(folder):
    reader = DicomReader(jobs=1)
    return reader, list(reader.discover(str(folder)))


def test_mixed_folder_two_series_localizer_rtstruct_junk_and_truncated(tmp_path):
    iop, positions = axial(6, step=2.5)
    chest = write_series(tmp_path, positions, iop, series_number=2, description="chest", names="shuffled", seed=1)
    coronal_iop = (1, 0, 0, 0, 0, -1)
    write_series(tmp_path, oriented(coronal_iop, [0, 1, 2, 3]), coronal_iop, series_number=3,
                 description="coronal", names="shuffled", seed=2)
    write_series(tmp_path, oriented((0, 1, 0, 0, 0, -1), [0]), (0, 1, 0, 0, 0, -1), series_number=1,
                 description="scout", image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"), prefix="loc", seed=3)
    write_rtstruct(tmp_path / "rtstruct.dcm", chest)
    junk = write_junk(tmp_path)
    broken = write_series(tmp_path / "broken", oriented(iop, [0]), iop, series_number=9, seed=4).paths[0]
    truncate(broken, keep=200)

    reader, found = discover(tmp_path)
    # the RTSTRUCT is an annotation unit (issue 11); this one lacks its ROI sequences: it will fail, with the reason
    (rtstruct,) = [s for s in found if s.reader == "annotation"]
    assert rtstruct.info["series_number"] == 99 and "incomplete RTSTRUCT" in rtstruct.info["error"]
    sources = [s for s in found if s.reader == "dicom"]
    images = [s for s in sources if not s.info.get("excluded") and not s.info.get("unreadable")]
    assert sorted(s.info["series_description"] for s in images) == ["chest", "coronal"]
    excluded = {s.info["series_number"]: s.info["excluded"] for s in sources if s.info.get("excluded")}
    assert "localizer" in excluded[1] and 99 not in excluded
    unreadable = [s for s in sources if s.info.get("unreadable")]
    assert [s.path for s in unreadable] == [str(broken)]
    with pytest.raises(UnreadableFileError) as info:
        reader.read(unreadable[0])
    assert str(broken) in str(info.value)
    assert {path for path, _ in reader.skipped} == {str(p) for p in junk}
    for source in sources:
        if source.info.get("excluded"):
            with pytest.raises(NotAVolumeError):
                reader.read(source)
    chest_source = next(s for s in images if s.info["series_description"] == "chest")
    volume = reader.read(chest_source)
    assert volume.shape == (10, 12, 6)
    assert volume.meta["series_number"] == 2
    assert len(volume.meta["source_files"]) == 6
    assert volume.meta["units"] == "HU"


def test_pixel_data_cut_short_fails_with_the_file_named(tmp_path):
    iop, positions = axial(4)
    series = write_series(tmp_path, positions, iop)
    size = series.paths[2].stat().st_size
    truncate(series.paths[2], keep=size - 50)
    reader, (source,) = discover(tmp_path)
    with pytest.raises(UnreadableFileError) as info:
        reader.read(source)
    assert str(series.paths[2]) in str(info.value)


def test_one_series_uid_reused_across_series_numbers_is_split(tmp_path):
    iop, positions = axial(3)
    write_series(tmp_path, positions, iop, series_uid="2.25.42", series_number=5, prefix="a", seed=1)
    write_series(tmp_path, positions, iop, series_uid="2.25.42", series_number=6, prefix="b", seed=2)
    _, sources = discover(tmp_path)
    assert len(sources) == 2
    assert sorted(s.info["split"][0] for s in sources) == ["SeriesNumber 5", "SeriesNumber 6"]
    assert len({s.id for s in sources}) == 2


def test_same_positions_with_temporal_index_become_a_4d_volume(tmp_path):
    iop, positions = axial(4)
    for t in (1, 2, 3):
        write_series(tmp_path, positions, iop, series_uid="2.25.77", prefix=f"t{t}_", seed=t,
                     extra={"TemporalPositionIdentifier": t},
                     function=lambda p, t=t: phantom(p) + 10 * t)
    reader, (source,) = discover(tmp_path)
    assert source.info["axis4"] == "time"
    assert source.info["shape"] == [10, 12, 4, 3]
    volume = reader.read(source)
    assert volume.shape == (10, 12, 4, 3)
    assert volume.meta["axis4"] == "time"
    diffs = np.diff(np.asarray(volume.array, dtype=np.int32), axis=3)
    assert np.all(diffs == 10)


def test_same_positions_with_echo_numbers_split_per_echo(tmp_path):
    iop, positions = axial(3)
    for echo in (1, 2):
        write_series(tmp_path, positions, iop, series_uid="2.25.78", prefix=f"e{echo}_", seed=echo,
                     extra={"EchoNumbers": echo})
    _, sources = discover(tmp_path)
    assert sorted(s.info["split"][0] for s in sources) == ["echo 1", "echo 2"]
    assert all(s.info["shape"] == [10, 12, 3] for s in sources)


def test_lone_2d_slice_is_excluded_unless_include_2d(tmp_path):
    iop = (1, 0, 0, 0, 1, 0)
    write_series(tmp_path, oriented(iop, [0]), iop)
    reader, (source,) = discover(tmp_path)
    assert source.info["excluded"] == "single 2D slice" and source.info["is_2d"]
    with pytest.raises(NotAVolumeError):
        reader.read(source)
    volume = reader.read(source, ReadOptions(include_2d=True))
    assert volume.shape == (10, 12, 1)
    assert any("single slice" in w for w in volume.warnings)


def test_gzipped_and_suffixless_files(tmp_path):
    iop, positions = axial(4)
    series = write_series(tmp_path, positions, iop, names="none")
    for path in series.paths[:2]:
        with open(path, "rb") as raw, gzip.open(f"{path}.dcm.gz", "wb") as packed:
            shutil.copyfileobj(raw, packed)
        path.unlink()
    reader, (source,) = discover(tmp_path)
    assert source.info["n_files"] == 4
    assert sum(p.endswith(".dcm.gz") for p in source.paths) == 2
    volume = reader.read(source)
    assert volume.shape == (10, 12, 4)


def test_registry_finds_the_reader_and_sniff_never_raises(tmp_path):
    reader = readers.get("dicom")
    assert reader.name == "dicom"
    iop, positions = axial(1)
    series = write_series(tmp_path, positions, iop)
    assert reader.sniff(str(series.paths[0]))
    assert not reader.sniff(str(tmp_path / "missing.dcm"))
    (tmp_path / "text.dcm").write_text("hello")
    assert not reader.sniff(str(tmp_path / "text.dcm"))


def test_source_ids_are_unique_readable_and_pickle(tmp_path):
    import pickle

    iop, positions = axial(3)
    for number in (1, 2):
        write_series(tmp_path / f"s{number}", positions, iop, series_number=number, description="Chest / CT",
                     seed=number)
    _, sources = discover(tmp_path)
    ids = [s.id for s in sources]
    assert len(set(ids)) == 2
    assert all("/" not in i and "SYNTH-001" in i for i in ids)
    assert pickle.loads(pickle.dumps(sources[0])) == sources[0]
    assert json.loads(json.dumps(dict(sources[0].info)))["shape"] == [10, 12, 3]


def test_large_scan_in_a_process_pool_finds_the_same_series(tmp_path, monkeypatch):
    from medconv.readers.dicom import headers

    PARALLEL_THRESHOLD = 400  # the real threshold is 10,000 files: too many to write in a test
    monkeypatch.setattr(headers, "PARALLEL_THRESHOLD", PARALLEL_THRESHOLD)
    iop = (1, 0, 0, 0, 1, 0)
    for number in range(1, 4):
        write_series(tmp_path / f"s{number}", oriented(iop, np.arange(PARALLEL_THRESHOLD // 3 + 1) * 1.0), iop,
                     rows=4, columns=4, series_number=number, seed=number)
    serial = [(s.id, s.paths) for s in DicomReader(jobs=1).discover(str(tmp_path))]
    pooled = [(s.id, s.paths) for s in DicomReader(jobs=2).discover(str(tmp_path))]
    assert len(serial) == 3 and pooled == serial


def test_include_2d_converts_lone_slices_through_tcia2nii(tmp_path):
    # End to end through the batch: excluded by default with the flag named, converted with --include-2d;
    # the one-slice NIfTI matches the file's own pixels (pydicom) at its IPP and PixelSpacing (LPS -> RAS).
    import json

    import nibabel as nib
    import pydicom

    from medconv.cli.main import main

    series = write_series(tmp_path / "in", oriented((1, 0, 0, 0, 0, -1), [4.0]), (1, 0, 0, 0, 0, -1),
                          series_number=7, description="lone coronal")
    assert main(["tcia2nii", str(tmp_path / "in"), str(tmp_path / "out"), "-q"]) == 0
    (row,) = [json.loads(line) for line in (tmp_path / "out" / "medconv-manifest.jsonl").read_text().splitlines()]
    assert row["status"] == "excluded" and "--include-2d" in row["reason"]
    assert main(["tcia2nii", str(tmp_path / "in"), str(tmp_path / "out2"), "-q", "--include-2d"]) == 0
    (row,) = [json.loads(line) for line in (tmp_path / "out2" / "medconv-manifest.jsonl").read_text().splitlines()]
    assert row["status"] == "converted"
    image = nib.load(tmp_path / "out2" / row["output"])
    ds = pydicom.dcmread(series.paths[0])
    expected = ds.pixel_array.astype(np.int32) * int(ds.RescaleSlope) + int(ds.RescaleIntercept)
    assert image.shape == (ds.Columns, ds.Rows, 1)
    np.testing.assert_array_equal(np.asarray(image.dataobj)[..., 0], expected.T)
    lps = np.array([-1.0, -1.0, 1.0])
    np.testing.assert_allclose(image.affine[:3, 3] * lps, series.positions[0], atol=1e-4)
    np.testing.assert_allclose(image.affine[:3, 0] * lps, np.array(series.iop[:3]) * series.pixel_spacing[1], atol=1e-6)
    np.testing.assert_allclose(image.affine[:3, 1] * lps, np.array(series.iop[3:]) * series.pixel_spacing[0], atol=1e-6)


def test_files_without_series_uid_are_classified_not_called_corrupt(tmp_path):
    # pydicom's test fragments: parsable DICOM without SeriesInstanceUID. They are not truncated,
    # so they must not be reported as unreadable (failed); they are classified like any file.
    import pydicom
    from pydicom.dataset import Dataset

    iop, positions = axial(1)
    lone = write_series(tmp_path / "lone", positions, iop).paths[0]
    ds = pydicom.dcmread(lone)
    del ds.SeriesInstanceUID
    ds.save_as(lone, enforce_file_format=True)
    fragment = Dataset()
    fragment.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    fragment.PatientName = "Fragment"
    fragment.save_as(tmp_path / "fragment.dcm", implicit_vr=True, little_endian=True)
    reader, sources = discover(tmp_path)
    assert not [s for s in sources if s.info.get("unreadable")]
    reasons = {s.paths[0]: s.info.get("excluded") for s in sources}
    assert reasons[str(lone)] == "single 2D slice"
    assert "no pixel data" in reasons[str(tmp_path / "fragment.dcm")]


def test_three_plane_scout_is_a_localizer_but_one_lone_slice_stays_2d(tmp_path):
    # pydicom's dicomdirtests MR1/MR2 "FAST LOCALIZER" / "PILOT": one slice per orientation, no LOCALIZER type
    planes = [(1, 0, 0, 0, 1, 0), (1, 0, 0, 0, 0, -1), (0, 1, 0, 0, 0, -1)]
    for index, iop in enumerate(planes):
        write_series(tmp_path / "scout", oriented(iop, [0.0]), iop, series_uid="2.25.31", series_number=1,
                     prefix=f"p{index}_", seed=index, description="3-plane")
    write_series(tmp_path / "lone", oriented(planes[0], [5.0]), planes[0], series_number=2, seed=9)
    _, sources = discover(tmp_path)
    reasons = {(s.info["series_number"], tuple(s.paths)): s.info.get("excluded") for s in sources}
    scout = [r for (number, _), r in reasons.items() if number == 1]
    assert len(scout) == 3 and all(r.startswith("localizer") for r in scout)
    assert [r for (number, _), r in reasons.items() if number == 2] == ["single 2D slice"]


@pytest.mark.parametrize("damage", [
    pytest.param(b"", id="zero-bytes"),
    pytest.param(b"\0" * 60, id="cut-inside-the-preamble"),
])
def test_unreadable_file_beside_a_series_is_named_and_its_gap_not_filled(tmp_path, damage):
    """Fault 12: an interrupted download left a 0-byte (or preamble-only) slice; it was skipped as
    not DICOM, the gap was interpolated and the run exited 0."""
    from medconv.errors import GeometryError

    iop = (1, 0, 0, 0, 1, 0)
    series = write_series(tmp_path / "s", oriented(iop, [0, 2, 4, 6, 8, 10, 12, 14]), iop)
    broken = series.paths[4]
    broken.write_bytes(damage)
    reader, sources = discover(tmp_path)
    (row,) = [s for s in sources if s.info.get("unreadable")]
    assert row.path == str(broken) and "interrupted download" in row.info["unreadable"]
    with pytest.raises(UnreadableFileError):
        reader.read(row)
    (unit,) = [s for s in sources if not s.info.get("unreadable")]
    with pytest.raises(GeometryError, match="missing slice") as failure:
        reader.read(unit)
    assert str(broken) in str(failure.value)


def test_empty_file_beside_a_complete_series_is_named_and_the_series_converts(tmp_path):
    iop = (1, 0, 0, 0, 1, 0)
    write_series(tmp_path / "s", oriented(iop, [0, 2, 4, 6]), iop)
    (tmp_path / "s" / "0099.dcm").write_bytes(b"")
    (tmp_path / "s" / "notes.txt").write_bytes(b"")  # not named like DICOM: skipped as before
    reader, sources = discover(tmp_path)
    assert [os.path.basename(s.path) for s in sources if s.info.get("unreadable")] == ["0099.dcm"]
    (unit,) = [s for s in sources if not s.info.get("unreadable")]
    assert reader.read(unit).shape == (10, 12, 4)
    assert str(tmp_path / "s" / "notes.txt") in {path for path, _ in reader.skipped}


@pytest.mark.parametrize("uid, expected, wrong", [
    pytest.param("1.2.840.10008.5.1.4.1.1.77.1.6", "whole-slide microscopy", "secondary capture", id="wsi"),
    pytest.param("1.2.840.10008.5.1.4.1.1.66.7", "label map segmentation", "raw data", id="label-map-seg"),
])
def test_sop_classes_are_matched_by_whole_uid(tmp_path, uid, expected, wrong):
    """Fault 10: "...1.1.7" (secondary capture) matched "...1.1.77.1.6" by prefix, "...1.1.66" the label map SEG."""
    iop = (1, 0, 0, 0, 1, 0)
    write_series(tmp_path / "s", oriented(iop, [0, 2, 4]), iop, extra={"SOPClassUID": uid})
    _, sources = discover(tmp_path)
    (source,) = sources
    assert expected in source.info["excluded"] and wrong not in source.info["excluded"]


def test_sop_class_table_agrees_with_pydicoms_uid_dictionary():
    from pydicom.uid import UID_dictionary

    from medconv.readers.dicom.sop_classes import NEWER_THAN_PYDICOM, SOP_CLASSES, SopKind

    for uid, entry in SOP_CLASSES.items():
        if uid in NEWER_THAN_PYDICOM:
            continue
        assert uid in UID_dictionary, uid
        name = UID_dictionary[uid][0]
        if entry.kind is SopKind.IMAGE and "RT" not in name:
            assert "Storage" in name and "SR" not in name and "Presentation State" not in name, (uid, name)
        if "Secondary Capture" in name:
            assert entry.kind is SopKind.SECONDARY_CAPTURE, uid


def test_part10_files_with_another_formats_suffix_are_found_by_content(tmp_path):
    """Fault 7: Agfa writes Part-10 files as ``*.img``; they were never opened because of the suffix."""
    iop = (1, 0, 0, 0, 1, 0)
    series = write_series(tmp_path / "s", oriented(iop, [0, 2, 4]), iop)
    for path in series.paths:
        path.rename(path.with_suffix(".img"))
    (tmp_path / "s" / "other.img").write_bytes(b"\x08\x00" + bytes(300))  # Analyze-like data: not DICOM
    reader, sources = discover(tmp_path)
    (source,) = sources
    assert source.info["n_files"] == 3 and reader.read(source).shape == (10, 12, 3)
    assert [os.path.basename(p) for p, _ in reader.skipped] == ["other.img"]


def _blank_series_uid(paths, how: str) -> None:
    """What anonymisers do to SeriesInstanceUID: write it empty, or remove it."""
    import pydicom

    for path in paths:
        ds = pydicom.dcmread(path)
        if how == "empty":
            ds.SeriesInstanceUID = ""
        else:
            del ds.SeriesInstanceUID
        ds.save_as(path, enforce_file_format=True)


def _assert_phantom(volume, offset: float = 0.0) -> None:
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in volume.shape], indexing="ij"), axis=-1).astype(float)
    world = grid @ volume.affine_lps[:3, :3].T + volume.affine_lps[:3, 3]
    assert np.abs(np.asarray(volume.array, dtype=float) - (phantom(world) + offset)).max() <= 0.5 + 1e-6


@pytest.mark.parametrize("how", [pytest.param("empty", id="uid-written-empty"),
                                 pytest.param("removed", id="uid-removed")])
def test_blank_series_uid_groups_by_folder_frame_of_reference_orientation_and_matrix(tmp_path, how):
    """Fault 6: with SeriesInstanceUID blanked every slice was a 2D unit of its own and nothing converted."""
    axial_iop, sagittal_iop = (1, 0, 0, 0, 1, 0), (0, 1, 0, 0, 0, -1)
    written = {
        # one folder, two series told apart by their frame of reference (shuffled names, interleaved)
        "a-ct1": write_series(tmp_path / "a", oriented(axial_iop, [0, 2, 4, 6]), axial_iop, names="shuffled",
                              seed=1, study_uid="2.25.50"),
        "a-ct2": write_series(tmp_path / "a", oriented(axial_iop, [1, 3, 5]), axial_iop, names="shuffled",
                              seed=2, study_uid="2.25.51", function=lambda p: phantom(p) + 7),
        # the same frame of reference in another folder is another unit
        "b-ct1": write_series(tmp_path / "b", oriented(axial_iop, [10, 12, 14]), axial_iop, seed=3,
                              study_uid="2.25.50", function=lambda p: phantom(p) + 11),
        # another orientation and another matrix in folder a, same frame of reference as a-ct1
        "a-sag": write_series(tmp_path / "a", oriented(sagittal_iop, [0, 3, 6]), sagittal_iop, names="shuffled",
                              seed=4, study_uid="2.25.50", rows=8, columns=6),
    }
    for series in written.values():
        _blank_series_uid(series.paths, how)
    reader, sources = discover(tmp_path)
    offsets = {"a-ct1": 0.0, "a-ct2": 7.0, "b-ct1": 11.0, "a-sag": 0.0}
    by_files = {frozenset(s.paths): s for s in sources}
    assert len(sources) == 4
    for name, series in written.items():
        source = by_files[frozenset(str(p) for p in series.paths)]
        assert source.info.get("excluded") is None and "no-series-uid" in source.info["flags"]
        volume = reader.read(source)
        assert volume.shape[2] == len(series.paths)
        (warning,) = [w for w in volume.warnings if "SeriesInstanceUID is blank" in w]
        assert f"these {len(series.paths)} file(s)" in warning and str(series.folder) in warning
        _assert_phantom(volume, offsets[name])


# -- a broken slice fails its series (W3) ------------------------------------------------------------------
def _cut_before(path, keyword: str, margin: int = 0) -> None:
    """Truncate a file just before the element ``keyword`` (as a broken download would)."""
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword)
    marker = (tag >> 16).to_bytes(2, "little") + (tag & 0xFFFF).to_bytes(2, "little")
    data = open(path, "rb").read()
    offset = data.index(marker, 132)
    open(path, "wb").write(data[:offset - margin])


@pytest.mark.parametrize("cut", [
    pytest.param("Rows", id="cut-before-rows"),
    pytest.param("PixelData", id="cut-before-pixel-data"),
    pytest.param("SeriesInstanceUID", id="cut-before-series-uid"),
])
def test_truncated_slice_fails_its_series_naming_the_file(tmp_path, cut):
    from medconv.errors import MedconvError
    from medconv.readers.dicom.grouping import group_headers
    from medconv.readers.dicom.headers import scan_files

    iop = (1, 0, 0, 0, 1, 0)
    series = write_series(tmp_path, oriented(iop, [0, 2, 4, 6, 8]), iop)
    broken = str(series.paths[2])
    _cut_before(broken, cut)
    reader = DicomReader(jobs=1)
    sources = list(reader.discover(str(tmp_path)))
    # one unit, holding every file: the hole is not hidden by leaving the file out (and then filling the gap)
    assert [s for s in sources if not s.info.get("excluded")] == sources
    (source,) = sources
    assert broken in source.paths and len(source.paths) == 5
    if cut != "PixelData":  # a file cut just before its pixels has a complete header: the pixel stage finds out
        assert "corrupt-slice" in source.info["flags"]
        (group,) = group_headers(scan_files([str(p) for p in series.paths], jobs=1).headers)
        assert group.unreadable.startswith("the series has a broken slice: " + broken)
        assert "truncated or corrupt" in group.unreadable and "CT Image Storage" in group.unreadable
    with pytest.raises(MedconvError) as info:
        reader.read(source)
    assert broken in str(info.value)
    if cut != "PixelData":
        from medconv.errors import UnreadableFileError

        assert isinstance(info.value, UnreadableFileError) and "truncated or corrupt" in str(info.value)


def test_series_of_header_only_image_files_is_one_failing_unit(tmp_path):
    from medconv.errors import MedconvError
    from medconv.readers.dicom.grouping import group_headers
    from medconv.readers.dicom.headers import scan_files

    iop = (1, 0, 0, 0, 1, 0)
    series = write_series(tmp_path, oriented(iop, [0, 2, 4]), iop)
    for path in series.paths:
        _cut_before(path, "Rows")
    (group,) = group_headers(scan_files([str(p) for p in series.paths], jobs=1).headers)
    assert group.excluded is None and len(group.headers) == 3
    assert group.unreadable.startswith("none of the 3 files of the series holds an image, e.g. ")
    reader = DicomReader(jobs=1)
    (source,) = list(reader.discover(str(tmp_path)))
    with pytest.raises(MedconvError):
        reader.read(source)


def test_broken_slice_of_another_series_number_does_not_join(tmp_path):
    from medconv.readers.dicom.grouping import group_headers
    from medconv.readers.dicom.headers import scan_files

    iop = (1, 0, 0, 0, 1, 0)
    good = write_series(tmp_path / "a", oriented(iop, [0, 2, 4]), iop, series_uid="2.25.77", series_number=2)
    other = write_series(tmp_path / "a", oriented(iop, [6]), iop, series_uid="2.25.77", series_number=3, prefix="x",
                         seed=5)
    _cut_before(other.paths[0], "Rows")
    groups = group_headers(scan_files([str(p) for p in good.paths + other.paths], jobs=1).headers)
    by_number = {g.first.series_number: g for g in groups}
    assert by_number[2].unreadable is None and len(by_number[2].headers) == 3
    assert by_number[3].unreadable == (f"{other.paths[0]}: CT Image Storage file without Rows, Columns, "
                                           "BitsAllocated: truncated or corrupt")


@pytest.mark.parametrize("case, labels", [
    pytest.param("orientation", {"axial", "sagittal"}, id="orientation-split"),
    pytest.param("matrix", {"matrix-10x12", "matrix-8x6"}, id="matrix-split"),
    pytest.param("copies", {"copy-1", "copy-2"}, id="copies-of-the-same-instances"),
])
def test_units_that_names_could_not_tell_apart_get_a_readable_label(tmp_path, case, labels):
    import shutil

    from medconv.layout import output_stem

    axial_iop, sagittal_iop = (1, 0, 0, 0, 1, 0), (0, 1, 0, 0, 0, -1)
    first = write_series(tmp_path / "a", oriented(axial_iop, [0, 2, 4]), axial_iop, series_uid="2.25.80", seed=1)
    if case == "orientation":
        write_series(tmp_path / "b", oriented(sagittal_iop, [0, 2, 4]), sagittal_iop, series_uid="2.25.80", seed=2)
    elif case == "matrix":
        write_series(tmp_path / "b", oriented(axial_iop, [10, 12, 14]), axial_iop, series_uid="2.25.80", seed=2,
                     rows=6, columns=8)
    else:
        shutil.copytree(first.folder, tmp_path / "b")
    reader, sources = discover(tmp_path)
    sources = [s for s in sources if not s.info.get("excluded")]
    assert len(sources) == 2
    assert {s.info["frame_group"] for s in sources} == labels
    stems = {output_stem(s) for s in sources}
    assert stems == {f"SYNTH-001/20000101_2_CT_synthetic_{label}" for label in labels}
    for source in sources:  # each still reads to its own stack
        assert reader.read(source).shape[2] == 3


def test_truncated_slice_of_a_multi_echo_series_joins_its_own_echo(tmp_path):
    from medconv.readers.dicom.grouping import group_headers
    from medconv.readers.dicom.headers import scan_files

    iop = (1, 0, 0, 0, 1, 0)
    paths = []
    for echo in (1, 2):
        series = write_series(tmp_path, oriented(iop, [0, 2, 4, 6]), iop, series_uid="2.25.81", prefix=f"e{echo}_",
                              seed=echo, extra={"EchoNumbers": echo})
        paths += [str(p) for p in series.paths]
    broken = str(tmp_path / "e2_0002.dcm")
    _cut_before(broken, "Rows")  # EchoNumbers (0018,0086) comes before Rows (0028,0010): the echo is known
    groups = {g.frame_group: g for g in group_headers(scan_files(paths, jobs=1).headers)}
    assert groups["echo-1"].unreadable is None and len(groups["echo-1"].headers) == 4
    assert groups["echo-2"].unreadable.startswith("the series has a broken slice: " + broken)
