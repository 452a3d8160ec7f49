"""NIfTI-1, NIfTI-2 and Analyze 7.5 input: headers through nibabel, voxels read with bounds.

Affine choice (the same as nibabel's ``get_best_affine``): the sform when its code
is non-zero, else the qform when its code is non-zero, else the fallback built from
pixdim (recorded as a warning, since such a file has no real orientation). When the
sform has shear that spacing/origin/direction cannot express (or is not finite)
and a qform is set, the qform is used with a warning; with no usable alternative
the file is refused.

Voxels are read by :func:`_read_array` from the header's shape, type and offset,
never trusting them: the declared voxels are checked against
``ReadOptions.max_voxels``, an uncompressed file against the bytes it holds, and a
``.gz`` is inflated into the final buffer and stops at the declared size
(:mod:`medconv.readers.bounded_io`), so a 57-byte ``.nii.gz`` declaring 32767³ voxels
fails at once. nibabel's scaling rules are kept (``scl_slope`` 0 or not finite: no
scaling); a rescale that makes values non-finite fails (:mod:`medconv.pixels`).
"""

from __future__ import annotations

import os
from typing import Iterator

import numpy as np

from ..errors import GeometryError, InvalidVolumeError, MedconvError, UnreadableFileError, UnsupportedFormatError
from ..geometry import LPS_TO_RAS, axis_codes, geometry_from_affine
from ..labels import compact_labels, decide_kind
from ..options import ReadOptions
from ..pixels import apply_rescale
from ..source import InfoKey, Source
from ..volume import Volume
from .bounded_io import check_data_size, inflate, read_into
from .files import check_dataset_file, check_source, dataset_root, file_source_id, guarded_source, walk_files
from .limits import check_voxel_count, voxel_count
from .nifti_extensions import check_extensions

NIFTI_SUFFIXES = (".nii", ".nii.gz", ".hdr", ".hdr.gz", ".img", ".img.gz")
_LABEL_INTENT = 1002  # NIFTI_INTENT_LABEL


class NiftiReader:
    """NIfTI (``.nii``, ``.nii.gz``), NIfTI pairs and Analyze (``.hdr``/``.img``)."""

    name = "nifti"
    suffixes = NIFTI_SUFFIXES

    def sniff(self, path: str) -> bool:
        try:
            import gzip

            opener = gzip.open if str(path).lower().endswith(".gz") else open
            with opener(path, "rb") as handle:
                head = handle.read(348)
        except Exception:
            return False
        if len(head) < 348:
            return False
        if head[344:348] in (b"n+1\x00", b"ni1\x00") or head[4:8] in (b"n+2\x00", b"ni2\x00"):
            return True
        size = int.from_bytes(head[:4], "little"), int.from_bytes(head[:4], "big")
        return 348 in size or 540 in size  # Analyze 7.5 / NIfTI-2 header size

    def discover(self, root: str) -> Iterator[Source]:
        """Every NIfTI/Analyze file under ``root``, with header facts in ``info`` (no voxels read)."""
        for path, suffix in walk_files(root, NIFTI_SUFFIXES):
            if suffix.startswith(".img"):
                continue  # the data half of a pair; found through its .hdr
            yield guarded_source(self.name, path, root, suffix, lambda: self._describe(path, root, suffix))

    def _describe(self, path: str, root: str, suffix: str) -> Source:
        relative = os.path.relpath(path, root) if os.path.isdir(root) else os.path.basename(path)
        try:
            info = _header_info(_load(path), relative)
        except MedconvError as exc:
            info = {InfoKey.ERROR: exc.one_line()}
        return Source(id=file_source_id(path, root, suffix), reader=self.name, paths=(path,),
                      root=root if os.path.isdir(root) else "", info=info)

    def read(self, source: Source, options: ReadOptions = ReadOptions()) -> Volume:
        check_source(source, options)
        path = source.path
        if path.lower().endswith((".img", ".img.gz")):
            path = path[: -len(".img")] + ".hdr" if path.lower().endswith(".img") else path[:-7] + ".hdr.gz"
        image = _load(path)
        header = image.header
        warnings: list[str] = []
        spacing, origin, direction, affine_kind = _geometry(image, path, warnings)
        array = _read_array(image, path, dataset_root(source), options)
        while array.ndim > 4 and array.shape[-1] == 1:
            array = array[..., 0]
        if array.ndim > 4:
            raise InvalidVolumeError(f"{array.ndim}-dimensional images are not supported (shape {array.shape})")
        intent = int(header["intent_code"]) if "intent_code" in header else 0
        units = _xyzt_units(header, warnings)
        if intent == _LABEL_INTENT and options.kind is None:
            kind, kind_reason = "label", "NIfTI intent is label"
        else:
            kind, kind_reason = decide_kind(source.relative_path, array, options)
        if kind == "label":
            array = compact_labels(array)
        meta = {
            "source_format": self.name,
            "source_files": list(source.paths),
            "warnings": warnings,
            "header": {
                "affine_from": affine_kind,
                "descrip": _text(header.get("descrip")),
                "intent_code": intent,
                "kind_reason": kind_reason,
                "xyzt_units": list(units) if units else None,
            },
        }
        if array.ndim == 4:
            meta["axis4"] = "time" if units and units[1] != "unknown" else "volume"
        return Volume(array=array, spacing=spacing, origin=origin, direction=direction, kind=kind, meta=meta)


    def header_summary(self, path: str) -> dict:
        """Shape, dtype and geometry from the header alone (for ``info`` when the voxels are unreadable)."""
        image = _load(path)
        spacing, origin, direction, affine_kind = _geometry(image, path, [])
        return {"shape": list(image.shape), "dtype": str(image.get_data_dtype()), "spacing": spacing,
                "origin": origin, "direction": direction, "affine_from": affine_kind}


