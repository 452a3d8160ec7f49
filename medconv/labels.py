"""Recognising label masks, shared by every file reader.

A volume is a *label* mask (nearest-neighbour resampling, never windowed, written
as a compact integer type) when, in this order:

1. ``ReadOptions.kind`` says so (or says ``"intensity"``: the option always wins;
   a training export sets it from the pairing, which knows which side is the label);
2. its path relative to the dataset root names a label mask (see below).

Nothing else decides: the kind follows from what ``medconv scan`` sees too
(options and names; the NIfTI reader adds the header's label intent), so scan
and convert always agree. The content only **checks** a name's verdict: a file
named like a mask whose values cannot be labels (not integers, negative, more
than :data:`MAX_NAMED_LABEL_VALUES` distinct values) is refused with
:class:`~medconv.errors.LabelValuesError` saying how to read it as an image,
never silently read as one. An image the names call an image but whose content
looks like a label map (an integer type, at most :data:`FEW_VALUES` distinct
values, 0 among them) stays an image; when a resampling would interpolate it,
:func:`interpolation_warning` says so, naming the option that reads it as a
label map.

**Default names** (no ``--labels`` given) are matched by whole words, never by
substrings: each path component is split into words at every non-alphanumeric
character and at lower-to-upper case changes (``labelsTr`` -> ``labels``,
``Tr``). The file name is a label when any of its words is a label word
(:data:`LABEL_WORDS`, or ``seg`` followed by digits as in ``liver-seg001``, or a
word ending in ``mask``/``masks``); a folder is a label folder when its first or
last word is. So ``seg-lungs-LUNA16/``, ``labelsTr/``, ``VESSEL12_Lungmasks/``,
``masks/``, ``liver-seg001.mhd``, ``segmentation-0.nii`` and BIDS ``*_dseg``
files are labels, while ``unlabeled/``, ``imagesTs_masked_faces/`` and
``Task_Segmentation_CT/images/`` are not.

**Given patterns** (``ReadOptions.label_patterns``, ``--labels``) are shell globs
(case-insensitive, :mod:`fnmatch`):

* a pattern **without** ``/`` is matched against every component of the relative
  path on its own: folder names and the file name (with its suffix);
* a pattern **with** ``/`` is matched against the whole relative path (``/``
  separated; ``*`` crosses folders), e.g. ``masks/*_rad1.mhd``.

Only the path *below* the dataset root counts, so a dataset stored in a folder
called ``my_segmentation_project`` does not turn every image into a label.
"""

from __future__ import annotations

import enum
import fnmatch
import os
import re
from dataclasses import dataclass
from typing import Iterable, Literal, Optional

import numpy as np

from .errors import LabelValuesError
from .options import ReadOptions
from .pixels import smallest_integer_dtype

#: Words that name a label mask (lower case). They cover LUNA16
#: (``seg-lungs-LUNA16/``), Sliver07 (``liver-seg001.mhd``), LNDb (``masks/``),
#: VESSEL12 (``*_Lungmasks/``), the Medical Segmentation Decathlon (``labelsTr/``,
#: ``labelsTs/``), LiTS (``segmentation-0.nii``), KiTS (``segmentation.nii.gz``),
#: BIDS derivatives (``_dseg``, ``_mask``), FreeSurfer (``aseg``, ``aparc``),
#: parcellations (``Schaefer2018_400Parcels``) and ground-truth files (``_gt``).
LABEL_WORDS: frozenset[str] = frozenset({
    "seg", "segs", "segmentation", "segmentations", "dseg", "aseg", "aparc", "mask", "masks",
    "label", "labels", "labelmap", "labelmaps", "gt", "groundtruth", "parcels", "parcellation",
    "annotation", "annotations", "annot", "annots",
})

_SEG_NUMBER = re.compile(r"seg\d+$")
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z])(?=[A-Z])|(?<=[0-9])(?=[A-Za-z])")

#: Name matches need plausible label content: at most this many distinct values.
MAX_NAMED_LABEL_VALUES = 4096

#: At most this many distinct values (0 included) make :func:`looks_like_labels` say yes.
MAX_LABEL_VALUES = 16

#: Voxels sampled (evenly strided) before a full count of distinct values: an
#: intensity image is almost always refuted by the sample alone.
_SAMPLE_SIZE = 200_000
_CHUNK = 1 << 22

Kind = Literal["label", "intensity"]


def _components(relpath: str) -> list[str]:
    return [part for part in re.split(r"[\\/]+", relpath.lower()) if part and part != "."]


def _is_label_word(word: str) -> bool:
    return word in LABEL_WORDS or bool(_SEG_NUMBER.match(word)) or word.endswith(("mask", "masks"))


