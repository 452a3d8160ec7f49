"""The dataset's label table: consecutive values 0..N, background 0, an ignore label last when asked.

nnU-Net wants label values ``0, 1, 2, ...`` with background 0 (documentation/
dataset_format.md) and, when an ignore label is used, the ignore label named
``ignore`` as the highest value (documentation/ignore_label.md). Source label maps
rarely look like that (LUNA16's lungs are 3, 4 and 5; BraTS uses 0, 1, 2, 4;
structure sets number their ROIs each in their own order), so every export maps
source values onto one table:

* **by value** for label maps that do not name their labels: a class lists the
  source values it takes (``lung = 3, 4``);
* **by name** for label maps that carry their own label table (annotations, a
  Decathlon ``dataset.json``): a class lists the source label names it takes, so
  two structure sets that number "GTV" differently still agree.

The table is built from, in this order: ``--label NAME=VALUES`` given by the user;
the label names the dataset declares; the values found in the label maps (a
survey), named by the rule's hints (LiTS: 1 liver, 2 tumor) or ``label_<value>``.
A value a label map holds that the table does not cover is an error for that
case, never mapped to background silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional, Sequence, Union

import numpy as np

from ..errors import LabelValuesError, UsageError

#: The name nnU-Net requires for value 0.
BACKGROUND = "background"
#: The name nnU-Net requires for the ignore label.
IGNORE = "ignore"

LabelRef = Union[int, str]


@dataclass(frozen=True)
class LabelClass:
    """One value of the exported label maps and what it is made of.

    Attributes
    ----------
    name:
        The label's name in the dataset's table.
    value:
        Its value in the exported maps (1..N).
    source_values:
        The source values it takes from label maps that do not name their labels.
    source_names:
        The source label names it takes from label maps that do (matched ignoring case).
    """

    name: str
    value: int
    source_values: tuple[int, ...] = ()
    source_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabelSpec:
    """A user's ``--label NAME=VALUES``: a class and the source values or names it takes."""

    name: str
    refs: tuple[LabelRef, ...]

    @classmethod
    def parse(cls, text: str) -> "LabelSpec":
        """``"lung=3,4"`` or ``"tumor=GTV,GTVp"`` (values and names may be mixed)."""
        name, sep, rest = str(text).partition("=")
        name = name.strip()
        refs = tuple(_ref(part) for part in rest.split(",") if part.strip())
        if not sep or not name or not refs:
            raise UsageError(f"--label {text!r} is not NAME=VALUES", hint="e.g. --label liver=1 or --label lung=3,4")
        if name.lower() == BACKGROUND or 0 in refs:
            raise UsageError(f"--label {text!r}: value 0 is always the background", hint="name labels 1 and up")
        return cls(name, refs)


def _ref(text: str) -> LabelRef:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        return text


@dataclass(frozen=True)
class LabelTable:
    """Background 0, then ``classes`` with values 1..N (the ignore class, if any, last)."""

    classes: tuple[LabelClass, ...]
    ignore: Optional[LabelClass] = None

    def __post_init__(self):
        values = [c.value for c in self.all_classes]
        if values != list(range(1, len(values) + 1)):
            raise ValueError(f"label values must be 1..N in order, got {values}")
        names = [c.name.casefold() for c in self.all_classes]
        if len(set(names)) != len(names) or BACKGROUND in names:
            raise UsageError(f"label names must be unique and not {BACKGROUND!r}: {', '.join(c.name for c in self.all_classes)}",
                             hint="give each --label its own name")

    @property
    def all_classes(self) -> tuple[LabelClass, ...]:
        return self.classes + ((self.ignore,) if self.ignore else ())

    def names_by_value(self) -> dict[int, str]:
        """``{0: "background", 1: ..., N: ...}``."""
        return {0: BACKGROUND, **{c.value: c.name for c in self.all_classes}}

    def mapping(self, names: Mapping[int, str] | None = None) -> dict[int, int]:
        """``{source value: exported value}`` for a label map (``names``: its own label table, if any)."""
        mapping = {0: 0}
        if names:
            by_name = {n.casefold(): c.value for c in self.all_classes for n in c.source_names}
            for value, name in names.items():
                if name.casefold() in by_name:
                    mapping[int(value)] = by_name[name.casefold()]
        else:
            for c in self.all_classes:
                for value in c.source_values:
                    mapping[int(value)] = c.value
        return mapping

    def apply(self, array: np.ndarray, names: Mapping[int, str] | None = None) -> np.ndarray:
        """``array``'s source values mapped onto the table (uint8, or uint16 past 255 labels).

        Raises :class:`~medconv.errors.LabelValuesError` naming the values the table does not cover.
        """
        mapping = self.mapping(names)
        values = present_values(array)
        stray = [v for v in values if v not in mapping]
        if stray:
            shown = ", ".join(_value_text(v, names) for v in stray[:8]) + (" ..." if len(stray) > 8 else "")
            table = ", ".join(f"{name}={value}" for value, name in self.names_by_value().items())
            raise LabelValuesError(f"label value(s) {shown} are not in the label table ({table})",
                                   hint="fix the label map, or declare the value with --label NAME=VALUE")
        dtype = np.uint8 if len(self.all_classes) < 256 else np.uint16
        if all(mapping.get(v) == v for v in values):
            return np.asarray(array).astype(dtype, copy=False)
        low = int(min(values))
        lookup = np.zeros(int(max(values)) - low + 1, dtype=dtype)
        for source, target in mapping.items():
            if low <= source <= low + len(lookup) - 1:
                lookup[source - low] = target
        return lookup[np.asarray(array).astype(np.int64) - low]

    def describe(self) -> list[dict]:
        """The table as JSON-ready rows, for fingerprints, sidecars and the summary."""
        return [{"value": c.value, "name": c.name, "source_values": list(c.source_values),
                 "source_names": list(c.source_names), "ignore": c is self.ignore} for c in self.all_classes]


