"""Synthetic DICOM series with known geometry, for tests.

Every stored pixel value is :func:`phantom` of the voxel centre's LPS world position
(rounded to an integer), so a test can check any output voxel by computing the
function at that voxel's world position. ``phantom`` is linear, so linear
interpolation (tilt / uneven-spacing repair) reproduces it up to rounding.

Written with pydicom only (no medconv code): the test data stay an independent
reference. Helper modules of other tests may import :func:`write_series`.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"


def phantom(points: np.ndarray) -> np.ndarray:
    """The analytic image: a linear function of LPS position ``(..., 3)`` in mm."""
    points = np.asarray(points, dtype=np.float64)
    return 3.0 * points[..., 0] - 2.0 * points[..., 1] + 5.0 * points[..., 2] - 1000.0


@dataclass
class SyntheticSeries:
    """What was written: files (in slice order along the given positions) and the geometry."""

    folder: Path
    paths: list[Path]
    positions: np.ndarray
    iop: tuple[float, ...]
    pixel_spacing: tuple[float, float]
    rows: int
    columns: int
    series_uid: str
    intercept: float = -1024.0
    extra: dict = field(default_factory=dict)

    def world(self, k: int, j: np.ndarray, i: np.ndarray) -> np.ndarray:
        """LPS position of pixel (row j, column i) of acquired slice ``k``."""
        row, col = np.asarray(self.iop[:3]), np.asarray(self.iop[3:])
        return (self.positions[k] + np.multiply.outer(i * self.pixel_spacing[1], row)
                + np.multiply.outer(j * self.pixel_spacing[0], col))


def _uid(rng: random.Random) -> str:
    return "2.25." + str(rng.getrandbits(100))


def axial(n: int, step: float = 2.0, origin=(-40.0, -30.0, 10.0)) -> tuple[tuple, np.ndarray]:
    """IOP and positions of a plain axial stack."""
    iop = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    positions = np.array([np.add(origin, (0, 0, k * step)) for k in range(n)], dtype=float)
    return iop, positions


def oriented(iop: Sequence[float], distances: Sequence[float], origin=(-20.0, 15.0, 30.0),
             inplane_shift_per_mm=(0.0, 0.0)) -> np.ndarray:
    """Positions at ``distances`` along the normal of ``iop``; a shear adds ``shift * d`` in-plane (tilt)."""
    iop = np.asarray(iop, dtype=float)
    row, col = iop[:3], iop[3:]
    normal = np.cross(row, col)
    return np.array([np.asarray(origin) + d * normal + d * inplane_shift_per_mm[0] * row
                     + d * inplane_shift_per_mm[1] * col for d in distances])


def write_series(folder: os.PathLike, positions: np.ndarray, iop: Sequence[float], *, rows: int = 12,
                 columns: int = 10, pixel_spacing=(0.8, 0.6), series_uid: str | None = None,
                 series_number: int = 2, modality: str = "CT", description: str = "synthetic",
                 patient_id: str = "SYNTH-001", study_uid: str | None = None, names: str = "ordered",
                 instance_numbers: str = "spatial", image_type=("ORIGINAL", "PRIMARY", "AXIAL"),
                 gantry_tilt: float | None = None, function: Callable = phantom, seed: int = 0,
                 prefix: str = "", extra: dict | None = None, intercept: float = -1024.0,
                 per_file: Callable[[int], dict] | None = None,
                 edit: Callable | None = None) -> SyntheticSeries:
    """Write one single-frame CT-like series whose pixels are ``function(world)``.

    ``names``: ``"ordered"``, ``"shuffled"`` (random names) or ``"none"`` (no suffix).
    ``instance_numbers``: ``"spatial"``, ``"reversed"`` or ``"random"``.
    ``extra`` sets attributes of every file, ``per_file(k)`` those of the k-th (after ``extra``);
    ``edit(ds, k)`` may change the k-th dataset last (private tags).
    """
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset

    rng = random.Random(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or _uid(rng)
    study_uid = study_uid or "2.25.1234567"
    count = len(positions)
    numbers = list(range(1, count + 1))
    if instance_numbers == "reversed":
        numbers.reverse()
    elif instance_numbers == "random":
        rng.shuffle(numbers)
    series = SyntheticSeries(folder, [], np.asarray(positions, float), tuple(iop), tuple(pixel_spacing), rows,
                             columns, series_uid, intercept=intercept)
    jj, ii = np.meshgrid(np.arange(rows), np.arange(columns), indexing="ij")
    for k in range(count):
        values = np.rint(function(series.world(k, jj, ii)) - series.intercept).astype(np.int16)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
        meta.MediaStorageSOPInstanceUID = _uid(rng)
        meta.TransferSyntaxUID = EXPLICIT_VR_LE
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CT_IMAGE_STORAGE
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.PatientID = patient_id
        ds.PatientName = "Synthetic^Phantom"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = study_uid + ".1"
        ds.StudyDate = "20000101"
        ds.Modality = modality
        ds.Manufacturer = "medconv-tests"
        ds.SeriesDescription = description
        ds.SeriesNumber = series_number
        ds.InstanceNumber = numbers[k]
        ds.ImageType = list(image_type)
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in iop]
        ds.ImagePositionPatient = [f"{v:.6f}" for v in positions[k]]
        ds.PixelSpacing = [f"{v:g}" for v in pixel_spacing]
        ds.SliceThickness = "1.0"
        if gantry_tilt is not None:
            ds.GantryDetectorTilt = f"{gantry_tilt:g}"
        ds.Rows, ds.Columns = rows, columns
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = f"{series.intercept:g}"
        ds.RescaleSlope = "1"
        for keyword, value in {**(extra or {}), **(per_file(k) if per_file else {})}.items():
            setattr(ds, keyword, value)
        if edit is not None:
            edit(ds, k)
        ds.PixelData = values.tobytes()
        if names == "shuffled":
            name = f"{prefix}{rng.getrandbits(40):x}.dcm"
        elif names == "none":
            name = f"{prefix}IM{k:04d}"
        else:
            name = f"{prefix}{k + 1:04d}.dcm"
        path = folder / name
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
        series.paths.append(path)
    return series


def write_rtstruct(path: os.PathLike, referenced: SyntheticSeries) -> Path:
    """A minimal RTSTRUCT-like object (no pixel data) referencing a series."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset

    rng = random.Random(7)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RTSTRUCT_STORAGE
    meta.MediaStorageSOPInstanceUID = _uid(rng)
    meta.TransferSyntaxUID = EXPLICIT_VR_LE
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = RTSTRUCT_STORAGE
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "RTSTRUCT"
    ds.PatientID = "SYNTH-001"
    ds.StudyInstanceUID = "2.25.1234567"
    ds.SeriesInstanceUID = _uid(rng)
    ds.SeriesNumber = 99
    ds.StructureSetLabel = "contours"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path


