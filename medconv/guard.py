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
"""

from __future__ import annotations

import atexit
import faulthandler
import io
import mmap
import os
import pickle
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Union

from .errors import DecoderCrashedError, DecoderTimeoutError, MemoryLimitError

#: Whether helper processes can be used here (they pass a socket to the child by its descriptor).
SUPPORTED = os.name == "posix"
#: Extra address space (bytes) a guarded decode may take by default: the largest sane series (a
#: 1,000-slice 1024x1024 int16 CT is 2 GiB) plus the decoder's own buffers.
DEFAULT_CALL_MEMORY = 4 << 30
#: Wall time (s) a guarded decode may take by default: a 1,000-frame JPEG 2000 series decodes in ~20 s here.
DEFAULT_CALL_SECONDS = 300.0
#: How long a helper whose pipe closed gets to exit before it is killed (s).
EXIT_GRACE_SECONDS = 5.0
#: How much of a dead helper's stderr is kept for the log (bytes).
STDERR_TAIL_BYTES = 16000
#: How much of a dead helper's last message goes into the one-line error.
LAST_WORDS_CHARS = 300
#: Buffers (array data, bytes) at least this large travel as shared memory, not through the pipe:
#: a 150 MB volume costs one copy (~0.05 s) instead of ~0.6 s of pipe transfer each way.
SHARED_BUFFER_BYTES = 1 << 20
#: At most this many shared buffers per message (the rest go through the pipe).
MAX_SHARED_BUFFERS = 64
#: The innermost frame of faulthandler's report of the crashing thread.
_FAULT_FRAME = re.compile(r'\(most recent call first\):\s*\n\s*File "([^"]+)", line (\d+) in (\S+)')


@dataclass(frozen=True)
class Limits:
    """What one guarded call may use; ``None`` means no limit.

    Parameters
    ----------
    memory_bytes:
        Address space the call may add to the helper's size at the start of the call
        (``RLIMIT_AS``; enforced on Linux, ignored where ``/proc`` is absent).
        An allocation past it raises ``MemoryError`` in the helper.
    seconds:
        Wall time the call may take before the helper is killed.
    """

    memory_bytes: int | None = None
    seconds: float | None = None


#: The limits :func:`guarded` applies unless told otherwise.
DEFAULT_LIMITS = Limits(memory_bytes=DEFAULT_CALL_MEMORY, seconds=DEFAULT_CALL_SECONDS)


@dataclass(frozen=True)
class Death:
    """How a guarded process ended while it was working on a call."""

    exit_code: int | None = None
    signal: int | None = None
    timed_out_after: float | None = None
    #: What the process wrote to stderr during the call, up to its last words (e.g. a C++
    #: "terminate called after throwing an instance of ..."), for the log.
    stderr: str = ""

    def describe(self) -> str:
        """``signal 6, SIGABRT`` / ``exit code 3`` / ``no answer within 60 s``."""
        if self.timed_out_after is not None:
            return f"no answer within {self.timed_out_after:g} s"
        if self.signal is not None:
            try:
                name = signal.Signals(self.signal).name
            except ValueError:
                name = "unknown signal"
            return f"signal {self.signal}, {name}"
        return f"exit code {self.exit_code}"

    @property
    def last_words(self) -> str:
        """The last message the process printed before it died (one line; '' if none).

        Python's own fatal-error report (faulthandler's "Fatal Python error" and the
        stack after it) is left out: it is in :attr:`stderr` for the log.
        """
        text = self.stderr.split("Fatal Python error", 1)[0]
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        for index, line in enumerate(lines):  # a C++ abort: "terminate called after throwing ..." + what()
            if line.startswith("terminate called"):
                lines = lines[index:]
                break
        else:
            lines = lines[-2:]
        said = " ".join(lines[:3])
        return said if len(said) <= LAST_WORDS_CHARS else said[: LAST_WORDS_CHARS - 3] + "..."

    @property
    def crash_site(self) -> str:
        """Where the Python stack was when a fatal signal hit (``gdcm.py line 120 in _decode_frame``), or ''.

        From faulthandler's report: the innermost frame of the thread that crashed.
        """
        match = _FAULT_FRAME.search(self.stderr)
        if not match:
            return ""
        path, line, function = match.groups()
        short = "/".join(path.replace("\\", "/").split("/")[-2:])
        return f"{short} line {line} in {function}"


@dataclass(frozen=True)
class Returned:
    """The call returned ``value``."""

    value: Any


@dataclass(frozen=True)
class Raised:
    """The call raised an ordinary exception (re-raised by :func:`guarded`)."""

    error: BaseException
    traceback: str = ""


@dataclass(frozen=True)
class Panicked:
    """The call raised a ``BaseException`` that is not an ``Exception`` (a Rust panic); the helper lives on."""

    kind: str
    message: str
    traceback: str = ""


@dataclass(frozen=True)
class Died:
    """The helper died (or was killed at its time limit) during the call."""

    death: Death


Outcome = Union[Returned, Raised, Panicked, Died]


# -- the pipe between a process and its helper ---------------------------------------------------

_HEADER = struct.Struct("<QI")  # payload bytes, shared buffers that came with it


def _shared_buffer(data: memoryview) -> int:
    """A file descriptor of anonymous shared memory holding ``data`` (memfd; an unlinked temp file elsewhere)."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("medconv-guard", os.MFD_CLOEXEC)
    else:
        handle = tempfile.TemporaryFile()
        fd = os.dup(handle.fileno())
        handle.close()
    try:
        view = data.cast("B")
        written = 0
        while written < len(view):
            written += os.write(fd, view[written:])
    except BaseException:
        os.close(fd)
        raise
    return fd


