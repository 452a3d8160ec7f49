"""How annotation objects become label volumes: one frozen option object.

The classes live in :mod:`medconv.options` (beside :class:`~medconv.options.ReadOptions`,
whose ``annotations`` field carries them to the batch's workers, and so that the CLI
can build them without importing the readers); they are re-exported here for the
annotation readers and their callers.
"""

from __future__ import annotations

from ...options import (DEFAULT_CONSENSUS, DEFAULT_FRACTIONAL_THRESHOLD, AnnotationOptions, FractionalHandling,
                        MaskLayout)

__all__ = ["AnnotationOptions", "FractionalHandling", "MaskLayout", "DEFAULT_CONSENSUS",
           "DEFAULT_FRACTIONAL_THRESHOLD"]
