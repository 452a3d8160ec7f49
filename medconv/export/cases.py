"""Cases: the training examples of a dataset, as pairing finds them (types only, no I/O).

A **case** is one training (or test) example: one or more image channels and
zero or one label map, all of one patient scan. Pairing rules
(:mod:`medconv.export.rules`) build cases from the units readers discovered
(:class:`~medconv.source.Source`, headers only) and say, for every unit they do
not use, why (:class:`Unpaired` with an :class:`UnpairedReason`). Exporters take
cases, never single units.

Everything here is frozen and picklable: a case travels to the worker process
that exports it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Mapping, Optional

from ..source import Source


class CaseSplit(enum.Enum):
    """Where a case goes: training cases have a label map, test cases have none."""

    TRAINING = "training"
    TEST = "test"


@dataclass(frozen=True)
class Channel:
    """One input channel of a case.

    Attributes
    ----------
    name:
        The channel's name, the same for every case of a dataset ("CT", "FLAIR", "T1w" ...).
        nnU-Net picks its normalisation by it: "CT" gets the CT scheme.
    source:
        The unit holding the channel's voxels.
    volume_index:
        For a 4D unit holding several channels (a Decathlon multi-modal image), the
        index along its 4th axis; ``None`` for a 3D unit.
    """

    name: str
    source: Source
    volume_index: Optional[int] = None


class LabelNaming(enum.Enum):
    """Where the names of a label map's values come from."""

    #: :attr:`LabelSource.names` as pairing found them (none: the map is mapped by value)
    GIVEN = "given"
    #: the map's own label table, read with it (``Volume.meta["labels"]``: an RTSTRUCT's drawn ROIs,
    #: a SEG's segments), whose values are only known once the object is drawn on its image
    OWN_TABLE = "own-table"


@dataclass(frozen=True)
class LabelSource:
    """The label map of a case.

    Attributes
    ----------
    source:
        The unit holding the label map (read as a label map whatever its name or content says).
    names:
        Label names the dataset declares for this map, ``{source value: name}`` (Decathlon
        ``dataset.json``, an annotation's label table); empty when it declares none.
    naming:
        :attr:`LabelNaming.OWN_TABLE`: the names are the map's own table, read with it
        (``names`` then holds what a survey of the map found, for the dataset's table).
    one_class:
        When set, every labelled value of the map is this one class, whatever its own table
        calls it (LIDC-IDRI: the consensus map numbers nodules 1, 2, ...; each is a ``nodule``).
    """

    source: Source
    names: Mapping[int, str] = field(default_factory=dict)
    naming: LabelNaming = LabelNaming.GIVEN
    one_class: str = ""

    def __post_init__(self):
        object.__setattr__(self, "names", dict(sorted((int(k), str(v)) for k, v in self.names.items())))

    def __reduce__(self):
        return (LabelSource, (self.source, dict(self.names), self.naming, self.one_class))

    def names_of(self, own_table: Mapping[int, str]) -> dict[int, str]:
        """``{source value: name}`` of the map as read, given its own table (``meta["labels"]``)."""
        if self.naming is LabelNaming.GIVEN:
            return dict(self.names)
        if self.one_class:
            return {int(value): self.one_class for value in own_table if int(value) != 0}
        return {int(value): str(name) for value, name in own_table.items() if int(value) != 0}


@dataclass(frozen=True)
class Case:
    """One training or test example.

    Attributes
    ----------
    case_id:
        Unique within the dataset and safe as a file name (nnU-Net's case identifier).
    channels:
        The image channels in the dataset's channel order.
    labels:
        The label map (at most one for the layouts medconv writes; more is a pairing problem).
    rule:
        The name of the pairing rule that made the case.
    """

    case_id: str
    channels: tuple[Channel, ...]
    labels: tuple[LabelSource, ...] = ()
    rule: str = ""

    def __post_init__(self):
        object.__setattr__(self, "channels", tuple(self.channels))
        object.__setattr__(self, "labels", tuple(self.labels))

    @property
    def split(self) -> CaseSplit:
        return CaseSplit.TRAINING if self.labels else CaseSplit.TEST

    @property
    def label(self) -> Optional[LabelSource]:
        """The case's label map, or ``None`` for a test case."""
        return self.labels[0] if self.labels else None

    @property
    def sources(self) -> tuple[Source, ...]:
        """Every unit the case reads, each once, channels first."""
        seen: dict[str, Source] = {}
        for source in [channel.source for channel in self.channels] + [label.source for label in self.labels]:
            seen.setdefault(source.id, source)
        return tuple(seen.values())

    @property
    def paths(self) -> tuple[str, ...]:
        """Every input file of the case."""
        return tuple(path for source in self.sources for path in source.paths)