def write_junk(folder: os.PathLike) -> list[Path]:
    """Files that are not DICOM: a text note, random bytes, a DICOMDIR-named file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text("not an image\n")
    (folder / "blob").write_bytes(bytes(range(256)) * 2)
    (folder / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 64)
    return [folder / "notes.txt", folder / "blob", folder / "DICOMDIR"]


def truncate(path: os.PathLike, keep: int = 300) -> None:
    """Cut a file after ``keep`` bytes (a broken download)."""
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[:keep])


def sample_acquired_slices(paths, world_lps):
    """The acquired slices sampled at LPS points: bilinear in-plane at each slice's own IPP, linear across."""
    import pydicom
    from scipy.ndimage import map_coordinates

    datasets = [pydicom.dcmread(p) for p in paths]
    iop = np.array(datasets[0].ImageOrientationPatient, dtype=float)
    row, col = iop[:3], iop[3:]
    normal = np.cross(row, col)
    positions = np.array([ds.ImagePositionPatient for ds in datasets], dtype=float)
    order = np.argsort(positions @ normal)
    positions = positions[order]
    data = np.stack([datasets[i].pixel_array * float(datasets[i].RescaleSlope) + float(datasets[i].RescaleIntercept)
                     for i in order]).astype(np.float32)
    ps_row, ps_col = (float(v) for v in datasets[0].PixelSpacing)
    along = (positions - positions[0]) @ normal
    dist = (world_lps - positions[0]) @ normal
    lower = np.clip(np.searchsorted(along, dist) - 1, 0, len(along) - 2)
    weight = (dist - along[lower]) / (along[lower + 1] - along[lower])
    values, valid = [], (weight >= -1e-6) & (weight <= 1 + 1e-6)
    for k in (lower, lower + 1):
        rel = world_lps - positions[k]
        i, j = rel @ row / ps_col, rel @ col / ps_row
        valid &= (i >= 0) & (i <= data.shape[2] - 1) & (j >= 0) & (j <= data.shape[1] - 1)
        values.append(map_coordinates(data, np.vstack([k, j, i]).astype(float), order=1))
    return (1 - weight) * values[0] + weight * values[1], valid


MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


def write_mosaic(path: os.PathLike, tiles: np.ndarray, *, first_tile=(-30.0, -20.0, 10.0), step: float = 3.0,
                 pixel_spacing=(2.0, 2.5), series_uid: str = "2.25.4242", series_number: int = 5,
                 description: str = "bold", instance_number: int = 1, acquisition_number: int = 1,
                 echo: int | None = None, echo_time: float | None = None, repetition_time: float = 2000.0,
                 seed: int = 0, extra: dict | None = None) -> Path:
    """One Siemens-style axial mosaic file holding ``tiles`` ``(n, r, c)`` (uint16 stored values).

    The tiles sit in a ``ceil(sqrt(n))`` square grid; ImagePositionPatient is the corner of
    the whole mosaic seen as one slice (as Siemens writes it); NumberOfImagesInMosaic is the
    private (0019,100A) under the "SIEMENS MR HEADER" creator; no CSA header, so the slices
    lie along the IOP normal at ``step`` mm (SpacingBetweenSlices).
    """
    import math

    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset

    rng = random.Random(seed)
    count, rows, columns = tiles.shape
    grid = math.ceil(math.sqrt(count))
    mosaic = np.zeros((grid * rows, grid * columns), dtype=np.uint16)
    for t in range(count):
        r, c = divmod(t, grid)
        mosaic[r * rows:(r + 1) * rows, c * columns:(c + 1) * columns] = tiles[t]
    row_dir, col_dir = np.array([1.0, 0, 0]), np.array([0, 1.0, 0])
    corner = (np.asarray(first_tile, float) - col_dir * pixel_spacing[0] * (grid * rows - rows) / 2
              - row_dir * pixel_spacing[1] * (grid * columns - columns) / 2)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MR_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = _uid(rng)
    meta.TransferSyntaxUID = EXPLICIT_VR_LE
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MR_IMAGE_STORAGE
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID = "SYNTH-MR", "2.25.99", series_uid
    ds.FrameOfReferenceUID = "2.25.99.1"
    ds.StudyDate, ds.Modality, ds.Manufacturer = "20000101", "MR", "SIEMENS"
    ds.SeriesDescription, ds.SeriesNumber = description, series_number
    ds.InstanceNumber, ds.AcquisitionNumber = instance_number, acquisition_number
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "MOSAIC"]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [f"{v:.6f}" for v in corner]
    ds.PixelSpacing = [f"{v:g}" for v in pixel_spacing]
    ds.SliceThickness = ds.SpacingBetweenSlices = f"{step:g}"
    ds.RepetitionTime = f"{repetition_time:g}"
    if echo is not None:
        ds.EchoNumbers = echo
    if echo_time is not None:
        ds.EchoTime = f"{echo_time:g}"
    block = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    block.add_new(0x0A, "US", count)
    ds.Rows, ds.Columns = mosaic.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit, ds.PixelRepresentation = 15, 0
    for keyword, value in (extra or {}).items():
        setattr(ds, keyword, value)
    ds.PixelData = mosaic.tobytes()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path


