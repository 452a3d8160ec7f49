"""Converting one unit (in a worker or in the main process): read, preprocess, write, return a small row.

This is the only code that runs in worker processes. It returns a dict of a few
hundred bytes (never the Volume), so the parent's memory does not grow with the
data. Failures are sorted here, and nothing but Ctrl-C and ``SystemExit`` escapes:

* :class:`~medconv.errors.NotAVolumeError` -> ``excluded`` (an RTSTRUCT, a localizer ...);
* any other :class:`~medconv.errors.MedconvError` -> ``failed`` with its one-line reason;
* an :class:`OSError` the machine raised (permission, disk full, read-only ...) ->
  ``failed`` with the user error of :func:`~medconv.errors.environment_fault`;
* ``MemoryError`` -> ``failed`` (``memory``), never an internal error;
* a ``BaseException`` from native code (a Rust ``PanicException``) -> ``failed`` (``crashed``);
* anything else is a bug in medconv -> ``failed`` with ``error_type="internal"`` and
  the traceback, which the parent writes to the log file.

A worker that dies outright (a signal) cannot answer: the pool builds that unit's row
with :func:`crashed_result`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
import traceback
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Optional

from .._version import __version__
from ..errors import WRITE_ERRNOS, MedconvError, MemoryLimitError, NotAVolumeError, PermissionDeniedError, \
    UnitCrashedError, environment_fault
from ..logs import PACKAGE as PACKAGE_LOGGER, is_medconv_logger
from ..options import ReadOptions, WriteOptions
from ..source import InfoKey
from .manifest import Status
from .plan import PlannedUnit, source_location

#: One log record made while a unit ran in a worker: (level, logger name, message).
LogLine = tuple[int, str, str]


@dataclass(frozen=True)
class UnitJob:
    """Everything a worker needs besides the unit; frozen and picklable.

    Parameters
    ----------
    fmt:
        Output format (``nii.gz``, ``nii``, ``npz``).
    read_options, write_options:
        Passed to the reader and writer as they are (the runner sets ``overwrite``).
    preprocessing:
        A picklable callable ``Volume -> Volume`` (e.g.
        ``medconv.transforms.pipeline.Preprocessing``) or ``None``.
    preview_dir:
        Folder for preview pictures, or ``None`` for none.
    converter:
        What runs each unit in the worker: a picklable callable ``(unit, job) -> manifest row``
        (with a ``describe()`` for the fingerprint); ``None`` is :func:`convert_unit`. A unit
        that writes several files (an exported training case) brings its own.
    threads:
        The cores one unit may use (compression, resampling); 0: every core of the
        process it runs in. The runner sets it to each unit's share of the machine
        (:func:`medconv.batch.execution.job_for`), and with it ``write_options.threads``
        and ``preprocessing.threads`` where those were left at 0; a converter of its
        own uses it for its own threaded work. Not part of the fingerprint.
    """

    fmt: str = "nii.gz"
    read_options: ReadOptions = ReadOptions()
    write_options: WriteOptions = WriteOptions()
    preprocessing: Optional[Callable[[Any], Any]] = None
    preview_dir: Optional[str] = None
    converter: Optional[Callable[[PlannedUnit, "UnitJob"], dict]] = None
    threads: int = 0


def unit_fingerprint(unit: PlannedUnit, job: UnitJob) -> str:
    """A short hash of what makes this unit's output: its files, reader, format and options.

    Recorded in the sidecar (``meta["job"]``) so that a rerun can tell its own
    finished output from one made of other files or with other options. The
    options enter through their ``describe()`` (only the choices that change the
    result, only where they differ from their defaults), so threads, limits and a
    field that a later version adds with a default leave the fingerprint as it was.
    """
    preprocessing = job.preprocessing
    steps = preprocessing.describe() if hasattr(preprocessing, "describe") else repr(preprocessing)
    facts = [sorted(os.path.abspath(p) for p in unit.source.paths), unit.source.reader,
             unit.source.info.get(InfoKey.FRAME_GROUP), job.fmt, job.read_options.describe(), steps]
    written = job.write_options.describe()
    if written:  # only when set: outputs made with the default write options keep their fingerprint
        facts.append(written)
    if job.converter is not None:
        facts.append(job.converter.describe() if hasattr(job.converter, "describe") else repr(job.converter))
    if unit.source.is_annotation:  # an annotation unit: its own options shape it (an image's do not)
        facts.append(repr(job.read_options.annotations))
    return hashlib.sha256(json.dumps(facts, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class UnitResult:
    """What converting one unit gives back to the parent: its manifest row and what it logged."""

    row: dict[str, Any]
    log: tuple[LogLine, ...] = field(default=())


#: Header facts copied into the manifest (from ``Source.info``, then the written volume's ``meta``).
#: Each is also the manifest column and the ``Volume.meta`` key of that fact.
IDENTITY_KEYS = (InfoKey.PATIENT_ID, InfoKey.STUDY_UID, InfoKey.SERIES_UID, InfoKey.MODALITY,
                 InfoKey.SERIES_DESCRIPTION)


def base_row(unit: PlannedUnit) -> dict[str, Any]:
    """The manifest fields known before the unit runs."""
    info = unit.source.info
    row = {
        "unit_id": unit.id,
        "name": unit.name,
        "source": source_location(unit.source),
        "reader": unit.source.reader,
        "files": len(unit.source.paths),
        "output": unit.relative,
        "annotates": unit.source.annotates,
        "medconv_version": __version__,
        "reason": "",
    }
    row.update({key.value: _text(info.get(key)) for key in IDENTITY_KEYS})
    return row


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def run_unit(unit: PlannedUnit, job: UnitJob) -> dict[str, Any]:
    """Run one unit with the job's converter (default :func:`convert_unit`); returns its manifest row.

    A converter of its own that lets an exception escape gives an internal-error row,
    like :func:`convert_unit` does: nothing but Ctrl-C and ``SystemExit`` escapes a unit.
    """
    if job.converter is None or unit.failure is not None:
        return convert_unit(unit, job)
    start = time.perf_counter()
    try:
        return job.converter(unit, job)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        row = base_row(unit)
        row.update(_internal(exc), output="", seconds=round(time.perf_counter() - start, 3))
        return row


def convert_unit(unit: PlannedUnit, job: UnitJob) -> dict[str, Any]:
    """Convert one unit and return its manifest row (see :mod:`medconv.batch.manifest`)."""
    from ..registry import readers, writer_for_format

    start = time.perf_counter()
    row = base_row(unit)
    if unit.failure is not None:  # known when planning (a reader's discovery broke off): nothing to run
        row.update(status=Status.FAILED, reason=unit.failure.reason, error_type=unit.failure.code,
                   traceback=unit.failure.traceback or None, output="", seconds=0.0)
        return row
    try:
        _check_readable(unit.source.paths)
        reader = readers.get(unit.source.reader)
        if hasattr(reader, "read_outputs"):  # a unit that makes several files (an annotation object's masks)
            from .outputs import write_unit_outputs

            outputs = reader.read_outputs(unit.source, job.read_options)
            row.update(write_unit_outputs(unit, job, outputs, unit_fingerprint(unit, job)))
            row["seconds"] = round(time.perf_counter() - start, 3)
            return row
        volume = reader.read(unit.source, job.read_options)
        if job.preprocessing is not None:
            volume = job.preprocessing(volume)
        volume = volume.replace(meta={**volume.meta, "job": unit_fingerprint(unit, job)})
        writer, _ = writer_for_format(job.fmt)
        write_options = replace(job.write_options, sidecar=unit.sidecar is not None)
        writer.write(volume, unit.output, write_options)
        row.update(status=Status.CONVERTED, shape=list(volume.shape), spacing=[round(s, 6) for s in volume.spacing],
                   dtype=str(volume.array.dtype), kind=volume.kind, warnings=list(volume.warnings),
                   history=list(volume.history))
        row.update({key.value: _text(volume.meta[key]) for key in IDENTITY_KEYS
                    if volume.meta.get(key) not in (None, "")})
        if job.preview_dir:
            row.update(_preview(volume, unit, job.preview_dir))
    except NotAVolumeError as exc:
        row.update(status=Status.EXCLUDED, reason=exc.one_line(), error_type=exc.code)
    except MedconvError as exc:
        row.update(status=Status.FAILED, reason=exc.one_line(), error_type=exc.code)
    except MemoryError:  # a runaway allocation (a corrupt header) or a volume too big for this machine
        error = MemoryLimitError("ran out of memory converting this unit", row["source"],
                                 "the input may be corrupt; otherwise lower --jobs or use a machine with more memory")
        row.update(status=Status.FAILED, reason=error.one_line(), error_type=error.code)
    except OSError as exc:  # a write error without a file name is about the output (a read names its file)
        fault = environment_fault(exc, unit.output if exc.errno in WRITE_ERRNOS else row["source"])
        if fault is None:
            row.update(_internal(exc))
        else:  # the machine said no (permission, space, read-only ...): the user's to fix, not a bug
            row.update(status=Status.FAILED, reason=fault.one_line(), error_type=fault.code)
    except Exception as exc:  # a bug in medconv (or a plugin): recorded, the batch goes on
        row.update(_internal(exc))
    except BaseException as exc:  # a Rust panic (pyo3's PanicException) and the like, from native code
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        error = UnitCrashedError(f"a native library crashed ({type(exc).__module__}.{type(exc).__qualname__}: "
                                 f"{exc})", row["source"], "the input is probably corrupt; the other units go on")
        row.update(status=Status.FAILED, reason=error.one_line(), error_type=error.code, traceback=traceback.format_exc())
    if row.get("status") != Status.CONVERTED:
        row["output"] = ""  # nothing was written
    row["seconds"] = round(time.perf_counter() - start, 3)
    return row


def _check_readable(paths) -> None:
    """Fail with the plain reason when an input file cannot be opened (a reader would call it corrupt)."""
    for path in paths:
        if not os.access(path, os.R_OK) and os.path.lexists(path):
            raise PermissionDeniedError("permission denied", path, "check the file's permissions; medconv only reads it")


def _internal(exc: BaseException) -> dict[str, Any]:
    return {"status": Status.FAILED, "reason": f"internal error: {type(exc).__name__}: {exc}", "error_type": "internal",
            "traceback": traceback.format_exc()}


class _Collect(logging.Handler):
    """Keeps the records it is given as :data:`LogLine` s (``others_only``: only other libraries' records)."""

    def __init__(self, others_only: bool = False):
        super().__init__(logging.DEBUG)
        self.others_only = others_only
        self.lines: list[LogLine] = []

    def emit(self, record: logging.LogRecord) -> None:
        if self.others_only and is_medconv_logger(record.name):
            return
        try:
            self.lines.append((record.levelno, record.name, record.getMessage()))
        except Exception:  # a bad log call must never fail a unit
            self.lines.append((record.levelno, record.name, str(record.msg)))


def _warnings_as_log(caught: list[warnings.WarningMessage]) -> list[LogLine]:
    return [(logging.DEBUG, "py.warnings", f"{w.category.__name__}: {w.message} ({os.path.basename(w.filename)}:{w.lineno})")
            for w in caught]


def _once_each(lines: list[LogLine]) -> list[LogLine]:
    """Other libraries' lines without repeats (tifffile warns for every page): the first, with a count."""
    counts: dict[LogLine, int] = {}
    for line in lines:
        counts[line] = counts.get(line, 0) + 1
    return [(level, name, message if count == 1 else f"{message} ({count} times)")
            for (level, name, message), count in counts.items()]


@contextlib.contextmanager
def _collected_logs(level: int | None, set_aside_handlers: bool) -> Iterator[list[LogLine]]:
    """Collect, at ``level`` (None: the package logger's) and above, the package logger's records, other
    libraries' records (tifffile, nibabel ...: those reaching the root logger, once each) and Python warnings.

    Nothing of it is written anywhere meanwhile: the caller logs the lines with the
    unit's id, under medconv's loggers (:func:`medconv.logs.medconv_logger_name`).
    """
    logger, root = logging.getLogger(PACKAGE_LOGGER), logging.getLogger()
    collect, others = _Collect(), _Collect(others_only=True)
    saved = logger.handlers[:], logger.level, logger.propagate, root.handlers[:]
    if set_aside_handlers:
        logger.handlers[:] = []
        root.handlers[:] = []
    if level is not None:
        logger.setLevel(level)
    logger.addHandler(collect)
    logger.propagate = False
    root.addHandler(others)  # also keeps Python's "last resort" handler from printing them on stderr
    lines: list[LogLine] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            yield lines
    finally:
        threshold = logger.getEffectiveLevel()
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]
        root.handlers[:] = saved[3]
        collected = collect.lines + _once_each(others.lines + _warnings_as_log(caught))
        lines.extend(line for line in collected if line[0] >= threshold)


