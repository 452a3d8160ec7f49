"""Whole TCIA-like trees with annotation objects beside their series, written without medconv.

* :func:`write_lidc_xml` writes a LIDC-IDRI reading XML tag by tag, as TCIA ships it
  (``LidcReadMessage`` in the ``http://www.nih.gov`` namespace, ``ResponseHeader`` with the
  series and study UIDs, one ``readingSession`` per reader, ``unblindedReadNodule`` with the
  nine characteristics and one ``roi`` per slice, ``edgeMap`` points, ``nonNodule`` loci).
  A nodule here is a rectangle of pixels per slice: its outline is the ring of pixels just
  outside it (the LIDC convention), so the right voxel set is known exactly.
* :func:`write_binary_seg` writes a BINARY DICOM SEG with highdicom from a known array.
* :func:`annotated_tree` lays out a small collection: two CT series, an RTSTRUCT (a sphere
  and a box), a SEG and a LIDC XML, plus the bad objects the issue lists (missing series,
  truncated, NaN and absurd contours, XML that is not a LIDC reading, a truncated LIDC XML).
"""

from __future__ import annotations

import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pydicom

from annotation_synth import Contour, Roi, circle, sphere_contours, write_rtstruct
from dicom_synth import SyntheticSeries, axial, truncate, write_series

CHARACTERISTICS = ("subtlety", "internalStructure", "calcification", "sphericity", "margin", "lobulation",
                   "spiculation", "texture", "malignancy")


@dataclass
class BoxNodule:
    """One reader's nodule: the pixel rectangle ``columns x rows`` (inclusive) on each listed slice."""

    session: int
    nodule_id: str
    slices: Sequence[int]
    columns: tuple[int, int]
    rows: tuple[int, int]
    ratings: tuple[int, ...] = (3, 1, 6, 4, 4, 2, 1, 5, 3)


def _ring(columns: tuple[int, int], rows: tuple[int, int]) -> list[tuple[int, int]]:
    """The pixels just outside the rectangle, walked once around it (the LIDC outline of that nodule)."""
    x0, x1, y0, y1 = columns[0] - 1, columns[1] + 1, rows[0] - 1, rows[1] + 1
    ring = [(x, y0) for x in range(x0, x1 + 1)] + [(x1, y) for y in range(y0 + 1, y1 + 1)]
    ring += [(x, y1) for x in range(x1 - 1, x0 - 1, -1)] + [(x0, y) for y in range(y1 - 1, y0, -1)]
    return ring


def box_mask(series: SyntheticSeries, nodules: Sequence[BoxNodule]) -> np.ndarray:
    """The voxels ``nodules`` cover on ``series``' acquired grid, ``(i, j, k)`` = (column, row, slice)."""
    mask = np.zeros((series.columns, series.rows, len(series.paths)), bool)
    for nodule in nodules:
        for k in nodule.slices:
            mask[nodule.columns[0]:nodule.columns[1] + 1, nodule.rows[0]:nodule.rows[1] + 1, k] = True
    return mask