class UnpairedReason(enum.Enum):
    """Why a unit (or a would-be case) is not exported as part of a case.

    ``is_error`` marks the reasons that are a problem in the dataset (the export exits 1);
    the others are units set apart on purpose.
    """

    LABEL_WITHOUT_IMAGE = "label-without-image"
    MISSING_CHANNEL = "missing-channel"
    DUPLICATE_CASE = "duplicate-case"
    SEVERAL_LABELS = "several-labels"
    BAD_CHANNELS = "bad-channels"
    NOT_FOUND = "not-found"
    UNREADABLE = "unreadable"
    NOT_AN_IMAGE = "not-an-image"
    NOT_A_CHANNEL = "not-a-channel"
    NO_ANNOTATION = "no-annotation"
    NO_RULE = "no-rule"

    @property
    def is_error(self) -> bool:
        return self in _ERRORS


_ERRORS = frozenset({UnpairedReason.LABEL_WITHOUT_IMAGE, UnpairedReason.MISSING_CHANNEL,
                     UnpairedReason.DUPLICATE_CASE, UnpairedReason.SEVERAL_LABELS, UnpairedReason.BAD_CHANNELS,
                     UnpairedReason.NOT_FOUND, UnpairedReason.UNREADABLE})


@dataclass(frozen=True)
class Unpaired:
    """A unit (or a would-be case) that pairing set apart, with its reason.

    Attributes
    ----------
    reason:
        What kind of problem (typed).
    message:
        One line for people: what is wrong and what to do.
    case_id:
        The case it concerns, when there is one (a missing channel, a duplicate id).
    sources:
        The units concerned (may be empty, e.g. a file named in ``--pairs`` that does not exist).
    """

    reason: UnpairedReason
    message: str
    case_id: Optional[str] = None
    sources: tuple[Source, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "sources", tuple(self.sources))

    @property
    def name(self) -> str:
        """What the problem is about: the case id, else the first unit's id, else the reason."""
        if self.case_id:
            return self.case_id
        if self.sources:
            return self.sources[0].id
        return self.reason.value


@dataclass(frozen=True)
class Pairing:
    """What a pairing rule made of a dataset.

    Attributes
    ----------
    rule:
        The rule's name (``msd``, ``luna16`` ...).
    cases:
        The cases, sorted by id.
    unpaired:
        Every unit (or would-be case) not exported, with its reason.
    channel_names:
        The dataset's channel names, in channel order.
    label_names:
        Label names, ``{source value: name}`` (background 0 may be absent).
    labels_declared:
        True when the dataset itself declares its label values (a Decathlon ``dataset.json``,
        an annotation's label table, ``--label``): a value outside them is an error. False when
        ``label_names`` only names values the rule expects (LiTS: 1 liver, 2 tumor) and the
        values are whatever the label maps hold.
    """

    rule: str
    cases: tuple[Case, ...]
    unpaired: tuple[Unpaired, ...] = ()
    channel_names: tuple[str, ...] = ()
    label_names: Mapping[int, str] = field(default_factory=dict)
    labels_declared: bool = False

    def __post_init__(self):
        object.__setattr__(self, "cases", tuple(sorted(self.cases, key=lambda case: case.case_id)))
        object.__setattr__(self, "unpaired", tuple(self.unpaired))
        object.__setattr__(self, "channel_names", tuple(self.channel_names))
        object.__setattr__(self, "label_names", dict(sorted((int(k), str(v)) for k, v in self.label_names.items())))

    def __reduce__(self):
        return (Pairing, (self.rule, self.cases, self.unpaired, self.channel_names, dict(self.label_names),
                          self.labels_declared))

    @property
    def training(self) -> tuple[Case, ...]:
        return tuple(case for case in self.cases if case.split is CaseSplit.TRAINING)

    @property
    def test(self) -> tuple[Case, ...]:
        return tuple(case for case in self.cases if case.split is CaseSplit.TEST)

    @property
    def errors(self) -> tuple[Unpaired, ...]:
        """The unpaired entries that are problems in the dataset (they make an export exit 1)."""
        return tuple(item for item in self.unpaired if item.reason.is_error)
