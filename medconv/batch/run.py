"""Running a plan: resume, parallel conversion (joblib, or Dask on a cluster), manifest, report.

Memory: the parent keeps the plan (a few hundred bytes per unit) and receives
one small result row per unit; each worker holds one unit at a time. A worker
needs about 2-3x the size of its largest volume (the decoded array, a
preprocessing copy, compression buffers): a 512x512x600 int16 CT is 315 MB, so
about 1 GB. The default number of workers is therefore
``min(cores, available memory / WORKER_MEMORY_BUDGET)``.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Iterator

from ..atomic import is_temporary
from ..errors import UsageError
from .manifest import ManifestWriter, manifest_paths, read_manifest, rows_by_unit
from .plan import Plan, PlannedUnit
from .progress import BatchProgress
from .report import Report
from .unit import UnitJob, base_row, run_unit, unit_fingerprint

#: Memory assumed per worker when choosing the default ``--jobs`` (a large CT, read and written).
WORKER_MEMORY_BUDGET = 2 << 30
#: Environment variable naming the Dask scheduler (``tcp://host:8786``) for ``--backend dask``.
SCHEDULER_ENV = "MEDCONV_SCHEDULER"
LOG_NAME = "medconv-errors.log"
SUMMARY_NAME = "medconv-summary.json"
PREVIEW_DIR = "_preview"


@dataclass(frozen=True)
class RunOptions:
    """How a plan runs (not what each unit does: that is :class:`UnitJob`).

    Parameters
    ----------
    jobs:
        Worker processes; ``None`` or 0 for :func:`default_jobs`, 1 to run in this process.
        With Dask: the number of tasks in flight (default: every worker thread).
    backend:
        ``"local"`` (joblib's loky processes) or ``"dask"`` (joblib's Dask backend on a
        ``distributed`` scheduler).
    scheduler:
        Dask scheduler address; default from the ``MEDCONV_SCHEDULER`` environment variable.
    overwrite:
        Redo units whose output already exists.
    manifest:
        Manifest path or stem (default ``DEST/medconv-manifest.{csv,jsonl}``).
    preview:
        Write preview pictures and ``DEST/_preview/index.html``.
    progress:
        Show a progress bar (only on a terminal).
    summary:
        Print the summary at the end.
    """

    jobs: int | None = None
    backend: str = "local"
    scheduler: str | None = None
    overwrite: bool = False
    manifest: str | None = None
    preview: bool = False
    progress: bool = True
    summary: bool = True


def available_memory() -> int | None:
    """Bytes of memory available now (Linux, macOS), or ``None`` when unknown."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def default_jobs(units: int | None = None) -> int:
    """All cores, fewer when memory cannot hold :data:`WORKER_MEMORY_BUDGET` per worker or units are few."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    jobs = cores
    memory = available_memory()
    if memory:
        jobs = min(jobs, max(1, memory // WORKER_MEMORY_BUDGET))
    if units is not None:
        jobs = min(jobs, max(1, units))
    return max(1, int(jobs))


def remove_leftover_temporaries(plan: Plan) -> int:
    """Delete temporary files that an interrupted earlier run left beside this plan's outputs.

    Only files named like :func:`medconv.atomic.temporary_name` of one of the
    plan's own outputs or sidecars are removed; nothing else is touched.
    """
    wanted: dict[str, set[str]] = {}
    for unit in plan.units:
        for path in (unit.output, unit.sidecar):
            if path:
                folder, name = os.path.split(path)
                wanted.setdefault(folder, set()).add(name)
    removed = 0
    for folder, names in wanted.items():
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        for entry in entries:
            if is_temporary(entry) and any(entry.endswith(name) for name in names):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(folder, entry))
                    removed += 1
    return removed


def _skipped_row(unit: PlannedUnit, previous: dict[str, Any] | None) -> dict[str, Any]:
    row = base_row(unit)
    if previous and previous.get("status") == "converted" and previous.get("output") == unit.relative:
        for key in ("shape", "spacing", "dtype", "kind", "warnings", "history"):
            row[key] = previous.get(key)
    row.update(status="skipped", reason="output exists (converted by an earlier run; --overwrite redoes it)",
               seconds=0.0)
    return row


def _existing_row(unit: PlannedUnit, existing: str) -> dict[str, Any]:
    """A failed row for an output that exists but was made of other files or with other options."""
    row = base_row(unit)
    if existing == "other-source":
        reason = (f"{unit.output}: the output exists but was made from other files (an earlier run into this "
                  "folder) (use another destination folder, or a --name template that tells them apart)")
    else:
        reason = (f"{unit.output}: the output exists but was made with other options "
                  "(pass --overwrite to redo it with these, or use another destination folder)")
    row.update(status="failed", reason=reason, error_type="output-exists", output="", seconds=0.0)
    return row


def execute(units: list[PlannedUnit], job: UnitJob, jobs: int, backend: str = "local",
            scheduler: str | None = None) -> Iterator[dict[str, Any]]:
    """Convert ``units``, yielding each result row as soon as its unit finishes (any order)."""
    if not units:
        return
    if backend == "local" and jobs == 1:
        for unit in units:
            yield run_unit(unit, job)
        return
    from joblib import Parallel, delayed

    tasks = (delayed(run_unit)(unit, job) for unit in units)
    if backend == "local":
        parallel = Parallel(n_jobs=jobs, backend="loky", return_as="generator_unordered", batch_size=1)
        yield from parallel(tasks)
        return
    if backend != "dask":
        raise UsageError(f"unknown backend {backend!r}", hint="use 'local' or 'dask'")
    address = scheduler or os.environ.get(SCHEDULER_ENV)
    if not address:
        raise UsageError("--backend dask needs a scheduler address",
                         hint=f"pass --scheduler tcp://HOST:8786 or set {SCHEDULER_ENV}; see docs/batch.md")
    try:
        import joblib
        from distributed import Client
    except ImportError:
        from ..errors import MissingDependencyError

        raise MissingDependencyError("--backend dask needs the 'distributed' package",
                                     hint="pip install 'medconv[dask]'") from None
    try:
        client = Client(address, timeout="20s")
    except OSError as exc:
        raise UsageError(f"cannot reach the Dask scheduler at {address} ({exc})",
                         hint="start it with 'dask scheduler' and check the address") from None
    try:
        with joblib.parallel_config(backend="dask"):
            parallel = Parallel(n_jobs=jobs if jobs > 0 else -1, return_as="generator_unordered", batch_size=1)
            yield from parallel(tasks)
    finally:
        client.close()


def run_plan(plan: Plan, job: UnitJob = UnitJob(), options: RunOptions = RunOptions(), console=None) -> Report:
    """Run ``plan``: skip finished units, convert the rest, write the manifest; return the Report.

    Never raises for a unit's failure (it becomes a manifest row). Ctrl-C stops the
    workers, keeps every finished output and the manifest of what finished, and
    returns a Report whose exit code is 130.
    """
    if console is None:
        from .progress import batch_console

        console = batch_console()
    os.makedirs(plan.dest, exist_ok=True)
    csv_path, jsonl_path = manifest_paths(plan.dest, options.manifest)
    log_path = os.path.join(os.path.dirname(os.path.abspath(csv_path)), LOG_NAME)
    report = Report(total=len(plan.units), manifest_paths=(csv_path, jsonl_path), notes=list(plan.notes))
    removed = remove_leftover_temporaries(plan)
    if removed:
        report.notes.append(f"removed {removed} temporary file(s) left by an interrupted run")
    previous = rows_by_unit(read_manifest(jsonl_path))
    preview_dir = os.path.join(plan.dest, PREVIEW_DIR) if options.preview else None
    todo: list[PlannedUnit] = []
    with ManifestWriter(csv_path, jsonl_path) as manifest:
        for unit in plan.units:
            existing = None if options.overwrite else unit.existing_output(unit_fingerprint(unit, job))
            if existing is None:
                todo.append(unit)
                continue
            row = _skipped_row(unit, previous.get(unit.id)) if existing == "done" else _existing_row(unit, existing)
            manifest.write(row)
            report.add(row)
        jobs_wanted = options.jobs or (default_jobs(len(todo)) if options.backend == "local" else -1)
        if options.backend == "local":
            jobs_wanted = max(1, min(jobs_wanted, len(todo)))  # no idle workers: their cores go to gzip threads
        write_options = job.write_options
        if write_options.threads == 0:  # share the cores between workers (Dask: one worker per core)
            cores = os.cpu_count() or 1
            threads = max(1, cores // jobs_wanted) if options.backend == "local" else 1
            write_options = replace(write_options, threads=threads)
        job = replace(job, write_options=replace(write_options, overwrite=True), preview_dir=preview_dir)
        show = options.progress and console.is_terminal
        try:
            with BatchProgress(console, len(todo), enabled=show) as progress:
                for row in execute(todo, job, jobs_wanted, options.backend, options.scheduler):
                    if row.get("traceback"):
                        _log_internal_error(log_path, row)
                        report.log_path = log_path
                    manifest.write(row)
                    report.add(row)
                    progress.advance(row)
        except KeyboardInterrupt:
            report.interrupted = True
            remove_leftover_temporaries(plan)
    report.finished = time.time()
    if preview_dir and os.path.isdir(preview_dir):
        try:
            from ..preview import write_index

            report.preview_index = write_index(preview_dir, [unit.relative for unit in plan.units])
        except Exception as exc:  # pictures are a convenience; never fail a run over them
            report.notes.append(f"preview index not written: {type(exc).__name__}: {exc}")
    with contextlib.suppress(OSError):
        report.write_json(os.path.join(os.path.dirname(os.path.abspath(csv_path)), SUMMARY_NAME))
    return report


def _log_internal_error(log_path: str, row: dict[str, Any]) -> None:
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with open(log_path, "a", encoding="utf-8") as handle:
        handle.write(f"--- {stamp} internal error in unit {row['unit_id']} ({row.get('source')})\n")
        handle.write(row.get("traceback") or "")
        handle.write("\n")


def print_plan(plan: Plan, console, limit: int | None = None) -> None:
    """Print what a run would do (``--dry-run``): each unit, its reader and output, and the notes."""
    from rich.table import Table

    table = Table(title=f"{len(plan.units)} unit(s) -> {plan.dest}", show_lines=False)
    for column in ("unit", "reader", "files", "output", "status"):
        table.add_column(column, overflow="fold")
    for index, unit in enumerate(plan.units):
        if limit is not None and index >= limit:
            table.add_row("...", "", "", f"{len(plan.units) - limit} more", "")
            break
        status = f"probably excluded: {unit.excluded}" if unit.excluded else ("exists" if unit.is_complete() else "to do")
        table.add_row(unit.id, unit.source.reader, str(len(unit.source.paths)), unit.relative, status)
    console.print(table)
    for note in plan.notes:
        console.print(f"note: {note}", highlight=False, markup=False)

