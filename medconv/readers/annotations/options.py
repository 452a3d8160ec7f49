"""How annotation objects become label volumes: one frozen option object.

Phase 2 adds it to :class:`medconv.options.ReadOptions`; until then callers pass it
to the readers directly. It travels to worker processes like every option object.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ...errors import UsageError


class MaskLayout(str, Enum):
    """The shape of the label output of one annotation object.

    ``MAP``: one label volume, values 1..N (overlaps resolved, with a warning);
    ``SPLIT``: one binary volume per ROI / segment / nodule;
    ``STACK``: one 4D one-hot volume ``(i, j, k, N)``, channel ``n`` is label ``n + 1``
    (keeps overlaps; see docs/annotations.md for why not bit-packed).
    """

    MAP = "map"
    SPLIT = "split"
    STACK = "stack"


class FractionalHandling(str, Enum):
    """What a FRACTIONAL DICOM SEG becomes: a binary mask at a threshold, or float probabilities."""

    THRESHOLD = "threshold"
    KEEP = "keep"


#: FRACTIONAL SEG default: a voxel belongs to a segment when its fraction is >= this.
DEFAULT_FRACTIONAL_THRESHOLD = 0.5

#: LIDC default consensus level: at least half of the readers who marked a nodule (pylidc's clevel=0.5).
DEFAULT_CONSENSUS = 0.5


@dataclass(frozen=True)
class AnnotationOptions:
    """Options for every annotation reader.

    Parameters
    ----------
    masks:
        Output layout (:class:`MaskLayout` or its value ``"map"``, ``"split"``, ``"stack"``).
    consensus:
        LIDC-IDRI: a voxel is in a nodule's consensus mask when at least this fraction
        of the readers who marked that nodule include it (0 < consensus <= 1).
    fractional:
        DICOM SEG FRACTIONAL: ``"threshold"`` (binary at ``fractional_threshold``) or
        ``"keep"`` (float32 fractions; only with ``masks="split"`` or ``"stack"``).
    fractional_threshold:
        The threshold for ``fractional="threshold"`` (0 < t <= 1).
    """

    masks: MaskLayout = MaskLayout.MAP
    consensus: float = DEFAULT_CONSENSUS
    fractional: FractionalHandling = FractionalHandling.THRESHOLD
    fractional_threshold: float = DEFAULT_FRACTIONAL_THRESHOLD

    def __post_init__(self):
        try:
            object.__setattr__(self, "masks", MaskLayout(self.masks))
            object.__setattr__(self, "fractional", FractionalHandling(self.fractional))
        except ValueError as error:
            raise UsageError(f"annotation options: {error}",
                             hint="masks is map, split or stack; fractional is threshold or keep") from None
        for name in ("consensus", "fractional_threshold"):
            value = float(getattr(self, name))
            if not 0.0 < value <= 1.0:
                raise UsageError(f"annotation options: {name} must be in (0, 1], got {value}")
            object.__setattr__(self, name, value)
        if self.fractional is FractionalHandling.KEEP and self.masks is MaskLayout.MAP:
            raise UsageError("annotation options: fractional='keep' cannot make one label map",
                             hint="use masks='split' or masks='stack' to keep fractions")
