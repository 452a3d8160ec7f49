"""Benchmark: 16-bit radiographs -> 8-bit 512 px PNG, a plain pydicom + Pillow loop against medconv's 2D path.

Generates COUNT RSNA-like radiographs once into FOLDER (flat ``<patientId>.dcm``,
DX FOR PRESENTATION, 2048 x 2048, 12 of 16 bits stored, MONOCHROME1 with
Presentation LUT Shape INVERSE for half of them, a window, ImagerPixelSpacing
with a magnification factor), then times per image, best of REPEATS, one process:

* ``plain``: the loop people write: ``dcmread`` -> ``pixel_array`` ->
  ``apply_modality_lut`` -> ``apply_voi_lut`` -> MONOCHROME1 inverted over the
  output -> uint8 -> Pillow ``resize((512, 512), BILINEAR)`` -> ``save(png)``;
* ``medconv``: ``dcmread`` -> ``pixel_array`` -> :func:`greyscale.display_image`
  (one lookup table) -> :class:`Resize2D` (512, aspect kept) -> :class:`PngWriter`
  (with its JSON sidecar).

Phase 2 of issue 13 adds the ``medconv dcm2png`` side (its own decoding, the
batch, ``--jobs``); the target is medconv >= 80 % of the plain loop's images per
second per core.

Usage: python scripts/bench_radiographs.py FOLDER [COUNT] [REPEATS] [SIZE]
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import numpy as np

DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"


def make_radiographs(folder: Path, count: int, size: int = 2048) -> list[Path]:
    """``count`` synthetic chest radiographs (a smooth body, lungs, noise), written with pydicom."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size] / size
    body = 2500 + 1200 * np.exp(-((x - 0.5) ** 2 / 0.08 + (y - 0.55) ** 2 / 0.15))
    lungs = 900 * (np.exp(-((x - 0.33) ** 2 / 0.01 + (y - 0.45) ** 2 / 0.04))
                   + np.exp(-((x - 0.67) ** 2 / 0.01 + (y - 0.45) ** 2 / 0.04)))
    base = body - lungs
    paths = []
    for n in range(count):
        image = np.clip(base + rng.normal(0, 40, base.shape), 0, 4095).astype(np.uint16)
        monochrome1 = n % 2 == 0
        if monochrome1:
            image = 4095 - image
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = DX_FOR_PRESENTATION, generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = DX_FOR_PRESENTATION, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.PatientID = f"{n:08x}-bench-radiograph"
        ds.Modality, ds.PresentationIntentType, ds.ViewPosition, ds.BodyPartExamined = "DX", "FOR PRESENTATION", "PA", "CHEST"
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
        ds.PresentationLUTShape = "INVERSE" if monochrome1 else "IDENTITY"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = 1, 0, "US"
        ds.WindowCenter, ds.WindowWidth = (4095 - 2600, 2200) if monochrome1 else (2600, 2200)
        ds.ImagerPixelSpacing = [0.139, 0.139]
        ds.EstimatedRadiographicMagnificationFactor = 1.08
        ds.PixelData = image.tobytes()
        path = folder / f"{ds.PatientID}.dcm"
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
        paths.append(path)
    return paths


def plain_loop(paths: list[Path], out: Path, size: int) -> None:
    """What a script without medconv does (the Kaggle recipe with the standard's inversion)."""
    import pydicom
    from PIL import Image
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    for path in paths:
        ds = pydicom.dcmread(path)
        values = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds)
        low, high = 0.0, float(2 ** int(ds.BitsStored) - 1)  # apply_windowing's output range (no rescale)
        scaled = (values - low) / (high - low) * 255.0
        if ds.PhotometricInterpretation == "MONOCHROME1":
            scaled = 255.0 - scaled
        picture = Image.fromarray(np.floor(scaled + 0.5).astype(np.uint8))
        picture.resize((size, size), Image.Resampling.BILINEAR).save(out / f"{path.stem}.png")


def medconv_path(paths: list[Path], out: Path, size: int) -> None:
    """medconv's phase-1 functions on the same files (pydicom still decodes)."""
    import pydicom

    from medconv import Volume
    from medconv.readers.dicom.greyscale import detector_spacing, display_image, greyscale_header
    from medconv.transforms.resize2d import Resize2D
    from medconv.writers.png import PngWriter

    resize, writer = Resize2D((size, size)), PngWriter()
    for path in paths:
        ds = pydicom.dcmread(path)
        shown = display_image(ds.pixel_array, greyscale_header(ds, str(path)))
        spacing = detector_spacing(ds)
        volume = Volume(shown.array.T[:, :, None], spacing=(*spacing.ij, 1.0),
                        meta={"source_files": [str(path)], "modality": ds.Modality, "dicom": {"greyscale": shown.describe()}})
        writer.write(resize(volume), out / f"{path.stem}.png")


def best_seconds(function, paths: list[Path], out: Path, size: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        start = time.perf_counter()
        function(paths, out, size)
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    folder = Path(argv[0])
    count = int(argv[1]) if len(argv) > 1 else 20
    repeats = int(argv[2]) if len(argv) > 2 else 3
    size = int(argv[3]) if len(argv) > 3 else 512
    inputs = folder / "dicom"
    paths = sorted(inputs.glob("*.dcm"))[:count]
    if len(paths) < count:
        print(f"generating {count} radiographs in {inputs} ...", flush=True)
        paths = make_radiographs(inputs, count)
    results = {}
    for name, function in (("plain", plain_loop), ("medconv", medconv_path)):
        warmup = folder / "warmup" / name
        shutil.rmtree(warmup, ignore_errors=True)
        warmup.mkdir(parents=True)
        function(paths[:1], warmup, size)  # imports and caches
        seconds = best_seconds(function, paths, folder / name, size, repeats)
        results[name] = seconds
        print(f"{name:8s} {seconds:7.2f} s for {count} images  {count / seconds:6.1f} images/s  "
              f"{1000 * seconds / count:6.1f} ms/image", flush=True)
    print(f"medconv / plain speed: {results['plain'] / results['medconv']:.2f}x (target >= 0.80)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
