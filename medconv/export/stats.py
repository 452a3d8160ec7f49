"""Per-case statistics, computed in the worker on exactly the arrays written (the summary aggregates them).

What nnU-Net's planning looks at, per case: the spatial shape and spacing, the
voxels of each label, and for each channel its intensity range and the
intensities of the foreground (label > 0) voxels: mean, standard deviation and
the 0.5 / 99.5 percentiles (what its CT normalisation clips to).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from ..volume import Volume

#: Foreground voxels used for the percentiles (evenly strided; nnU-Net samples 10,000 per case).
PERCENTILE_SAMPLE = 100_000
#: The percentiles nnU-Net's CT normalisation clips to.
PERCENTILES = (0.5, 99.5)


def _intensity(array: np.ndarray, foreground: Optional[np.ndarray]) -> dict[str, Any]:
    data = np.asarray(array)
    stats: dict[str, Any] = {"min": float(data.min()), "max": float(data.max()),
                             "mean": float(data.mean(dtype=np.float64))}
    if foreground is not None and foreground.any():
        values = data[foreground].astype(np.float64)
        step = max(1, values.size // PERCENTILE_SAMPLE)
        low, high = np.percentile(values[::step], PERCENTILES)
        stats["foreground"] = {"voxels": int(values.size), "mean": float(values.mean()), "std": float(values.std()),
                               "p00_5": float(low), "p99_5": float(high)}
    return stats


def case_statistics(images: Sequence[Volume], channel_names: Sequence[str], label: Optional[Volume],
                    counts: Optional[list[int]]) -> dict[str, Any]:
    """JSON-ready statistics of one exported case."""
    first = images[0]
    foreground = np.asarray(label.array) > 0 if label is not None else None
    return {
        "shape": [int(n) for n in first.spatial_shape],
        "spacing": [float(s) for s in first.spacing],
        "axis_codes": first.axis_codes,
        "dtype": [str(image.array.dtype) for image in images],
        "label_voxels": counts,
        "channels": {name: _intensity(image.array, foreground) for name, image in zip(channel_names, images)},
        "units": [image.meta.get("units") for image in images],
    }