def local_convert(unit: PlannedUnit, job: UnitJob) -> UnitResult:
    """Convert one unit in this process, its log records collected like a worker's (:func:`worker_convert`).

    While the unit converts, the package logger's handlers are set aside and its
    records (and Python warnings, at debug level) are collected, so that the
    caller logs them with the unit's id, exactly as for a unit that ran in a worker.
    """
    with _collected_logs(None, set_aside_handlers=True) as lines:
        row = run_unit(unit, job)
    return UnitResult(row, tuple(lines))


def worker_convert(unit: PlannedUnit, job: UnitJob, log_level: int = logging.WARNING) -> UnitResult:
    """Convert one unit in a worker process: its log records (at ``log_level`` and above) travel back with the row.

    Nothing is written on the worker's stderr; the parent logs what comes back.
    """
    with _collected_logs(log_level, set_aside_handlers=False) as lines:
        row = run_unit(unit, job)
    return UnitResult(row, tuple(lines))


def crashed_result(unit: PlannedUnit, death, seconds: float, how: str | None = None) -> UnitResult:
    """The row of a unit whose worker died (``death``: a :class:`medconv.guard.Death`; ``how`` overrides its wording)."""
    row = base_row(unit)
    where = f" in {death.crash_site}" if death.crash_site else ""
    said = f": {death.last_words}" if death.last_words else ""
    if death.timed_out_after is not None:
        message = f"stopped: the unit took longer than its time limit ({death.timed_out_after:g} s)"
        hint = ("the input may be corrupt (a decoder that never ends); otherwise raise the time limit "
                "(RunOptions(unit_seconds=...))")
    else:
        message = f"the worker process converting this unit crashed ({how or death.describe()}){where}{said}"
        hint = "the input is probably corrupt, or a decoder has a bug; the other units go on"
    error = UnitCrashedError(message, row["source"], hint)
    row.update(status=Status.FAILED, reason=error.one_line(), error_type=error.code, output="",
               traceback=death.stderr or None, seconds=round(seconds, 3))
    return UnitResult(row)


def internal_result(unit: PlannedUnit, message: str, trace: str, seconds: float) -> UnitResult:
    """The row of a unit whose worker could not run it at all (a bug, or a broken installation)."""
    row = base_row(unit)
    row.update(status=Status.FAILED, reason=f"internal error: {message}", error_type="internal", output="",
               traceback=trace or None, seconds=round(seconds, 3))
    return UnitResult(row)


def _preview(volume, unit: PlannedUnit, preview_dir: str) -> dict[str, Any]:
    """Write the unit's preview; a failure here is a warning, never a failed unit."""
    try:
        from ..preview import write_unit_preview

        write_unit_preview(volume, os.path.join(preview_dir, *unit.relative.split("/")))
        return {}
    except Exception as exc:  # the output itself is fine
        return {"warnings": list(volume.warnings) + [f"preview not written: {type(exc).__name__}: {exc}"]}
