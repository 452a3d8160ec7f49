"""Synthetic workloads for scripts/benchmark.py (never imported by the medconv package).

Every workload is written with pydicom / plain numpy only, so that the
benchmark does not depend on the medconv code it measures:

* :func:`write_ct_series` – one CT series, one file per slice, uncompressed
  explicit VR little endian, int16 stored values with RescaleIntercept -1024,
  realistic headers and a body phantom with Gaussian noise (about 42 % gzip
  ratio at level 6, like the 300-slice CT of issue 7).
* :func:`write_lidc_tree` – a LIDC-IDRI-style tree: one folder per patient,
  study and series (``LIDC-IDRI-0001/01-01-2000-NA-NA-30178/3000566.000000-NA-03192/1-001.dcm``)
  plus the small annotation XML that LIDC keeps next to each CT series.
* :func:`write_luna_tree` – a LUNA16-style MetaImage tree (``subset0/<uid>.mhd`` + ``.raw``).
* :func:`write_scan_tree` – many small DICOM files for the header-pass target.
* :func:`link_first_patients` – a smaller tree made of the first patients of a
  bigger one, by hard links (the scaling workload's 5- and 20-series trees).

Next to each workload folder, ``<folder>.json`` records the parameters it was
made with (outside the folder, so the converters never see it); :func:`ensure`
reuses a folder whose parameters match.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable

import numpy as np

UID_ROOT = "1.2.826.0.1.3680043.10.1137."  # a private-looking root for synthetic UIDs
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def _uid(*parts: int) -> str:
    return UID_ROOT + ".".join(str(int(p)) for p in parts)


def ct_slice(size: int, k: int, n_slices: int, rng: np.random.Generator, sigma: float = 15.0) -> np.ndarray:
    """One axial slice of a chest-like phantom as stored int16 values (HU + 1024).

    Air -1000 HU, soft tissue 40, lungs -850 (their size varies with ``k``),
    a spine at 700, a table; white Gaussian noise of ``sigma`` HU inside the
    circular reconstruction field of view, 0 (-1024 HU) outside it.
    """
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    centre = (size - 1) / 2
    x = (x - centre) / size
    y = (y - centre) / size
    hu = np.full((size, size), -1000.0, np.float32)
    hu[(x / 0.42) ** 2 + (y / 0.32) ** 2 <= 1] = 40.0
    z = k / max(n_slices - 1, 1)
    lung = 0.12 + 0.04 * np.sin(np.pi * z)
    for side in (-0.18, 0.18):
        hu[((x - side) / lung) ** 2 + ((y + 0.02) / (lung * 1.3)) ** 2 <= 1] = -850.0
    hu[(x / 0.05) ** 2 + ((y - 0.2) / 0.05) ** 2 <= 1] = 700.0
    hu[(np.abs(y - 0.36) < 0.01) & (np.abs(x) < 0.45)] = 200.0
    hu += rng.standard_normal((size, size), dtype=np.float32) * np.float32(sigma)
    inside = x**2 + y**2 <= 0.25
    return np.where(inside, np.clip(np.rint(hu) + 1024, 0, 4095), 0).astype(np.int16)


def _ct_template(series_seed: int, size: int, spacing_mm: float, thickness_mm: float, patient: str):
    """A CT dataset with the headers of a typical TCIA CT slice (no per-slice fields yet)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.StudyDate = "20000101"
    ds.SeriesDate = "20000101"
    ds.StudyTime = "120000"
    ds.AccessionNumber = ""
    ds.Modality = "CT"
    ds.Manufacturer = "GE MEDICAL SYSTEMS"
    ds.InstitutionName = "medconv benchmark"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "CHEST"
    ds.SeriesDescription = "Chest 1.25mm"
    ds.ManufacturerModelName = "LightSpeed16"
    ds.PatientName = patient
    ds.PatientID = patient
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.BodyPartExamined = "CHEST"
    ds.SliceThickness = f"{thickness_mm:g}"
    ds.KVP = "120"
    ds.DataCollectionDiameter = "500"
    ds.ReconstructionDiameter = f"{spacing_mm * size:.1f}"
    ds.GantryDetectorTilt = "0"
    ds.TableHeight = "150"
    ds.ExposureTime = "500"
    ds.XRayTubeCurrent = "200"
    ds.ConvolutionKernel = "STANDARD"
    ds.PatientPosition = "FFS"
    ds.StudyInstanceUID = _uid(series_seed, 1)
    ds.SeriesInstanceUID = _uid(series_seed, 2)
    ds.StudyID = str(series_seed)
    ds.SeriesNumber = 3000 + series_seed % 1000
    ds.AcquisitionNumber = 1
    ds.FrameOfReferenceUID = _uid(series_seed, 3)
    ds.PositionReferenceIndicator = "SN"
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = size
    ds.Columns = size
    ds.PixelSpacing = [f"{spacing_mm:.6g}", f"{spacing_mm:.6g}"]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.WindowCenter = "-600"
    ds.WindowWidth = "1600"
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    return ds


