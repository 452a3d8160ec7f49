"""Worker processes for a batch: each a :class:`~medconv.guard.GuardedProcess`, so a crash ends only its unit.

A worker that dies while converting a unit (a signal from a native decoder, an
abort, the kernel's out-of-memory killer, a unit time limit) gives that unit a
``failed`` row saying how it died; the next unit starts a new worker. The pool
starts its workers once per run and reuses them for every unit; each worker
holds one unit at a time. Workers start with a clean ``sys.path`` and ignore
Ctrl-C (see :mod:`medconv.guard`); the pool kills them when the run is interrupted.
"""

from __future__ import annotations

import logging
import select
import time
import traceback
from collections import deque
from typing import Any, Callable, Iterable, Iterator, TypeVar

from ..guard import SUPPORTED as WORKERS_SUPPORTED, Died, GuardedProcess, Limits, Outcome, Panicked, Raised, Returned
from .plan import PlannedUnit
from .unit import UnitJob, UnitResult, crashed_result, internal_result, worker_convert

log = logging.getLogger(__name__)

T = TypeVar("T")
#: What identifies one call in :meth:`WorkerPool._outcomes` (a unit, an index).
K = TypeVar("K")


class WorkerPool:
    """``size`` worker processes converting units; a dead worker's unit fails, a new worker takes its place.

    Parameters
    ----------
    size:
        Number of worker processes.
    limits:
        What one unit may use (memory, wall time); ``Limits()`` for no limit.
    """

    def __init__(self, size: int, limits: Limits = Limits()):
        self.size = max(1, int(size))
        self.limits = limits
        self.workers = [GuardedProcess(f"medconv-worker-{index + 1}") for index in range(self.size)]
        self._cancelled = False

    def __enter__(self) -> "WorkerPool":
        for worker in self.workers:  # they boot (import numpy, medconv ...) at the same time
            worker.start()
        log.debug("started %d worker process(es): %s", self.size, ", ".join(str(w.pid) for w in self.workers))
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is not None:  # Ctrl-C or an error: a worker mid-unit is killed (its temporary file removed later)
            for worker in self.workers:
                worker.stop(kill=True)
            return
        for worker in self.workers:  # idle: each exits when its pipe closes; nobody waits for that
            worker.stop(wait=False)

    def cancel(self) -> None:
        """Start no further units; the ones running finish (``run`` then ends)."""
        self._cancelled = True

    def run(self, units: list[PlannedUnit], job: UnitJob, log_level: int = logging.WARNING) -> Iterator[UnitResult]:
        """Convert ``units``, yielding each :class:`UnitResult` as its unit finishes (any order)."""
        calls = ((unit, worker_convert, (unit, job, log_level)) for unit in units)
        for unit, outcome, seconds, worker in self._outcomes(calls):
            yield _result(outcome, unit, seconds, worker)

    def map(self, fn: Callable[..., T], arguments: Iterable[tuple]) -> list[Outcome]:
        """``fn(*args)`` for each of ``arguments`` in the workers; the :data:`~medconv.guard.Outcome` of each, in
        order (a worker that dies gives its call a :class:`~medconv.guard.Died`, the others go on)."""
        outcomes: dict[int, Outcome] = {}
        calls = ((index, fn, args) for index, args in enumerate(arguments))
        for index, outcome, _, _ in self._outcomes(calls):
            outcomes[index] = outcome
        return [outcomes[index] for index in sorted(outcomes)]

    def _outcomes(self, calls: Iterable[tuple[K, Callable[..., Any], tuple]]
                  ) -> Iterator[tuple[K, Outcome, float, GuardedProcess]]:
        """Run each ``(key, fn, args)`` on an idle worker; yield ``(key, outcome, seconds, worker)`` as each ends."""
        pending = deque(calls)
        idle = list(self.workers)
        busy: dict[int, tuple[GuardedProcess, K, float]] = {}
        while busy or (pending and not self._cancelled):
            while idle and pending and not self._cancelled:
                worker, (key, fn, args) = idle.pop(), pending.popleft()
                worker.submit(fn, args, limits=self.limits)
                busy[worker.channel.fileno()] = (worker, key, time.perf_counter())
            for fileno in _ready(busy):
                worker, key, started = busy.pop(fileno)
                try:
                    outcome = worker.collect(timeout=0)
                except TimeoutError:  # not ready after all
                    busy[fileno] = (worker, key, started)
                    continue
                idle.append(worker)
                yield key, outcome, time.perf_counter() - started, worker


def map_in_workers(fn: Callable[..., T], arguments: Iterable[tuple], jobs: int,
                   limits: Limits = Limits()) -> list[Outcome]:
    """``fn(*args)`` for each of ``arguments``, in up to ``jobs`` guarded workers (in this process with one job,
    one call, or no worker support); the :data:`~medconv.guard.Outcome` of each, in order.

    For work beside the conversion itself (an export's label survey and integrity
    check): a crash of native code reading one file fails that call alone, and the
    workers start with a clean ``sys.path`` like the batch's.
    """
    arguments = list(arguments)
    if jobs <= 1 or len(arguments) <= 1 or not WORKERS_SUPPORTED:
        return [_call_here(fn, args) for args in arguments]
    with WorkerPool(min(jobs, len(arguments)), limits) as pool:
        return pool.map(fn, arguments)


def _call_here(fn: Callable[..., Any], args: tuple) -> Outcome:
    try:
        return Returned(fn(*args))
    except Exception as exc:
        return Raised(exc, traceback.format_exc())


def _ready(busy: dict[int, tuple[GuardedProcess, Any, float]]) -> list[int]:
    """The busy workers with an outcome (or a death, or a passed deadline); waits until there is one."""
    deadlines = [worker.deadline for worker, _, _ in busy.values() if worker.deadline is not None]
    timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
    readable, _, _ = select.select(list(busy), [], [], timeout)
    if readable:
        return readable
    now = time.monotonic()
    return [fileno for fileno, (worker, _, _) in busy.items() if worker.deadline is not None and worker.deadline <= now]


def _result(outcome, unit: PlannedUnit, seconds: float, worker: GuardedProcess) -> UnitResult:
    if isinstance(outcome, Returned):
        return outcome.value
    if isinstance(outcome, Died):
        log.debug("worker %s died converting %s (%s); stderr:\n%s", worker.name, unit.id, outcome.death.describe(),
                  outcome.death.stderr)
        return crashed_result(unit, outcome.death, seconds)
    if isinstance(outcome, Panicked):  # worker_convert catches these itself; kept for completeness
        return internal_result(unit, f"{outcome.kind}: {outcome.message}", outcome.traceback, seconds)
    assert isinstance(outcome, Raised)
    return internal_result(unit, f"{type(outcome.error).__name__}: {outcome.error}", outcome.traceback, seconds)

