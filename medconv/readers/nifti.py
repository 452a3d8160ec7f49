"""NIfTI-1, NIfTI-2 and Analyze 7.5 input through nibabel.

Affine choice (the same as nibabel's ``get_best_affine``): the sform when its code
is non-zero, else the qform when its code is non-zero, else the fallback built from
pixdim (recorded as a warning, since such a file has no real orientation). When the
sform has shear that spacing/origin/direction cannot express and a qform is set,
the qform is used with a warning; with no usable alternative the file is refused.
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
from ..source import Source
from ..volume import Volume
from .files import file_source_id, walk_files

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
            relative = os.path.relpath(path, root) if os.path.isdir(root) else os.path.basename(path)
            try:
                info = _header_info(_load(path), relative)
            except MedconvError as exc:
                info = {"error": exc.one_line()}
            yield Source(id=file_source_id(path, root, suffix), reader=self.name, paths=(path,),
                         root=root if os.path.isdir(root) else "", info=info)

    def read(self, source: Source, options: ReadOptions = ReadOptions()) -> Volume:
        path = source.path
        if path.lower().endswith((".img", ".img.gz")):
            path = path[: -len(".img")] + ".hdr" if path.lower().endswith(".img") else path[:-7] + ".hdr.gz"
        image = _load(path)
        header = image.header
        warnings: list[str] = []
        spacing, origin, direction, affine_kind = _geometry(image, path, warnings)
        try:
            array = _read_array(image)
        except FileNotFoundError as exc:
            raise UnreadableFileError(f"the data file {os.path.basename(exc.filename or '')!r} does not exist", path,
                                      "a .hdr needs its .img beside it") from exc
        except (OSError, ValueError, EOFError) as exc:
            raise UnreadableFileError(f"the voxel data cannot be read ({exc})", path,
                                      "the file is probably truncated; download it again") from exc
        while array.ndim > 4 and array.shape[-1] == 1:
            array = array[..., 0]
        if array.ndim > 4:
            raise InvalidVolumeError(f"{array.ndim}-dimensional images are not supported (shape {array.shape})")
        intent = int(header["intent_code"]) if "intent_code" in header else 0
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
                "xyzt_units": list(header.get_xyzt_units()) if hasattr(header, "get_xyzt_units") else None,
            },
        }
        if array.ndim == 4:
            meta["axis4"] = "time" if header.get_xyzt_units()[1] != "unknown" else "volume"
        return Volume(array=array, spacing=spacing, origin=origin, direction=direction, kind=kind, meta=meta)


    def header_summary(self, path: str) -> dict:
        """Shape, dtype and geometry from the header alone (for ``info`` when the voxels are unreadable)."""
        image = _load(path)
        spacing, origin, direction, affine_kind = _geometry(image, path, [])
        return {"shape": list(image.shape), "dtype": str(image.get_data_dtype()), "spacing": spacing,
                "origin": origin, "direction": direction, "affine_from": affine_kind}


def _header_info(image, relpath: str) -> dict:
    """Facts for planning and ``medconv scan`` from the header alone."""
    info = {"shape": list(image.shape), "dtype": str(image.get_data_dtype().newbyteorder("=").name)}
    try:
        spacing, _, direction, affine_kind = _geometry(image, relpath, [])
        info.update(spacing=list(spacing), axes=axis_codes(direction), affine_from=affine_kind)
    except MedconvError as exc:
        info["error"] = exc.one_line()
    intent = int(image.header["intent_code"]) if "intent_code" in image.header else 0
    info["kind_guess"] = "label" if intent == _LABEL_INTENT else decide_kind(relpath, None)[0]
    info["4d"] = len(image.shape) > 3 and image.shape[3] > 1
    data_file = image.file_map["image"].filename
    if data_file and not os.path.exists(data_file):
        info["error"] = f"the data file {os.path.basename(data_file)!r} does not exist"
    return info


def _load(path: str):
    import nibabel as nib

    try:
        image = nib.load(path)
    except FileNotFoundError as exc:
        raise UnreadableFileError("the file does not exist", path) from exc
    except Exception as exc:
        raise UnreadableFileError(f"not a readable NIfTI/Analyze file ({exc})", path) from exc
    if not isinstance(image, (nib.Nifti1Image, nib.Nifti2Image, nib.AnalyzeImage)):
        raise UnsupportedFormatError(f"{type(image).__name__} is not a volume image", path,
                                     "CIFTI and other non-volume NIfTI variants are not converted")
    return image


def _geometry(image, path: str, warnings: list[str]):
    """``(spacing, origin, direction, affine_kind)`` in LPS, following the documented sform/qform choice."""
    affine_ras, affine_kind = _choose_affine(image, warnings)
    try:
        spacing, origin, direction = geometry_from_affine(LPS_TO_RAS @ affine_ras)
    except InvalidVolumeError as exc:
        alternative = _qform_if_set(image)
        if alternative is None or affine_kind != "sform":
            raise GeometryError(f"the {affine_kind} has shear, which medconv cannot represent", path,
                                "resample the image onto an orthogonal grid first") from exc
        warnings.append("the sform has shear; used the qform instead")
        spacing, origin, direction = geometry_from_affine(LPS_TO_RAS @ alternative)
        affine_kind = "qform"
    return spacing, origin, direction, affine_kind


def _choose_affine(image, warnings: list[str]) -> tuple[np.ndarray, str]:
    header = image.header
    if hasattr(header, "get_sform"):
        sform, scode = header.get_sform(coded=True)
        if scode:
            qform = _qform_if_set(image)
            if qform is not None and not np.allclose(qform, sform, atol=1e-3):
                warnings.append("sform and qform disagree; used the sform (as nibabel does)")
            return sform, "sform"
        qform = _qform_if_set(image)
        if qform is not None:
            return qform, "qform"
        warnings.append("no sform or qform: orientation unknown, used the pixdim fallback affine")
        return header.get_base_affine(), "fallback"
    warnings.append("Analyze 7.5 has no orientation: used nibabel's default (radiological) affine")
    return image.affine, "analyze"


def _qform_if_set(image):
    header = image.header
    if not hasattr(header, "get_qform"):
        return None
    qform, qcode = header.get_qform(coded=True)
    return qform if qcode else None


def _read_array(image) -> np.ndarray:
    proxy = image.dataobj
    slope = getattr(proxy, "slope", 1.0)
    inter = getattr(proxy, "inter", 0.0)
    slope = 1.0 if slope is None or not np.isfinite(slope) or slope == 0 else float(slope)
    inter = 0.0 if inter is None or not np.isfinite(inter) else float(inter)
    raw = np.asanyarray(proxy.get_unscaled()) if hasattr(proxy, "get_unscaled") else np.asanyarray(proxy)
    if raw.dtype.byteorder == ">" or (raw.dtype.byteorder == "=" and not np.little_endian):
        raw = raw.astype(raw.dtype.newbyteorder("="))
    if slope == 1.0 and inter == 0.0:
        return raw
    return apply_rescale(raw, slope, inter)


def _text(value) -> str | None:
    if value is None:
        return None
    value = np.asarray(value).item()
    if isinstance(value, bytes):
        value = value.decode("latin-1", "replace")
    return value.strip("\x00 ") or None
