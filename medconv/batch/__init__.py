"""Whole-dataset conversion: plan -> run in parallel -> manifest and report.

The batch never knows a format: readers discover units (:class:`~medconv.source.Source`),
:mod:`medconv.layout` names their outputs, workers read/preprocess/write them, and
the parent writes one manifest row per unit as it finishes. See docs/batch.md.

>>> from medconv.batch import discover_sources, make_plan, run_plan, UnitJob, RunOptions
>>> plan = make_plan(discover_sources("LUNA16", ["metaimage"], "out"), "out")   # doctest: +SKIP
>>> report = run_plan(plan, UnitJob(fmt="nii.gz"), RunOptions(jobs=2))          # doctest: +SKIP
>>> report.exit_code                                                            # doctest: +SKIP
0
"""

from .. import logs as _logs  # noqa: F401  (the package logger's NullHandler: no stray output for library users)
from .manifest import COLUMNS, ManifestWriter, manifest_paths, read_manifest
from .plan import Plan, PlannedUnit, discover_sources, make_plan, source_location
from .report import Report
from .run import RunOptions, default_jobs, print_plan, remove_leftover_temporaries, run_plan
from .unit import UnitJob, convert_unit

__all__ = [
    "COLUMNS", "ManifestWriter", "Plan", "PlannedUnit", "Report", "RunOptions", "UnitJob", "convert_unit",
    "default_jobs", "discover_sources", "make_plan", "manifest_paths", "print_plan", "read_manifest",
    "remove_leftover_temporaries", "run_plan", "source_location",
]
