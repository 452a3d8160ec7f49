"""The JSON sidecar written beside an output: geometry, meta and history."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from .._version import __version__
from ..atomic import atomic_output
from ..volume import Volume


def sidecar_path(output_path: str, suffix: str) -> str:
    """``out/x.nii.gz`` -> ``out/x.json`` (the output's suffix replaced by ``.json``)."""
    return output_path[: len(output_path) - len(suffix)] + ".json"


def to_jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays, tuples and mappings turned into JSON types."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, bytes):
        return value.decode("latin-1", "replace")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def volume_description(volume: Volume) -> dict:
    """Everything about a volume except its voxels, as JSON-ready values."""
    return {
        "medconv_version": __version__,
        "shape": list(volume.shape),
        "dtype": str(volume.array.dtype),
        "kind": volume.kind,
        "spacing": list(volume.spacing),
        "origin_lps": list(volume.origin),
        "direction_lps": volume.direction.tolist(),
        "axis_codes": volume.axis_codes,
        "affine_ras": volume.affine_ras.tolist(),
        "history": list(volume.history),
        "meta": to_jsonable(volume.meta),
    }


def write_sidecar(volume: Volume, path: str, overwrite: bool = True) -> str:
    """Write the sidecar for ``volume`` to ``path`` (atomically)."""
    with atomic_output(path, overwrite=overwrite) as temp:
        with open(temp, "w", encoding="utf-8") as handle:
            json.dump(volume_description(volume), handle, indent=2, allow_nan=False)
            handle.write("\n")
    return os.fspath(path)
