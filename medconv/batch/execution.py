"""Where a plan's units run: in this process, in worker processes, or on a Dask cluster.

The choice follows the plan, so that small work has no fixed cost (issue 14):

* **in-process** when workers cannot pay off: one unit, ``--jobs 1``, or a plan whose
  input is small (fewer than :data:`MIN_BYTES_FOR_WORKERS` bytes). Starting a worker
  costs :data:`WORKER_START_SECONDS` (a Python interpreter importing numpy and the
  readers); a small plan converts in less time than that saves. Each unit then
  compresses with every core (ISA-L threads), so the cores are used anyway.
* **workers** otherwise: ``--jobs`` processes (default :func:`default_jobs`, never more
  than units), started once and reused for the whole run, each compressing with
  ``cores // workers`` threads (SimpleITK resampling likewise), so that workers times
  threads never exceeds the cores. Each worker is a :class:`~medconv.guard.GuardedProcess`:
  a crash ends only its unit (:mod:`medconv.batch.pool`).
* **dask** with ``--backend dask``: one task per unit on a ``distributed`` scheduler, a
  lost worker's unit failing alone.

The in-process path keeps crash containment where it matters through
:func:`medconv.guard.guarded`, which readers use for risky native decoding.
"""

from __future__ import annotations

import enum
import logging
import os
from collections import deque
from dataclasses import dataclass, is_dataclass, replace
from typing import Callable, Iterator

from ..errors import MissingDependencyError, UsageError
from ..guard import SUPPORTED as WORKERS_SUPPORTED, Limits
from .plan import PlannedUnit
from .unit import UnitJob, UnitResult, crashed_result, internal_result, local_convert, worker_convert

log = logging.getLogger(__name__)

#: Memory assumed per worker when choosing the default ``--jobs`` (a large CT, read and written).
WORKER_MEMORY_BUDGET = 2 << 30
#: Environment variable naming the Dask scheduler (``tcp://host:8786``) for ``--backend dask``.
SCHEDULER_ENV = "MEDCONV_SCHEDULER"
#: Wall time to start the worker processes until they take their first unit (measured on the
#: project's 2-core machine: 0.45-0.6 s for two workers; scripts/bench_small.py).
WORKER_START_SECONDS = 0.5
#: Input bytes one unit converts per second in this process, uncompressed DICOM or raw to
#: ``.nii.gz`` with two compression threads (measured 110-160 MB/s; scripts/bench_small.py).
IN_PROCESS_BYTES_PER_SECOND = 130e6
#: What two workers gain over one process that already compresses on both cores
#: (measured: 1.4-1.6x on trees of 512x512 series; scripts/bench_small.py).
WORKER_SPEEDUP = 1.5
#: Below this much input, workers cost more to start than they save:
#: ``t / WORKER_SPEEDUP + WORKER_START_SECONDS < t`` needs ``t > 3 * WORKER_START_SECONDS``.
MIN_BYTES_FOR_WORKERS = int(IN_PROCESS_BYTES_PER_SECOND * WORKER_START_SECONDS / (1 - 1 / WORKER_SPEEDUP))


class Mode(enum.Enum):
    """Where units run."""

    IN_PROCESS = "in-process"
    WORKERS = "workers"
    DASK = "dask"


@dataclass(frozen=True)
class Execution:
    """How a run executes its units, and why (the reason is logged)."""

    mode: Mode
    #: Worker processes (1 in-process); for Dask the tasks in flight (0: one per worker thread).
    workers: int
    #: Threads one unit may use for compression and resampling.
    threads: int
    reason: str


def cores() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def available_memory() -> int | None:
    """Bytes of memory available now (Linux, macOS), or ``None`` when unknown."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def default_jobs(units: int | None = None) -> int:
    """All cores, fewer when memory cannot hold :data:`WORKER_MEMORY_BUDGET` per worker or units are few."""
    jobs = cores()
    memory = available_memory()
    if memory:
        jobs = min(jobs, max(1, memory // WORKER_MEMORY_BUDGET))
    if units is not None:
        jobs = min(jobs, max(1, units))
    return max(1, int(jobs))


def input_bytes(units: list[PlannedUnit], stop_at: int | None = None) -> int:
    """Bytes of the units' input files (stops counting once past ``stop_at``)."""
    total = 0
    for unit in units:
        for path in unit.source.paths:
            try:
                total += os.stat(path).st_size
            except OSError:
                continue
        if stop_at is not None and total > stop_at:
            break
    return total


