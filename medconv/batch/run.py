"""Running a plan: lock the destination, resume, convert (in-process, workers or Dask), manifest, report.

Memory: the parent keeps the plan (a few hundred bytes per unit) and receives
one small result row per unit; each worker holds one unit at a time. A worker
needs about 2-3x the size of its largest volume (the decoded array, a
preprocessing copy, compression buffers): a 512x512x600 int16 CT is 315 MB, so
about 1 GB. The default number of workers is therefore
``min(cores, available memory / WORKER_MEMORY_BUDGET)`` (:mod:`.execution`).

Whatever happens to a unit, it gets a manifest row: converted, skipped, failed
(with the reason: a typed error, a crash of its worker, an environment fault) or
excluded. When the destination itself refuses further writes (disk full, read-only),
no further unit is started and the rest are recorded as not converted, with that
reason. When the manifest cannot be written, the run stops and says so.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator

from ..atomic import TEMP_MARKER, is_temporary
from ..errors import DiskFullError, EnvironmentFaultError, ManifestWriteError, ReadOnlyDestinationError, \
    environment_fault
from ..guard import Limits
from ..logs import medconv_logger_name
from .execution import SCHEDULER_ENV, WORKER_MEMORY_BUDGET, available_memory, choose_execution, default_jobs, \
    execute, job_for
from .lock import DestinationLock
from .manifest import ManifestWriter, Status, manifest_paths, read_manifest, rows_by_unit
from .dependents import ImageGate
from .plan import Plan, PlannedUnit
from .progress import BatchProgress
from .report import Report
from .unit import UnitJob, UnitResult, base_row, convert_unit, unit_fingerprint

__all__ = ["RunOptions", "run_plan", "print_plan", "remove_leftover_temporaries", "default_jobs",
           "WORKER_MEMORY_BUDGET", "SCHEDULER_ENV", "LOG_NAME", "SUMMARY_NAME", "PREVIEW_DIR"]

log = logging.getLogger(__name__)

LOG_NAME = "medconv-errors.log"
SUMMARY_NAME = "medconv-summary.json"
PREVIEW_DIR = "_preview"
#: ``error_type`` codes of faults that concern the whole destination: no later unit can be written either.
DESTINATION_WIDE_CODES = frozenset({DiskFullError.code, ReadOnlyDestinationError.code})


@dataclass(frozen=True)
class RunOptions:
    """How a plan runs (not what each unit does: that is :class:`UnitJob`).

    Parameters
    ----------
    jobs:
        Worker processes; ``None`` or 0 to let the plan decide (in this process when
        the plan is small, else :func:`default_jobs` workers), 1 to run in this process.
        With Dask: the number of tasks in flight (default: every worker thread).
    backend:
        ``"local"`` (this machine) or ``"dask"`` (a ``distributed`` scheduler).
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
    unit_memory:
        Bytes of address space one unit may add in a worker process before it fails
        with a memory error (Linux); ``None``: the memory available when the run starts;
        0: no limit. Not applied in this process.
    unit_seconds:
        Wall time one unit may take in a worker before the worker is stopped and the
        unit fails; ``None``: no limit.
    verbosity:
        What the terminal shows (:mod:`medconv.logs`): -1 errors only, 0 errors and the
        summary, 1 one line per unit, 2 debug details. Applied by
        :func:`~medconv.batch.dataset.convert_dataset` (the CLI); library callers
        configure :mod:`logging` as they like.
    log_file:
        Append every message (debug level) to this file; applied like ``verbosity``.
    """

    jobs: int | None = None
    backend: str = "local"
    scheduler: str | None = None
    overwrite: bool = False
    manifest: str | None = None
    preview: bool = False
    progress: bool = True
    summary: bool = True
    unit_memory: int | None = None
    unit_seconds: float | None = None
    verbosity: int = 0
    log_file: str | None = None

    def unit_limits(self) -> Limits:
        """The :class:`~medconv.guard.Limits` of one unit in a worker."""
        memory = self.unit_memory
        if memory is None:
            memory = available_memory()
        return Limits(memory_bytes=memory or None, seconds=self.unit_seconds)


def remove_leftover_temporaries(plan: Plan, extra: tuple[str, ...] = ()) -> int:
    """Delete temporary files that an interrupted earlier run left beside this plan's outputs.

    Only files named like :func:`medconv.atomic.temporary_name` of one of the
    plan's own outputs, sidecars and companion files (or of the ``extra`` paths:
    the manifests, an exported case's files), of a file named after a unit's output
    with another suffix (a NIfTI's ``.bval`` / ``.bvec``), or of a file named after a
    unit that annotates another (its masks and table), are removed; nothing else is touched.
    """
    stems = []  # files a unit writes beside its output are named after the output's name
    for unit in plan.units:
        if unit.output:
            stem = unit.output[: len(unit.output) - len(plan.suffix)] if plan.suffix else unit.output
            stems.append(stem if unit.source.annotates else stem + ".")  # masks: <stem>_<map>...
    return remove_temporaries_of([p for unit in plan.units for p in (unit.output, unit.sidecar, *unit.companions)]
                                 + list(extra), stems)


def remove_temporaries_of(paths: Iterable[str | None], stems: Iterable[str] = ()) -> int:
    """Delete the temporary files (:func:`medconv.atomic.temporary_name`) of ``paths``, and of
    any file whose name starts with one of ``stems`` (a path without its suffix), left by an
    interrupted run."""
    wanted: dict[str, set[str]] = {}
    prefixes: dict[str, set[str]] = {}
    for path in paths:
        if path:
            folder, name = os.path.split(path)
            wanted.setdefault(folder, set()).add(name)
    for stem in stems:
        folder, name = os.path.split(stem)
        prefixes.setdefault(folder, set()).add(name)
        wanted.setdefault(folder, set())
    removed = 0
    for folder, names in wanted.items():
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        for entry in entries:
            if not is_temporary(entry):
                continue
            final = entry.split(TEMP_MARKER, 1)[-1]
            if any(entry.endswith(name) for name in names) or any(final.startswith(p) for p in prefixes.get(folder, ())):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(folder, entry))
                    removed += 1
    return removed


def _skipped_row(unit: PlannedUnit, previous: dict[str, Any] | None) -> dict[str, Any]:
    row = base_row(unit)
    if previous and previous.get("status") == Status.CONVERTED and previous.get("output") == unit.relative:
        for key in ("shape", "spacing", "dtype", "kind", "warnings", "history", "patient_id", "study_uid",
                    "series_uid", "modality", "series_description"):
            if previous.get(key) not in (None, ""):
                row[key] = previous.get(key)
    row.update(status=Status.SKIPPED, reason="output exists (converted by an earlier run; --overwrite redoes it)",
               seconds=0.0)
    return row


def _existing_row(unit: PlannedUnit, existing: str) -> dict[str, Any]:
    """A failed row for an output that exists but was made of other files or with other options."""
    row = base_row(unit)
    # a unit of several files may have no file under its planned output name (its masks split): name its record
    found = unit.output if os.path.isfile(unit.output) or unit.sidecar is None else unit.sidecar
    if existing == "other-source":
        reason = (f"{found}: the output exists but was made from other files (an earlier run into this "
                  "folder) (use another destination folder, or a --name template that tells them apart)")
    else:
        reason = (f"{found}: the output exists but was made with other options "
                  "(pass --overwrite to redo it with these, or use another destination folder)")
    row.update(status=Status.FAILED, reason=reason, error_type="output-exists", output="", seconds=0.0)
    return row


def _not_run_row(unit: PlannedUnit, why: str, code: str) -> dict[str, Any]:
    row = base_row(unit)
    row.update(status=Status.FAILED, reason=f"not converted: {why}", error_type=code, output="", seconds=0.0)
    return row


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a job scheduler's stop, ``kill``) ends the run like Ctrl-C: workers stopped, temporaries removed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _prepare_destination(plan: Plan, csv_path: str) -> list[str]:
    """Create the destination (and the manifest's folder); returns the folders to lock.

    An environment fault here means nothing can start: it is raised as the typed
    user error (the CLI exits with 2).
    """
    folders = [os.path.abspath(plan.dest)]
    manifest_folder = os.path.dirname(os.path.abspath(csv_path))
    if os.path.realpath(manifest_folder) != os.path.realpath(folders[0]):
        folders.append(manifest_folder)
    for folder in folders:
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            fault = environment_fault(exc, folder)
            if fault is None:
                raise
            raise fault from None
    return folders


def run_plan(plan: Plan, job: UnitJob = UnitJob(), options: RunOptions = RunOptions(), console=None) -> Report:
    """Run ``plan``: skip finished units, convert the rest, write the manifest; return the Report.

    Never raises for a unit's failure (it becomes a manifest row). Ctrl-C (or
    SIGTERM) stops the workers, keeps every finished output and the manifest of
    what finished, and returns a Report whose exit code is 130.

    Raises
    ------
    EnvironmentFaultError
        The destination (or the manifest) cannot be created or written at all:
        nothing could start.
    DestinationLockedError
        Another run is writing into the destination.
    UsageError
        A bad backend, or ``--backend dask`` without a reachable scheduler.
    """
    if console is None:
        from .progress import batch_console

        console = batch_console()
    csv_path, jsonl_path = manifest_paths(plan.dest, options.manifest)
    folders = _prepare_destination(plan, csv_path)
    with contextlib.ExitStack() as held:
        locks = []
        for index, folder in enumerate(folders):
            try:
                locks.append(held.enter_context(DestinationLock(folder)))
            except EnvironmentFaultError as exc:
                if index == 0:
                    raise
                raise ManifestWriteError(f"the manifest cannot be written: {exc.message}", csv_path,
                                         "give --manifest a path you can write to") from None
        report = Report(total=len(plan.units), manifest_paths=(csv_path, jsonl_path), notes=list(plan.notes))
        for lock in locks:
            if lock.took_over is not None and lock.took_over.converting:
                report.notes.append(f"the last run into {lock.folder} ended while converting "
                                    f"{lock.took_over.converting} in its own process (a crash?); --jobs 2 "
                                    "contains a crash of native code")
        return _run_locked(plan, job, options, console, csv_path, jsonl_path, report, locks[0])


def _run_locked(plan: Plan, job: UnitJob, options: RunOptions, console, csv_path: str, jsonl_path: str,
                report: Report, lock: DestinationLock) -> Report:
    started = time.perf_counter()
    log_path = os.path.join(os.path.dirname(os.path.abspath(csv_path)), LOG_NAME)
    removed = remove_leftover_temporaries(plan, extra=(csv_path, jsonl_path))
    if removed:
        report.notes.append(f"removed {removed} temporary file(s) left by an interrupted run")
    previous = rows_by_unit(read_manifest(jsonl_path))
    preview_dir = os.path.join(plan.dest, PREVIEW_DIR) if options.preview else None
    manifest = ManifestWriter(csv_path, jsonl_path)  # ManifestWriteError here: nothing can start
    todo: list[PlannedUnit] = []
    known: list[dict[str, Any]] = []  # rows known before converting (skipped, planned failures), in plan order
    gate = ImageGate(plan.units, lambda unit: unit_fingerprint(unit, job), preview_dir)
    try:
        for unit in plan.units:
            if unit.failure is not None:
                row = convert_unit(unit, job)  # its planned failure, without running anything
            else:
                existing = None if options.overwrite else unit.existing_output(unit_fingerprint(unit, job))
                if existing is None:
                    todo.append(unit)
                    continue
                row = _skipped_row(unit, previous.get(unit.id)) if existing == "done" else _existing_row(unit, existing)
            known.append(row)
        for row in known:  # a skipped annotation unit waits for its image unit, if this run redoes that
            for ready in gate.rows(row):
                _record(ready, manifest, report, log_path)
        execution = choose_execution(todo, options.jobs, options.backend, job.fmt)
        report.execution = execution.mode.value if todo else None
        log.info("%d unit(s) to convert, %d skipped or known; execution: %s (%s)", len(todo),
                 len(plan.units) - len(todo), execution.describe(), execution.reason)
        run_job = job_for(job, execution)
        run_job = replace(run_job, write_options=replace(run_job.write_options, overwrite=True), preview_dir=preview_dir)
        _convert(todo, run_job, execution, options, console, manifest, report, log_path, lock, gate)
        manifest.finish()
    except ManifestWriteError as exc:
        manifest.close()
        report.manifest_error = exc.one_line()
        log.error("%s", report.manifest_error)
    finally:
        manifest.close()
    report.finished = time.time()
    if preview_dir and os.path.isdir(preview_dir):
        try:
            from ..preview import write_index

            report.preview_index = write_index(preview_dir, [unit.relative for unit in plan.units if unit.relative])
        except Exception as exc:  # pictures are a convenience; never fail a run over them
            report.notes.append(f"preview index not written: {type(exc).__name__}: {exc}")
    with contextlib.suppress(OSError):
        report.write_json(os.path.join(os.path.dirname(os.path.abspath(csv_path)), SUMMARY_NAME))
    log.info("run finished in %.2f s: %s", time.perf_counter() - started,
             ", ".join(f"{count} {status}" for status, count in sorted(report.counts.items())))
    return report


def _convert(todo: list[PlannedUnit], job: UnitJob, execution, options: RunOptions, console,
             manifest: ManifestWriter, report: Report, log_path: str, lock: DestinationLock, gate: ImageGate) -> None:
    """Run the units to do, recording each row as it comes (an annotation unit's after its image unit's:
    :mod:`.dependents`); stop starting units when DST refuses writes."""
    done: set[str] = set()
    stop: dict[str, str] = {}
    pools: list[Any] = []

    def cancel(reason: str, code: str) -> None:
        stop.setdefault("reason", reason)
        stop.setdefault("code", code)
        for pool in pools:
            pool.cancel()

    show = options.progress and console.is_terminal
    results = execute(todo, job, execution, cancelled=lambda: bool(stop), scheduler=options.scheduler,
                      unit_limits=options.unit_limits(), on_pool=pools.append, on_local_unit=lock.note_converting)
    try:
        with _sigterm_as_interrupt(), BatchProgress(console, len(todo), enabled=show) as progress:
            for result in results:
                _replay_log(result)
                row = result.row
                done.add(row["unit_id"])
                try:
                    for ready in gate.rows(row):
                        _record(ready, manifest, report, log_path)
                except ManifestWriteError as exc:  # nothing more can be recorded: stop here
                    cancel(exc.one_line(), exc.code)
                    results.close()
                    raise
                progress.advance(row)
                if row.get("error_type") in DESTINATION_WIDE_CODES and not stop:
                    log.error("stopping: %s", row["reason"])
                    cancel(f"the run stopped starting units when {row['unit_id']} failed ({row['error_type']}: "
                           "see its row); fix that, then rerun the same command", row["error_type"])
    except KeyboardInterrupt:
        report.interrupted = True
        results.close()  # stops the workers now (killed mid-unit), before their temporaries are removed
        remove_leftover_temporaries(_plan_of(todo))
        with contextlib.suppress(ManifestWriteError):
            for ready in gate.held():
                _record(ready, manifest, report, log_path)
        log.warning("interrupted: %d of %d unit(s) finished", len(done), len(todo))
        return
    if stop:
        for unit in todo:
            if unit.id not in done:
                for ready in gate.rows(_not_run_row(unit, stop["reason"], stop["code"])):
                    _record(ready, manifest, report, log_path)
    for ready in gate.held():  # an image unit that gave no row at all (never expected): record as they came
        _record(ready, manifest, report, log_path)


def _plan_of(units: list[PlannedUnit]) -> Plan:
    return Plan(root="", dest="", fmt="", suffix="", units=list(units))


def _record(row: dict[str, Any], manifest: ManifestWriter, report: Report, log_path: str) -> None:
    """Write one row to the manifest, count it, log it (and its traceback)."""
    if row.get("traceback"):
        _log_traceback(log_path, row)
        report.log_path = log_path
    manifest.write(row)
    report.add(row)
    _log_row(row)


def _log_row(row: dict[str, Any]) -> None:
    status = row.get("status")
    unit = row.get("unit_id")
    seconds = row.get("seconds") or 0.0
    if status == Status.CONVERTED:
        shape = "x".join(str(n) for n in row.get("shape") or ())
        log.info("converted %s -> %s (%s %s) in %.2f s", unit, row.get("output"), shape, row.get("dtype"), seconds)
        for warning in row.get("warnings") or ():
            log.info("  %s: %s", unit, warning)
        for step in row.get("history") or ():
            log.debug("  %s: applied %s", unit, step)
    elif status == Status.FAILED:
        log.warning("failed %s: %s", unit, row.get("reason"))
        if row.get("traceback"):
            log.debug("%s: traceback or last output:\n%s", unit, row["traceback"])
    else:
        log.info("%s %s: %s", status, unit, row.get("reason"))


def _replay_log(result: UnitResult) -> None:
    """Emit, in this process, what a unit logged in its worker (other libraries' lines under medconv's loggers)."""
    unit = result.row.get("unit_id")
    for level, name, message in result.log:
        logging.getLogger(medconv_logger_name(name)).log(level, "%s: %s", unit, message)


def _log_traceback(log_path: str, row: dict[str, Any]) -> None:
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with contextlib.suppress(OSError):
        with open(log_path, "a", encoding="utf-8") as handle:
            what = "internal error" if row.get("error_type") == "internal" else row.get("error_type") or "error"
            handle.write(f"--- {stamp} {what} in unit {row['unit_id']} ({row.get('source')})\n")
            handle.write(row.get("traceback") or "")
            handle.write("\n")


#: The dry-run's columns, in order.
PLAN_COLUMNS = ("unit", "reader", "files", "output", "status")


def _plan_rows(plan: Plan, limit: int | None) -> list[tuple[str, str, str, str, str]]:
    """One row of :data:`PLAN_COLUMNS` per unit (the first ``limit``, then a '... more' row)."""
    rows = []
    for index, unit in enumerate(plan.units):
        if limit is not None and index >= limit:
            rows.append(("...", "", "", f"{len(plan.units) - limit} more", ""))
            break
        if unit.failure is not None:
            status = f"fails: {unit.failure.reason}"
        elif unit.excluded:
            status = f"probably excluded: {unit.excluded}"
        elif unit.source.error:  # known before it runs (an annotation whose series is absent)
            status = f"will fail: {unit.source.error}"
        else:
            status = "exists" if unit.is_complete() else "to do"
            if unit.source.annotates:
                status += f"; annotates {unit.source.annotates}"
        output = unit.relative
        if unit.source.annotates and output.endswith(plan.suffix):  # its files share this name
            output = output[: len(output) - len(plan.suffix)] + "*" + plan.suffix
        rows.append((unit.id, unit.source.reader, str(len(unit.source.paths)), output, status))
    return rows


def print_plan(plan: Plan, console, limit: int | None = None) -> None:
    """Print what a run would do (``--dry-run``): each unit, its reader and output, and the notes.

    A table when it fits the console; else one block per unit (its id, its output, then
    its reader, file count and status, each on a line of its own), so that long unit ids
    and output names are not folded into narrow columns.
    """
    from rich.table import Table

    title = f"{len(plan.units)} unit(s) -> {plan.dest}"
    rows = _plan_rows(plan, limit)
    widths = [max([len(column)] + [len(row[n]) for row in rows]) for n, column in enumerate(PLAN_COLUMNS)]
    if sum(widths) + 3 * len(widths) + 1 <= console.width:  # rich's borders and padding: 3 per column, 1 more
        table = Table(title=title, show_lines=False)
        for column in PLAN_COLUMNS:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    else:
        from rich.padding import Padding
        from rich.text import Text

        console.print(Text(title))
        for unit_id, reader, files, output, status in rows:
            console.print(Text(unit_id))
            lines = [f"-> {output}", f"{reader}, {files} file(s); {status}"] if reader else [output]
            for line in lines:  # indented, and so are the lines a long one wraps onto
                console.print(Padding(Text(line), (0, 0, 0, 3), expand=False))
    for note in plan.notes:
        console.print(f"note: {note}", highlight=False, markup=False)
