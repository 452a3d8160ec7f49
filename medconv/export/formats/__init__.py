"""Training layouts: where each case's files go, and the index file that lists them.

=========  =========================================================  ======================  ================
format     images                                                     label map               index
=========  =========================================================  ======================  ================
nnunet     ``imagesTr/{case}_{0000..}.nii.gz``, one file per channel  ``labelsTr/{case}...``  ``dataset.json``
msd        ``imagesTr/{case}.nii.gz``, 4D when several channels       ``labelsTr/{case}...``  ``dataset.json``
monai      as msd                                                     as msd                  ``datalist.json``
=========  =========================================================  ======================  ================

Test cases (no label map) go to ``imagesTs/``. A layout is a frozen object
(it travels to the workers); :data:`FORMATS` maps names to layout classes.
"""

from __future__ import annotations

from .base import CaseFiles, DatasetIndex, DatasetInfo, Layout
from .monai import MonaiLayout
from .msd import MsdLayout
from .nnunet import NnunetLayout

#: The export formats by name (``medconv export FORMAT``).
FORMATS: dict[str, type] = {"nnunet": NnunetLayout, "msd": MsdLayout, "monai": MonaiLayout}

__all__ = ["FORMATS", "CaseFiles", "DatasetIndex", "DatasetInfo", "Layout", "MonaiLayout", "MsdLayout",
           "NnunetLayout", "read_index"]


def read_index(folder: str) -> DatasetIndex:
    """The cases an exported dataset folder lists, whichever format it is in (see each layout's ``read_index``)."""
    import os

    from ...errors import UsageError

    if os.path.isfile(os.path.join(folder, MonaiLayout.index_name)):
        return MonaiLayout.read_index(folder)
    path = os.path.join(folder, NnunetLayout.index_name)
    if not os.path.isfile(path):
        raise UsageError("not an exported dataset: no dataset.json or datalist.json", folder,
                         "give the dataset folder (e.g. DST/Dataset501_Lung)")
    import json

    try:
        with open(path, encoding="utf-8") as handle:
            content = json.load(handle)
    except (OSError, ValueError) as exc:
        raise UsageError(f"dataset.json cannot be read ({exc})", path) from None
    if isinstance(content, dict) and "modality" in content and "channel_names" not in content:
        return MsdLayout.read_index(folder)
    return NnunetLayout.read_index(folder)
