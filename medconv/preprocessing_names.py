"""The values the preprocessing options accept: dtypes, scales, window presets.

Kept apart from :mod:`medconv.transforms` (which imports numpy and every step) so
that the command line builds its options, ``--help`` included, without importing
them; :mod:`.transforms.cast` and :mod:`.transforms.intensity` use these names.
"""

from __future__ import annotations

#: dtypes accepted by ``--dtype``.
DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "int64", "float32", "float64")

#: ``--scale`` values.
SCALES = ("none", "unit", "uint8")

#: name -> (level, width) in HU.
WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "soft-tissue": (50.0, 400.0),
    "liver": (30.0, 150.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
    "subdural": (80.0, 200.0),
    "stroke": (40.0, 40.0),
    "temporal-bone": (600.0, 2800.0),
    "head-soft-tissue": (40.0, 380.0),
}
