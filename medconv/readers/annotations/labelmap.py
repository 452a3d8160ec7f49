"""The output side shared by every annotation reader: masks -> label volumes.

A reader hands over one :class:`RoiMask` per label (a boolean crop placed on the
image grid, so a small nodule costs kilobytes on a 512x512x300 grid) and the
label table; :func:`label_outputs` makes the volumes for the requested layout:

* ``map``: one volume, consecutive values 1..N in table order, uint8 (uint16 past
  255 labels). Where labels overlap, **the smaller one wins** (fewer voxels; equal
  size: the lower value), so a structure drawn inside another (a tumour in an
  organ) stays visible; each overlap adds a warning naming both labels and the
  voxels the larger one lost.
* ``split``: one binary uint8 volume per label (values 0/1).
* ``stack``: one 4D uint8 one-hot volume ``(i, j, k, N)``, channel ``n`` holding
  label ``n + 1`` (``meta["axis4"] = "channel"``). Chosen over plastimatch's
  bit-packed uint32 because every NIfTI reader, viewer, MONAI and TorchIO load it
  as channels with no bit decoding, and gzip shrinks the zero channels to almost
  nothing; bit-packing would cap it at 32 labels and need a decoder downstream.

Float fractions (FRACTIONAL SEG kept as floats) go through ``split`` / ``stack`` as
float32.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ...image_reference import ImageReference
from ...volume import Volume
from .lidc_xml import LIDC_LABEL
from .model import AnnotationKind, LabelEntry, LabelOutput, OutputRole
from .options import MaskLayout


@dataclass(frozen=True)
class RoiMask:
    """One label's voxels: ``array`` (bool, or float32 fractions) placed at ``offset`` on the grid."""

    offset: tuple[int, int, int]
    array: np.ndarray

    @classmethod
    def empty(cls) -> "RoiMask":
        """A mask with no voxel."""
        return cls((0, 0, 0), np.zeros((0, 0, 0), dtype=bool))

    @classmethod
    def from_slices(cls, slices: Mapping[int, np.ndarray], shape: tuple[int, int, int]) -> "RoiMask":
        """A mask from full ``(ni, nj)`` boolean slices by slice index, cropped to its bounding box."""
        filled = {k: plane for k, plane in slices.items() if plane.any()}
        if not filled:
            return cls.empty()
        ks = sorted(filled)
        rows = np.any(np.stack([filled[k] for k in ks]), axis=0)
        i_any, j_any = np.nonzero(rows.any(axis=1))[0], np.nonzero(rows.any(axis=0))[0]
        i0, i1, j0, j1 = int(i_any[0]), int(i_any[-1]) + 1, int(j_any[0]), int(j_any[-1]) + 1
        array = np.zeros((i1 - i0, j1 - j0, ks[-1] - ks[0] + 1), dtype=bool)
        for k in ks:
            array[:, :, k - ks[0]] = filled[k][i0:i1, j0:j1]
        return cls((i0, j0, ks[0]), array)

    @classmethod
    def from_dense(cls, dense: np.ndarray) -> "RoiMask":
        """A mask from a full-grid array (bool or float), cropped to its non-zero bounding box."""
        nonzero = [np.nonzero(np.any(dense != 0, axis=tuple(a for a in range(3) if a != axis)))[0]
                   for axis in range(3)]
        if any(len(n) == 0 for n in nonzero):
            return cls.empty()
        box = tuple(slice(int(n[0]), int(n[-1]) + 1) for n in nonzero)
        return cls(tuple(int(b.start) for b in box), np.ascontiguousarray(dense[box]))

    def shifted(self, by: tuple[int, int, int]) -> "RoiMask":
        """The same voxels with the crop moved by ``by`` voxels (a crop made in a sub-box placed on the grid)."""
        if not self.array.size:
            return self
        return RoiMask(tuple(int(o + b) for o, b in zip(self.offset, by)), self.array)

    @property
    def voxels(self) -> int:
        """Voxels in the mask (fractions: voxels with a non-zero fraction)."""
        return int(np.count_nonzero(self.array))

    @property
    def box(self) -> tuple[slice, slice, slice]:
        """Where the crop sits on the grid."""
        return tuple(slice(o, o + n) for o, n in zip(self.offset, self.array.shape))

    def dense(self, shape: tuple[int, int, int], dtype=bool) -> np.ndarray:
        """The mask on the whole grid (in NIfTI's memory order, :func:`grid_zeros`)."""
        out = grid_zeros(shape, dtype)
        if self.array.size:
            out[self.box] = self.array
        return out


def grid_zeros(shape: tuple[int, ...], dtype) -> np.ndarray:
    """A zero array of ``shape`` ``(i, j, k[, n])`` laid out with ``i`` fastest (Fortran order).

    That is the order the image readers produce and NIfTI stores, so a writer streams
    the label volume straight from memory instead of transposing it slab by slab (on a
    512 x 512 x 200 mask: 0.2 s saved per output).
    """
    return np.zeros(tuple(reversed(shape)), dtype=dtype).T


def label_dtype(count: int) -> np.dtype:
    """uint8 for up to 255 labels, uint16 beyond (never more than 65535)."""
    return np.dtype(np.uint8 if count <= 255 else np.uint16)


