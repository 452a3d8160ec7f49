"""Benchmark: 16-bit radiographs -> 8-bit 512 px PNG, a plain pydicom + Pillow loop against ``medconv dcm2png``.

Generates COUNT RSNA-like radiographs once into ``FOLDER/dicom`` (flat
``<patientId>.dcm``, DX FOR PRESENTATION, 2048 x 2048, 12 of 16 bits stored,
MONOCHROME1 with Presentation LUT Shape INVERSE for half of them, a window,
ImagerPixelSpacing with a magnification factor), then runs each variant ROUNDS
times, **interleaved** (the order rotates every round; the machine is shared),
each in a fresh process, and reports the median:

* ``plain``: the loop people write, one process: ``dcmread`` -> ``pixel_array``
  -> ``apply_modality_lut`` -> ``apply_voi_lut`` -> MONOCHROME1 inverted over the
  output -> uint8 -> Pillow ``resize((512, 512), BILINEAR)`` -> ``save(png)`` at
  Pillow's default zlib level (6);
* ``plain-z4``: the same loop saving at zlib level 4 (medconv's PNG default), so
  that the encoder's level is not what the comparison measures;
* ``dcm2png-j1``: ``medconv dcm2png FOLDER/dicom OUT --size 512 -j 1 -q``
  (discovery, manifest, sidecars, resume checks included);
* ``dcm2png-j2``: the same with ``-j 2``.

Targets (issue 13): ``dcm2png-j1`` >= 80 % of ``plain``'s images per second (per
core), and ``dcm2png-j2`` faster than ``dcm2png-j1``. After the runs the outputs
of the first images are compared (``plain`` against ``dcm2png``: the same pictures).

Usage: python scripts/bench_radiographs.py FOLDER [COUNT] [ROUNDS] [SIZE]
       (COUNT 1000, ROUNDS 2, SIZE 512 by default; about 8.4 GB of DICOM for 1,000)
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"


def make_radiographs(folder: Path, count: int, size: int = 2048, start: int = 0) -> list[Path]:
    """``count`` synthetic chest radiographs (a smooth body, lungs, noise), written with pydicom."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(start)
    y, x = np.mgrid[0:size, 0:size] / size
    body = 2500 + 1200 * np.exp(-((x - 0.5) ** 2 / 0.08 + (y - 0.55) ** 2 / 0.15))
    lungs = 900 * (np.exp(-((x - 0.33) ** 2 / 0.01 + (y - 0.45) ** 2 / 0.04))
                   + np.exp(-((x - 0.67) ** 2 / 0.01 + (y - 0.45) ** 2 / 0.04)))
    base = body - lungs
    noises = [rng.normal(0, 40, base.shape) for _ in range(min(count, 4))]  # rolled per image: fast to generate
    paths = []
    for n in range(start, start + count):
        noise = np.roll(noises[n % len(noises)], shift=(7 * n) % size, axis=1)
        image = np.clip(base + noise, 0, 4095).astype(np.uint16)
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


def plain_loop(paths: list[Path], out: Path, size: int, level: int | None = None) -> None:
    """What a script without medconv does (the Kaggle recipe with the standard's inversion)."""
    import pydicom
    from PIL import Image
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    extra = {} if level is None else {"compress_level": level}
    for path in paths:
        ds = pydicom.dcmread(path)
        values = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds)
        low, high = 0.0, float(2 ** int(ds.BitsStored) - 1)  # apply_windowing's output range (no rescale)
        scaled = (values - low) / (high - low) * 255.0
        if ds.PhotometricInterpretation == "MONOCHROME1":
            scaled = 255.0 - scaled
        picture = Image.fromarray(np.floor(scaled + 0.5).astype(np.uint8))
        picture.resize((size, size), Image.Resampling.BILINEAR).save(out / f"{path.stem}.png", **extra)


