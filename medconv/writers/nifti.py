"""NIfTI output (``.nii`` and ``.nii.gz``).

* sform and qform are both set, code 1 (scanner anatomical), from the Volume's
  RAS affine; units are mm, and seconds for a time series, whose ``pixdim[4]`` is
  ``meta["repetition_time"]`` (s); a 4th axis that is not time (echo, channel,
  diffusion volume) has time units "unknown" and ``pixdim[4]`` 1 (NIfTI-1).
* The dtype is kept (int16 CT stays int16); bool becomes uint8 and float16
  float32, the nearest types NIfTI-1 readers all support. Nothing is rescaled.
* Label volumes carry intent ``NIFTI_INTENT_LABEL``.
* ``descrip`` is ``medconv <version>``, followed by the intensity units when known
  (``; HU``, ``; SUVbw g/ml``), cut to NIfTI's 79 characters.
* NIfTI-2 is written only when a dimension exceeds NIfTI-1's limit of 32767.
* ``.nii.gz`` is compressed with ISA-L's threaded gzip (standard gzip format),
  straight from the array's memory in NIfTI's order, slab by slab.
* A diffusion-weighted Volume (``meta["diffusion"]``) gets FSL ``.bval`` / ``.bvec``
  files beside it (:mod:`.fsl_gradients`), written to temporaries with the image and
  renamed just before it: an image under its final name always has them, so a
  resumed batch never finds one without the other, and a kill while the image is
  written leaves only temporaries. :meth:`NiftiWriter.write` returns their paths
  after the image's (then the sidecar's).
"""

from __future__ import annotations

import os

import numpy as np

from .._version import __version__
from ..atomic import atomic_output
from ..options import WriteOptions
from ..registry import matching_suffix
from ..volume import Volume
from .fsl_gradients import gradient_files
from .nifti_header import MAX_DIM, nifti1_header
from .sidecar import sidecar_path, write_sidecar

_CHUNK_BYTES = 8 << 20
_WRITE_CASTS = {np.dtype(bool): np.dtype(np.uint8), np.dtype(np.float16): np.dtype(np.float32)}


#: ISA-L level used when WriteOptions.compression_level is None (see WriteOptions).
DEFAULT_ISAL_LEVEL = 3


def isal_level(compression_level: int | None) -> int:
    """Map a gzip-style level 0-9 (``None``: the default) onto ISA-L's 0-3."""
    if compression_level is None:
        return DEFAULT_ISAL_LEVEL
    if compression_level <= 0:
        return 0
    return min(3, 1 + (compression_level - 1) // 3)


def header_bytes(volume: Volume, dtype: np.dtype) -> bytes:
    """The header (and empty extension flag) that precedes the voxels of ``volume`` written as ``dtype``.

    NIfTI-1 from :mod:`.nifti_header` (no nibabel import); NIfTI-2 through nibabel
    for the rare image with a dimension over 32767.
    """
    shape = volume.shape
    axis4 = volume.meta.get("axis4") if len(shape) == 4 else None
    time_units = axis4 in (None, "time")  # channels, echoes and diffusion weightings are not time
    time_step = volume.meta.get("repetition_time") if axis4 == "time" else None
    description = f"medconv {__version__}"
    units = volume.meta.get("units")
    if units:  # e.g. "SUVbw g/ml" after --pet suv, "HU" for CT (NIfTI-1 has no field for intensity units)
        description += f"; {str(units).encode('ascii', 'replace').decode()}"
    if max(shape) <= MAX_DIM:
        return nifti1_header(shape, dtype, volume.affine_ras, label=volume.kind == "label",
                             time_units=time_units, time_step=time_step, description=description)
    import io

    import nibabel as nib

    header = nib.Nifti2Header()
    header.set_data_dtype(dtype)
    header.set_data_shape(shape)
    header.set_sform(volume.affine_ras, code=1)
    header.set_qform(volume.affine_ras, code=1)
    header.set_xyzt_units("mm", "sec" if time_units else "unknown")
    if time_step:
        header.set_zooms(tuple(header.get_zooms()[:3]) + (float(time_step),) + tuple(header.get_zooms()[4:]))
    header["descrip"] = description.encode()[:79]
    if volume.kind == "label":
        header.set_intent("label")
    header["vox_offset"] = header.single_vox_offset
    stream = io.BytesIO()
    header.write_to(stream)  # ends with the 4-byte "no extensions" flag
    return stream.getvalue()


class NiftiWriter:
    """Writes ``.nii`` and ``.nii.gz`` files (and the JSON sidecar on request)."""

    name = "nifti"
    suffixes = (".nii", ".nii.gz")

    def write(self, volume: Volume, dest: str | os.PathLike, options: WriteOptions = WriteOptions()) -> list[str]:
        dest = os.fspath(dest)
        suffix = matching_suffix(dest, self.suffixes) or ".nii"
        array = volume.array
        dtype = _WRITE_CASTS.get(array.dtype, array.dtype).newbyteorder("<")
        header = header_bytes(volume, dtype)
        # the image's temporary, then the .bval/.bvec temporaries; renamed in the other order when all are complete
        with atomic_output(dest, overwrite=options.overwrite) as temp:
            with gradient_files(volume, dest[: len(dest) - len(suffix)], overwrite=options.overwrite) as gradients:
                with _open_output(temp, suffix, options, label=volume.kind == "label") as stream:
                    stream.write(header)
                    write_fortran_order(stream, array, dtype)
        written = [dest, *gradients]
        if options.sidecar:
            written.append(write_sidecar(volume, sidecar_path(dest, suffix), overwrite=True))
        return written


def _open_output(path: str, suffix: str, options: WriteOptions, label: bool = False):
    if suffix.endswith(".gz"):
        threads = options.threads if options.threads > 0 else (os.cpu_count() or 1)
        level = isal_level(options.compression_level)
        if label:  # mostly background: ISA-L's plain stream in this thread, whatever the thread count, is fastest
            from isal import igzip  # (a 512x512x199 mask: 10 ms against 47 ms threaded with one thread)

            return igzip.open(path, "wb", compresslevel=level)
        from isal import igzip_threaded

        return igzip_threaded.open(path, "wb", compresslevel=level, threads=threads)
    return open(path, "wb", buffering=_CHUNK_BYTES)


def write_fortran_order(stream, array: np.ndarray, dtype: np.dtype) -> None:
    """Write ``array``'s bytes in Fortran (NIfTI) order as ``dtype``, without copying the whole array.

    An array that is the transposed view of a C-ordered buffer (what readers
    produce) is written straight from memory; anything else slab by slab.
    """
    reversed_view = array.T  # C order of the reversed axes == Fortran order of array
    if reversed_view.flags.c_contiguous and reversed_view.dtype == dtype:
        data = memoryview(reversed_view.reshape(-1)).cast("B")
        for start in range(0, len(data), _CHUNK_BYTES):
            stream.write(data[start : start + _CHUNK_BYTES])
        return
    # one slab per index of the slowest axes, each converted on its own
    for index in np.ndindex(*reversed_view.shape[: max(reversed_view.ndim - 2, 0)]):
        slab = np.ascontiguousarray(reversed_view[index], dtype=dtype)
        stream.write(memoryview(slab.reshape(-1)).cast("B"))