ENHANCED_MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4.1"


def write_enhanced_dwi(path: os.PathLike, scheme, positions: np.ndarray, iop: Sequence[float], *, rows: int = 6,
                       columns: int = 5, pixel_spacing=(2.0, 2.5), function: Callable | None = None,
                       manufacturer: str = "Philips Medical Systems", seed: int = 0,
                       extra: dict | None = None) -> Path:
    """One Philips-style enhanced MR DWI object: every weighting of ``scheme`` at every position, one frame each.

    ``scheme`` lists ``(b-value, gradient (LPS) or None, directionality)`` per volume in acquisition order
    (``"NONE"`` for b = 0, ``"DIRECTIONAL"``, ``"ISOTROPIC"`` for the trace image Philips adds). Frames are
    stored slice by slice (all volumes of a slice, then the next), each with its own PlanePositionSequence,
    FrameContentSequence (DimensionIndexValues stack / slice / volume) and MRDiffusionSequence (DiffusionBValue,
    DiffusionDirectionality, DiffusionGradientDirectionSequence > DiffusionGradientOrientation). Pixels are
    ``function(world) + 50 * t`` (uint16 stored, rescale 1 / 0; default ``phantom + 2000``, positive).
    ``extra`` sets top-level attributes last.
    """
    import pydicom  # noqa: F401  (dcmwrite below)
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence as DicomSequence

    rng = random.Random(seed)
    function = function or (lambda points: phantom(points) + 2000.0)
    row_dir, col_dir = np.asarray(iop[:3], float), np.asarray(iop[3:], float)
    jj, ii = np.meshgrid(np.arange(rows), np.arange(columns), indexing="ij")
    pixels, groups = [], []
    for k, corner in enumerate(np.asarray(positions, float)):
        world = corner + ii[..., None] * pixel_spacing[1] * row_dir + jj[..., None] * pixel_spacing[0] * col_dir
        for t, (b_value, gradient, directionality) in enumerate(scheme):
            pixels.append(np.rint(function(world) + 50 * t).astype(np.uint16))
            item, position, content, diffusion = Dataset(), Dataset(), Dataset(), Dataset()
            position.ImagePositionPatient = [float(v) for v in corner]
            content.StackID = "1"
            content.InStackPositionNumber = k + 1
            content.TemporalPositionIndex = 1
            content.DimensionIndexValues = [1, k + 1, t + 1]
            diffusion.DiffusionBValue = float(b_value)
            diffusion.DiffusionDirectionality = directionality
            if gradient is not None:
                direction = Dataset()
                direction.DiffusionGradientOrientation = [float(v) for v in gradient]
                diffusion.DiffusionGradientDirectionSequence = DicomSequence([direction])
            frame_type = Dataset()
            frame_type.FrameType = ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]
            item.PlanePositionSequence = DicomSequence([position])
            item.FrameContentSequence = DicomSequence([content])
            item.MRDiffusionSequence = DicomSequence([diffusion])
            item.MRImageFrameTypeSequence = DicomSequence([frame_type])
            groups.append(item)
    shared, orientation, measures, transform, timing = Dataset(), Dataset(), Dataset(), Dataset(), Dataset()
    orientation.ImageOrientationPatient = [float(v) for v in iop]
    measures.PixelSpacing = [float(v) for v in pixel_spacing]
    steps = np.diff(np.asarray(positions, float), axis=0)
    measures.SliceThickness = float(np.linalg.norm(steps[0])) if len(steps) else 1.0
    measures.SpacingBetweenSlices = measures.SliceThickness
    transform.RescaleSlope, transform.RescaleIntercept, transform.RescaleType = 1.0, 0.0, "US"
    timing.RepetitionTime, timing.FlipAngle = 4000.0, 90.0
    shared.PlaneOrientationSequence = DicomSequence([orientation])
    shared.PixelMeasuresSequence = DicomSequence([measures])
    shared.PixelValueTransformationSequence = DicomSequence([transform])
    shared.MRTimingAndRelatedParametersSequence = DicomSequence([timing])
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = EXPLICIT_VR_LE
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = ENHANCED_MR_STORAGE
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = _uid(rng)
    ds.PatientID, ds.PatientName, ds.StudyInstanceUID, ds.SeriesInstanceUID = "SYNTH-DWI", "Synthetic", "2.25.77", \
        _uid(rng)
    ds.FrameOfReferenceUID = "2.25.77.1"
    ds.StudyDate, ds.Modality, ds.Manufacturer = "20000101", "MR", manufacturer
    ds.SeriesDescription, ds.SeriesNumber, ds.InstanceNumber = "DWI", 7, 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]
    ds.PatientPosition = "HFS"
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, columns, len(groups)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(groups)
    for keyword, value in (extra or {}).items():
        setattr(ds, keyword, value)
    ds.PixelData = np.stack(pixels).astype("<u2").tobytes()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