def suffix_name(text: str) -> str:
    """A label or object name as a file-name fragment: ``"GTV-1 (primary)"`` -> ``"GTV-1_primary"``."""
    cleaned = re.sub(r"[^A-Za-z0-9.+-]+", "_", text).strip("_.")
    return cleaned or "unnamed"


#: What each kind's outputs add to the image's name (the object suffix), before the output's own part.
_KIND_PREFIX = {AnnotationKind.RTSTRUCT: "_rtstruct", AnnotationKind.SEG: "_seg",
                AnnotationKind.LIDC_XML: f"_{LIDC_LABEL}"}


def object_suffix(kind: AnnotationKind, label: str) -> str:
    """The suffix an annotation object's outputs share: ``_rtstruct-<label>``, ``_seg-<label>`` or ``_lidc``.

    ``label`` is the object's StructureSetLabel (RTSTRUCT) or SeriesDescription (SEG);
    LIDC readings are always ``_lidc``. Discovery names the annotation unit with it, the
    readers name their outputs ``<object suffix><output part>`` (``_lidc-reader1``).
    """
    if kind is AnnotationKind.LIDC_XML:
        return _KIND_PREFIX[kind]
    return f"{_KIND_PREFIX[kind]}-{suffix_name(label)}"


def compose_map(masks: Sequence[RoiMask], entries: Sequence[LabelEntry],
                shape: tuple[int, int, int]) -> tuple[np.ndarray, list[str]]:
    """One label map from ``masks`` (value of each = its entry's value), with the overlap warnings.

    The smaller mask wins where masks overlap (ties: the lower value).
    """
    out = grid_zeros(shape, label_dtype(max((e.value for e in entries), default=0)))
    order = sorted(range(len(masks)), key=lambda n: (-masks[n].voxels, -entries[n].value))
    warnings: list[str] = []
    for n in order:  # largest first: each smaller one is painted over it
        mask, entry = masks[n], entries[n]
        if not mask.array.size:
            continue
        region = out[mask.box]
        inside = mask.array.astype(bool)
        covered = region[inside]
        for value, lost in zip(*np.unique(covered[covered != 0], return_counts=True)):
            loser = next(e for e in entries if e.value == int(value))
            warnings.append(f"labels overlap: {lost} voxels of {loser.name!r} (label {loser.value}) are drawn as "
                            f"{entry.name!r} (label {entry.value}), the smaller one; use masks split or stack "
                            "to keep both")
        region[inside] = entry.value
    return out, warnings


def label_outputs(masks: Sequence[RoiMask], entries: Sequence[LabelEntry], reference: ImageReference,
                  layout: MaskLayout, *, suffix: str, meta: Mapping[str, Any],
                  role: Optional[OutputRole] = None) -> tuple[list[LabelOutput], list[str]]:
    """The output volumes of one set of labels on ``reference.grid``, and the warnings composing them raised.

    Parameters
    ----------
    masks, entries:
        One mask per label table entry, in table order.
    layout:
        map, split or stack.
    suffix:
        Name suffix of the map / stack (``"_rtstruct-Contours"``); split outputs
        append ``_<value>-<label name>``.
    meta:
        Meta every output carries (source files, annotates, ...); ``labels`` and
        ``warnings`` are added.
    role:
        Role of the map output (default :attr:`OutputRole.MAP`).
    """
    shape = tuple(int(n) for n in reference.grid.shape)
    grid = reference.grid
    fractional = any(m.array.dtype.kind == "f" for m in masks)

    def volume(array: np.ndarray, labels: Sequence[LabelEntry], warnings: Sequence[str], **extra) -> Volume:
        volume_meta = dict(meta)
        volume_meta.update(extra)
        volume_meta["labels"] = [entry.as_meta() for entry in labels]
        volume_meta["annotates"] = reference.unit_id
        volume_meta["warnings"] = list(meta.get("warnings", ())) + list(warnings)
        return Volume(array, grid.spacing, grid.origin, grid.direction_matrix, kind="label", meta=volume_meta)

    if layout is MaskLayout.MAP:
        array, warnings = compose_map(masks, entries, shape)
        values = tuple(e.value for e in entries)
        return [LabelOutput(role or OutputRole.MAP, suffix, volume(array, entries, warnings), values)], warnings
    if layout is MaskLayout.SPLIT:
        outputs = []
        for mask, entry in zip(masks, entries):
            dtype = np.float32 if fractional else np.uint8
            array = mask.dense(shape, dtype)
            single = LabelEntry(1, entry.name, entry.color, entry.codes, entry.source, entry.number)
            outputs.append(LabelOutput(OutputRole.ROI, f"{suffix}_{entry.value}-{suffix_name(entry.name)}",
                                       volume(array, [single], []), (entry.value,)))
        return outputs, []
    stack = grid_zeros(shape + (max(len(masks), 1),), np.float32 if fractional else np.uint8)
    for channel, mask in enumerate(masks):
        if mask.array.size:
            stack[mask.box + (channel,)] = mask.array
    values = tuple(e.value for e in entries)
    return [LabelOutput(OutputRole.STACK, f"{suffix}_stack", volume(stack, entries, [], axis4="channel"),
                        values)], []
