"""Which image unit an annotation object belongs to: a pure function of headers.

:func:`pair` takes an :class:`~.headers.AnnotationHeader` and the candidate image
units' :class:`~medconv.image_reference.ImageReference` and tries, in order
(the first rule that decides wins):

1. **Series UID**: RTSTRUCT RTReferencedSeries (under its ReferencedFrameOfReference
   and RTReferencedStudy), SEG ReferencedSeriesSequence, LIDC ``SeriesInstanceUid``.
2. **Instance UIDs**: RTSTRUCT ContourImageSequence, SEG per-frame
   DerivationImage sources, LIDC ``imageSOP_UID``: the candidates holding any of them.
3. **Frame of reference + slice positions** (RTSTRUCT, SEG), only for objects that
   name no series and no instance: candidates with the same FrameOfReferenceUID whose
   acquired slices lie within half a slice step of every contour plane / frame.

A rule that finds exactly one candidate pairs; one that finds several is
*ambiguous* (unless a later rule narrows them to one among those); a rule that
finds none passes to the next. When a series UID or instance UIDs are named but
no candidate has them, the outcome is *no such series*: the geometric fallback
never moves a named reference onto another series (a PET and a CT share one
frame of reference). Several units of one series (an orientation or echo split) are narrowed
by the instances and positions. An annotation never lands on the wrong image:
anything short of one candidate is an outcome with the reason, not a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Optional, Sequence

import numpy as np

from ...errors import AnnotationReferenceError
from ...image_reference import ImageReference
from .headers import AnnotationHeader


class PairingStatus(str, Enum):
    """The outcome of pairing an annotation with an image unit."""

    PAIRED = "paired"
    NO_SUCH_SERIES = "no-such-series"
    AMBIGUOUS = "ambiguous"


class PairingRule(str, Enum):
    """The rule that decided."""

    SERIES_UID = "series-uid"
    INSTANCE_UIDS = "instance-uids"
    FRAME_OF_REFERENCE = "frame-of-reference+positions"
    NONE = "none"


#: What a user can do about an annotation that pairs with no image unit, per outcome (the error's hint).
UNPAIRED_HINTS = {
    PairingStatus.NO_SUCH_SERIES: "put its image series under SRC, or pass --no-annotations; the images still convert",
    PairingStatus.AMBIGUOUS: "keep one of those series under SRC, or pass --no-annotations; the images still convert",
}


@dataclass(frozen=True)
class Pairing:
    """The outcome: status, the rule that decided, the unit id (paired) or candidates (ambiguous), a reason."""

    status: PairingStatus
    rule: PairingRule
    unit_id: str = ""
    candidates: tuple[str, ...] = ()
    reason: str = ""

    def error(self, path: str, reason: str = "") -> AnnotationReferenceError:
        """The error of an annotation at ``path`` that did not pair: ``reason`` (default its own) and what to do."""
        return AnnotationReferenceError(reason or self.reason, path=path, hint=UNPAIRED_HINTS.get(self.status, ""))

    def raise_unless_paired(self, path: str) -> str:
        """The paired unit id, or :class:`AnnotationReferenceError` with the reason."""
        if self.status is not PairingStatus.PAIRED:
            raise self.error(path)
        return self.unit_id


def _slice_index(reference: ImageReference, point) -> float:
    return float(reference.continuous_index(np.asarray(point, dtype=np.float64))[2])


def _positions_fit(header: AnnotationHeader, reference: ImageReference) -> bool:
    """Every contour plane / frame of ``header`` lies within half a slice step of an acquired slice."""
    if not reference.instances:
        return False
    acquired = np.array([_slice_index(reference, inst.position) for inst in reference.instances])
    if header.plane_points:
        planes = [_slice_index(reference, point) for point in header.plane_points]
    else:
        return False
    return all(float(np.min(np.abs(acquired - plane))) <= 0.5 for plane in planes)


def pair(header: AnnotationHeader, candidates: Sequence[ImageReference]) -> Pairing:
    """Tie the annotation described by ``header`` to one of ``candidates`` (see the module rules)."""
    pool = list(candidates)
    named_something = bool(header.referenced_series_uids or header.referenced_sop_uids)
    steps = (
        (PairingRule.SERIES_UID, lambda ref: ref.series_uid in header.referenced_series_uids,
         bool(header.referenced_series_uids)),
        (PairingRule.INSTANCE_UIDS, lambda ref: bool(ref.sop_instance_uids & header.referenced_sop_uids),
         bool(header.referenced_sop_uids)),
        (PairingRule.FRAME_OF_REFERENCE,
         lambda ref: ((not header.frame_of_reference_uids or ref.frame_of_reference_uid in header.frame_of_reference_uids)
                      and _positions_fit(header, ref)),
         not named_something and bool(header.frame_of_reference_uids or header.plane_points)),
    )
    narrowed: Optional[list[ImageReference]] = None
    deciding = PairingRule.NONE
    for rule, matches, applies in steps:
        if not applies:
            continue
        base = narrowed if narrowed is not None else pool
        found = [ref for ref in base if matches(ref)]
        if len(found) == 1:
            return Pairing(PairingStatus.PAIRED, rule, found[0].unit_id, reason=f"paired by {rule.value}")
        if found:
            narrowed, deciding = found, rule
    if narrowed:
        ids = tuple(ref.unit_id for ref in narrowed)
        return Pairing(PairingStatus.AMBIGUOUS, deciding, candidates=ids,
                       reason=f"matches {len(ids)} image units by {deciding.value} ({', '.join(ids)}); none chosen")
    if named_something:
        named = ", ".join(sorted(header.referenced_series_uids)) or f"{len(header.referenced_sop_uids)} instances"
        return Pairing(PairingStatus.NO_SUCH_SERIES, PairingRule.NONE,
                       reason=f"the referenced series ({named}) is not among the image units found")
    return Pairing(PairingStatus.NO_SUCH_SERIES, PairingRule.NONE,
                   reason="references no series, instance or frame of reference that matches an image unit")
