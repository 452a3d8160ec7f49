"""MetaImage input: ``.mhd`` + ``.raw``/``.zraw``, and ``.mha`` with local or external data.

Geometry follows ITK (and so SimpleITK), whose world frame is LPS+ like medconv's:

* ``Offset`` (or ``Origin``/``Position``) is the LPS position of voxel ``(0, 0, 0)``;
* ``ElementSpacing`` (else ``ElementSize``, else 1 mm with a warning) the spacing;
* ``TransformMatrix`` is stored **transposed** relative to ITK's direction: its
  row ``n`` (as written, row-major) is the LPS direction of axis ``n``, so
  ``direction = TransformMatrix.reshape(N, N).T``. The tests check this against
  SimpleITK on an oblique matrix;
* ``AnatomicalOrientation`` is ignored on reading, as ITK does; when it disagrees
  with the direction a warning says so;
* a 2D image keeps a 2D array ``(i, j)`` with spacing 1 mm and origin 0 along ``k``;
  a 4D image becomes ``(i, j, k, t)`` (``meta["axis4"] = "time"``); a multi-channel
  image (``ElementNumberOfChannels > 1``) becomes ``(i, j, k, c)`` with
  ``meta["axis4"] = "channel"`` (a 2D one gets ``k = 1``).

Voxels are read straight into a C-ordered ``(k, j, i)`` buffer (see
:mod:`medconv.readers.metaimage_header`) and exposed as its transposed view, so
writing NIfTI needs no copy. Label masks are recognised by :mod:`medconv.labels`
and stored in the smallest integer type.
"""

from __future__ import annotations

import os
from typing import Any, Iterator

import numpy as np

from ..errors import GeometryError, MedconvError
from ..geometry import axis_codes, orthonormal_deviation, orthonormalize
from ..labels import compact_labels, decide_kind
from ..options import ReadOptions
from ..source import InfoKey, Source
from ..volume import Volume
from .files import (check_dataset_file, check_source, dataset_root, file_source_id, guarded_source, is_inside,
                    walk_files)
from .metaimage_header import MetaHeader, check_data_files_exist, parse_header, read_voxels

METAIMAGE_SUFFIXES = (".mhd", ".mha")

#: Direction matrices this close to orthonormal are cleaned silently (float text round-off).
_ROUNDING_TOLERANCE = 1e-4
#: Up to this deviation the matrix is orthonormalized with a warning; beyond, it is shear.
_SHEAR_TOLERANCE = 1e-2

_MODALITIES = {"MET_MOD_CT": "CT", "MET_MOD_MR": "MR", "MET_MOD_NM": "NM", "MET_MOD_US": "US", "MET_MOD_OTHER": None}
_FROM_LETTER = {"L": "R", "R": "L", "P": "A", "A": "P", "S": "I", "I": "S"}
_SNIFF_KEYS = (b"ndims", b"dimsize", b"elementtype", b"elementdatafile", b"objecttype")


