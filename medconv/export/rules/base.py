"""What every pairing rule shares: the rule protocol, the dataset it looks at, and case assembly.

A rule looks at a :class:`DatasetView` (the dataset folder and the units its
readers found, headers only) and returns a :class:`~medconv.export.cases.Pairing`.
Most rules decide, unit by unit, a case id and a role (image channel or label);
:func:`assemble` then turns those decisions into cases and reports every
conflict the same way: two images claiming one case id, a label without its
image, a case missing a channel, several label maps for one case.
"""

from __future__ import annotations

import enum
import os
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Protocol, Sequence

from ...layout import sanitize_component
from ...source import InfoKey, Source
from ..cases import Case, Channel, LabelSource, Pairing, Unpaired, UnpairedReason

#: The channel name nnU-Net gives its CT normalisation (and medconv uses for CT channels).
CT_CHANNEL = "CT"


@dataclass(frozen=True)
class DatasetView:
    """The dataset folder and the units found in it, as pairing rules see it."""

    root: str
    sources: tuple[Source, ...]

    def parts(self, source: Source) -> list[str]:
        """The unit's id split into folders and stem (``subset0/1.3.6...`` -> ``["subset0", "1.3.6..."]``)."""
        return [part for part in source.id.replace("\\", "/").split("/") if part]

    def stem(self, source: Source) -> str:
        return self.parts(source)[-1]

    def folder(self, source: Source) -> str:
        """The unit's folder relative to the root, with ``/`` ('' at the top)."""
        return "/".join(self.parts(source)[:-1])

    def relative(self, source: Source) -> str:
        """The unit as people know it: its first file's path below the dataset root (or its id)."""
        return _where(source)

    def images(self) -> list[Source]:
        """The units that readers did not set apart as non-images (localizers, RTSTRUCT ...)."""
        return [source for source in self.sources if not source.excluded]

    def set_apart(self) -> list[Unpaired]:
        """One entry per unit a reader set apart as not an image volume."""
        return [Unpaired(UnpairedReason.NOT_AN_IMAGE, f"not an image volume: {source.excluded}",
                         sources=(source,)) for source in self.sources if source.excluded]


class PairingRule(Protocol):
    """A named way of finding cases in one dataset layout."""

    #: short name used on the command line (``--rule msd``) and in the manifest
    name: str
    #: one line for help texts and docs
    summary: str

    def claims(self, dataset: DatasetView) -> bool:
        """Whether this dataset looks like the layout the rule knows (cheap; names only)."""

    def pair(self, dataset: DatasetView) -> Pairing:
        """The cases of the dataset and what is left unpaired, with reasons."""


class Role(enum.Enum):
    """What a unit is within its case."""

    IMAGE = "image"
    LABEL = "label"


@dataclass(frozen=True)
class Claim:
    """One unit's place in a case, as a name-based rule decides it."""

    source: Source
    case_id: str
    role: Role
    channel: str = CT_CHANNEL
    volume_index: Optional[int] = None


def channel_name_for(source: Source, fallback: str) -> str:
    """"CT" for a unit its header says is CT, else ``fallback``."""
    return CT_CHANNEL if str(source.info.get(InfoKey.MODALITY) or "").upper() == "CT" else fallback


