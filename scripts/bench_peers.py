"""The Python peers, each run by scripts/benchmark.py in a fresh interpreter.

Usage: ``python scripts/bench_peers.py KIND SRC OUT_DIR`` with KIND one of

* ``dicom2nifti``: ``dicom2nifti.convert_directory(SRC, OUT_DIR)`` (its defaults:
  compression and reorientation on);
* ``sitk-series``: SimpleITK ``ImageSeriesReader`` per series of SRC, then
  ``WriteImage(..., useCompression=True)`` to ``.nii.gz``;
* ``sitk-files``: SimpleITK ``ReadImage`` + ``WriteImage`` (compressed) for every
  ``.mhd`` under SRC, one after the other;
* ``sitk-preprocess``: the plain SimpleITK script of issue 14 for one series:
  ``ImageSeriesReader``, ``Resample`` (linear, float32, fill -1024) onto the 1 mm
  grid medconv uses (same size and centred origin, docs/preprocessing.md),
  ``IntensityWindowing`` to the lung window [-1350, 150] -> [0, 1], then
  ``WriteImage(..., useCompression=True)``;
* ``dcm2niix-parallel``: dcm2niix ``-z y`` once per patient folder of SRC (the
  first level below it), two processes at a time (what dcm2niiXL does; a single
  series folder is one process);
* ``medconv-lib-gz`` / ``medconv-lib-nii``: ``medconv.read(SRC)`` +
  ``medconv.write`` (the library path, used until ``medconv tcia2nii`` exists).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# The repository first on the path: the venv's editable install of medconv may
# resolve "medconv" as a namespace package when run from outside the repository.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))



def run_peer(kind: str, src: str, out: str) -> None:
    if kind == "dicom2nifti":
        import dicom2nifti

        dicom2nifti.convert_directory(src, out, compression=True, reorient=True)
    elif kind == "sitk-series":
        import SimpleITK as sitk

        for series in sitk.ImageSeriesReader.GetGDCMSeriesIDs(src) or ():
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(src, series))
            sitk.WriteImage(reader.Execute(), os.path.join(out, f"{series}.nii.gz"), useCompression=True)
    elif kind == "sitk-files":
        import SimpleITK as sitk

        for header in sorted(Path(src).rglob("*.mhd")):
            sitk.WriteImage(sitk.ReadImage(str(header)), os.path.join(out, header.stem + ".nii.gz"), useCompression=True)
    elif kind == "sitk-preprocess":
        import SimpleITK as sitk

        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(src))
        image = reader.Execute()
        size = [int(n * s + 0.5) for n, s in zip(image.GetSize(), image.GetSpacing())]  # 1 mm, round half up
        direction = [image.GetDirection()[3 * r:3 * r + 3] for r in range(3)]
        shift = [(s * (n - 1) - (m - 1)) / 2 for n, s, m in zip(image.GetSize(), image.GetSpacing(), size)]
        origin = [o + sum(direction[r][c] * shift[c] for c in range(3)) for r, o in enumerate(image.GetOrigin())]
        resampled = sitk.Resample(image, size, sitk.Transform(), sitk.sitkLinear, origin, (1.0, 1.0, 1.0),
                                  image.GetDirection(), -1024.0, sitk.sitkFloat32)
        windowed = sitk.IntensityWindowing(resampled, -1350.0, 150.0, 0.0, 1.0)
        sitk.WriteImage(windowed, os.path.join(out, "ct.nii.gz"), useCompression=True)
    elif kind == "dcm2niix-parallel":
        import subprocess
        from concurrent.futures import ThreadPoolExecutor

        binary = str(Path(sys.executable).parent / "dcm2niix")
        folders = sorted(p for p in Path(src).iterdir() if p.is_dir()) or [Path(src)]

        def convert(index_folder):
            index, folder = index_folder
            target = Path(out) / f"{index:04d}"
            target.mkdir()
            return subprocess.run([binary, "-z", "y", "-o", str(target), str(folder)], capture_output=True).returncode

        with ThreadPoolExecutor(max_workers=2) as pool:
            codes = list(pool.map(convert, enumerate(folders)))
        if any(code not in (0, 8) for code in codes):
            raise SystemExit(f"dcm2niix failed: return codes {sorted(set(codes))}")
    elif kind in ("medconv-lib-gz", "medconv-lib-nii"):
        import medconv

        volume = medconv.read(src)
        medconv.write(volume, os.path.join(out, "ct" + (".nii.gz" if kind.endswith("gz") else ".nii")))
    else:
        raise SystemExit(f"unknown peer {kind}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    run_peer(*sys.argv[1:])