def header_geometry(header: MetaHeader) -> tuple[tuple[float, float, float], tuple[float, float, float], np.ndarray, list[str]]:
    """``(spacing, origin, direction, warnings)`` in LPS, from a parsed header (see the module notes)."""
    warnings: list[str] = []
    spatial = min(header.ndim, 3)
    spacing = list(header.spacing[:spatial]) + [1.0] * (3 - spatial)
    origin = list(header.offset[:spatial]) + [0.0] * (3 - spatial)
    direction = np.eye(3)
    if header.matrix is not None:
        matrix = header.matrix
        if header.ndim == 4 and (np.abs(matrix[3, :3]).max() > 1e-6 or np.abs(matrix[:3, 3]).max() > 1e-6):
            raise GeometryError("the TransformMatrix mixes the 4th axis with space", header.path,
                                "medconv keeps the 4th axis as time/channels; resample the image in ITK first")
        direction[:spatial, :spatial] = matrix[:spatial, :spatial].T  # stored transposed (see module notes)
    deviation = orthonormal_deviation(direction)
    if not np.all(np.isfinite(direction)) or deviation > _SHEAR_TOLERANCE or abs(np.linalg.det(direction)) < 0.5:
        raise GeometryError(f"the TransformMatrix is not a rotation (deviation from orthonormal {deviation:.2g})",
                            header.path, "a sheared grid cannot be converted as it is: fix the TransformMatrix if it "
                            "is corrupt, or resample the image onto an orthogonal grid first (ITK / SimpleITK)")
    if deviation > _ROUNDING_TOLERANCE:
        warnings.append(f"the TransformMatrix was {deviation:.2g} from orthonormal: orthonormalized it")
    if deviation > 0:
        direction = orthonormalize(direction)
    if any(s <= 0 for s in spacing):
        raise GeometryError(f"ElementSpacing {header.spacing} is not positive", header.path,
                            "fix ElementSpacing in the header")
    orientation = (header.get("AnatomicalOrientation") or "").strip().upper()
    if len(orientation) == 3 and "?" not in orientation and spatial == 3:
        expected = "".join(_FROM_LETTER[c] for c in axis_codes(direction))
        if orientation != expected:
            warnings.append(f"AnatomicalOrientation = {orientation} disagrees with the TransformMatrix "
                            f"(which means {expected}); used the TransformMatrix, as ITK does")
    return (tuple(spacing), tuple(origin), direction, warnings)


def _volume_axes(buffer: np.ndarray, header: MetaHeader) -> tuple[np.ndarray, str | None]:
    """The ``(i, j, k[, t|c])`` view of a C-ordered MetaIO buffer, and the 4th axis' meaning."""
    if header.channels > 1:
        if header.ndim == 4:
            raise GeometryError("a 4D image with several channels per voxel has 5 axes", header.path,
                                "medconv volumes have at most 4 axes; split the channels first")
        spatial = buffer.ndim - 1
        view = buffer.transpose(tuple(range(spatial - 1, -1, -1)) + (spatial,))
        if spatial == 2:
            view = view[:, :, np.newaxis, :]
        return view, "channel"
    return buffer.T, "time" if header.ndim == 4 else None


def check_data_files(header: MetaHeader, root: str, options: ReadOptions) -> None:
    """Refuse data files that are missing, special (``/dev/zero``) or outside ``root`` (see
    :func:`medconv.readers.files.check_dataset_file`; ``options.follow_outside`` allows the last)."""
    check_data_files_exist(header)
    for name in header.data_files:
        check_dataset_file(name, root, follow_outside=options.follow_outside, referrer=header.path, role="data file")


def read_metaimage(path: str | os.PathLike, options: ReadOptions = ReadOptions(), relpath: str | None = None,
                   source_files: tuple[str, ...] | None = None, root: str | None = None) -> Volume:
    """Read one ``.mhd``/``.mha`` file into a Volume.

    Parameters
    ----------
    path:
        The header file.
    options:
        ``kind`` and ``label_patterns`` decide label recognition (:mod:`medconv.labels`);
        ``max_voxels`` and ``follow_outside`` bound what the header may make it read.
    relpath:
        The path relative to the dataset root, for label patterns (default: the file name).
    root:
        The dataset folder its data files must stay inside (default: the header's folder).
    """
    path = os.fspath(path)
    header = parse_header(path)
    check_data_files(header, root or os.path.dirname(os.path.abspath(path)), options)
    spacing, origin, direction, warnings = header_geometry(header)
    buffer = read_voxels(header, options)
    array, axis4 = _volume_axes(buffer, header)
    if header.data_files and len(header.data_files) == 1:
        size = os.path.getsize(header.data_files[0])
        if header.compressed and header.compressed_size and size != header.compressed_size:
            warnings.append(f"CompressedDataSize = {header.compressed_size} but the data file has {size} bytes: "
                            "inflated the whole file (ITK stops at CompressedDataSize and leaves the last voxels undefined)")
        if not header.compressed and header.header_size == 0 and size > header.nbytes:
            warnings.append(f"the data file has {size - header.nbytes} bytes more than the header describes; "
                            "read the first ones (as ITK does)")
    kind, reason = decide_kind(relpath or os.path.basename(path), array, options)
    if kind == "label":
        compact = compact_labels(array)
        if compact.dtype.kind == "f":
            warnings.append("label mask with non-integer values: kept as float")
        array = compact
    meta: dict[str, Any] = {
        "source_format": "metaimage",
        "source_files": list(source_files or (path,) + header.data_files),
        "warnings": list(header.warnings) + warnings,
        "header": _header_meta(header, kind_reason=reason),
    }
    modality = _MODALITIES.get((header.get("Modality") or "").upper())
    if modality:
        meta["modality"] = modality
    if axis4:
        meta["axis4"] = axis4
    return Volume(array=array, spacing=spacing, origin=origin, direction=direction, kind=kind, meta=meta)


