"""The cases a dataset holds and what is unpaired, for people: ``medconv scan`` and ``export --dry-run``."""

from __future__ import annotations

import os
from typing import Iterable, Optional

from ..source import Source
from .cases import Pairing
from .labelmap import LabelTable

#: Cases listed by name on screen before "... and N more".
SHOWN_CASES = 10
#: Unpaired units listed on screen before "... and N more".
SHOWN_UNPAIRED = 20


def pairing_lines(pairing: Pairing, labels: Optional[LabelTable] = None) -> list[str]:
    """The pairing as short lines: rule, channels, cases (training / test), labels, then each unpaired unit."""
    lines = [f"cases: {len(pairing.cases)} ({len(pairing.training)} with a label map, {len(pairing.test)} without) "
             f"by rule {pairing.rule}; channels: {', '.join(pairing.channel_names) or '-'}"]
    if labels is not None:
        lines.append("labels: " + ", ".join(f"{value} {name}" for value, name in labels.names_by_value().items()))
    elif pairing.label_names:
        lines.append("labels: " + ", ".join(f"{value} {name}" for value, name in pairing.label_names.items())
                     + ("" if pairing.labels_declared else " (names for the values found)"))
    shown = ", ".join(case.case_id for case in pairing.cases[:SHOWN_CASES])
    if pairing.cases:
        lines.append(f"  {shown}" + (f" ... and {len(pairing.cases) - SHOWN_CASES} more"
                                     if len(pairing.cases) > SHOWN_CASES else ""))
    if pairing.unpaired:
        errors = len(pairing.errors)
        lines.append(f"unpaired: {len(pairing.unpaired)} ({errors} problem(s), "
                     f"{len(pairing.unpaired) - errors} left out on purpose)")
        ordered = sorted(pairing.unpaired, key=lambda item: (not item.reason.is_error, item.name))
        for item in ordered[:SHOWN_UNPAIRED]:
            mark = "problem" if item.reason.is_error else "left out"
            lines.append(f"  {mark}: {item.name}: {item.message}")
        if len(ordered) > SHOWN_UNPAIRED:
            lines.append(f"  ... and {len(ordered) - SHOWN_UNPAIRED} more")
    return lines


def render_pairing(pairing: Pairing, console, destination: Optional[str] = None,
                   labels: Optional[LabelTable] = None) -> None:
    """Print :func:`pairing_lines` (and, for a dry run, where the dataset would go)."""
    if destination:
        console.print(f"would write {destination}", highlight=False, markup=False)
    for line in pairing_lines(pairing, labels):
        console.print(line, highlight=False, markup=False)


def print_cases(src: str | os.PathLike, sources: Iterable[Source], console) -> Optional[Pairing]:
    """For ``medconv scan``: the cases the first rule that recognises the layout finds (nothing when none does)."""
    from ..errors import MedconvError
    from .rules import find_cases

    try:
        pairing = find_cases(src, sources)
    except MedconvError as exc:  # e.g. an unreadable dataset.json: one more line, the scan table stands
        console.print(f"cases: not paired: {exc.one_line()}", highlight=False, markup=False)
        return None
    if pairing.rule == "none":
        return None
    render_pairing(pairing, console)
    return pairing