def _header_info(image, relpath: str) -> dict:
    """Facts for planning and ``medconv scan`` from the header alone."""
    info = {InfoKey.SHAPE: list(image.shape), "dtype": str(image.get_data_dtype().newbyteorder("=").name)}
    try:
        spacing, _, direction, affine_kind = _geometry(image, relpath, [])
        info.update(spacing=list(spacing), axes=axis_codes(direction), affine_from=affine_kind)
    except MedconvError as exc:
        info[InfoKey.ERROR] = exc.one_line()
    intent = int(image.header["intent_code"]) if "intent_code" in image.header else 0
    info["kind_guess"] = "label" if intent == _LABEL_INTENT else decide_kind(relpath, None)[0]
    info["4d"] = len(image.shape) > 3 and image.shape[3] > 1
    data_file = image.file_map["image"].filename
    if data_file and not os.path.exists(data_file):
        info[InfoKey.ERROR] = f"the data file {os.path.basename(data_file)!r} does not exist"
    return info


def _load(path: str):
    import nibabel as nib

    try:
        check_extensions(path)  # before nibabel reads every extension into memory
        image = nib.load(path)
    except FileNotFoundError as exc:
        raise UnreadableFileError("the file does not exist", path) from exc
    except UnreadableFileError:
        raise
    except Exception as exc:
        raise UnreadableFileError(f"not a readable NIfTI/Analyze file ({exc})", path) from exc
    if not isinstance(image, (nib.Nifti1Image, nib.Nifti2Image, nib.AnalyzeImage)):
        raise UnsupportedFormatError(f"{type(image).__name__} is not a volume image", path,
                                     "CIFTI and other non-volume NIfTI variants are not converted")
    return image


def _geometry(image, path: str, warnings: list[str]):
    """``(spacing, origin, direction, affine_kind)`` in LPS, following the documented sform/qform choice."""
    affine_ras, affine_kind = _choose_affine(image, path, warnings)
    try:
        spacing, origin, direction = geometry_from_affine(LPS_TO_RAS @ affine_ras)
    except InvalidVolumeError as exc:
        finite = bool(np.all(np.isfinite(affine_ras)))
        problem = "has shear, which medconv cannot represent" if finite else "holds values that are not finite"
        alternative = _qform_if_set(image, path, [])
        if alternative is None or affine_kind != "sform":
            raise GeometryError(f"the {affine_kind} {problem}", path,
                                "resample the image onto an orthogonal grid first" if finite else
                                "the header is corrupt; fix its sform/qform") from exc
        warnings[:] = [w for w in warnings if not w.startswith("sform and qform disagree")]
        warnings.append(f"the sform {'has shear' if finite else 'is not finite'}; used the qform instead")
        spacing, origin, direction = geometry_from_affine(LPS_TO_RAS @ alternative)
        affine_kind = "qform"
    return spacing, origin, direction, affine_kind


def _choose_affine(image, path: str, warnings: list[str]) -> tuple[np.ndarray, str]:
    header = image.header
    if hasattr(header, "get_sform"):
        sform, scode = header.get_sform(coded=True)
        if scode:
            qform = _qform_if_set(image, path, warnings)
            if qform is not None and not np.allclose(qform, sform, atol=1e-3):
                warnings.append("sform and qform disagree; used the sform (as nibabel does)")
            return sform, "sform"
        qform = _qform_if_set(image, path, None)
        if qform is not None:
            return qform, "qform"
        warnings.append("no sform or qform: orientation unknown, used the pixdim fallback affine")
        return header.get_base_affine(), "fallback"
    warnings.append("Analyze 7.5 has no orientation: used nibabel's default (radiological) affine")
    return image.affine, "analyze"


