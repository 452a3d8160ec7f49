"""One call for a whole export: discover -> pair -> label table -> plan -> run -> index -> check -> summary.

The cases run through the batch machinery (:func:`medconv.batch.run_plan`): in
parallel, resumable (a finished case's record is its sidecar), one manifest row
per case, and one per unit pairing set apart (failed for a problem in the
dataset, excluded for a unit left out on purpose). After the run the index file
(``dataset.json`` / ``datalist.json``) lists the cases that exported, the
integrity check reads the folder back, and the summary is written and printed.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from .._version import __version__
from ..batch import Plan, RunOptions, UnitJob, default_jobs, discover_sources, run_plan
from ..batch.report import EXIT_FAILED, EXIT_OK, Report
from ..batch.run import remove_temporaries_of
from ..errors import NothingFoundError, UsageError
from ..layout import sanitize_component
from ..options import ReadOptions, WriteOptions
from ..source import Source
from .cases import Case, Channel, LabelNaming, Pairing, Unpaired, UnpairedReason
from .checks import CheckReport, check_dataset
from .formats import FORMATS, DatasetInfo, Layout
from .formats.base import CaseFiles
from .labelmap import LabelRef, LabelSpec, LabelTable, build_label_table
from .rules import find_cases
from .summary import build_summary, render_summary, write_summary
from .survey import survey_label_maps
from .worker import CASE_READER, RECORDS_DIR, CaseExporter, CaseUnit, GridPolicy, record_path

#: Reasons whose manifest row names a case (the others name the unit).
_CASE_LEVEL = frozenset({UnpairedReason.MISSING_CHANNEL, UnpairedReason.DUPLICATE_CASE,
                         UnpairedReason.SEVERAL_LABELS, UnpairedReason.BAD_CHANNELS})


@dataclass(frozen=True)
class ExportOptions:
    """What an export writes and how it pairs (the CLI's ``medconv export`` options).

    Attributes
    ----------
    format:
        ``nnunet``, ``msd`` or ``monai`` (:data:`medconv.export.formats.FORMATS`).
    dataset_id, name:
        ``--id`` and ``--name``: nnU-Net's ``Dataset501_Lung``; the name defaults to SRC's.
    rule, pairs:
        Force a pairing rule, or give an explicit pairs table.
    labels:
        ``--label NAME=VALUES`` classes (they alone make the label table).
    ignore_label:
        A source label value (or name) meaning "not annotated": exported as ``ignore``, the highest value.
    channel_names:
        Rename the channels (in order), e.g. ``("CT",)`` so nnU-Net uses its CT normalisation.
    on_grid_mismatch:
        ``error`` (default): a label map or channel off the image grid fails its case;
        ``resample``: it is resampled onto the image grid, with a warning.
    unlabeled:
        Images without a label map: ``test`` (exported to imagesTs/) or ``skip`` (left out, listed).
    validation_fraction, folds, seed:
        MONAI's datalist: the validation share, cross-validation folds, the shuffle's seed.
    """

    format: str = "nnunet"
    dataset_id: Optional[int] = None
    name: Optional[str] = None
    rule: Optional[str] = None
    pairs: Optional[str] = None
    labels: tuple[LabelSpec, ...] = ()
    ignore_label: Optional[LabelRef] = None
    channel_names: tuple[str, ...] = ()
    on_grid_mismatch: GridPolicy = "error"
    unlabeled: Literal["test", "skip"] = "test"
    validation_fraction: float = 0.2
    folds: int = 0
    seed: int = 0

    def layout(self, src: str) -> Layout:
        """The layout object these options describe."""
        if self.format not in FORMATS:
            raise UsageError(f"unknown export format {self.format!r}", hint=f"use one of {', '.join(FORMATS)}")
        name = self.name or default_name(src)
        if self.format == "monai":
            return FORMATS["monai"](name, self.dataset_id, self.validation_fraction, self.folds, self.seed)
        return FORMATS[self.format](name, self.dataset_id)


def default_name(src: str) -> str:
    """The dataset name from SRC's folder name (``Task06_Lung`` -> ``Lung``), letters and digits only."""
    base = os.path.basename(os.path.normpath(os.path.abspath(src)))
    for prefix in ("Task", "Dataset"):
        if base.startswith(prefix) and "_" in base and base[len(prefix):base.index("_")].isdigit():
            base = base[base.index("_") + 1:]
    return "".join(ch for ch in sanitize_component(base) if ch.isalnum()) or "Dataset"


@dataclass
class ExportResult:
    """What an export did."""

    dataset_dir: str
    pairing: Pairing
    labels: LabelTable
    report: Optional[Report] = None
    check: Optional[CheckReport] = None
    summary: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        code = self.report.exit_code if self.report is not None else EXIT_OK
        if code == EXIT_OK and self.check is not None and not self.check.ok:
            return EXIT_FAILED
        return code


def pair_dataset(src: str, options: ExportOptions, dest: Optional[str] = None) -> Pairing:
    """Discover SRC's units and pair them (the export's first step; ``medconv scan`` shows it too)."""
    sources = discover_sources(src, None, dest)
    pairing = find_cases(src, sources, rule=options.rule, pairs=options.pairs)
    if pairing.rule == "none":
        raise UsageError("no pairing rule recognises this dataset's layout", src,
                         "point SRC at the dataset folder itself (e.g. Task01_BrainTumour), choose a rule with "
                         "--rule, or list the cases with --pairs pairs.csv")
    pairing = _renamed_channels(pairing, options.channel_names)
    if options.unlabeled == "skip" and pairing.test:
        left_out = [Unpaired(UnpairedReason.NOT_A_CHANNEL, "an image without a label map; left out "
                             "(--unlabeled test exports it to imagesTs/)", case.case_id,
                             tuple(c.source for c in case.channels)) for case in pairing.test]
        pairing = dataclasses.replace(pairing, cases=pairing.training, unpaired=pairing.unpaired + tuple(left_out))
    if not pairing.cases and not pairing.errors:
        raise NothingFoundError("no case found", src, "run 'medconv scan' on it to see what is there")
    return pairing


def _renamed_channels(pairing: Pairing, names: tuple[str, ...]) -> Pairing:
    if not names:
        return pairing
    if len(names) != len(pairing.channel_names):
        raise UsageError(f"--channel-names gives {len(names)} name(s), the dataset has {len(pairing.channel_names)} "
                         f"channel(s) ({', '.join(pairing.channel_names)})")
    rename = dict(zip(pairing.channel_names, names))
    cases = tuple(dataclasses.replace(case, channels=tuple(Channel(rename.get(c.name, c.name), c.source, c.volume_index)
                                                          for c in case.channels)) for case in pairing.cases)
    return dataclasses.replace(pairing, cases=cases, channel_names=tuple(names))


def label_table_for(pairing: Pairing, options: ExportOptions, read_options: ReadOptions,
                    cache_folder: Optional[str], jobs: Optional[int]) -> tuple[LabelTable, list[str]]:
    """The dataset's label table (module :mod:`.labelmap`), surveying label maps only when nothing declares them."""
    notes: list[str] = []
    if options.labels:
        by_name = [label for case in pairing.training for label in case.labels if label.naming is LabelNaming.OWN_TABLE]
        numbered = [ref for spec in options.labels for ref in spec.refs if isinstance(ref, int)]
        if by_name and numbered:
            raise UsageError(f"--label takes annotation labels by name, not value ({', '.join(map(str, numbered))}): "
                             f"{by_name[0].source.relative_path} numbers its ROIs / segments its own way",
                             hint="name them, e.g. --label tumor=GTV-1,GTVp (LIDC: --label lesion=nodule); "
                                  "medconv info FILE lists an object's ROI names")
        return build_label_table(specs=options.labels, ignore=options.ignore_label), notes
    labels = [label for case in pairing.training for label in case.labels]
    declared = None
    if pairing.labels_declared and all(label.names == pairing.label_names for label in labels):
        declared, labels = pairing.label_names, []  # one table for every map (a dataset.json)
    # maps named by their own table (an RTSTRUCT's ROIs, a SEG's segments) are surveyed for it, by-value maps
    # for their values; maps whose names pairing knows (a LIDC reading's one class) need no reading
    to_read = [label for label in labels if not label.names]
    found = {}
    if to_read:
        notes.append(f"read {len(to_read)} label map(s) to find their values (name them with --label NAME=VALUES "
                     "to skip this)")
        found = survey_label_maps([label.source for label in to_read], read_options, cache_folder,
                                  jobs or default_jobs(len(to_read)))
    named, surveyed = [], set()
    for label in labels:
        if label.names:
            named.append(label.names)
        elif label.naming is LabelNaming.OWN_TABLE:
            named.append(label.names_of(found[label.source.id].names) if found.get(label.source.id) else {})
        elif found.get(label.source.id) is not None:
            surveyed.update(found[label.source.id].values)
    table = build_label_table(declared=declared, map_names=named, surveyed=surveyed,
                              hints=pairing.label_names, ignore=options.ignore_label)
    return table, notes


def _annotated(pairing: Pairing) -> bool:
    """Whether some case's label map is an annotation object (RTSTRUCT, SEG, LIDC XML)."""
    from .rules.annotations import is_annotation

    return any(is_annotation(label.source) for case in pairing.cases for label in case.labels)


def _drawn_with(pairing: Pairing, read_options: ReadOptions) -> str:
    """The annotation options the label maps are drawn with, for the cases' fingerprint ('' when none is)."""
    return repr(read_options.annotations) if _annotated(pairing) else ""


def _check_annotation_options(pairing: Pairing, read_options: ReadOptions) -> None:
    """Refuse annotation options a training export cannot honour, before anything is read or written.

    A case has one label map, so annotation objects are read as one map each (``--masks map``;
    LIDC-IDRI: the consensus map at ``--consensus``); ``--no-annotations`` leaves no label map.
    """
    from ..options import MaskLayout

    if not _annotated(pairing):
        return
    annotations = read_options.annotations
    if annotations is None:
        raise UsageError("--no-annotations leaves the annotated series without their label maps",
                         hint="drop --no-annotations to export the RTSTRUCT / SEG / LIDC XML masks")
    if annotations.masks is not MaskLayout.MAP:
        raise UsageError(f"--masks {annotations.masks.value} makes several masks per annotation; a training case "
                         "has one label map", hint="drop --masks (map) for export; use tcia2nii --masks "
                         f"{annotations.masks.value} to write them beside the images")


def plan_export(pairing: Pairing, layout: Layout, dataset_dir: str, src: str) -> Plan:
    """One unit per case (files named by the layout, record as sidecar) and one per pairing problem."""
    plan = Plan(root=src, dest=dataset_dir, fmt="nii.gz", suffix=layout.file_ending)
    for case in pairing.cases:
        files = layout.case_files(case.case_id, case.split, len(case.channels))
        relative = files.label or files.images[0]
        source = Source(case.case_id, CASE_READER, case.paths, src,
                        {"rule": case.rule, "channels": [c.name for c in case.channels], "split": case.split.value})
        plan.units.append(CaseUnit(source, os.path.join(dataset_dir, *relative.split("/")), relative,
                                   record_path(dataset_dir, case.case_id), case=case, files=files))
    used = {unit.id for unit in plan.units}
    for number, item in enumerate(pairing.unpaired, start=1):
        unit_id = item.name if item.reason in _CASE_LEVEL or not item.sources else item.sources[0].id
        base, count = unit_id, 1
        while unit_id in used:
            count += 1
            unit_id = f"{base}#{count}"
        used.add(unit_id)
        paths = tuple(p for s in item.sources for p in s.paths)
        source = Source(unit_id, item.sources[0].reader if item.sources else CASE_READER, paths, src)
        plan.units.append(CaseUnit(source, "", "", None, problem=item))
    return plan


def remove_leftover_case_temporaries(plan: Plan) -> int:
    """Delete the temporary files an interrupted earlier export left beside any of this plan's case files."""
    return remove_temporaries_of(os.path.join(plan.dest, *relative.split("/")) for unit in plan.units
                                 if isinstance(unit, CaseUnit) and unit.files is not None
                                 for relative in unit.files.files)


def _records(plan: Plan) -> list[dict[str, Any]]:
    """The records of the cases that are exported now (converted by this run or an earlier one)."""
    records = []
    for unit in plan.units:
        if not isinstance(unit, CaseUnit) or unit.case is None:
            continue
        try:
            with open(unit.sidecar, encoding="utf-8") as handle:
                record = json.load(handle)
        except (OSError, ValueError):
            continue
        records.append(record)
    return records


def export_dataset(src: str | os.PathLike, dest: str | os.PathLike, options: ExportOptions = ExportOptions(), *,
                   read_options: ReadOptions = ReadOptions(), write_options: WriteOptions = WriteOptions(),
                   preprocessing=None, run_options: RunOptions = RunOptions(), dry_run: bool = False,
                   console=None) -> ExportResult:
    """Export the dataset under ``src`` as a training layout in ``dest``; see the module notes.

    Returns an :class:`ExportResult` whose ``exit_code`` is 0 when every case exported and
    the check passed, 1 otherwise (a case failed, a pairing problem, a check problem).
    Raises :class:`~medconv.errors.UsageError` / :class:`~medconv.errors.NothingFoundError`
    before anything is written when the dataset cannot be paired at all.
    """
    from ..batch.progress import batch_console

    console = console or batch_console()
    src, dest = os.fspath(src), os.fspath(dest)
    layout = options.layout(src)
    dataset_dir = os.path.join(dest, layout.folder_name())
    pairing = pair_dataset(src, options, dest)
    _check_annotation_options(pairing, read_options)
    cache = os.path.join(dataset_dir, RECORDS_DIR)
    labels, notes = label_table_for(pairing, options, read_options, None if dry_run else cache, run_options.jobs)
    result = ExportResult(dataset_dir, pairing, labels, notes=notes)
    plan = plan_export(pairing, layout, dataset_dir, src)
    if dry_run:
        from .report import render_pairing

        render_pairing(pairing, console, destination=dataset_dir, labels=labels)
        return result
    os.makedirs(os.path.join(dataset_dir, RECORDS_DIR), exist_ok=True)
    remove_leftover_case_temporaries(plan)
    exporter = CaseExporter(layout, labels, options.on_grid_mismatch, _drawn_with(pairing, read_options))
    job = UnitJob(fmt="nii.gz", read_options=read_options, write_options=write_options, preprocessing=preprocessing,
                  converter=exporter)
    summary_on_screen = run_options.summary
    result.report = run_plan(plan, job, dataclasses.replace(run_options, summary=False, preview=False),
                             console=console)
    records = _records(plan)
    info = dataset_info(records, layout, labels, pairing, src)
    layout.write_index(dataset_dir, info)
    result.check = check_dataset(dataset_dir, deep=False, jobs=1)
    result.summary = build_summary(records, labels.names_by_value(), pairing.channel_names)
    result.summary["labels_table"] = labels.describe()
    write_summary(dataset_dir, result.summary)
    if summary_on_screen:
        for note in notes:
            console.print(f"note: {note}", highlight=False, markup=False)
        result.report.render(console)
        render_summary(result.summary, console)
    for problem in result.check.problems:
        console.print(f"check: {problem.one_line()}", highlight=False, markup=False)
    return result


def dataset_info(records: list[dict[str, Any]], layout: Layout, labels: LabelTable, pairing: Pairing,
                 src: str) -> DatasetInfo:
    """The index file's content from the exported cases' records."""
    training, test = [], []
    for record in records:
        files = record["files"]
        case = CaseFiles(record["case"]["case_id"], tuple(files["images"]), files.get("label"),
                         bool(files.get("stacked")))
        (training if case.label else test).append(case)
    description = (f"exported by medconv {__version__} from {os.path.basename(os.path.abspath(src))} "
                   f"(pairing rule {pairing.rule})")
    return DatasetInfo(layout.name, description, pairing.channel_names, labels.names_by_value(),
                       tuple(sorted(training, key=lambda c: c.case_id)), tuple(sorted(test, key=lambda c: c.case_id)))
