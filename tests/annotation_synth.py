"""Synthetic annotation objects written tag by tag with pydicom (no medconv code).

:func:`write_rtstruct` reproduces the structure of vendor RTSTRUCTs (Eclipse,
RayStation, MIM): ReferencedFrameOfReferenceSequence > RTReferencedStudySequence >
RTReferencedSeriesSequence > ContourImageSequence, StructureSetROISequence,
ROIContourSequence with ContourImageSequence per contour, RTROIObservationsSequence.
Shapes are analytic (:func:`circle`), so the right voxel set is known.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from dicom_synth import CT_IMAGE_STORAGE, EXPLICIT_VR_LE, RTSTRUCT_STORAGE, SyntheticSeries

DETACHED_STUDY_MANAGEMENT = "1.2.840.10008.3.1.2.3.1"


@dataclass
class Contour:
    """One contour: LPS points ``(n, 3)``, geometric type, the slice it names (SOP UID, '' for none)."""

    points: np.ndarray
    geometric_type: str = "CLOSED_PLANAR"
    sop_uid: str = ""


@dataclass
class Roi:
    """One ROI to write."""

    number: int
    name: str
    contours: list[Contour] = field(default_factory=list)
    color: tuple[int, int, int] = (255, 0, 0)
    interpreted_type: str = "ORGAN"


def circle(centre: Sequence[float], radius: float, u: Sequence[float], v: Sequence[float],
           vertices: int = 180) -> np.ndarray:
    """``vertices`` LPS points on a circle of ``radius`` around ``centre`` in the plane spanned by ``u``, ``v``."""
    angles = np.linspace(0.0, 2.0 * np.pi, vertices, endpoint=False)
    u, v = np.asarray(u, float), np.asarray(v, float)
    return np.asarray(centre, float) + radius * (np.outer(np.cos(angles), u) + np.outer(np.sin(angles), v))


def sphere_contours(series: SyntheticSeries, centre: Sequence[float], radius: float,
                    hole_radius: float = 0.0, vertices: int = 180) -> list[Contour]:
    """Circles where each acquired slice plane cuts a sphere (plus a concentric hole circle)."""
    row, col = np.asarray(series.iop[:3], float), np.asarray(series.iop[3:], float)
    normal = np.cross(row, col)
    contours = []
    for k, position in enumerate(series.positions):
        distance = float(np.dot(np.asarray(centre) - position, normal))
        if abs(distance) >= radius:
            continue
        on_plane = np.asarray(centre) - distance * normal
        r = float(np.sqrt(radius**2 - distance**2))
        sop = _sop_uid(series.paths[k]) if series.paths else ""
        contours.append(Contour(circle(on_plane, r, row, col, vertices), sop_uid=sop))
        if hole_radius and abs(distance) < hole_radius:
            r_hole = float(np.sqrt(hole_radius**2 - distance**2))
            contours.append(Contour(circle(on_plane, r_hole, row, col, vertices)[::-1], sop_uid=sop))
    return contours


def _sop_uid(path: Path) -> str:
    import pydicom

    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def write_rtstruct(path: Path, series: SyntheticSeries | None, rois: Sequence[Roi], *, seed: int = 3,
                   frame_of_reference_uid: str = "2.25.1234567.1", study_uid: str = "2.25.1234567",
                   series_uid: str | None = None, referenced_series_uid: str | None = None,
                   with_references: bool = True) -> Path:
    """An RTSTRUCT with ``rois`` referencing ``series`` (its slices listed in ContourImageSequence)."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence as DicomSequence

    rng = random.Random(seed)
    uid = lambda: "2.25." + str(rng.getrandbits(100))  # noqa: E731
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RTSTRUCT_STORAGE
    meta.MediaStorageSOPInstanceUID = uid()
    meta.TransferSyntaxUID = EXPLICIT_VR_LE
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = RTSTRUCT_STORAGE
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "RTSTRUCT"
    ds.PatientID = "SYNTH-001"
    ds.PatientName = "Synthetic^Phantom"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid or uid()
    ds.SeriesNumber = 99
    ds.StructureSetLabel = "Phantom"
    ds.StructureSetName = "Phantom"
    ds.Manufacturer = "medconv-tests"
    if with_references:
        referenced = Dataset()
        referenced.FrameOfReferenceUID = frame_of_reference_uid
        study = Dataset()
        study.ReferencedSOPClassUID = DETACHED_STUDY_MANAGEMENT
        study.ReferencedSOPInstanceUID = study_uid
        rt_series = Dataset()
        rt_series.SeriesInstanceUID = referenced_series_uid or (series.series_uid if series else uid())
        images = []
        for image_path in (series.paths if series else []):
            item = Dataset()
            item.ReferencedSOPClassUID = CT_IMAGE_STORAGE
            item.ReferencedSOPInstanceUID = _sop_uid(image_path)
            images.append(item)
        rt_series.ContourImageSequence = DicomSequence(images)
        study.RTReferencedSeriesSequence = DicomSequence([rt_series])
        referenced.RTReferencedStudySequence = DicomSequence([study])
        ds.ReferencedFrameOfReferenceSequence = DicomSequence([referenced])
    structure_rois, roi_contours, observations = [], [], []
    for roi in rois:
        item = Dataset()
        item.ROINumber = roi.number
        item.ReferencedFrameOfReferenceUID = frame_of_reference_uid
        item.ROIName = roi.name
        item.ROIGenerationAlgorithm = "MANUAL"
        structure_rois.append(item)
        contour_item = Dataset()
        contour_item.ROIDisplayColor = list(roi.color)
        contour_item.ReferencedROINumber = roi.number
        sequence = []
        for contour in roi.contours:
            c = Dataset()
            if contour.sop_uid:
                image = Dataset()
                image.ReferencedSOPClassUID = CT_IMAGE_STORAGE
                image.ReferencedSOPInstanceUID = contour.sop_uid
                c.ContourImageSequence = DicomSequence([image])
            c.ContourGeometricType = contour.geometric_type
            points = np.asarray(contour.points, float).reshape(-1, 3)
            c.NumberOfContourPoints = len(points)
            c.ContourData = [f"{v:.4f}" if np.isfinite(v) else "NaN" for v in points.ravel()]
            sequence.append(c)
        contour_item.ContourSequence = DicomSequence(sequence)
        roi_contours.append(contour_item)
        observation = Dataset()
        observation.ObservationNumber = roi.number
        observation.ReferencedROINumber = roi.number
        observation.RTROIInterpretedType = roi.interpreted_type
        observation.ROIInterpreter = ""
        observations.append(observation)
    ds.StructureSetROISequence = DicomSequence(structure_rois)
    ds.ROIContourSequence = DicomSequence(roi_contours)
    ds.RTROIObservationsSequence = DicomSequence(observations)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient of two boolean arrays (1.0 when both are empty)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2.0 * np.logical_and(a, b).sum() / total)


def voxel_centres(volume_or_grid) -> np.ndarray:
    """LPS positions ``(ni, nj, nk, 3)`` of every voxel centre of a Volume's grid (via its affine)."""
    affine = volume_or_grid.affine_lps
    shape = volume_or_grid.spatial_shape if hasattr(volume_or_grid, "spatial_shape") else volume_or_grid.grid.shape
    ii, jj, kk = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    index = np.stack([ii, jj, kk], axis=-1).astype(float)
    return index @ affine[:3, :3].T + affine[:3, 3]