class _Channel:
    """Pickled messages over a Unix socket; large buffers (protocol 5) travel as shared memory.

    A large numpy array is pickled out of band: its bytes are copied once into a
    memfd whose descriptor goes with the message; the receiver maps it and the
    unpickled array uses that mapping without another copy.
    """

    def __init__(self, sock: socket.socket):
        self.sock = sock

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def poll(self, timeout: float | None) -> bool:
        readable, _, _ = select.select([self.sock], [], [], timeout)
        return bool(readable)

    def send(self, obj: Any) -> None:
        shared: list[pickle.PickleBuffer] = []

        def out_of_band(buffer: pickle.PickleBuffer) -> bool:
            if buffer.raw().nbytes < SHARED_BUFFER_BYTES or len(shared) >= MAX_SHARED_BUFFERS:
                return True  # in band
            shared.append(buffer)
            return False

        payload = pickle.dumps(obj, protocol=5, buffer_callback=out_of_band)
        fds = [_shared_buffer(buffer.raw()) for buffer in shared]
        try:
            socket.send_fds(self.sock, [_HEADER.pack(len(payload), len(fds))], fds)
            self.sock.sendall(payload)
        finally:
            for fd in fds:
                os.close(fd)

    def recv(self) -> Any:
        head, fds, _, _ = socket.recv_fds(self.sock, _HEADER.size, MAX_SHARED_BUFFERS)
        try:
            if not head:
                raise EOFError("the other side closed the pipe")
            head += self._exactly(_HEADER.size - len(head))
            size, count = _HEADER.unpack(head)
            payload = self._exactly(size)
            buffers = []
            for fd in fds[:count]:
                length = os.fstat(fd).st_size
                buffers.append(mmap.mmap(fd, length) if length else b"")
        finally:
            for fd in fds:
                os.close(fd)
        return pickle.loads(payload, buffers=buffers)

    def _exactly(self, size: int) -> bytes:
        data = bytearray(size)
        view = memoryview(data)
        got = 0
        while got < size:
            n = self.sock.recv_into(view[got:])
            if not n:
                raise EOFError("the other side closed the pipe")
            got += n
        return bytes(data) if size < SHARED_BUFFER_BYTES else data


