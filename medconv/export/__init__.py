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

from .cases import Case, CaseSplit, Channel, LabelSource, Pairing, Unpaired, UnpairedReason
from .checks import CheckReport, Problem, check_dataset
from .formats import FORMATS
from .labelmap import LabelSpec, LabelTable, build_label_table
from .rules import PAIRING_RULES, find_cases
from .run import ExportOptions, ExportResult, export_dataset, pair_dataset

__all__ = [
    "Case", "CaseSplit", "Channel", "CheckReport", "ExportOptions", "ExportResult", "FORMATS", "LabelSource",
    "LabelSpec", "LabelTable", "PAIRING_RULES", "Pairing", "Problem", "Unpaired", "UnpairedReason",
    "build_label_table", "check_dataset", "export_dataset", "find_cases", "pair_dataset",
]
