"""Preprocessing transforms: each takes a Volume and returns a new one, appending to its history.

Compose them by hand, or let :class:`Preprocessing` apply the chosen ones in the
fixed order reorient -> resample -> window/clip/normalize -> cast::

    from medconv.transforms import Preprocessing
    prep = Preprocessing.from_options(orient="RAS", spacing="1", window="lung", scale="unit")
    volume = prep(medconv.read("ct.nii.gz"))

SimpleITK is imported only when a resampling needs it (oblique grids, B-spline).
"""

from .cast import DTYPES, cast
from .intensity import WINDOW_PRESETS, clip, normalize, window
from .orientation import reorient
from .pipeline import ORDER, Preprocessing
from .resample import Grid, resample, resample_to_grid

__all__ = ["DTYPES", "WINDOW_PRESETS", "ORDER", "Grid", "Preprocessing", "cast", "clip", "normalize", "reorient",
           "resample", "resample_to_grid", "window"]