def clean_sys_path(paths: list[str] | None = None, cwd: str | None = None) -> list[str]:
    """``sys.path`` without the current folder ('' , '.', or the working directory spelt out).

    The folder a command is started from is untrusted (it may hold a ``json.py`` or
    ``numpy.py``). The one exception: the folder medconv itself is imported from,
    when that is the working directory (a source checkout run without installing).
    """
    paths = list(sys.path if paths is None else paths)
    cwd = os.path.realpath(cwd or os.getcwd())
    own_root = os.path.realpath(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    clean = []
    for entry in paths:
        if not entry or entry == ".":
            entry = cwd
        absolute = os.path.realpath(os.path.abspath(entry))
        if absolute == cwd and absolute != own_root:
            continue
        if absolute not in clean:
            clean.append(absolute)
    return clean


def _boot_command() -> list[str]:
    """The interpreter command line of a helper: a clean ``sys.path`` set before anything is imported."""
    code = (f"import sys; sys.path[:] = {clean_sys_path()!r}; "
            "import medconv.guard as guard; guard._serve(int(sys.argv[1]))")
    flags = ["-P"] if sys.version_info >= (3, 11) else []  # belt and braces: no script folder on the path
    return [sys.executable, *flags, "-u", "-c", code]


#: Helpers told to exit and not waited for; reaped when the next helper starts.
_exiting: list[subprocess.Popen] = []


def _reap_exited() -> None:
    _exiting[:] = [process for process in _exiting if process.poll() is None]


class GuardedProcess:
    """One reusable helper process that runs calls sent to it, and reports how it died if it does.

    :meth:`submit` sends a call and returns at once; :meth:`collect` waits for its
    :data:`Outcome`. :meth:`call` does both. The pool waits on many helpers at once
    through :attr:`channel` (readable when an outcome is ready or the helper died).
    A dead helper is restarted by the next :meth:`submit`.
    """

    def __init__(self, name: str = "medconv-guard"):
        self.name = name
        self._process: subprocess.Popen | None = None
        self._channel: _Channel | None = None
        self._stderr: io.BufferedRandom | None = None
        self._stderr_mark = 0
        self._deadline: float | None = None
        self._seconds: float | None = None
        #: Processes started so far (1 + restarts after deaths).
        self.starts = 0

    # -- life ---------------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the helper process (it imports medconv.guard, then waits for calls)."""
        self.stop()
        _reap_exited()
        parent_end, child_end = socket.socketpair()
        self._stderr = tempfile.TemporaryFile(prefix=f"{self.name}-", suffix=".stderr")
        try:
            self._process = subprocess.Popen(
                [*_boot_command(), str(child_end.fileno())], pass_fds=(child_end.fileno(),),
                stdin=subprocess.DEVNULL, stdout=self._stderr, stderr=self._stderr, close_fds=True)
        finally:
            child_end.close()
        self._channel = _Channel(parent_end)
        self._stderr_mark = 0
        self.starts += 1

    def stop(self, kill: bool = False, wait: bool = True) -> None:
        """End the helper: close its pipe (an idle helper then exits on its own).

        ``kill`` kills it first (a helper in the middle of a call); ``wait`` waits for
        it to end (killing it after :data:`EXIT_GRACE_SECONDS`); without ``wait``, an
        idle helper is left to exit and is reaped later.
        """
        process, self._process = self._process, None
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if process is not None:
            if kill and process.poll() is None:
                process.kill()
            if wait or kill:
                try:
                    process.wait(timeout=EXIT_GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            else:
                _exiting.append(process)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self._deadline = None

    # -- calls --------------------------------------------------------------------------------
    @property
    def channel(self) -> "_Channel | None":
        """Readable (``fileno()``, for ``select``) when the call's outcome is ready, or the helper died."""
        return self._channel

    @property
    def deadline(self) -> float | None:
        """``time.monotonic()`` by which the submitted call must answer, if it has a time limit."""
        return self._deadline

    def submit(self, fn: Callable[..., Any], args: tuple = (), kwargs: dict | None = None,
               limits: Limits = Limits()) -> None:
        """Send ``fn(*args, **kwargs)`` to the helper (starting it if needed); returns at once."""
        message = (fn, args, kwargs or {}, limits.memory_bytes)
        for attempt in (1, 2):
            if not self.alive:
                self.start()
            assert self._channel is not None and self._stderr is not None
            self._stderr_mark = self._stderr.seek(0, io.SEEK_END)
            try:
                self._channel.send(message)
                break
            except (BrokenPipeError, ConnectionResetError):  # it died while idle: once more with a new one
                if attempt == 2:
                    raise
                self.stop(kill=True)
        self._seconds = limits.seconds
        self._deadline = time.monotonic() + limits.seconds if limits.seconds else None

    def collect(self, timeout: float | None = None) -> Outcome:
        """Wait for the submitted call's outcome (at most ``timeout`` s more, besides its own deadline).

        Returns :class:`Died` with ``timed_out_after`` when the call's time limit
        passes (the helper is killed). ``timeout`` alone running out raises
        ``TimeoutError`` and leaves the call running.
        """
        assert self._channel is not None, "nothing was submitted"
        wait = timeout
        if self._deadline is not None:
            left = max(0.0, self._deadline - time.monotonic())
            wait = left if wait is None else min(wait, left)
        try:
            ready = self._channel.poll(wait)
        except (OSError, ValueError):
            ready = True
        if not ready:
            if self._deadline is not None and time.monotonic() >= self._deadline:
                tail = self._stderr_since_mark()
                self.stop(kill=True)
                return Died(Death(timed_out_after=self._seconds, stderr=tail))
            raise TimeoutError("the guarded call is still running")
        try:
            outcome = self._channel.recv()
        except (EOFError, OSError):
            return Died(self._reap())
        except Exception as exc:  # the result's class cannot be imported here
            outcome = Raised(RuntimeError(f"the guarded call's result could not be read: {type(exc).__name__}: {exc}"))
        self._deadline = None
        return outcome

    def call(self, fn: Callable[..., Any], *args: Any, limits: Limits = Limits(), **kwargs: Any) -> Outcome:
        """Run ``fn(*args, **kwargs)`` in the helper and wait for its :data:`Outcome`."""
        self.submit(fn, args, kwargs, limits)
        return self.collect()

    def _stderr_since_mark(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(self._stderr_mark)
        data = self._stderr.read()
        self._stderr.seek(0, io.SEEK_END)
        return data[-STDERR_TAIL_BYTES:].decode("utf-8", "replace")

    def _reap(self) -> Death:
        """The helper closed its pipe: wait for it to end and say how it did."""
        process = self._process
        code = None
        if process is not None:
            try:
                code = process.wait(timeout=EXIT_GRACE_SECONDS)
            except subprocess.TimeoutExpired:  # pipe closed but still running: it is of no use any more
                process.kill()
                code = process.wait()
        tail = self._stderr_since_mark()
        self.stop()
        if code is not None and code < 0:
            return Death(signal=-code, stderr=tail)
        return Death(exit_code=code, stderr=tail)


# -- the helper's side ---------------------------------------------------------------------------


def _address_space_now() -> int | None:
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _limit_memory(extra: int | None):
    """Cap this process's address space at its size now plus ``extra``; returns the limit to restore."""
    if extra is None:
        return None
    try:
        import resource
    except ImportError:
        return None
    current = _address_space_now()
    if current is None:
        return None
    previous = resource.getrlimit(resource.RLIMIT_AS)
    hard = previous[1]
    wanted = current + int(extra)
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))
    return previous


def _restore_memory(previous) -> None:
    if previous is not None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, previous)


