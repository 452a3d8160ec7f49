"""``.npz`` output: the voxels and geometry in a file plain ``numpy.load`` reads.

Fields (all loadable with ``numpy.load(path)``, no pickle needed):

=============  ===============================================================
``array``      the voxels, axes ``(i, j, k[, t])``, dtype as in the Volume
``spacing``    float64 (3,), mm along i, j, k
``origin``     float64 (3,), LPS mm of the centre of voxel (0, 0, 0)
``direction``  float64 (3, 3), column n = LPS unit vector of axis n
``affine_ras`` float64 (4, 4), voxel -> RAS mm (what nibabel's ``affine`` is)
``affine_lps`` float64 (4, 4), voxel -> LPS mm (DICOM/ITK)
``kind``       str, ``"intensity"`` or ``"label"``
``meta``       str, the meta mapping as JSON
``history``    str, the list of transforms applied, as JSON
=============  ===============================================================
"""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from ..atomic import atomic_output
from ..options import WriteOptions
from ..volume import Volume
from .sidecar import sidecar_path, to_jsonable, write_sidecar


def npz_fields(volume: Volume) -> dict[str, np.ndarray]:
    """The arrays stored in the ``.npz`` file, by field name."""
    return {
        "array": volume.array,
        "spacing": np.asarray(volume.spacing, dtype=np.float64),
        "origin": np.asarray(volume.origin, dtype=np.float64),
        "direction": np.asarray(volume.direction, dtype=np.float64),
        "affine_ras": volume.affine_ras,
        "affine_lps": volume.affine_lps,
        "kind": np.asarray(volume.kind),
        "meta": np.asarray(json.dumps(to_jsonable(volume.meta))),
        "history": np.asarray(json.dumps(list(volume.history))),
    }


def _zlib_level(compression_level: int | None) -> int:
    """zlib level for the deflated members: level 1 unless asked (the higher ones are several times slower)."""
    return 1 if compression_level is None else max(0, min(9, compression_level))


class NpzWriter:
    """Writes ``.npz`` files (deflated unless ``WriteOptions.npz_compressed`` is off)."""

    name = "npz"
    suffixes = (".npz",)

    def write(self, volume: Volume, dest: str | os.PathLike, options: WriteOptions = WriteOptions()) -> list[str]:
        dest = os.fspath(dest)
        compression = zipfile.ZIP_DEFLATED if options.npz_compressed else zipfile.ZIP_STORED
        with atomic_output(dest, overwrite=options.overwrite) as temp:
            with zipfile.ZipFile(temp, "w", compression=compression, compresslevel=_zlib_level(options.compression_level),
                                 allowZip64=True) as archive:
                for name, value in npz_fields(volume).items():
                    with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)
        written = [dest]
        if options.sidecar:
            written.append(write_sidecar(volume, sidecar_path(dest, ".npz"), overwrite=True))
        return written
