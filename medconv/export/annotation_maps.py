"""An annotation object's label map holding only the classes of the dataset's label table.

An RTSTRUCT or SEG drawn as one map puts the smaller ROI over the larger where they
overlap (docs/annotations.md). A training export whose label table names only some
of an object's ROIs (``--label tumor=GTV-1``) cannot take that map and zero the
others: where a left-out ROI was drawn over a kept one, the kept one would have a
hole. So the object is read as a stack (one channel per ROI, overlaps kept) and the
map is composed again from the ROIs the table names, by the same rule
(:func:`medconv.readers.annotations.labelmap.compose_map`): the kept ROIs are whole,
each left-out one is named in a warning on the case. When the table names every ROI
the header lists (its default, built from the ROI names), the map is the one the reader
draws, without the stack (which costs one grid per ROI).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..options import AnnotationOptions, MaskLayout, ReadOptions
from ..source import InfoKey, Source
from ..volume import Volume
from .labelmap import LabelTable



def covered_names(table: LabelTable) -> frozenset[str]:
    """The source label names (case-folded) the table's classes take."""
    return frozenset(name.casefold() for c in table.all_classes for name in c.source_names)


def read_annotation_map(source: Source, options: ReadOptions, table: LabelTable) -> Volume:
    """The object's label map with only the ROIs ``table`` names (values and ``meta["labels"]`` as the
    object numbers them; ``meta["warnings"]`` names the ROIs left out and the overlaps).

    Objects whose reader gives no per-ROI result are read as their one map (a ROI the table
    does not name then fails the case when its values are mapped).
    """
    from ..readers.annotations.labelmap import RoiMask, compose_map
    from ..readers.annotations.model import OutputRole
    from ..registry import readers

    reader = readers.get(source.reader)
    label_options = dataclasses.replace(options, kind="label")
    kept_names = covered_names(table)
    listed = [str(name) for name in source.info.get(InfoKey.ROI_NAMES) or ()]
    if not hasattr(reader, "result") or (listed and all(name.casefold() in kept_names for name in listed)):
        return reader.read(source, label_options)  # the table takes every ROI: the reader's own map
    annotation = label_options.annotations or AnnotationOptions()
    stacked = dataclasses.replace(label_options, annotations=dataclasses.replace(annotation, masks=MaskLayout.STACK))
    result = reader.result(source, stacked)
    stack = result.output(OutputRole.STACK).volume
    entries = list(result.labels)
    kept = [n for n, entry in enumerate(entries) if entry.name.casefold() in kept_names]
    left_out = [entries[n] for n in range(len(entries)) if n not in kept]
    shape = tuple(int(n) for n in stack.shape[:3])
    masks = [RoiMask.from_dense(np.asarray(stack.array[..., n]) != 0) for n in kept]
    chosen = [entries[n] for n in kept]
    array, warnings = compose_map(masks, chosen, shape)
    if left_out:
        names = ", ".join(repr(entry.name) for entry in left_out)
        warnings.insert(0, f"ROI(s) {names} of {source.relative_path} are not in the label table: left out of the "
                           "map (the others drawn whole, without them)")
    meta = {key: value for key, value in stack.meta.items() if key != "axis4"}
    meta["labels"] = [entry.as_meta() for entry in chosen]
    meta["warnings"] = list(stack.meta.get("warnings", ())) + warnings
    return stack.replace(array=array, meta=meta)