def _words(component: str) -> list[str]:
    return [word.lower() for word in _WORD_SPLIT.split(component) if word]


def _default_label_name(relpath: str) -> Optional[str]:
    """The component of ``relpath`` that names a label mask by the default word rule, if any."""
    parts = [part for part in re.split(r"[\\/]+", relpath) if part and part != "."]
    for index, part in enumerate(parts):
        is_file = index == len(parts) - 1
        words = _words(part.split(".")[0] if is_file else part)
        if not words:
            continue
        candidates = words if is_file else [words[0], words[-1]]
        if any(_is_label_word(word) for word in candidates):
            return part
    return None


def matching_label_pattern(relpath: str | os.PathLike, patterns: Optional[Iterable[str]] = None) -> Optional[str]:
    """What marks ``relpath`` as a label mask (see the module rules), or ``None``.

    With ``patterns`` ``None`` the default word rule applies and the component that
    matched is returned; otherwise the first matching glob pattern.
    """
    if patterns is None:
        return _default_label_name(os.fspath(relpath))
    parts = _components(os.fspath(relpath))
    whole = "/".join(parts)
    for pattern in patterns:
        lowered = pattern.lower().strip()
        if not lowered:
            continue
        if "/" in lowered.strip("/"):
            if fnmatch.fnmatchcase(whole, lowered.strip("/")):
                return pattern
        elif any(fnmatch.fnmatchcase(part, lowered.strip("/")) for part in parts):
            return pattern
    return None


def is_label_path(relpath: str | os.PathLike, patterns: Optional[Iterable[str]] = None) -> bool:
    """Whether the path below the dataset root names a label mask.

    Parameters
    ----------
    relpath:
        Path relative to the dataset root (``/`` or the OS separator).
    patterns:
        Glob patterns; ``None`` means the default word rule (see the module notes).
    """
    return matching_label_pattern(relpath, patterns) is not None


def _is_integral(array: np.ndarray) -> bool:
    if array.dtype.kind in "iub":
        return True
    if array.dtype.kind != "f":
        return False
    sample = _sample(array)
    if not (np.all(np.isfinite(sample)) and np.array_equal(sample, np.round(sample))):
        return False
    return bool(np.all(np.isfinite(array)) and np.array_equal(array, np.round(array)))