PARAMETRIC_MAP_STORAGE = "1.2.840.10008.5.1.4.1.1.30"


def write_parametric_map_slices(folder: os.PathLike, positions: np.ndarray, iop: Sequence[float], *, rows: int = 6,
                                columns: int = 5, pixel_spacing=(1.5, 2.0), function: Callable = phantom,
                                float_pixels: bool = True, seed: int = 0) -> list[Path]:
    """A Parametric Map series of single-frame files (one slice each), as map-making tools write them.

    Parametric Map Storage (…1.1.30) keeps its geometry only in functional groups: ImageOrientationPatient
    and PixelSpacing in the shared group (PlaneOrientationSequence, PixelMeasuresSequence), each file's
    ImagePositionPatient in its one per-frame group (PlanePositionSequence); there is no top-level
    ImagePositionPatient / ImageOrientationPatient. Values are ``function(world) / 7`` as FloatPixelData
    (``float_pixels``) or ``function(world)`` rounded into int16 PixelData.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence as DicomSequence

    rng = random.Random(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    row_dir, col_dir = np.asarray(iop[:3], float), np.asarray(iop[3:], float)
    jj, ii = np.meshgrid(np.arange(rows), np.arange(columns), indexing="ij")
    series_uid, paths = _uid(rng), []
    for k, corner in enumerate(np.asarray(positions, float)):
        world = corner + ii[..., None] * pixel_spacing[1] * row_dir + jj[..., None] * pixel_spacing[0] * col_dir
        values = function(world)
        shared, orientation, measures, item, position, content = (Dataset() for _ in range(6))
        orientation.ImageOrientationPatient = [float(v) for v in iop]
        measures.PixelSpacing = [float(v) for v in pixel_spacing]
        measures.SliceThickness = 1.0
        shared.PlaneOrientationSequence = DicomSequence([orientation])
        shared.PixelMeasuresSequence = DicomSequence([measures])
        position.ImagePositionPatient = [float(v) for v in corner]
        content.DimensionIndexValues = [k + 1]
        item.PlanePositionSequence = DicomSequence([position])
        item.FrameContentSequence = DicomSequence([content])
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = EXPLICIT_VR_LE
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = PARAMETRIC_MAP_STORAGE
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = _uid(rng)
        ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID = "SYNTH-PM", "2.25.88", series_uid
        ds.FrameOfReferenceUID = "2.25.88.1"
        ds.StudyDate, ds.Modality, ds.Manufacturer = "20000101", "MR", "medconv-tests"
        ds.SeriesDescription, ds.SeriesNumber, ds.InstanceNumber = "ADC map", 40, k + 1
        ds.ImageType = ["DERIVED", "PRIMARY"]
        ds.ContentLabel = "ADC"
        ds.Rows, ds.Columns, ds.NumberOfFrames = rows, columns, 1
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
        ds.PerFrameFunctionalGroupsSequence = DicomSequence([item])
        if float_pixels:
            ds.BitsAllocated = 32
            ds.FloatPixelData = (values / 7.0).astype("<f4").tobytes()
        else:
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
            ds.PixelData = np.rint(values).astype("<i2").tobytes()
        path = folder / f"pm{k:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