def _run_one(channel: _Channel) -> Outcome:
    """Receive one call and run it; raises EOFError when the parent closed the pipe."""
    try:
        fn, args, kwargs, memory = channel.recv()
    except (EOFError, OSError):
        raise
    except Exception as exc:  # fn's module cannot be imported here
        return Raised(exc, traceback.format_exc())
    previous = _limit_memory(memory)
    try:
        return Returned(fn(*args, **kwargs))
    except Exception as exc:
        return Raised(exc, traceback.format_exc())
    except BaseException as exc:  # a Rust panic and the like; SystemExit from fn counts too
        return Panicked(f"{type(exc).__module__}.{type(exc).__qualname__}", str(exc), traceback.format_exc())
    finally:
        _restore_memory(previous)


def _send(channel: _Channel, outcome: Outcome) -> None:
    try:
        pickle.dumps(outcome, protocol=5, buffer_callback=lambda buffer: False)  # picklable at all?
    except Exception as exc:  # an unpicklable result or exception
        if isinstance(outcome, Raised):
            outcome = Raised(RuntimeError(f"{type(outcome.error).__name__}: {outcome.error}"), outcome.traceback)
        else:
            outcome = Raised(RuntimeError(f"the result could not be sent back: {type(exc).__name__}: {exc}"))
    channel.send(outcome)


def _serve(fd: int) -> None:
    """The helper's loop: receive a call, run it under its limits, send the outcome; exit on EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent decides
    faulthandler.enable()  # a fatal signal leaves the Python stack in the stderr file (shown in the log)
    channel = _Channel(socket.socket(fileno=fd))
    while True:
        try:
            outcome = _run_one(channel)
        except (EOFError, OSError):
            return
        try:
            _send(channel, outcome)
        except OSError:
            return


# -- the convenience function --------------------------------------------------------------------

_helper: GuardedProcess | None = None
_helper_pid: int | None = None
_helper_lock = threading.Lock()


def _close_helper() -> None:
    global _helper
    if _helper is not None and _helper_pid == os.getpid():
        _helper.stop()
    _helper = None


def _shared_helper() -> GuardedProcess:
    global _helper, _helper_pid
    if _helper is None or _helper_pid != os.getpid():  # a forked child never uses its parent's helper
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
