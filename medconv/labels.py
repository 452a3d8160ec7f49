"""Recognising label masks, shared by every file reader.

A volume is a *label* mask (nearest-neighbour resampling, never windowed, written
as a compact integer type) when, in this order:

1. ``ReadOptions.kind`` says so (or says ``"intensity"``: the option always wins);
2. its path relative to the dataset root names a label mask (see below) and its
   values can be labels: integers, none negative, at most
   :data:`MAX_NAMED_LABEL_VALUES` distinct values (a CT in a folder called
   ``unlabeled`` or ``Task_Segmentation`` stays an image);
3. its content looks like labels: an integer (or boolean) type holding at most
   :data:`MAX_LABEL_VALUES` distinct values, one of them 0.

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

import fnmatch
import os
import re
from typing import Iterable, Literal, Optional

import numpy as np

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
    "annotation", "annotations",
})

_SEG_NUMBER = re.compile(r"seg\d+$")
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z])(?=[A-Z])|(?<=[0-9])(?=[A-Za-z])")

#: Name matches need plausible label content: at most this many distinct values.
MAX_NAMED_LABEL_VALUES = 4096

#: At most this many distinct values (0 included) make an integer volume look like labels.
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
    if flat.dtype == np.bool_:
        flat = flat.view(np.uint8)
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
    return np.array(sorted(found)).astype(np.uint8 if array.dtype == np.bool_ else array.dtype)


def looks_like_labels(array: np.ndarray, limit: int = MAX_LABEL_VALUES) -> bool:
    """Whether ``array``'s content looks like a label mask.

    An integer or boolean type, at most ``limit`` distinct values, one of them 0
    (the background every mask has). Floats never look like labels by content
    alone: a float file is a label only by name or option.
    """
    array = np.asarray(array)
    if array.dtype.kind not in "iub":
        return False
    values = distinct_values(array, limit)
    return values is not None and bool(np.any(values == 0))


def decide_kind(relpath: str | os.PathLike, array: Optional[np.ndarray], options: ReadOptions = ReadOptions()) -> tuple[Kind, str]:
    """Decide whether a volume is a label mask, and say why.

    Parameters
    ----------
    relpath:
        Path of the file relative to the dataset root.
    array:
        Its voxels (any axis order); ``None`` decides by option and name only,
        as discovery does before any pixel is read.
    options:
        ``options.kind`` forces the answer; ``options.label_patterns`` replaces
        the default patterns.

    Returns
    -------
    (kind, reason):
        ``"label"`` or ``"intensity"`` and a short sentence for the manifest.
    """
    if options.kind is not None:
        return options.kind, f"kind={options.kind} was asked for"
    pattern = matching_label_pattern(relpath, options.label_patterns)
    if pattern is not None:
        named = f"the name {pattern!r} says label" if options.label_patterns is None else \
            f"path matches label pattern {pattern!r}"
        if array is None:
            return "label", named
        problem = _not_label_content(np.asarray(array))
        if problem is None:
            return "label", named
        return "intensity", f"{named} but {problem}"
    if array is not None and looks_like_labels(np.asarray(array)):
        return "label", f"integer values with at most {MAX_LABEL_VALUES} distinct values including 0"
    if array is None:
        return "intensity", "no label pattern matches (content not checked yet)"
    return "intensity", "no label pattern matches and the content does not look like labels"


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
    if array.dtype == np.bool_:
        return array.view(np.uint8)
    if not _is_integral(array):
        return array
    low, high = float(array.min()), float(array.max())
    dtype = smallest_integer_dtype(low, high)
    if dtype is None or (array.dtype.kind in "iu" and dtype.itemsize >= array.dtype.itemsize):
        return array
    return array.astype(dtype, order="K")  # keeps the memory layout (a transposed view stays one)