def write_ct_series(dest: str | os.PathLike, slices: int = 300, size: int = 512, seed: int = 0,
                    spacing_mm: float = 0.703125, step_mm: float = 1.25, patient: str = "BENCH-CT",
                    file_name: Callable[[int], str] = lambda k: f"1-{k + 1:03d}.dcm") -> list[str]:
    """Write one CT series (``slices`` files of ``size``×``size``) into ``dest``; returns the paths.

    Slices are axial, head first (z decreasing with instance number, as TCIA
    chest CTs usually are), origin centred on the field of view.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    template = _ct_template(seed, size, spacing_mm, step_mm, patient)
    x0 = -spacing_mm * (size - 1) / 2
    y0 = -spacing_mm * (size - 1) / 2 + 20.0
    z_top = -50.0 - 3.7 * (seed % 7)
    paths = []
    for k in range(slices):
        ds = template.copy()
        ds.file_meta = template.file_meta.copy()
        sop = _uid(seed, 4, k + 1)
        ds.SOPInstanceUID = sop
        ds.file_meta.MediaStorageSOPInstanceUID = sop
        ds.InstanceNumber = k + 1
        z = z_top - k * step_mm
        ds.ImagePositionPatient = [f"{x0:.6g}", f"{y0:.6g}", f"{z:.6g}"]
        ds.SliceLocation = f"{z:.6g}"
        ds.PixelData = ct_slice(size, k, slices, rng).tobytes()
        path = dest / file_name(k)
        ds.save_as(path, enforce_file_format=True)
        paths.append(str(path))
    return paths


_LIDC_XML = """<?xml version="1.0" encoding="UTF-8"?>
<LidcReadMessage uid="{uid}" xmlns="http://www.nih.gov">
  <ResponseHeader><SeriesInstanceUid>{series}</SeriesInstanceUid></ResponseHeader>