def _header_meta(header: MetaHeader, **extra: Any) -> dict[str, Any]:
    kept = {key: value for key, value in header.fields.items() if key.lower() != "elementdatafile" or len(value) < 200}
    kept.update(extra)
    return kept


def header_info(header: MetaHeader, relpath: str, options: ReadOptions = ReadOptions()) -> dict[str, Any]:
    """Facts for planning and ``medconv scan``, from the header alone (no voxels read)."""
    spacing, _, direction, _ = header_geometry(header)
    kind, reason = decide_kind(relpath, None, options)
    return {
        InfoKey.SHAPE: list(header.shape) + ([header.channels] if header.channels > 1 else []),
        "spacing": list(spacing),
        "element_type": header.element_type,
        "dtype": header.dtype.newbyteorder("=").name,
        "compressed": header.compressed,
        "local_data": header.local,
        "data_files": [os.path.basename(p) for p in header.data_files[:3]] + (["..."] if len(header.data_files) > 3 else []),
        "axes": axis_codes(direction),
        "kind_guess": kind,
        "kind_reason": reason,
        "4d": header.ndim == 4 or header.channels > 1,
        **({InfoKey.MODALITY: _MODALITIES[header.get("Modality").upper()]}
           if _MODALITIES.get((header.get("Modality") or "").upper()) else {}),
    }


class MetaImageReader:
    """MetaImage (``.mhd``, ``.mha``) files; see the module notes for the geometry."""

    name = "metaimage"
    suffixes = METAIMAGE_SUFFIXES

    def sniff(self, path: str) -> bool:
        try:
            with open(path, "rb") as handle:
                head = handle.read(4096).lower()
        except Exception:
            return False
        first = head.split(b"\n", 1)[0]
        return b"=" in first and sum(key in head for key in _SNIFF_KEYS) >= 3

    def discover(self, root: str) -> Iterator[Source]:
        """Every ``.mhd``/``.mha`` under ``root``, with header facts in ``info``.

        A header that cannot be parsed (whatever the parser raises) still yields a
        Source whose ``info`` holds ``error``, so that the batch reports that one file
        and goes on; a data file outside ``root`` is named there too. ``paths`` lists
        the header and those of its data files that exist.
        """
        dataset = root if os.path.isdir(root) else ""
        for path, suffix in walk_files(root, METAIMAGE_SUFFIXES):
            yield guarded_source(self.name, path, root, suffix, lambda: self._describe(path, root, dataset, suffix))

    def _describe(self, path: str, root: str, dataset: str, suffix: str) -> Source:
        relative = os.path.relpath(path, root) if dataset else os.path.basename(path)
        paths: tuple[str, ...] = (path,)
        info: dict[str, Any] = {"kind_guess": decide_kind(relative, None)[0]}
        try:
            header = parse_header(path)
            info = header_info(header, relative)
            base = dataset or os.path.dirname(os.path.abspath(path))
            paths += tuple(p for p in header.data_files if os.path.exists(p) and is_inside(p, base))
            check_data_files(header, base, ReadOptions())  # an outside data file is named in info[InfoKey.ERROR]
        except MedconvError as exc:
            info = {**info, InfoKey.ERROR: exc.one_line()}
        return Source(id=file_source_id(path, root, suffix), reader=self.name, paths=paths, root=dataset, info=info)

    def read(self, source: Source, options: ReadOptions = ReadOptions()) -> Volume:
        check_source(source, options)
        return read_metaimage(source.path, options, relpath=source.relative_path, root=dataset_root(source))
