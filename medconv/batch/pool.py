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
from collections import deque
from typing import Iterator

from ..guard import Died, GuardedProcess, Limits, Panicked, Raised, Returned
from .plan import PlannedUnit
from .unit import UnitJob, UnitResult, crashed_result, internal_result, worker_convert

log = logging.getLogger(__name__)


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
        pending = deque(units)
        idle = list(self.workers)
        busy: dict[int, tuple[GuardedProcess, PlannedUnit, float]] = {}
        while busy or (pending and not self._cancelled):
            while idle and pending and not self._cancelled:
                worker, unit = idle.pop(), pending.popleft()
                worker.submit(worker_convert, (unit, job, log_level), limits=self.limits)
                busy[worker.channel.fileno()] = (worker, unit, time.perf_counter())
            for fileno in _ready(busy):
                worker, unit, started = busy.pop(fileno)
                try:
                    outcome = worker.collect(timeout=0)
                except TimeoutError:  # not ready after all
                    busy[fileno] = (worker, unit, started)
                    continue
                idle.append(worker)
                yield _result(outcome, unit, time.perf_counter() - started, worker)


def _ready(busy: dict[int, tuple[GuardedProcess, PlannedUnit, float]]) -> list[int]:
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

