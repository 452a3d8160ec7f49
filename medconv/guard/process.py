"""One reusable helper process (:class:`GuardedProcess`): its start with a clean ``sys.path``, its calls,
how its death is read, and the loop it runs (:func:`serve`)."""

from __future__ import annotations

import faulthandler
import io
import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Any, Callable

from .channel import Channel
from .outcomes import Death, Died, Limits, Outcome, Panicked, Raised, Returned

#: How long a helper whose pipe closed gets to exit before it is killed (s).
EXIT_GRACE_SECONDS = 5.0
#: How much of a dead helper's stderr is kept for the log (bytes).
STDERR_TAIL_BYTES = 16000


def clean_sys_path(paths: list[str] | None = None, cwd: str | None = None) -> list[str]:
    """``sys.path`` without the current folder ('' , '.', or the working directory spelt out).

    The folder a command is started from is untrusted (it may hold a ``json.py`` or
    ``numpy.py``). The one exception: the folder medconv itself is imported from,
    when that is the working directory (a source checkout run without installing).
    """
    paths = list(sys.path if paths is None else paths)
    cwd = os.path.realpath(cwd or os.getcwd())
    own_root = os.path.realpath(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
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
            "from medconv.guard.process import serve; serve(int(sys.argv[1]))")
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
        self._channel: Channel | None = None
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
        self._channel = Channel(parent_end)
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
    def channel(self) -> "Channel | None":
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


def _run_one(channel: Channel) -> Outcome:
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


def _send(channel: Channel, outcome: Outcome) -> None:
    try:
        pickle.dumps(outcome, protocol=5, buffer_callback=lambda buffer: False)  # picklable at all?
    except Exception as exc:  # an unpicklable result or exception
        if isinstance(outcome, Raised):
            outcome = Raised(RuntimeError(f"{type(outcome.error).__name__}: {outcome.error}"), outcome.traceback)
        else:
            outcome = Raised(RuntimeError(f"the result could not be sent back: {type(exc).__name__}: {exc}"))
    channel.send(outcome)


def serve(fd: int) -> None:
    """The helper's loop: receive a call, run it under its limits, send the outcome; exit on EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent decides
    faulthandler.enable()  # a fatal signal leaves the Python stack in the stderr file (shown in the log)
    channel = Channel(socket.socket(fileno=fd))
    while True:
        try:
            outcome = _run_one(channel)
        except (EOFError, OSError):
            return
        try:
            _send(channel, outcome)
        except OSError:
            return