def write_lidc_xml(path: Path, series: SyntheticSeries, nodules: Sequence[BoxNodule], sessions: int = 4,
                   non_nodules: Sequence[tuple[int, int, int, int]] = (), study_uid: str = "2.25.1234567",
                   series_uid: str | None = None) -> Path:
    """A LidcReadMessage for ``series``; ``non_nodules``: ``(session, slice, column, row)`` loci."""
    sops = [str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in series.paths]
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<LidcReadMessage uid="2.25.99" xmlns="http://www.nih.gov" '
             'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">',
             "<ResponseHeader>", "<Version>1.8.1</Version>", "<TaskDescription>Second unblinded read</TaskDescription>",
             f"<SeriesInstanceUid>{series_uid or series.series_uid}</SeriesInstanceUid>",
             f"<StudyInstanceUID>{study_uid}</StudyInstanceUID></ResponseHeader>"]
    for session in range(1, sessions + 1):
        lines += ["<readingSession>", "    <annotationVersion>3.12</annotationVersion>",
                  f"    <servicingRadiologistID>{1000 + session}</servicingRadiologistID>"]
        for nodule in (n for n in nodules if n.session == session):
            lines += ["    <unblindedReadNodule>", f"      <noduleID>{nodule.nodule_id}</noduleID>",
                      "      <characteristics>"]
            lines += [f"        <{name}>{value}</{name}>" for name, value in zip(CHARACTERISTICS, nodule.ratings)]
            lines.append("      </characteristics>")
            for k in nodule.slices:
                lines += ["      <roi>", f"        <imageZposition>{series.positions[k][2]:.6f} </imageZposition>",
                          f"        <imageSOP_UID>{sops[k]}</imageSOP_UID>", "        <inclusion>TRUE</inclusion>"]
                for x, y in _ring(nodule.columns, nodule.rows):
                    lines += ["        <edgeMap>", f"          <xCoord>{x}</xCoord>", f"          <yCoord>{y}</yCoord>",
                              "        </edgeMap>"]
                lines.append("      </roi>")
            lines.append("    </unblindedReadNodule>")
        for number, (owner, k, x, y) in enumerate(non_nodules, start=1):
            if owner == session:
                lines += ["    <nonNodule>", f"      <nonNoduleID>_Non-nodule {number:03d}</nonNoduleID>",
                          f"      <imageZposition>{series.positions[k][2]:.6f} </imageZposition>",
                          f"      <imageSOP_UID>{sops[k]}</imageSOP_UID>",
                          f"      <locus>\n        <xCoord>{x}</xCoord>\n        <yCoord>{y}</yCoord>\n      </locus>",
                          "    </nonNodule>"]
        lines.append("</readingSession>")
    lines.append("</LidcReadMessage>")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def write_binary_seg(path: Path, series: SyntheticSeries, mask_ijk: np.ndarray, label: str = "Tumour",
                     description: str = "AI segmentation") -> Path:
    """A BINARY DICOM SEG (highdicom) of ``mask_ijk`` (``(i, j, k)`` on ``series``' acquired grid);
    a float ``mask_ijk`` (fractions in [0, 1]) makes a FRACTIONAL SEG (MaximumFractionalValue 255)."""
    import highdicom
    from highdicom.sr.coding import CodedConcept

    images = [pydicom.dcmread(p) for p in series.paths]
    for image in images:  # Type 2 patient / study attributes highdicom copies
        for keyword in ("PatientBirthDate", "PatientSex", "StudyTime", "ReferringPhysicianName", "StudyID",
                        "AccessionNumber"):
            setattr(image, keyword, "")
    segment = highdicom.seg.SegmentDescription(
        segment_number=1, segment_label=label,
        segmented_property_category=CodedConcept("49755003", "SCT", "Morphologically Altered Structure"),
        segmented_property_type=CodedConcept("4147007", "SCT", "Mass"),
        algorithm_type=highdicom.seg.SegmentAlgorithmTypeValues.MANUAL)
    fractional = mask_ijk.dtype.kind == "f"
    pixels = np.ascontiguousarray(mask_ijk.transpose(2, 1, 0))
    extra = {"max_fractional_value": 255} if fractional else {}
    seg = highdicom.seg.Segmentation(
        source_images=images, pixel_array=pixels.astype(np.float32 if fractional else np.uint8),
        segmentation_type="FRACTIONAL" if fractional else "BINARY", segment_descriptions=[segment],
        series_instance_uid=highdicom.UID(), **extra,
        series_number=7, sop_instance_uid=highdicom.UID(), instance_number=1, manufacturer="medconv-tests",
        manufacturer_model_name="synthetic", software_versions="0", device_serial_number="0",
        series_description=description)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(path)
    return path


#: Where the sphere and the box of the RTSTRUCT lie (LPS mm) on the chest series of :func:`annotated_tree`.
SPHERE_CENTRE, SPHERE_RADIUS = (-25.5, -18.0, 21.0), 7.0
#: The box: (x range, y range) in mm, on every slice with 14 <= z <= 26 mm; its edges lie between voxel centres.
BOX = ((-39.7, -34.5), (-28.65, -21.45))
BOX_Z = (14.0, 26.0)


@dataclass
class AnnotatedTree:
    """What :func:`annotated_tree` wrote."""

    root: Path
    chest: SyntheticSeries
    lung: SyntheticSeries
    rtstruct: Path
    seg: Path
    seg_mask: np.ndarray
    lidc: Path
    lidc_nodules: list[BoxNodule]
    bad: dict[str, Path] = field(default_factory=dict)
    set_aside: dict[str, Path] = field(default_factory=dict)


def _box_contours(series: SyntheticSeries) -> list[Contour]:
    contours = []
    for k, position in enumerate(series.positions):
        if BOX_Z[0] <= position[2] <= BOX_Z[1]:
            (x0, x1), (y0, y1) = BOX
            square = np.array([(x0, y0, position[2]), (x1, y0, position[2]), (x1, y1, position[2]),
                               (x0, y1, position[2])])
            contours.append(Contour(square))
    return contours


