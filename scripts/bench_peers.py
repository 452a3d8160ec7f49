"""The Python peers, each run by scripts/benchmark.py in a fresh interpreter.

Usage: ``python scripts/bench_peers.py KIND SRC OUT_DIR`` with KIND one of

* ``dicom2nifti``: ``dicom2nifti.convert_directory(SRC, OUT_DIR)`` (its defaults:
  compression and reorientation on);
* ``sitk-series``: SimpleITK ``ImageSeriesReader`` per series of SRC, then
  ``WriteImage(..., useCompression=True)`` to ``.nii.gz``;
* ``sitk-files``: SimpleITK ``ReadImage`` + ``WriteImage`` (compressed) for every
  ``.mhd`` under SRC, one after the other;
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
