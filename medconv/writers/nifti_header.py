"""The 348-byte NIfTI-1 header, built with numpy alone.

The writer needs nothing else from nibabel, and importing nibabel costs a
conversion process 0.15-0.25 s (it imports pydicom on the way). The layout is
the NIfTI-1 standard's (nifti1.h); the qform is derived exactly as nibabel's
``Nifti1Header.set_qform`` does (qfac from the determinant's sign, the nearest
orthonormal matrix, its unit quaternion with non-negative w), and the tests
compare every field with nibabel's header for the same image.
"""

from __future__ import annotations

import numpy as np

HEADER_DTYPE = np.dtype([
    ("sizeof_hdr", "<i4"), ("data_type", "S10"), ("db_name", "S18"), ("extents", "<i4"),
    ("session_error", "<i2"), ("regular", "S1"), ("dim_info", "u1"), ("dim", "<i2", (8,)),
    ("intent_p1", "<f4"), ("intent_p2", "<f4"), ("intent_p3", "<f4"), ("intent_code", "<i2"),
    ("datatype", "<i2"), ("bitpix", "<i2"), ("slice_start", "<i2"), ("pixdim", "<f4", (8,)),
    ("vox_offset", "<f4"), ("scl_slope", "<f4"), ("scl_inter", "<f4"), ("slice_end", "<i2"),
    ("slice_code", "u1"), ("xyzt_units", "u1"), ("cal_max", "<f4"), ("cal_min", "<f4"),
    ("slice_duration", "<f4"), ("toffset", "<f4"), ("glmax", "<i4"), ("glmin", "<i4"),
    ("descrip", "S80"), ("aux_file", "S24"), ("qform_code", "<i2"), ("sform_code", "<i2"),
    ("quatern_b", "<f4"), ("quatern_c", "<f4"), ("quatern_d", "<f4"),
    ("qoffset_x", "<f4"), ("qoffset_y", "<f4"), ("qoffset_z", "<f4"),
    ("srow_x", "<f4", (4,)), ("srow_y", "<f4", (4,)), ("srow_z", "<f4", (4,)),
    ("intent_name", "S16"), ("magic", "S4"),
])
assert HEADER_DTYPE.itemsize == 348

#: NIfTI-1 datatype codes (nifti1.h) of the dtypes medconv writes.
DATATYPE_CODES = {
    np.dtype("uint8"): 2, np.dtype("int16"): 4, np.dtype("int32"): 8, np.dtype("float32"): 16,
    np.dtype("complex64"): 32, np.dtype("float64"): 64, np.dtype("int8"): 256, np.dtype("uint16"): 512,
    np.dtype("uint32"): 768, np.dtype("int64"): 1024, np.dtype("uint64"): 1280, np.dtype("complex128"): 1792,
}

UNITS_MM, UNITS_SEC = 2, 8
INTENT_LABEL = 1002
XFORM_SCANNER_ANAT = 1
#: Header plus the 4-byte "no extensions" flag: where the voxels start.
VOX_OFFSET = 352
MAX_DIM = 32767


def quaternion(rotation: np.ndarray) -> np.ndarray:
    """Unit quaternion ``(w, x, y, z)`` with ``w >= 0`` of a 3x3 rotation (Bar-Itzhack's eigenvector method)."""
    qxx, qyx, qzx, qxy, qyy, qzy, qxz, qyz, qzz = rotation.flat
    k = np.array([
        [qxx - qyy - qzz, 0, 0, 0],
        [qyx + qxy, qyy - qxx - qzz, 0, 0],
        [qzx + qxz, qzy + qyz, qzz - qxx - qyy, 0],
        [qyz - qzy, qzx - qxz, qxy - qyx, qxx + qyy + qzz],
    ]) / 3.0
    values, vectors = np.linalg.eigh(k)
    q = vectors[[3, 0, 1, 2], np.argmax(values)]
    return -q if q[0] < 0 else q


def nifti1_header(shape: tuple[int, ...], dtype: np.dtype, affine: np.ndarray, *, label: bool = False,
                  time_units: bool = True, time_step: float | None = None, description: str = "") -> bytes:
    """The NIfTI-1 single-file header for these voxels, followed by the empty extension flag.

    ``affine`` (RAS) goes into both sform and qform with code 1 (scanner);
    units are mm, and seconds when the 4th axis is time (``time_units``), with
    ``pixdim[4] = time_step`` (the repetition time) when known. A 4th axis that is
    not time (echoes, channels, diffusion weightings) has time units "unknown"
    and ``pixdim[4] = 1``, as NIfTI-1 leaves it (nifti1.h: xyzt_units describe
    pixdim[1..4]). No scaling (``scl_slope`` 0).
    """
    dtype = np.dtype(dtype).newbyteorder("=")
    if max(shape) > MAX_DIM:
        raise ValueError(f"dimensions {shape} exceed NIfTI-1's {MAX_DIM}: write NIfTI-2")
    header = np.zeros((), dtype=HEADER_DTYPE)
    header["sizeof_hdr"] = 348
    header["dim"] = [len(shape), *shape, *([1] * (7 - len(shape)))]
    header["datatype"] = DATATYPE_CODES[dtype]
    header["bitpix"] = dtype.itemsize * 8
    header["vox_offset"] = VOX_OFFSET
    header["xyzt_units"] = UNITS_MM | (UNITS_SEC if time_units else 0)
    header["descrip"] = description.encode()[:79]
    if label:
        header["intent_code"] = INTENT_LABEL
    affine = np.asarray(affine, dtype=np.float64)
    header["srow_x"], header["srow_y"], header["srow_z"] = affine[0], affine[1], affine[2]
    header["sform_code"] = header["qform_code"] = XFORM_SCANNER_ANAT
    linear = affine[:3, :3]
    zooms = np.sqrt(np.sum(linear * linear, axis=0))
    rotation = linear / zooms
    qfac = 1.0
    if np.linalg.det(rotation) <= 0:
        qfac = -1.0
        rotation[:, -1] *= -1
    u, _, vt = np.linalg.svd(rotation)
    q = quaternion(u @ vt)
    header["quatern_b"], header["quatern_c"], header["quatern_d"] = q[1:]
    header["qoffset_x"], header["qoffset_y"], header["qoffset_z"] = affine[:3, 3]
    pixdim = np.ones(8)
    pixdim[0], pixdim[1:4] = qfac, zooms
    if len(shape) > 3 and time_units and time_step and time_step > 0:
        pixdim[4] = time_step
    header["pixdim"] = pixdim
    header["magic"] = b"n+1"
    return header.tobytes() + b"\x00" * 4