def command_of(variant: str, inputs: Path, out: Path, size: int) -> list[str]:
    """The command line of one variant (each runs in a fresh process)."""
    if variant.startswith("plain"):
        level = "4" if variant == "plain-z4" else "default"
        return [sys.executable, __file__, "--plain", str(inputs), str(out), str(size), level]
    jobs = variant.rsplit("-j", 1)[1]
    return [sys.executable, "-m", "medconv", "dcm2png", str(inputs), str(out), "--size", str(size), "-j", jobs, "-q"]


VARIANTS = ("plain", "plain-z4", "dcm2png-j1", "dcm2png-j2")


def run_once(variant: str, inputs: Path, out: Path, size: int) -> float:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    start = time.perf_counter()
    subprocess.run(command_of(variant, inputs, out, size), check=True)
    return time.perf_counter() - start


def compare_outputs(folder: Path, names: list[str]) -> int:
    """The largest difference (grey levels) between the plain loop's and dcm2png's PNG of the same files."""
    from PIL import Image

    worst = 0
    for name in names:
        plain = np.asarray(Image.open(folder / "plain" / f"{name}.png"), dtype=np.int16)
        ours = np.asarray(Image.open(folder / "dcm2png-j1" / f"{name}.png"), dtype=np.int16)
        worst = max(worst, int(np.abs(plain - ours).max()))
    return worst


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--plain":  # one plain run, in its own process
        inputs, out, size, level = Path(argv[1]), Path(argv[2]), int(argv[3]), argv[4]
        plain_loop(sorted(inputs.glob("*.dcm")), out, size, None if level == "default" else int(level))
        return 0
    if not argv:
        print(__doc__)
        return 2
    folder = Path(argv[0])
    count = int(argv[1]) if len(argv) > 1 else 1000
    rounds = int(argv[2]) if len(argv) > 2 else 2
    size = int(argv[3]) if len(argv) > 3 else 512
    inputs = folder / "dicom"
    paths = sorted(inputs.glob("*.dcm"))
    if len(paths) < count:
        print(f"generating {count - len(paths)} radiographs in {inputs} ...", flush=True)
        make_radiographs(inputs, count - len(paths), start=len(paths))
    for extra in sorted(inputs.glob("*.dcm"))[count:]:
        extra.unlink()  # exactly COUNT files
    for path in sorted(inputs.glob("*.dcm")):  # into the page cache, as for every variant after the first
        path.read_bytes()
    seconds: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    for number in range(rounds):
        order = VARIANTS[number % len(VARIANTS):] + VARIANTS[: number % len(VARIANTS)]
        for variant in order:
            elapsed = run_once(variant, inputs, folder / variant, size)
            seconds[variant].append(elapsed)
            print(f"round {number + 1}  {variant:11s} {elapsed:8.1f} s  {count / elapsed:6.2f} images/s", flush=True)
    median = {variant: statistics.median(values) for variant, values in seconds.items()}
    print(f"\nmedians of {rounds} interleaved round(s), {count} images {2048}x{2048} -> {size} px PNG:")
    for variant in VARIANTS:
        print(f"  {variant:11s} {median[variant]:8.1f} s  {count / median[variant]:6.2f} images/s  "
              f"{1000 * median[variant] / count:7.1f} ms/image")
    print(f"dcm2png -j 1 / plain (per core):     {median['plain'] / median['dcm2png-j1']:.2f}x  (target >= 0.80)")
    print(f"dcm2png -j 1 / plain at zlib level 4: {median['plain-z4'] / median['dcm2png-j1']:.2f}x")
    print(f"dcm2png -j 2 / -j 1 (scaling):        {median['dcm2png-j1'] / median['dcm2png-j2']:.2f}x")
    names = [path.stem for path in sorted(inputs.glob("*.dcm"))[:5]]
    print(f"outputs of the first {len(names)} images, plain vs dcm2png: max difference "
          f"{compare_outputs(folder, names)} grey level(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
