"""A small, realistic TCIA-style DICOM tree for demos, tests and benchmarks.

:func:`write_sample_dataset` writes a few patients laid out the way NBIA downloads
are (``PatientID/MM-DD-YYYY-NA-StudyDesc-NNNNN/N.000000-SeriesDesc-NNNNN/1-001.dcm``)
with CT headers (RescaleIntercept -1024, unsigned or signed 16-bit storage), a
smooth analytic chest phantom in Hounsfield units, and what real downloads mix in:

* every patient: one axial CT series and one coronal localizer (ImageType LOCALIZER);
* patient 1: an RTSTRUCT (one body contour per slice) - a non-image object;
* patient 2: a gantry-tilted series (15 deg, sheared positions) besides its main series;
* patient 3: file names and InstanceNumbers in reverse spatial order, signed storage.

Nothing here is real patient data; UIDs come from a seeded generator, so the same
arguments write byte-identical trees.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass
from typing import Sequence

import numpy as np

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
AXIAL_IOP = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
CORONAL_IOP = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
FIELD_OF_VIEW_MM = 360.0


@dataclass(frozen=True)
class SampleSeries:
    """One series written by :func:`write_sample_dataset`."""

    patient_id: str
    folder: str
    description: str
    kind: str  # "volume", "localizer", "rtstruct"
    n_files: int
    series_uid: str
    tilted: bool = False


def chest_phantom_hu(points_lps: np.ndarray) -> np.ndarray:
    """Smooth chest-like phantom in HU at LPS points ``(..., 3)`` (mm; centre at the origin).

    Air outside an elliptic body (water-like soft tissue), two lungs (-800 HU), a
    spine (+700 HU) and a smooth vessel tree stand-in; edges are tanh ramps so that
    any sampling or interpolation error shows as a smooth, predictable change.
    """
    x, y, z = points_lps[..., 0], points_lps[..., 1], points_lps[..., 2]

    def inside(cx, cy, rx, ry, width=3.0):
        radius = np.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2)
        return 0.5 * (1.0 - np.tanh((radius - 1.0) * np.minimum(rx, ry) / width))

    taper = 1.0 + 0.1 * np.cos(z / 60.0)
    body = inside(0, 0, 150 * taper, 105 * taper)
    lungs = inside(-60, -5, 48, 70) + inside(60, -5, 48, 70)
    spine = inside(0, 80, 16, 16)
    vessels = 40.0 * np.sin(x / 9.0) * np.sin(y / 11.0) * np.cos(z / 13.0)
    hu = -1000.0 + body * (1040.0 + 0.5 * vessels) - lungs * body * 840.0 + spine * 660.0
    return hu


def _uid(rng: random.Random) -> str:
    return "2.25." + str(rng.getrandbits(96))


def _dataset(rng: random.Random, sop_class: str):
    from pydicom.dataset import Dataset, FileMetaDataset

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.TransferSyntaxUID = EXPLICIT_VR_LITTLE_ENDIAN
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    return ds


def _common(ds, patient: dict, study: dict, series_uid: str, series_number: int, description: str, modality: str):
    ds.PatientID = patient["id"]
    ds.PatientName = patient["name"]
    ds.PatientSex = patient["sex"]
    ds.PatientBirthDate = ""
    ds.StudyInstanceUID = study["uid"]
    ds.StudyDate = study["date"]
    ds.StudyTime = "101500"
    ds.StudyDescription = study["description"]
    ds.AccessionNumber = ""
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.Modality = modality
    ds.Manufacturer = "medconv sample"
    ds.FrameOfReferenceUID = study["frame_uid"]


def _write_ct_series(folder: str, rng: random.Random, patient: dict, study: dict, *, series_number: int,
                     description: str, positions: np.ndarray, iop: Sequence[float], size: int, pixel_mm: float,
                     image_type: Sequence[str], signed: bool, reverse_names: bool = False,
                     gantry_tilt: float = 0.0, thickness: float = 2.5) -> str:
    """One single-frame CT series; returns its SeriesInstanceUID."""
    import pydicom

    os.makedirs(folder, exist_ok=True)
    series_uid = _uid(rng)
    row, col = np.asarray(iop[:3]), np.asarray(iop[3:])
    grid = np.arange(size, dtype=np.float32) * pixel_mm
    plane = (grid[np.newaxis, :, np.newaxis] * row + grid[:, np.newaxis, np.newaxis] * col).astype(np.float32)
    count = len(positions)
    for k, position in enumerate(positions):
        hu = chest_phantom_hu(plane + position.astype(np.float32))
        stored = np.rint(hu + 1024.0)
        if signed:
            stored = stored.astype(np.int16)
        else:
            stored = np.clip(stored, 0, 4095).astype(np.uint16)
        ds = _dataset(rng, CT_IMAGE_STORAGE)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = _uid(rng)
        _common(ds, patient, study, series_uid, series_number, description, "CT")
        ds.ImageType = list(image_type)
        number = count - k if reverse_names else k + 1
        ds.InstanceNumber = number
        ds.AcquisitionNumber = 1
        ds.ImagePositionPatient = [f"{v:.4f}" for v in position]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in iop]
        ds.PixelSpacing = [f"{pixel_mm:.6f}", f"{pixel_mm:.6f}"]
        ds.SliceThickness = f"{thickness:g}"
        ds.SliceLocation = f"{float(position @ np.cross(row, col)):.4f}"
        ds.GantryDetectorTilt = f"{gantry_tilt:g}"
        ds.KVP = "120"
        ds.ConvolutionKernel = "STANDARD"
        ds.PatientPosition = "FFS"
        ds.BodyPartExamined = "CHEST"
        ds.WindowCenter, ds.WindowWidth = "-600", "1600"
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12 if not signed else 16, 11 if not signed else 15
        ds.PixelRepresentation = 1 if signed else 0
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "-1024", "1", "HU"
        ds.PixelData = stored.tobytes()
        pydicom.dcmwrite(os.path.join(folder, f"1-{number:03d}.dcm"), ds, enforce_file_format=True)
    return series_uid


def _write_rtstruct(folder: str, rng: random.Random, patient: dict, study: dict, referenced_uid: str,
                    positions: np.ndarray) -> str:
    """An RT Structure Set with one ROI ("Body"): an ellipse contour on every slice."""
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as DicomSequence

    os.makedirs(folder, exist_ok=True)
    ds = _dataset(rng, RTSTRUCT_STORAGE)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = _uid(rng)
    series_uid = _uid(rng)
    _common(ds, patient, study, series_uid, 1000, "RTSTRUCT body contour", "RTSTRUCT")
    ds.StructureSetLabel = "Body"
    roi = Dataset()
    roi.ROINumber, roi.ROIName, roi.ReferencedFrameOfReferenceUID = 1, "Body", study["frame_uid"]
    ds.StructureSetROISequence = DicomSequence([roi])
    angles = np.linspace(0, 2 * math.pi, 24, endpoint=False)
    contours = []
    for position in positions:
        contour = Dataset()
        contour.ContourGeometricType = "CLOSED_PLANAR"
        points = [(140 * math.cos(a), 95 * math.sin(a), float(position[2])) for a in angles]
        contour.NumberOfContourPoints = len(points)
        contour.ContourData = [f"{v:.3f}" for point in points for v in point]
        contours.append(contour)
    roi_contour = Dataset()
    roi_contour.ReferencedROINumber = 1
    roi_contour.ROIDisplayColor = [255, 0, 0]
    roi_contour.ContourSequence = DicomSequence(contours)
    ds.ROIContourSequence = DicomSequence([roi_contour])
    series_ref = Dataset()
    series_ref.SeriesInstanceUID = referenced_uid
    study_ref = Dataset()
    study_ref.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management (as TPS write it)
    study_ref.ReferencedSOPInstanceUID = study["uid"]
    study_ref.RTReferencedSeriesSequence = DicomSequence([series_ref])
    frame_ref = Dataset()
    frame_ref.FrameOfReferenceUID = study["frame_uid"]
    frame_ref.RTReferencedStudySequence = DicomSequence([study_ref])
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([frame_ref])
    pydicom.dcmwrite(os.path.join(folder, "1-1.dcm"), ds, enforce_file_format=True)
    return series_uid


def write_sample_dataset(dest: str | os.PathLike, patients: int = 3, slices: int = 40, size: int = 128,
                         seed: int = 0, localizer: bool = True, rtstruct: bool = True,
                         tilted: bool = True) -> list[SampleSeries]:
    """Write a TCIA-style sample tree under ``dest``; returns the series written.

    Parameters
    ----------
    dest:
        Folder to create (existing files with other names are left alone).
    patients:
        Number of patients (1-99), each with one study.
    slices:
        Slices of each main CT series (2.5 mm apart).
    size:
        Rows and columns of each slice; the field of view stays 360 mm.
    seed:
        Seeds the UIDs, so equal arguments write equal trees.
    localizer, rtstruct, tilted:
        Include the coronal localizers, patient 1's RTSTRUCT, patient 2's tilted series.
    """
    if not 1 <= patients <= 99 or slices < 2 or size < 8:
        raise ValueError("patients must be 1-99, slices >= 2 and size >= 8")
    dest = os.fspath(dest)
    rng = random.Random(seed)
    pixel_mm = FIELD_OF_VIEW_MM / size
    corner = -FIELD_OF_VIEW_MM / 2 + pixel_mm / 2
    written: list[SampleSeries] = []
    for number in range(1, patients + 1):
        patient = {"id": f"SAMPLE-CT-{number:04d}", "name": f"Sample^Patient{number}", "sex": "O"}
        study = {"uid": _uid(rng), "frame_uid": _uid(rng), "date": f"2000010{min(number, 9)}",
                 "description": "CT CHEST"}
        study_folder = os.path.join(dest, patient["id"], f"01-0{min(number, 9)}-2000-NA-CT CHEST-{10000 + number * 7:05d}")
        z = -slices * 2.5 / 2 + 2.5 * np.arange(slices)
        positions = np.column_stack([np.full(slices, corner), np.full(slices, corner), z])
        folder = os.path.join(study_folder, f"3.000000-Chest CT-{20000 + number * 13:05d}")
        uid = _write_ct_series(folder, rng, patient, study, series_number=3, description="Chest CT",
                               positions=positions, iop=AXIAL_IOP, size=size, pixel_mm=pixel_mm,
                               image_type=("ORIGINAL", "PRIMARY", "AXIAL"), signed=number % 3 == 0,
                               reverse_names=number % 3 == 0)
        written.append(SampleSeries(patient["id"], folder, "Chest CT", "volume", slices, uid))
        if localizer:
            folder = os.path.join(study_folder, f"1.000000-Scout-{30000 + number * 17:05d}")
            scout_position = np.array([[corner, 0.0, -corner]])
            uid = _write_ct_series(folder, rng, patient, study, series_number=1, description="Scout",
                                   positions=scout_position, iop=CORONAL_IOP, size=size, pixel_mm=pixel_mm,
                                   image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"), signed=False)
            written.append(SampleSeries(patient["id"], folder, "Scout", "localizer", 1, uid))
        if rtstruct and number == 1:
            folder = os.path.join(study_folder, f"1000.000000-RTSTRUCT body contour-{40000 + number:05d}")
            uid = _write_rtstruct(folder, rng, patient, study, written[-2 if localizer else -1].series_uid, positions)
            written.append(SampleSeries(patient["id"], folder, "RTSTRUCT body contour", "rtstruct", 1, uid))
        if tilted and number == 2:
            count = max(2, slices // 2)
            tilt = math.radians(15.0)
            z = 5.0 * np.arange(count) - 5.0 * count / 2
            # a tilted gantry: image planes tilted about the x axis, table (positions) moving along z
            tilted_iop = (1.0, 0.0, 0.0, 0.0, math.cos(tilt), -math.sin(tilt))
            positions = np.column_stack([np.full(count, corner), np.full(count, corner * math.cos(tilt)),
                                         z - corner * math.sin(tilt)])
            folder = os.path.join(study_folder, f"4.000000-Chest CT tilt-{50000 + number * 19:05d}")
            uid = _write_ct_series(folder, rng, patient, study, series_number=4, description="Chest CT tilt",
                                   positions=positions, iop=tilted_iop, size=size, pixel_mm=pixel_mm,
                                   image_type=("ORIGINAL", "PRIMARY", "AXIAL"), signed=False, gantry_tilt=15.0,
                                   thickness=5.0)
            written.append(SampleSeries(patient["id"], folder, "Chest CT tilt", "volume", count, uid, tilted=True))
    return written
