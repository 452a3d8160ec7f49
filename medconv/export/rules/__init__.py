"""Pairing rules: a registry of named rules, each knowing one dataset layout, and :func:`find_cases`.

The rules are tried in the order of :data:`PAIRING_RULES`; the first that claims
the dataset pairs it (``rule=`` forces one). An explicit table (``pairs=``)
replaces them all. A rule never reads pixels: it sees the units' ids, paths and
header facts, so pairing is as cheap as ``medconv scan``.
"""

from __future__ import annotations

import os
from typing import Iterable, Optional

from ...errors import UsageError
from ...source import Source
from ..cases import Pairing, Unpaired, UnpairedReason
from .annotations import AnnotationsRule
from .base import DatasetView, PairingRule
from .folders import CaseFoldersRule
from .msd import MsdRule
from .names import LitsRule, Luna16Rule, Sliver07Rule
from .table import TableRule

#: The built-in rules by name, in the order they are tried.
PAIRING_RULES: dict[str, PairingRule] = {
    rule.name: rule for rule in (MsdRule(), Luna16Rule(), Sliver07Rule(), LitsRule(), AnnotationsRule(),
                                 CaseFoldersRule())
}

__all__ = ["PAIRING_RULES", "PairingRule", "DatasetView", "find_cases", "rule_for", "TableRule"]


def rule_for(dataset: DatasetView, name: Optional[str] = None, pairs: Optional[str | os.PathLike] = None
             ) -> Optional[PairingRule]:
    """The rule that pairs ``dataset``: the table, the named rule, or the first that claims it (``None``: none)."""
    if pairs is not None:
        if name not in (None, TableRule.name):
            raise UsageError(f"--pairs and --rule {name} do not go together", hint="give one of them")
        return TableRule(pairs)
    if name is not None:
        try:
            return PAIRING_RULES[name]
        except KeyError:
            raise UsageError(f"unknown pairing rule {name!r}",
                             hint=f"use one of {', '.join(PAIRING_RULES)}, or --pairs CSV") from None
    for rule in PAIRING_RULES.values():
        if rule.claims(dataset):
            return rule
    return None


def find_cases(root: str | os.PathLike, sources: Iterable[Source], *, rule: Optional[str] = None,
               pairs: Optional[str | os.PathLike] = None) -> Pairing:
    """The cases of the dataset under ``root`` made of the discovered ``sources``.

    Parameters
    ----------
    root:
        The dataset folder (SRC).
    sources:
        Its units, e.g. :func:`medconv.batch.discover_sources`.
    rule:
        Force a rule by name (:data:`PAIRING_RULES`); default: the first that claims the dataset.
    pairs:
        A pairs table (:mod:`.table`), instead of any rule.

    Returns
    -------
    Pairing
        With ``rule == "none"`` and every unit unpaired when no rule recognises the layout.
    """
    dataset = DatasetView(os.fspath(root), tuple(sources))
    chosen = rule_for(dataset, rule, pairs)
    if chosen is None:
        return Pairing("none", (), tuple(Unpaired(UnpairedReason.NO_RULE, "no pairing rule recognises this layout",
                                                  sources=(source,)) for source in dataset.sources))
    return chosen.pair(dataset)
