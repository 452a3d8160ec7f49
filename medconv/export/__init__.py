"""Training-ready datasets: pair images with their label maps into cases, export nnU-Net v2, Decathlon, MONAI.

::

    from medconv.export import ExportOptions, export_dataset, find_cases, check_dataset

    result = export_dataset("Task06_Lung", "nnUNet_raw", ExportOptions(format="nnunet", dataset_id=501, name="Lung"))
    result.exit_code, result.dataset_dir, result.summary

* :mod:`.cases`: the types (``Case``, ``Channel``, ``LabelSource``, ``Unpaired``, ``Pairing``);
* :mod:`.rules`: the pairing rules (MSD, LUNA16, Sliver07, LiTS, annotations, case folders, ``--pairs``);
* :mod:`.labelmap`: the dataset's consecutive label table; :mod:`.survey`: label values when undeclared;
* :mod:`.formats`: the layouts (nnunet, msd, monai) and their index files;
* :mod:`.worker`: one case in a worker; :mod:`.run`: the whole export through the batch runner;
* :mod:`.checks`: nnU-Net's integrity rules; :mod:`.summary`: the dataset summary;
* :mod:`.report`: the pairing for people (``medconv scan``, ``--dry-run``).

See docs/export.md.
"""

import importlib
from typing import Any

#: public name -> submodule; imported on first use, so a worker that unpickles a case imports only what it needs
_EXPORTS = {
    "Case": "cases", "CaseSplit": "cases", "Channel": "cases", "LabelSource": "cases", "Pairing": "cases",
    "Unpaired": "cases", "UnpairedReason": "cases",
    "CheckReport": "checks", "Problem": "checks", "check_dataset": "checks",
    "FORMATS": "formats",
    "LabelSpec": "labelmap", "LabelTable": "labelmap", "build_label_table": "labelmap",
    "PAIRING_RULES": "rules", "find_cases": "rules",
    "ExportOptions": "run", "ExportResult": "run", "export_dataset": "run", "pair_dataset": "run",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