def assemble(rule: str, claims: Iterable[Claim], *, channel_names: Sequence[str] | None = None,
             label_names: Mapping[int, str] | None = None, labels_declared: bool = False,
             unpaired: Iterable[Unpaired] = (),
             what_to_do: str = "rename or move the files, or list the cases with --pairs CSV") -> Pairing:
    """Cases from per-unit claims, with every conflict reported as :class:`Unpaired`.

    Parameters
    ----------
    rule:
        The rule's name, recorded in every case.
    claims:
        Each unit's case id, role and channel.
    channel_names:
        The dataset's channels in order; ``None`` takes those most cases have (sorted by
        first appearance), so a stray file never makes every other case "incomplete".
    label_names, labels_declared:
        Label names, ``{source value: name}``, and whether the dataset declares them as its
        only values (see :class:`~medconv.export.cases.Pairing`).
    unpaired:
        Units the rule already set apart.
    what_to_do:
        The hint added to conflicts.
    """
    unpaired = list(unpaired)
    by_case: dict[str, dict[Role, list[Claim]]] = defaultdict(lambda: {Role.IMAGE: [], Role.LABEL: []})
    for claim in claims:
        by_case[safe_case_id(claim.case_id)][claim.role].append(claim)
    if channel_names is None:
        channel_names = _usual_channels(by_case.values())
    channel_names = tuple(channel_names)
    cases = []
    for case_id in sorted(by_case):
        images, labels = by_case[case_id][Role.IMAGE], by_case[case_id][Role.LABEL]
        problem = _conflict(case_id, images, labels, channel_names, what_to_do)
        if problem is not None:
            unpaired.append(problem)
            continue
        channels = [next(c for c in images if c.channel == name) for name in channel_names]
        extra = [claim for claim in images if claim.channel not in channel_names]
        for claim in extra:
            unpaired.append(Unpaired(UnpairedReason.NOT_A_CHANNEL,
                                     f"{claim.channel!r} is not one of the dataset's channels "
                                     f"({', '.join(channel_names)}); left out", case_id, (claim.source,)))
        names = dict(label_names or {})
        cases.append(Case(case_id, tuple(Channel(name, claim.source, claim.volume_index)
                                         for name, claim in zip(channel_names, channels)),
                          tuple(LabelSource(claim.source, names) for claim in labels), rule=rule))
    return Pairing(rule, tuple(cases), tuple(unpaired), channel_names, dict(label_names or {}),
                   labels_declared and bool(label_names))


def safe_case_id(case_id: str) -> str:
    """A case id usable as a file name in every layout (the same sanitising as output names)."""
    return sanitize_component(case_id)


def _usual_channels(groups: Iterable[dict[Role, list[Claim]]]) -> tuple[str, ...]:
    """The channel names more than half of the cases have, in order of first appearance."""
    counts: dict[str, int] = {}
    total = 0
    for group in groups:
        if not group[Role.IMAGE]:
            continue
        total += 1
        for name in dict.fromkeys(claim.channel for claim in group[Role.IMAGE]):
            counts[name] = counts.get(name, 0) + 1
    usual = tuple(name for name, count in counts.items() if count * 2 > total)
    return usual or tuple(counts)[:1]


def _conflict(case_id: str, images: list[Claim], labels: list[Claim], channel_names: Sequence[str],
              what_to_do: str) -> Optional[Unpaired]:
    """What keeps these units from being one case, or ``None``."""
    sources = tuple(claim.source for claim in images + labels)
    if not images:
        where = ", ".join(_where(claim.source) for claim in labels)
        return Unpaired(UnpairedReason.LABEL_WITHOUT_IMAGE,
                        f"label map {where} has no image (add the image, or remove the label map)",
                        case_id, sources)
    by_channel: dict[str, list[Claim]] = defaultdict(list)
    for claim in images:
        by_channel[claim.channel].append(claim)
    doubled = {name: claims for name, claims in by_channel.items() if len(claims) > 1}
    if doubled:
        name, claims = next(iter(doubled.items()))
        files = ", ".join(_where(claim.source) for claim in claims)
        what = f"{len(claims)} images claim case id {case_id!r}" if len(by_channel) == 1 else \
            f"{len(claims)} images claim channel {name!r} of case {case_id!r}"
        return Unpaired(UnpairedReason.DUPLICATE_CASE, f"{what}: {files} ({what_to_do})", case_id, sources)
    missing = [name for name in channel_names if name not in by_channel]
    if missing:
        return Unpaired(UnpairedReason.MISSING_CHANNEL,
                        f"channel {', '.join(map(repr, missing))} is missing (the dataset's channels are "
                        f"{', '.join(channel_names)}; add the file, or leave the case out)", case_id, sources)
    if len(labels) > 1:
        files = ", ".join(_where(claim.source) for claim in labels)
        return Unpaired(UnpairedReason.SEVERAL_LABELS,
                        f"{len(labels)} label maps for one case: {files} (keep one, or list the pairs with --pairs CSV)",
                        case_id, sources)
    return None


def _where(source: Source) -> str:
    """A unit as people know it: its path below the dataset root (or its id)."""
    if source.root and source.paths:
        try:
            return os.path.relpath(source.path, source.root).replace(os.sep, "/")
        except ValueError:
            pass
    return source.id
