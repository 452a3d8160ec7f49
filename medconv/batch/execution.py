"""Where a plan's units run: in this process, in worker processes, or on a Dask cluster.

The choice follows the plan, so that small work has no fixed cost (issue 14); the
constants below were measured on the project's 2-core machine (docs/batch.md gives
the figures and the commands):

* **One pool of cores.** A unit written to a compressed format (``.nii.gz``) already
  keeps about :data:`CORES_PER_COMPRESSED_UNIT` cores busy in one process: ISA-L
  compresses on every core it is given. So the default number of workers is
  ``cores // CORES_PER_COMPRESSED_UNIT`` for such formats (``cores`` otherwise),
  fewer when memory is short or units are few, and each worker gets
  ``cores // workers`` compression threads (SimpleITK resampling likewise): workers
  times threads never exceeds the cores. On two cores a ``.nii.gz`` run is
  therefore one process using both cores, which measured faster than two workers
  (whose interpreters each import and start on their own).
* **in-process** when workers cannot pay off (and ``--jobs`` does not ask for them):
  one unit, ``--jobs 1``, one worker's worth of cores, or a plan whose input is
  below :data:`MIN_BYTES_FOR_WORKERS`:
  starting the workers costs :data:`WORKER_START_SECONDS`, more than a small plan
  could save.
* **workers** otherwise, and whenever ``--jobs N`` (N >= 2) asks for them, even for
  one unit: ``min(N, units)`` processes, started once and reused for the whole run. Each worker is a :class:`~medconv.guard.GuardedProcess`: a crash ends
  only its unit (:mod:`medconv.batch.pool`).
* **dask** with ``--backend dask``: one task per unit on a ``distributed``
  scheduler, a lost worker's unit failing alone.

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
from ..resources import available_memory, cores
from .plan import PlannedUnit
from .unit import UnitJob, UnitResult, crashed_result, internal_result, local_convert, worker_convert

log = logging.getLogger(__name__)

#: Memory assumed per worker when choosing the default ``--jobs`` (a large CT, read and written).
WORKER_MEMORY_BUDGET = 2 << 30
#: Environment variable naming the Dask scheduler (``tcp://host:8786``) for ``--backend dask``.
SCHEDULER_ENV = "MEDCONV_SCHEDULER"
#: Wall time from starting two workers until both have converted a first small unit, beyond what
#: the same units take in this process (measured 0.9-1.3 s at load 3-4; 4 small MR series,
#: ``scripts/bench_small.py``: ``--jobs 2`` 2.2-2.5 s against ``--jobs 1`` 1.1-1.5 s).
WORKER_START_SECONDS = 1.0
#: Input bytes one unit converts per second in this process (measured 45-180 MB/s for DICOM to
#: ``.nii.gz`` and ``.nii``, about 30 MB/s to ``.npz``, whose zlib is single-threaded).
IN_PROCESS_BYTES_PER_SECOND = 100e6
#: What two workers gain over one process when the units are single-threaded work (``.nii``,
#: ``.npz``): at best two cores for one.
WORKER_SPEEDUP = 2.0
#: Below this much input, workers cost more to start than they save:
#: ``t / WORKER_SPEEDUP + WORKER_START_SECONDS < t`` needs ``t > 2 * WORKER_START_SECONDS``.
MIN_BYTES_FOR_WORKERS = int(IN_PROCESS_BYTES_PER_SECOND * WORKER_START_SECONDS / (1 - 1 / WORKER_SPEEDUP))
#: Cores one unit keeps busy when its output is compressed on several threads (ISA-L gzip):
#: measured 7.5 s of CPU in 5.1 s of wall time with two threads (docs/benchmarks.md); ``--jobs 2``
#: on that tree took 1.1x the time of ``--jobs 1``.
CORES_PER_COMPRESSED_UNIT = 2
#: Output formats whose writer compresses on ``WriteOptions.threads`` threads.
THREADED_FORMATS = ("nii.gz",)


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

    def describe(self) -> str:
        """``in-process, 2 threads per unit`` / ``workers: 2 processes x 1 thread`` / ``dask``."""
        if self.mode is Mode.IN_PROCESS:
            return f"in-process, {self.threads} thread(s) per unit"
        if self.mode is Mode.WORKERS:
            return f"workers: {self.workers} process(es) x {self.threads} thread(s)"
        return f"dask, {self.workers or 'one task per worker thread'} in flight"


def default_jobs(units: int | None = None, fmt: str | None = None) -> int:
    """Workers for a run: the cores (divided by :data:`CORES_PER_COMPRESSED_UNIT` for a threaded format),
    fewer when memory cannot hold :data:`WORKER_MEMORY_BUDGET` per worker or units are few."""
    jobs = cores()
    if fmt in THREADED_FORMATS:
        jobs = max(1, jobs // CORES_PER_COMPRESSED_UNIT)
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


def choose_execution(units: list[PlannedUnit], jobs: int | None, backend: str = "local",
                     fmt: str | None = None) -> Execution:
    """Decide where ``units`` run, written as ``fmt`` (see the module docstring for the rule)."""
    n_cores = cores()
    if backend == "dask":
        return Execution(Mode.DASK, jobs if jobs and jobs > 0 else 0, 1, "--backend dask")
    if backend != "local":
        raise UsageError(f"unknown backend {backend!r}", hint="use 'local' or 'dask'")
    work = [unit for unit in units if unit.failure is None]
    if jobs == 1:
        return Execution(Mode.IN_PROCESS, 1, n_cores, "--jobs 1")
    if not WORKERS_SUPPORTED:
        return Execution(Mode.IN_PROCESS, 1, n_cores, "worker processes need a POSIX system")
    if jobs and work:  # asked for: workers, also for one unit (a crash of native code then ends only it)
        workers = min(jobs, len(work))
        return Execution(Mode.WORKERS, workers, max(1, n_cores // workers), f"--jobs {jobs}, {len(work)} units")
    if len(work) <= 1:
        return Execution(Mode.IN_PROCESS, 1, n_cores, f"{len(work)} unit(s) to convert: no worker could help")
    workers = default_jobs(len(work), fmt)
    if workers <= 1:
        why = (f"{fmt} is compressed on all {n_cores} cores by one unit" if fmt in THREADED_FORMATS
               and n_cores < 2 * CORES_PER_COMPRESSED_UNIT else "one core (or memory for one worker) only")
        return Execution(Mode.IN_PROCESS, 1, n_cores, why)
    size = input_bytes(work, stop_at=MIN_BYTES_FOR_WORKERS)
    if size <= MIN_BYTES_FOR_WORKERS:
        return Execution(Mode.IN_PROCESS, 1, n_cores,
                         f"{len(work)} units, {size / 1e6:.1f} MB of input: less than workers cost to start "
                         f"(they pay off past {MIN_BYTES_FOR_WORKERS / 1e6:.0f} MB)")
    return Execution(Mode.WORKERS, workers, max(1, n_cores // workers),
                     f"{len(work)} units, over {MIN_BYTES_FOR_WORKERS / 1e6:.0f} MB of input")


def job_for(job: UnitJob, execution: Execution) -> UnitJob:
    """``job`` with each unit's share of the cores set for ``execution``: ``UnitJob.threads``, the
    compression threads and the resampling threads, where each was left to the runner (0).

    This is the one place a worker learns its share (worker processes are started
    with the parent's environment: nothing else divides the cores between them).
    """
    threads = job.threads or execution.threads
    write_options = job.write_options
    if write_options.threads == 0:
        write_options = replace(write_options, threads=threads)
    preprocessing = job.preprocessing
    if is_dataclass(preprocessing) and getattr(preprocessing, "threads", None) == 0:
        preprocessing = replace(preprocessing, threads=threads)  # SimpleITK follows the same share
    return replace(job, write_options=write_options, preprocessing=preprocessing, threads=threads)


def execute(units: list[PlannedUnit], job: UnitJob, execution: Execution, *, cancelled: Callable[[], bool],
            scheduler: str | None = None, unit_limits: Limits = Limits(),
            on_pool: Callable[[object], None] | None = None,
            on_local_unit: Callable[[str | None], None] | None = None) -> Iterator[UnitResult]:
    """Convert ``units`` as ``execution`` says, yielding each result as its unit finishes (any order).

    ``cancelled()`` is asked before each unit starts; once true, no further unit
    starts (those running finish). ``on_pool`` receives the worker pool, so that the
    caller can cancel it; ``on_local_unit`` is told the id of each unit converted in
    this process as it starts (and ``None`` after the last).
    """
    if not units:
        return
    if execution.mode is Mode.IN_PROCESS:
        note = on_local_unit or (lambda unit_id: None)
        try:
            for unit in units:
                if cancelled():
                    return
                note(unit.id)
                yield local_convert(unit, job)
        finally:
            note(None)
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