def _qform_if_set(image, path: str, warnings: list[str] | None):
    """The qform when its code is set, else ``None``.

    Quaternions that are not a rotation (b² + c² + d² > 1: nibabel raises
    ``ValueError``) are an error when the qform is the affine to use
    (``warnings`` is ``None``), and otherwise ignored with a warning (the sform is used,
    as nibabel does).
    """
    header = image.header
    if not hasattr(header, "get_qform"):
        return None
    try:
        qform, qcode = header.get_qform(coded=True)
    except ValueError as exc:
        problem = f"the qform's quaternion (quatern_b, c, d) is not a rotation ({exc})"
        if warnings is None:
            raise GeometryError(problem, path, "the header is corrupt; fix its qform") from exc
        warnings.append(f"{problem}: ignored it")
        return None
    return qform if qcode else None


def _read_array(image, path: str, root: str, options: ReadOptions) -> np.ndarray:
    """The voxels (scaled as nibabel scales them), read from the header's shape, type and offset with bounds.

    ``path`` is the header file; its data file (itself, or the ``.img`` of a pair)
    must be a regular file inside ``root`` unless ``options.follow_outside``.
    """
    proxy = image.dataobj  # nibabel's ArrayProxy: the data file, offset, shape, on-disk type and order
    shape = tuple(int(s) for s in proxy.shape)
    dtype = np.dtype(proxy.dtype)
    if not shape or any(s <= 0 for s in shape):
        raise UnreadableFileError(f"the header declares the shape {shape}, which holds no voxels", path,
                                  "the header's dim field is corrupt; download the file again")
    check_voxel_count(shape, path, options)
    data_file = proxy.file_like
    if not isinstance(data_file, str):  # pragma: no cover - nib.load of a path always gives one
        raise UnreadableFileError("nibabel names no data file for this header", path)
    if not os.path.lexists(data_file):
        raise UnreadableFileError(f"the data file {os.path.basename(data_file)!r} does not exist", path,
                                  "a .hdr needs its .img beside it")
    if data_file != path:
        check_dataset_file(data_file, root, follow_outside=options.follow_outside, referrer=path, role="data file")
    offset = int(proxy.offset)
    minimum = getattr(image.header, "single_vox_offset", 0) if data_file == path else 0
    if offset < minimum:  # nibabel reads the header's own bytes as voxels here
        raise UnreadableFileError(f"vox_offset = {offset} puts the voxels inside the header (a .nii needs at "
                                  f"least {minimum})", path, "the header is corrupt; fix vox_offset")
    nbytes = voxel_count(shape) * dtype.itemsize
    what = f"the data file {os.path.basename(data_file)!r}" if data_file != path else "the voxel data"
    try:
        with open(data_file, "rb") as handle:
            if data_file.lower().endswith(".gz"):
                buffer = np.frombuffer(inflate(handle, nbytes, path, what=what, skip=offset, exact=False), dtype)
            else:
                check_data_size(data_file, offset, nbytes, path, what=what)
                buffer = np.empty(voxel_count(shape), dtype)
                handle.seek(offset)
                read_into(handle, memoryview(buffer.view(np.uint8)).cast("B"), path, what)
    except OSError as exc:
        raise UnreadableFileError(f"cannot read {what} ({exc.strerror or exc})", path) from exc
    raw = buffer.reshape(shape, order=proxy.order)
    if dtype.byteorder == ">" or (dtype.byteorder == "=" and not np.little_endian):
        raw = raw.astype(dtype.newbyteorder("="))
    slope = getattr(proxy, "slope", 1.0)
    inter = getattr(proxy, "inter", 0.0)
    slope = 1.0 if slope is None or not np.isfinite(slope) or slope == 0 else float(slope)
    inter = 0.0 if inter is None or not np.isfinite(inter) else float(inter)
    if slope == 1.0 and inter == 0.0:
        return raw
    return apply_rescale(raw, slope, inter, path=path)


def _xyzt_units(header, warnings: list[str]) -> tuple[str, str] | None:
    """nibabel's ``(space, time)`` unit names, or ``None`` (Analyze has none); a code NIfTI does not
    define is ignored with a warning (nibabel raises ``KeyError`` for it)."""
    if not hasattr(header, "get_xyzt_units"):
        return None
    try:
        return tuple(header.get_xyzt_units())
    except (KeyError, ValueError):
        warnings.append(f"xyzt_units = {int(header['xyzt_units'])} holds a unit code NIfTI does not define: ignored")
        return ("unknown", "unknown")


def _text(value) -> str | None:
    if value is None:
        return None
    value = np.asarray(value).item()
    if isinstance(value, bytes):
        value = value.decode("latin-1", "replace")
    return value.strip("\x00 ") or None
