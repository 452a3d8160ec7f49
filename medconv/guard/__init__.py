"""Crash containment: run native code in a guarded, reused subprocess, so that its death is only an error.

Native decoders (GDCM, CharLS, OpenJPEG, the Rust RLE decoder ...) can end the
process that calls them in ways no ``except`` catches: a signal (SIGSEGV, or
SIGABRT from an uncaught C++ exception), a Rust panic (pyo3's ``PanicException``
derives from ``BaseException``), a runaway allocation, a loop that never ends.
A call made through :func:`guarded` runs in a helper process instead; the caller
lives on and gets a typed error:

>>> from medconv.guard import Limits, guarded
>>> pixels = guarded(decode_frame, data, what="JPEG-LS decoding", path=path,
...                  limits=Limits(memory_bytes=2 << 30, seconds=60))        # doctest: +SKIP

* the helper died (a signal, an abort, an exit) -> :class:`~medconv.errors.DecoderCrashedError`
  "decoder crashed (signal 6, SIGABRT) in JPEG-LS decoding" naming ``path``;
* a ``BaseException`` that is not an ``Exception`` (a Rust panic) -> the same error;
* no answer within ``limits.seconds`` -> :class:`~medconv.errors.DecoderTimeoutError`
  (the helper is killed);
* more memory than ``limits.memory_bytes`` -> :class:`~medconv.errors.MemoryLimitError`;
* an ordinary exception raised by ``fn`` is raised again in the caller, as it was.

``fn`` must be picklable by reference (a module-level function) and so must its
arguments and result; they travel through a pipe (measured cost in docs/batch.md).
The helper starts on the first call and is reused by every later call of the same
process; after a death the next call starts a new one. Calls from several threads
are serialised.

The batch runner's worker pool (:mod:`medconv.batch.pool`) is built on
:class:`GuardedProcess` too: every worker is one, so a unit whose conversion kills
its worker fails alone and a new worker takes the next unit.

Helpers and workers start with a clean ``sys.path`` (never the current folder: a
``json.py`` there is not imported), ignore Ctrl-C (their parent decides), write
their stderr to a private temporary file (shown in the log after a crash, never on
the terminal), and exit when their parent closes the pipe or dies. POSIX only; on
other systems :func:`guarded` calls ``fn`` directly.

Modules: :mod:`.outcomes` (limits and how a call ended), :mod:`.process` (the
helper process and the loop it runs), :mod:`.channel` (the pipe, with shared
memory for large buffers); this module is the API. :mod:`.process` (sockets,
subprocess, shared memory) is imported when a helper or worker first starts: a
run converting in its own process without a risky decode never needs it.
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import TYPE_CHECKING, Any, Callable

from ..errors import DecoderCrashedError, DecoderTimeoutError, MemoryLimitError
from .outcomes import DEFAULT_LIMITS, Death, Died, Limits, Outcome, Panicked, Raised, Returned

if TYPE_CHECKING:
    from .process import GuardedProcess

__all__ = ["DEFAULT_LIMITS", "SUPPORTED", "Death", "Died", "GuardedProcess", "Limits", "Outcome", "Panicked",
           "Raised", "Returned", "clean_sys_path", "guarded", "outcome_value"]

#: Whether helper processes can be used here (they pass a socket to the child by its descriptor).
SUPPORTED = os.name == "posix"

_helper: GuardedProcess | None = None
_helper_pid: int | None = None
_helper_lock = threading.Lock()


def __getattr__(name: str):
    if name in ("GuardedProcess", "clean_sys_path"):  # loaded on first use (see the module docstring)
        from . import process

        return getattr(process, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _close_helper() -> None:
    global _helper
    if _helper is not None and _helper_pid == os.getpid():
        _helper.stop()
    _helper = None


def _shared_helper() -> GuardedProcess:
    global _helper, _helper_pid
    if _helper is None or _helper_pid != os.getpid():  # a forked child never uses its parent's helper
        from .process import GuardedProcess

        _helper, _helper_pid = GuardedProcess("medconv-guard"), os.getpid()
        atexit.register(_close_helper)
    return _helper


def guarded(fn: Callable[..., Any], *args: Any, limits: Limits = DEFAULT_LIMITS, what: str = "decoding",
            path: str | os.PathLike | None = None, **kwargs: Any) -> Any:
    """Return ``fn(*args, **kwargs)``, computed in this process's guarded helper.

    Parameters
    ----------
    fn:
        A module-level function (pickled by reference).
    limits:
        Memory and time the call may use (:data:`DEFAULT_LIMITS`).
    what:
        What the call does, for the error message: ``"JPEG-LS decoding"``.
    path:
        The file being decoded, named by the error.

    Raises
    ------
    DecoderCrashedError
        The helper died (signal, abort) or ``fn`` raised a ``BaseException`` that is
        not an ``Exception`` (a Rust panic).
    DecoderTimeoutError
        No answer within ``limits.seconds``.
    MemoryLimitError
        ``fn`` needed more than ``limits.memory_bytes``.
    Exception
        Whatever ordinary exception ``fn`` raised, unchanged.
    """
    if not SUPPORTED:
        return fn(*args, **kwargs)
    with _helper_lock:
        outcome = _shared_helper().call(fn, *args, limits=limits, **kwargs)
    return outcome_value(outcome, what=what, path=path, limits=limits)


def outcome_value(outcome: Outcome, *, what: str, path: str | os.PathLike | None, limits: Limits) -> Any:
    """The value of a guarded call's :data:`Outcome`, or the typed error it stands for."""
    path = os.fspath(path) if path is not None else None
    if isinstance(outcome, Returned):
        return outcome.value
    if isinstance(outcome, Raised):
        if isinstance(outcome.error, MemoryError) and not isinstance(outcome.error, MemoryLimitError):
            limit = f"{limits.memory_bytes / 2**20:.0f} MB" if limits.memory_bytes else "the memory available"
            raise MemoryLimitError(f"{what} needed more than {limit}", path,
                                   "the file is probably corrupt (a header declaring a huge size)") from None
        raise outcome.error
    if isinstance(outcome, Panicked):
        raise DecoderCrashedError(f"decoder crashed ({outcome.kind}: {outcome.message}) in {what}", path,
                                  "the file is probably corrupt", reason=outcome.kind)
    death = outcome.death
    if death.timed_out_after is not None:
        raise DecoderTimeoutError(f"decoder stopped: {death.describe()} in {what}", path,
                                  "the file is probably corrupt", reason=death.describe())
    said = f": {death.last_words}" if death.last_words else ""
    raise DecoderCrashedError(f"decoder crashed ({death.describe()}) in {what}{said}", path,
                              "the file is probably corrupt", reason=death.describe())
