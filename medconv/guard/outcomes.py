"""What a guarded call may use (:class:`Limits`) and how it ended (:data:`Outcome`, :class:`Death`)."""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass
from typing import Any, Union

#: Extra address space (bytes) a guarded decode may take by default: the largest sane series (a
#: 1,000-slice 1024x1024 int16 CT is 2 GiB) plus the decoder's own buffers.
DEFAULT_CALL_MEMORY = 4 << 30
#: Wall time (s) a guarded decode may take by default: a 1,000-frame JPEG 2000 series decodes in ~20 s here.
DEFAULT_CALL_SECONDS = 300.0
#: How much of a dead helper's last message goes into the one-line error.
LAST_WORDS_CHARS = 300
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