def _sample(array: np.ndarray) -> np.ndarray:
    flat = array.reshape(-1, order="A")  # no copy for C- or F-contiguous data
    step = max(1, flat.size // _SAMPLE_SIZE)
    return flat[::step]


def distinct_values(array: np.ndarray, limit: int = MAX_LABEL_VALUES) -> Optional[np.ndarray]:
    """The sorted distinct values of an integer ``array``, or ``None`` when there are more than ``limit``.

    Cheap for images: a strided sample refutes most intensity images; only a
    candidate mask is counted in full, chunk by chunk (bounded memory).
    """
    if array.size == 0:
        return np.zeros(0, dtype=array.dtype)
    if len(np.unique(_sample(array))) > limit:
        return None
    flat = array.reshape(-1, order="A")  # a view for C- or F-contiguous data
    if flat.dtype == np.bool_:  # by value: a bool's byte may be any non-zero value (a view of other bytes)
        return np.array([value for value, present in ((0, not flat.all()), (1, flat.any())) if present], np.uint8)
    low, high = int(flat.min()), int(flat.max())
    found: set[int] = set()
    for start in range(0, flat.size, _CHUNK):
        chunk = flat[start : start + _CHUNK]
        if high - low < 1 << 16:
            counts = np.bincount((chunk.astype(np.int64) - low) if chunk.dtype != np.uint8 else chunk)
            offset = 0 if chunk.dtype == np.uint8 else low
            found.update((np.nonzero(counts)[0] + offset).tolist())
        else:
            found.update(np.unique(chunk).tolist())
        if len(found) > limit:
            return None
    return np.array(sorted(found)).astype(array.dtype)


def looks_like_labels(array: np.ndarray, limit: int = MAX_LABEL_VALUES) -> bool:
    """Whether ``array``'s content looks like a label mask (a hint for people; it never decides the kind).

    An integer or boolean type, at most ``limit`` distinct values, one of them 0
    (the background every mask has). Floats never look like labels by content
    alone: a float file is a label only by name or option.
    """
    array = np.asarray(array)
    if array.dtype.kind not in "iub":
        return False
    values = distinct_values(array, limit)
    return values is not None and bool(np.any(values == 0))


class KindBasis(enum.Enum):
    """What decided a volume's kind."""

    OPTION = "option"  # ReadOptions.kind (--kind, or a training export's pairing)
    NAME = "name"  # the path names a label mask (default words or --labels)
    DEFAULT = "default"  # nothing says label: an image


@dataclass(frozen=True)
class KindDecision:
    """A volume's kind, what decided it, and a short sentence for the manifest."""

    kind: Kind
    basis: KindBasis
    reason: str


def kind_decision(relpath: str | os.PathLike, options: ReadOptions = ReadOptions()) -> KindDecision:
    """The kind of the file at ``relpath`` (relative to the dataset root), from the option and the name only.

    This is the whole decision, the same at discovery (``medconv scan``) and when
    the voxels are read; :func:`decide_kind` adds the content check.
    """
    if options.kind is not None:
        return KindDecision(options.kind, KindBasis.OPTION, f"kind={options.kind} was asked for")
    pattern = matching_label_pattern(relpath, options.label_patterns)
    if pattern is not None:
        named = f"the name {pattern!r} says label" if options.label_patterns is None else \
            f"path matches label pattern {pattern!r}"
        return KindDecision("label", KindBasis.NAME, named)
    return KindDecision("intensity", KindBasis.DEFAULT, "no label pattern matches")


def decide_kind(relpath: str | os.PathLike, array: Optional[np.ndarray], options: ReadOptions = ReadOptions()) -> tuple[Kind, str]:
    """Decide whether a volume is a label mask, and say why (:func:`kind_decision`, then the content check).

    Parameters
    ----------
    relpath:
        Path of the file relative to the dataset root.
    array:
        Its voxels (any axis order), to check a name's "label" against; ``None``
        at discovery, before any pixel is read (the kind is the same).
    options:
        ``options.kind`` forces the answer; ``options.label_patterns`` replaces
        the default patterns.

    Returns
    -------
    (kind, reason):
        ``"label"`` or ``"intensity"`` and a short sentence for the manifest.

    Raises
    ------
    LabelValuesError
        The name says label but the values cannot be labels.
    """
    decision = kind_decision(relpath, options)
    if decision.basis is KindBasis.NAME and array is not None:
        problem = _not_label_content(np.asarray(array))
        if problem is not None:
            hint = "pass --kind intensity to read it as an image, or --labels PATTERN to say which files are masks"
            raise LabelValuesError(f"{decision.reason}, but {problem}: it is not a label map", os.fspath(relpath), hint)
    return decision.kind, decision.reason


#: At most this many distinct values (0 among them) make an integer image look like a label map to
#: :func:`interpolation_warning` (a 21-label atlas does; a CT or an 8-bit photograph does not).
FEW_VALUES = 64


def interpolation_warning(volume, method: str) -> Optional[str]:
    """A warning when ``method`` would interpolate an image whose content looks like a label map, else ``None``.

    Such an image was called an image because nothing named it a label map; a
    linear or B-spline resampling would invent values between its labels.
    """
    if volume.kind != "intensity" or method == "nearest" or volume.array.dtype.kind not in "iub":
        return None
    values = distinct_values(volume.array, FEW_VALUES)
    if values is None or not np.any(values == 0) or len(values) < 2:
        return None
    return (f"resample: interpolated ({method}) an integer image with only {len(values)} distinct values "
            "including 0; if it is a label map, read it as one (--kind label, or --labels PATTERN naming it)")


def _not_label_content(array: np.ndarray) -> Optional[str]:
    """Why ``array`` cannot be a label map (``None`` when it can)."""
    if not _is_integral(array):
        return "the values are not integers"
    if array.size and float(array.min()) < 0:
        return "it has negative values"
    if array.dtype.kind in "iub" and distinct_values(array, MAX_NAMED_LABEL_VALUES) is None:
        return f"it has more than {MAX_NAMED_LABEL_VALUES} distinct values"
    return None


def compact_labels(array: np.ndarray) -> np.ndarray:
    """``array`` in the smallest integer type holding its values (uint8 when they fit).

    Integer, boolean and integral float arrays are converted (a copy, only when
    the type changes); a float array with fractional or non-finite values is
    returned unchanged, since converting it would lose information.
    """
    array = np.asarray(array)
    if array.size == 0:
        return array
    if array.dtype == np.bool_:  # by value (0 and 1), never by the bytes a bool happens to hold
        return array.astype(np.uint8, order="K")
    if not _is_integral(array):
        return array
    low, high = float(array.min()), float(array.max())
    dtype = smallest_integer_dtype(low, high)
    if dtype is None or (array.dtype.kind in "iu" and dtype.itemsize >= array.dtype.itemsize):
        return array
    return array.astype(dtype, order="K")  # keeps the memory layout (a transposed view stays one)