</LidcReadMessage>
"""


def lidc_series_slices(n_series: int, low: int, high: int, seed: int = 7) -> list[int]:
    """Slice counts for the series of a LIDC-style tree: uniform in [low, high], reproducible."""
    rng = np.random.default_rng(seed)
    return [int(n) for n in rng.integers(low, high + 1, size=n_series)]


def write_lidc_tree(dest: str | os.PathLike, n_series: int = 20, size: int = 512, low: int = 100,
                    high: int = 300, seed: int = 100) -> list[Path]:
    """Write a LIDC-IDRI-style tree of ``n_series`` CT series; returns the series folders."""
    dest = Path(dest)
    folders = []
    for index, n_slices in enumerate(lidc_series_slices(n_series, low, high, seed)):
        patient = f"LIDC-IDRI-{index + 1:04d}"
        series_seed = seed + index
        folder = dest / patient / f"01-01-2000-NA-NA-{30178 + index}" / f"{3000566 + index}.000000-NA-{3192 + index:05d}"
        write_ct_series(folder, slices=n_slices, size=size, seed=series_seed, patient=patient,
                        step_mm=(1.25, 2.5, 1.0, 2.0)[index % 4])
        (folder / f"{69 + index:03d}.xml").write_text(_LIDC_XML.format(uid=_uid(series_seed, 9), series=_uid(series_seed, 2)))
        folders.append(folder)
    return folders


def write_luna_tree(dest: str | os.PathLike, n_images: int = 10, size: int = 512, low: int = 100,
                    high: int = 300, seed: int = 200) -> list[Path]:
    """Write a LUNA16-style tree: ``subset0/<uid>.mhd`` + ``.raw`` (int16 HU, MET_SHORT)."""
    dest = Path(dest) / "subset0"
    dest.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    headers = []
    for index, n_slices in enumerate(lidc_series_slices(n_images, low, high, seed)):
        uid = "1.3.6.1.4.1.14519.5.2.1.6279.6001." + str(10**20 + seed * 1000 + index)
        spacing = (0.6 + 0.01 * index, 0.6 + 0.01 * index, (1.25, 2.5)[index % 2])
        offset = (-180.0 - index, -190.0 + index, -300.0 - 2 * index)
        raw = dest / f"{uid}.raw"
        with open(raw, "wb") as stream:
            for k in range(n_slices):
                hu = ct_slice(size, k, n_slices, rng).astype(np.int16) - np.int16(1024)
                stream.write(hu.tobytes())
        header = dest / f"{uid}.mhd"
        header.write_text(
            "ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = False\n"
            "CompressedData = False\nTransformMatrix = 1 0 0 0 1 0 0 0 1\n"
            f"Offset = {offset[0]} {offset[1]} {offset[2]}\nCenterOfRotation = 0 0 0\n"
            "AnatomicalOrientation = RAI\n"
            f"ElementSpacing = {spacing[0]:.6g} {spacing[1]:.6g} {spacing[2]:.6g}\n"
            f"DimSize = {size} {size} {n_slices}\nElementType = MET_SHORT\nElementDataFile = {raw.name}\n"
        )
        headers.append(header)
    return headers


def write_scan_tree(dest: str | os.PathLike, n_files: int = 30000, size: int = 64,
                    slices_per_series: int = 300, seed: int = 300) -> int:
    """Write ``n_files`` small CT slices in series of ``slices_per_series``; returns the series count."""
    dest = Path(dest)
    n_series = -(-n_files // slices_per_series)
    written = 0
    for index in range(n_series):
        n_slices = min(slices_per_series, n_files - written)
        folder = dest / f"SCAN-{index + 1:04d}" / f"{3000 + index}.000000-NA-{index:05d}"
        write_ct_series(folder, slices=n_slices, size=size, seed=seed + index, patient=f"SCAN-{index + 1:04d}")
        written += n_slices
    return n_series


def link_first_patients(dest: str | os.PathLike, source: str | os.PathLike, n_series: int) -> int:
    """Hard-link the first ``n_series`` patient folders of the tree ``source`` into ``dest``; returns the file count.

    The scaling workload's smaller trees are exact subsets of its largest one
    (same files, no second copy on disk); hard links are ordinary files to every
    converter.
    """
    dest, source = Path(dest), Path(source)
    patients = sorted(p for p in source.iterdir() if p.is_dir())[:n_series]
    if len(patients) < n_series:
        raise SystemExit(f"{source} has {len(patients)} patient folders, {n_series} needed")
    count = 0
    for patient in patients:
        for path in sorted(patient.rglob("*")):
            target = dest / path.relative_to(source)
            if path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(path, target)
                count += 1
    return count


def ensure(folder: str | os.PathLike, params: dict, make: Callable[[Path], object]) -> Path:
    """Make the workload in ``folder`` unless it exists with the same ``params``; returns the folder."""
    folder = Path(folder)
    stamp = folder.with_name(folder.name + ".json")
    if stamp.exists() and folder.is_dir():
        try:
            if json.loads(stamp.read_text()) == params:
                return folder
        except ValueError:
            pass
    if folder.exists():
        shutil.rmtree(folder)
    building = folder.with_name(folder.name + ".partial")
    if building.exists():
        shutil.rmtree(building)
    building.mkdir(parents=True)
    make(building)
    building.rename(folder)
    stamp.write_text(json.dumps(params, sort_keys=True))
    return folder


MAKERS: dict[str, Callable[..., object]] = {
    "ct": write_ct_series, "tree": write_lidc_tree, "luna": write_luna_tree, "scan": write_scan_tree,
    "link_tree": link_first_patients,
}


def main(argv: list[str]) -> None:
    """``bench_workloads.py FOLDER PARAMS_JSON``: make (or reuse) one workload; PARAMS has ``kind``."""
    folder, params = Path(argv[0]), json.loads(argv[1])
    options = {k: v for k, v in params.items() if k != "kind"}
    ensure(folder, params, lambda dest: MAKERS[params["kind"]](dest, **options))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