def _value_text(value: int, names: Mapping[int, str] | None) -> str:
    return f"{value} ({names[value]!r})" if names and value in names else str(value)


def present_values(array: np.ndarray) -> list[int]:
    """The sorted distinct values of an integer label array (a counting pass for small ranges)."""
    array = np.asarray(array)
    if array.dtype == np.bool_:  # by value: a bool's byte may be any non-zero value
        array = array.astype(np.uint8)
    if array.size == 0:
        return []
    if array.dtype.kind not in "iu":
        raise LabelValuesError("the label map holds non-integer values",
                               hint="a label map holds whole numbers; is this a probability map?")
    low, high = int(array.min()), int(array.max())
    if high - low < 1 << 20:
        counts = np.bincount((array.astype(np.int64) - low).ravel(order="K"), minlength=high - low + 1)
        return [int(v) + low for v in np.flatnonzero(counts)]
    return [int(v) for v in np.unique(array)]


def value_counts(array: np.ndarray, classes: int) -> list[int]:
    """Voxels of each exported value ``0..classes`` in a mapped label array."""
    return np.bincount(np.asarray(array).ravel(order="K"), minlength=classes + 1)[: classes + 1].astype(int).tolist()


def build_label_table(*, specs: Sequence[LabelSpec] = (), declared: Mapping[int, str] | None = None,
                      map_names: Iterable[Mapping[int, str]] = (), surveyed: Iterable[int] = (),
                      hints: Mapping[int, str] | None = None, ignore: Optional[LabelRef] = None) -> LabelTable:
    """The dataset's table from what is known about its labels (see the module notes for the order).

    Parameters
    ----------
    specs:
        The user's ``--label`` classes, in order: they alone make the table.
    declared:
        ``{source value: name}`` the dataset declares for all its maps (a ``dataset.json``).
    map_names:
        The label tables of maps that name their labels (annotations), in case order.
    surveyed:
        Source values found in the label maps (for maps without names).
    hints:
        Names for surveyed values the pairing rule knows.
    ignore:
        A source value (or name) that means "not annotated": it becomes the ``ignore`` class, last.
    """
    classes: list[LabelClass] = []
    map_names = [dict(names) for names in map_names if names]
    if ignore is None and declared:  # a dataset.json that already has nnU-Net's ignore label
        ignore = next((value for value, name in declared.items() if name.casefold() == IGNORE), None)
    ignore_value = ignore if isinstance(ignore, int) else None
    ignore_name = ignore.casefold() if isinstance(ignore, str) else None

    def is_ignore(value: Optional[int] = None, name: Optional[str] = None) -> bool:
        return (ignore_value is not None and value == ignore_value) or \
            (ignore_name is not None and name is not None and name.casefold() == ignore_name)

    def add(name: str, values=(), names=()):
        classes.append(LabelClass(name, len(classes) + 1, tuple(values), tuple(names)))

    if specs:
        for spec in specs:
            add(spec.name, [r for r in spec.refs if isinstance(r, int)], [r for r in spec.refs if isinstance(r, str)])
    else:
        if declared:
            for value, name in sorted(declared.items()):
                if value != 0 and not is_ignore(value, name):
                    add(name, [value], [name])
        elif map_names:
            seen: dict[str, str] = {}
            for names in map_names:
                for value, name in sorted(names.items()):
                    if value != 0 and not is_ignore(value, name):
                        seen.setdefault(name.casefold(), name)
            for name in seen.values():
                add(name, [], [name])
        for value in sorted(set(int(v) for v in surveyed) - {0}):
            if is_ignore(value) or any(value in c.source_values for c in classes):
                continue
            add((hints or {}).get(value) or f"label_{value}", [value])
    ignore_class = None
    if ignore is not None:
        named = {name for tables in ([declared] if declared else []) + list(map_names)
                 for value, name in tables.items() if is_ignore(value, name)}
        ignore_class = LabelClass(IGNORE, len(classes) + 1, (ignore_value,) if ignore_value is not None else (),
                                  tuple(sorted(named | ({ignore} if isinstance(ignore, str) else set()))))
    return LabelTable(tuple(classes), ignore_class)
