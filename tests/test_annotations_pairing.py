"""Header facts and pairing rules: which image unit an annotation belongs to (or why none)."""

from __future__ import annotations

import dataclasses

import pytest

from annotation_refs import image_files, reference_for
from annotation_synth import Contour, Roi, circle, write_rtstruct
from conftest import corpus_path
from dicom_synth import axial, write_series
from medconv.errors import AnnotationReferenceError, UnsupportedFormatError
from medconv.readers.annotations import (AnnotationKind, PairingRule, PairingStatus, annotation_kind, pair,
                                         read_header)


def test_rt_utils_corpus_pairs_by_series_or_instances():
    folder = corpus_path("annotations", "rt-utils", "mock_data")
    ct = reference_for(image_files(folder), unit_id="ct")
    other = dataclasses.replace(ct, unit_id="other", series_uid="2.25.99", instances=())
    for name, rule in (("rt.dcm", PairingRule.SERIES_UID), ("invalid_reference_rt.dcm", PairingRule.SERIES_UID),
                       ("non_existent_reference_rt.dcm", PairingRule.INSTANCE_UIDS)):
        header = read_header(folder / name)
        assert header.kind is AnnotationKind.RTSTRUCT and header.roi_names
        outcome = pair(header, [other, ct])
        assert (outcome.status, outcome.rule, outcome.unit_id) == (PairingStatus.PAIRED, rule, "ct"), name
    # with the CT absent, nothing else is chosen
    lonely = pair(read_header(folder / "rt.dcm"), [other])
    assert lonely.status is PairingStatus.NO_SUCH_SERIES
    with pytest.raises(AnnotationReferenceError) as error:
        lonely.raise_unless_paired(str(folder / "rt.dcm"))
    assert "rt.dcm" in error.value.one_line() and "not among" in error.value.one_line()


def test_dcmqi_segs_pair_with_their_series():
    root = corpus_path("annotations", "dcmqi", "segmentations")
    units = {name: reference_for(image_files(root / name), unit_id=name)
             for name in ("ct-3slice", "23x38x3/image", "24x38x3/image")}
    for seg, expected in (("liver.dcm", "ct-3slice"), ("partial_overlaps.dcm", "ct-3slice"),
                          ("sparse-labelmap-ppv5.dcm", "24x38x3/image"), ("23x38x3/seg/label.seg", "23x38x3/image"),
                          ("24x38x3/seg/label.seg", "24x38x3/image")):
        header = read_header(root / seg)
        assert header.kind is AnnotationKind.SEG
        outcome = pair(header, list(units.values()))
        assert outcome.status is PairingStatus.PAIRED and outcome.unit_id == expected, seg


def test_lidc_xml_pairs_by_its_series_uid():
    root = corpus_path("lidc")
    units = [reference_for(image_files(folder), unit_id=folder.parts[-3])
             for folder in sorted({p.parent for p in root.rglob("*.dcm")})]
    for patient in ("LIDC-IDRI-0001", "LIDC-IDRI-0003"):
        xml = next((root / patient).rglob("*.xml"))
        assert annotation_kind(xml) is AnnotationKind.LIDC_XML
        header = read_header(xml)
        assert header.referenced_sop_uids and header.z_positions
        outcome = pair(header, units)
        assert outcome.status is PairingStatus.PAIRED and outcome.unit_id == patient
        assert outcome.rule is PairingRule.SERIES_UID


def _synthetic(tmp_path, name, z0, series_uid=None):
    iop, positions = axial(8, 2.0, origin=(-20.0, -20.0, z0))
    return write_series(tmp_path / name, positions, iop, rows=16, columns=16,
                        series_uid=series_uid or f"2.25.77{int(z0)}")


def test_ambiguous_split_units_and_geometric_fallback(tmp_path):
    low, high = _synthetic(tmp_path, "low", 0.0), _synthetic(tmp_path, "high", 100.0)
    ref_low, ref_high = reference_for(low.paths, "low"), reference_for(high.paths, "high")
    # an RTSTRUCT naming nothing but its frame of reference: its contour planes decide (z = 104 mm is in 'high')
    contour = Contour(circle((-15.0, -15.0, 104.0), 3.0, (1, 0, 0), (0, 1, 0)))
    bare = write_rtstruct(tmp_path / "bare.dcm", None, [Roi(1, "Ball", [contour])], with_references=False)
    header = read_header(bare)
    assert not header.referenced_series_uids and header.plane_points == ((-12.0, -15.0, 104.0),)
    outcome = pair(header, [ref_low, ref_high])
    assert (outcome.status, outcome.rule, outcome.unit_id) == (PairingStatus.PAIRED,
                                                               PairingRule.FRAME_OF_REFERENCE, "high")
    # two units of one series (a split) and an RTSTRUCT naming only the series: ambiguous, never a guess
    twin = dataclasses.replace(ref_low, unit_id="low-copy-2")
    named = write_rtstruct(tmp_path / "named.dcm", None, [Roi(1, "Ball", [contour])],
                           referenced_series_uid=low.series_uid)
    outcome = pair(read_header(named), [ref_low, twin, ref_high])
    assert outcome.status is PairingStatus.AMBIGUOUS and set(outcome.candidates) == {"low", "low-copy-2"}
    # naming a series nobody has: no geometric fallback onto a series that happens to fit
    absent = write_rtstruct(tmp_path / "absent.dcm", None, [Roi(1, "Ball", [contour])],
                            referenced_series_uid="2.25.404")
    outcome = pair(read_header(absent), [ref_low, ref_high])
    assert outcome.status is PairingStatus.NO_SUCH_SERIES and "2.25.404" in outcome.reason


def test_not_an_annotation(tmp_path):
    series = _synthetic(tmp_path, "ct", 0.0)
    assert annotation_kind(series.paths[0]) is None
    text = tmp_path / "notes.xml"
    text.write_text("<notes/>")
    assert annotation_kind(text) is None and annotation_kind(tmp_path / "missing") is None
    with pytest.raises(UnsupportedFormatError):
        read_header(series.paths[0])