def choose_execution(units: list[PlannedUnit], jobs: int | None, backend: str = "local") -> Execution:
    """Decide where ``units`` run (see the module docstring for the rule)."""
    n_cores = cores()
    if backend == "dask":
        return Execution(Mode.DASK, jobs if jobs and jobs > 0 else 0, 1, "--backend dask")
    if backend != "local":
        raise UsageError(f"unknown backend {backend!r}", hint="use 'local' or 'dask'")
    work = [unit for unit in units if unit.failure is None]
    if jobs == 1:
        return Execution(Mode.IN_PROCESS, 1, n_cores, "--jobs 1")
    if len(work) <= 1:
        return Execution(Mode.IN_PROCESS, 1, n_cores, f"{len(work)} unit(s) to convert: no worker could help")
    if not WORKERS_SUPPORTED:
        return Execution(Mode.IN_PROCESS, 1, n_cores, "worker processes need a POSIX system")
    if jobs:
        workers = min(jobs, len(work))
        return Execution(Mode.WORKERS, workers, max(1, n_cores // workers), f"--jobs {jobs}, {len(work)} units")
    workers = default_jobs(len(work))
    if workers <= 1:
        return Execution(Mode.IN_PROCESS, 1, n_cores, "one core (or memory for one worker) only")
    size = input_bytes(work, stop_at=MIN_BYTES_FOR_WORKERS)
    if size <= MIN_BYTES_FOR_WORKERS:
        return Execution(Mode.IN_PROCESS, 1, n_cores,
                         f"{len(work)} units, {size / 1e6:.0f} MB of input: less than workers cost to start "
                         f"(they pay off past {MIN_BYTES_FOR_WORKERS / 1e6:.0f} MB)")
    return Execution(Mode.WORKERS, workers, max(1, n_cores // workers),
                     f"{len(work)} units, over {MIN_BYTES_FOR_WORKERS / 1e6:.0f} MB of input")


def job_for(job: UnitJob, execution: Execution) -> UnitJob:
    """``job`` with its thread counts set for ``execution`` (where they were left to the runner, 0)."""
    write_options = job.write_options
    if write_options.threads == 0:
        write_options = replace(write_options, threads=execution.threads)
    preprocessing = job.preprocessing
    if is_dataclass(preprocessing) and getattr(preprocessing, "threads", None) == 0:
        preprocessing = replace(preprocessing, threads=execution.threads)  # SimpleITK follows the same share
    return replace(job, write_options=write_options, preprocessing=preprocessing)


def execute(units: list[PlannedUnit], job: UnitJob, execution: Execution, *, cancelled: Callable[[], bool],
            scheduler: str | None = None, unit_limits: Limits = Limits(),
            on_pool: Callable[[object], None] | None = None) -> Iterator[UnitResult]:
    """Convert ``units`` as ``execution`` says, yielding each result as its unit finishes (any order).

    ``cancelled()`` is asked before each unit starts; once true, no further unit
    starts (those running finish). ``on_pool`` receives the worker pool, so that the
    caller can cancel it.
    """
    if not units:
        return
    if execution.mode is Mode.IN_PROCESS:
        for unit in units:
            if cancelled():
                return
            yield local_convert(unit, job)
        return
    level = logging.getLogger("medconv").getEffectiveLevel()
    if execution.mode is Mode.WORKERS:
        from .pool import WorkerPool

        with WorkerPool(execution.workers, unit_limits) as pool:
            if on_pool is not None:
                on_pool(pool)
            yield from pool.run(units, job, level)
        return
    yield from _run_dask(units, job, execution.workers, scheduler, cancelled, level)


def _run_dask(units: list[PlannedUnit], job: UnitJob, in_flight: int, scheduler: str | None,
              cancelled: Callable[[], bool], level: int) -> Iterator[UnitResult]:
    """One task per unit on a ``distributed`` scheduler; a task that fails (a lost worker) fails its unit alone."""
    address = scheduler or os.environ.get(SCHEDULER_ENV)
    if not address:
        raise UsageError("--backend dask needs a scheduler address",
                         hint=f"pass --scheduler tcp://HOST:8786 or set {SCHEDULER_ENV}; see docs/batch.md")
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise MissingDependencyError("--backend dask needs the 'distributed' package",
                                     hint="pip install 'medconv[dask]'") from None
    try:
        client = Client(address, timeout="20s")
    except OSError as exc:
        raise UsageError(f"cannot reach the Dask scheduler at {address} ({exc})",
                         hint="start it with 'dask scheduler' and check the address") from None
    try:
        slots = in_flight if in_flight > 0 else max(1, sum(client.nthreads().values()))
        pending = deque(units)
        owners = {}
        finished = as_completed()

        def submit() -> None:
            unit = pending.popleft()
            future = client.submit(worker_convert, unit, job, level, pure=False)
            owners[future.key] = unit
            finished.add(future)

        for _ in range(min(slots, len(pending))):
            submit()
        for future in finished:
            unit = owners.pop(future.key)
            try:
                result = future.result()
            except Exception as exc:  # KilledWorker (the worker died, several times), a lost connection ...
                result = _lost_task(unit, exc)
            yield result
            if pending and not cancelled():
                submit()
    finally:
        client.close()


def _lost_task(unit: PlannedUnit, exc: Exception) -> UnitResult:
    from ..guard import Death

    if type(exc).__name__ == "KilledWorker":
        return crashed_result(unit, Death(stderr=f"{type(exc).__name__}: {exc}"), 0.0,
                              how="Dask lost every worker that tried it")
    return internal_result(unit, f"{type(exc).__name__}: {exc}", "", 0.0)
