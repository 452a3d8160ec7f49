"""Benchmark medconv's DICOM pixel reading against pydicom's per-file pixel_array.

Writes a synthetic CT series (512x512 int16, CT-like header, HU rescale) once
into FOLDER, then times, best of REPEATS after one warm-up run:

* ``read_pixel_stack`` (header parse up to Pixel Data, then readinto the preallocated array);
* the common pydicom idiom: ``dcmread`` + ``pixel_array`` + float64 rescale into an int16 array;
* a header-only parse of every file (the floor of any DICOM reader).

Usage: python scripts/bench_dicom_pixels.py FOLDER [SLICES] [REPEATS]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np


def make_series(folder: Path, slices: int) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 4095, size=(512, 512), dtype=np.int16)
    series, study = generate_uid(), generate_uid()
    for k in range(slices):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = CTImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
        ds.Modality, ds.Manufacturer, ds.ManufacturerModelName = "CT", "GE MEDICAL SYSTEMS", "LightSpeed16"
        ds.PatientID, ds.PatientName, ds.StudyInstanceUID, ds.SeriesInstanceUID = "BENCH", "Bench^Ct", study, series
        ds.StudyDate, ds.SeriesNumber, ds.InstanceNumber, ds.AcquisitionNumber = "20260101", 2, k + 1, 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.KVP, ds.SliceThickness, ds.ConvolutionKernel, ds.PatientPosition = 120, 1.25, "STANDARD", "FFS"
        ds.WindowCenter, ds.WindowWidth = 40, 400
        ds.Rows = ds.Columns = 512
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = 1, -1024, "HU"
        ds.ImagePositionPatient = [-250.0, -250.0, -1.25 * k]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.7, 0.7]
        ds.PixelData = (base + k).astype("<i2").tobytes()
        ds.save_as(folder / f"{k:04d}.dcm", enforce_file_format=True)


def pydicom_idiom(paths: list[str]) -> np.ndarray:
    import pydicom

    out = None
    for index, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        values = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        if out is None:
            out = np.empty((len(paths),) + values.shape, dtype=np.int16)
        out[index] = values
    return out


def headers_only(paths: list[str]) -> None:
    import pydicom

    for path in paths:
        pydicom.dcmread(path, stop_before_pixels=True)


def best_of(function, repeats: int) -> tuple[float, object]:
    result = function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    from medconv.readers.dicom.pixels import read_pixel_stack

    folder = Path(sys.argv[1])
    slices = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    if not folder.exists():
        make_series(folder, slices)
    paths = sorted(str(p) for p in folder.glob("*.dcm"))
    ours, stack = best_of(lambda: read_pixel_stack(paths), repeats)
    theirs, reference = best_of(lambda: pydicom_idiom(paths), repeats)
    parse, _ = best_of(lambda: headers_only(paths), repeats)
    assert np.array_equal(stack.array, reference) and stack.array.dtype == np.int16
    print(f"{len(paths)} slices 512x512: read_pixel_stack {ours:.3f} s ({1000 * ours / len(paths):.2f} ms/file), "
          f"pydicom dcmread+pixel_array+float64 rescale {theirs:.3f} s ({1000 * theirs / len(paths):.2f} ms/file), "
          f"header-only parse {parse:.3f} s ({1000 * parse / len(paths):.2f} ms/file)")


if __name__ == "__main__":
    main()