def annotated_tree(root: Path, bad: bool = True) -> AnnotatedTree:
    """P1: a chest CT with an RTSTRUCT (Ball, Box) and a SEG; P2: a lung CT with a LIDC XML; the bad objects."""
    iop, positions = axial(12, 2.0, origin=(-40.0, -30.0, 10.0))
    chest = write_series(root / "P1" / "study" / "2-chest", positions, iop, rows=40, columns=36,
                         pixel_spacing=(0.9, 0.8), series_number=2, description="chest", patient_id="P1",
                         study_uid="2.25.1111", seed=11)
    rois = [Roi(1, "Ball", sphere_contours(chest, SPHERE_CENTRE, SPHERE_RADIUS)),
            Roi(2, "Box", _box_contours(chest), color=(0, 255, 0))]
    rtstruct = write_rtstruct(root / "P1" / "study" / "9-rtstruct" / "1-1.dcm", chest, rois, study_uid="2.25.1111",
                              frame_of_reference_uid="2.25.1111.1")
    seg_mask = np.zeros((36, 40, 12), bool)
    seg_mask[5:15, 20:31, 3:9] = True
    seg = write_binary_seg(root / "P1" / "study" / "7-seg" / "1-1.dcm", chest, seg_mask)
    iop, positions = axial(10, 2.5, origin=(-60.0, -50.0, -100.0))
    lung = write_series(root / "P2" / "study" / "3-lung", positions, iop, rows=48, columns=48,
                        pixel_spacing=(0.7, 0.7), series_number=3, description="lung", patient_id="P2",
                        study_uid="2.25.2222", seed=12)
    nodules = [BoxNodule(session, name, slices, columns, rows)  # readers 1-3 mark one nodule, reader 1 a second
               for session, name, slices, columns, rows in ((1, "Nodule 001", (3, 4, 5), (10, 15), (20, 26)),
                                                            (2, "Nodule 001", (3, 4, 5, 6), (11, 15), (20, 25)),
                                                            (3, "Nodule 001", (4, 5), (10, 16), (21, 26)),
                                                            (1, "Nodule 002", (7, 8), (30, 34), (8, 12)))]
    lidc = write_lidc_xml(root / "P2" / "study" / "3-lung" / "071.xml", lung, nodules, sessions=4,
                          non_nodules=[(4, 2, 40, 40)], study_uid="2.25.2222")
    tree = AnnotatedTree(root, chest, lung, rtstruct, seg, seg_mask, lidc, nodules)
    if bad:
        ball = Roi(1, "Ball", sphere_contours(chest, SPHERE_CENTRE, SPHERE_RADIUS))
        elsewhere = Roi(1, "Ball", [Contour(c.points) for c in ball.contours])  # naming no instance of ours
        tree.bad["missing-series"] = write_rtstruct(root / "P1" / "study" / "90-rt-missing" / "1-1.dcm", None,
                                                    [elsewhere], seed=4, referenced_series_uid="2.25.404",
                                                    study_uid="2.25.1111")
        cut = write_rtstruct(root / "P1" / "study" / "91-rt-truncated" / "1-1.dcm", chest, [ball], seed=5,
                             study_uid="2.25.1111")
        truncate(cut, keep=cut.stat().st_size // 2)
        tree.bad["truncated"] = cut
        nan = Contour(circle((-25.0, -18.0, 20.0), 3.0, (1, 0, 0), (0, 1, 0)))
        nan.points[3, 0] = np.nan
        with warnings.catch_warnings():  # pydicom warns that 'NaN' is no valid DS: that is the point
            warnings.simplefilter("ignore", UserWarning)
            tree.bad["nan"] = write_rtstruct(root / "P1" / "study" / "92-rt-nan" / "1-1.dcm", chest,
                                             [ball, Roi(2, "Broken", [nan])], seed=6, study_uid="2.25.1111")
        absurd = Contour(circle((-25.0, -18.0, 20.0), 3.0, (1, 0, 0), (0, 1, 0)))
        absurd.points[:, 0] += 5.0e6
        tree.bad["absurd"] = write_rtstruct(root / "P1" / "study" / "93-rt-absurd" / "1-1.dcm", chest,
                                            [Roi(1, "Far", [absurd])], seed=7, study_uid="2.25.1111")
        other = root / "P2" / "study" / "3-lung" / "notes.xml"
        other.write_text('<?xml version="1.0"?>\n<StudyNotes xmlns="http://www.nih.gov"><note/></StudyNotes>\n')
        tree.bad["not-lidc"] = other
        idri = root / "P2" / "study" / "3-lung" / "idri.xml"  # a chest-radiograph reading: recognised, excluded
        idri.write_text('<?xml version="1.0"?>\n<IdriReadMessage xmlns="http://www.nih.gov"><ResponseHeader/>'
                        '</IdriReadMessage>\n')
        tree.set_aside["idri"] = idri
        cut_xml = root / "P2" / "study" / "3-lung" / "072.xml"
        cut_xml.write_bytes(lidc.read_bytes()[: lidc.stat().st_size // 2])
        tree.bad["truncated-xml"] = cut_xml
    return tree


def tree_state(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its size and modification time (the input must never change)."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))
            if p.is_file()}


def random_uid(seed: int) -> str:
    return "2.25." + str(random.Random(seed).getrandbits(100))
