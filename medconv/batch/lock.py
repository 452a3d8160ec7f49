"""One run per destination folder: a lock file in DST that a second concurrent run respects.

Two runs writing into one folder at once would tear each other's manifest lines
and delete each other's temporary files. So a run holds ``DST/medconv.lock`` for
as long as it writes there; a second run into the same folder **refuses to start**
(exit 2) with a message naming the holder (pid, host, start time, command) and
what to do. Waiting was not chosen: a second run started by mistake (the same
command in two terminals, a job array pointing at one folder) is better stopped
at once than queued for hours behind the first.

The lock is an advisory ``flock`` on the file, which the kernel releases when the
holding process ends in any way (also ``kill -9``, a crash, a reboot). A lock
file left behind by such a run is therefore *stale* by construction: the next run
takes it over and says so in its log, naming the run that left it. On file
systems without ``flock`` (rare; some network mounts), the file's content decides:
a holder on this host whose pid is gone is stale; one on another host is trusted
until the file is removed by hand, which the message explains.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..errors import DestinationLockedError, environment_fault

log = logging.getLogger(__name__)

#: The lock file's name in the destination folder.
LOCK_NAME = "medconv.lock"
#: How often to retry when the lock file is replaced while being locked (another run just ended).
LOCK_ATTEMPTS = 5
#: How long to wait for a holder that has just locked to write its details (pid, host ...).
DETAILS_WAITS, DETAILS_WAIT_SECONDS = 20, 0.025


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or held) a destination's lock, as recorded in the lock file."""

    pid: int | None
    host: str
    started: str
    command: str
    #: The unit the holder was converting in its own process, if it said (a crash there ends the run).
    converting: str | None = None

    @classmethod
    def current(cls) -> "LockHolder":
        return cls(os.getpid(), socket.gethostname(), datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:500])

    @classmethod
    def read(cls, path: str) -> "LockHolder | None":
        try:
            with open(path, encoding="utf-8") as handle:
                data: dict[str, Any] = json.load(handle)
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        pid = data.get("pid")
        converting = data.get("converting")
        return cls(pid if isinstance(pid, int) else None, str(data.get("host", "?")), str(data.get("started", "?")),
                   str(data.get("command", "")), str(converting) if converting else None)

    def describe(self) -> str:
        command = f" ('{self.command}')" if self.command else ""
        return f"pid {self.pid} on {self.host}, started {self.started}{command}"

    def is_alive_here(self) -> bool | None:
        """True/False when the holder ran on this host (its pid exists or not); ``None`` for another host."""
        if self.host != socket.gethostname() or self.pid is None:
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class DestinationLock:
    """Hold ``folder/medconv.lock`` for the life of a run (a context manager).

    Raises :class:`~medconv.errors.DestinationLockedError` when another live run
    holds it, or the environment fault (permission, read-only ...) when the lock
    file cannot be created at all: then nothing can be written there.
    """

    def __init__(self, folder: str):
        self.folder = folder
        self.path = os.path.join(folder, LOCK_NAME)
        self._fd: int | None = None
        #: The holder of a stale lock this run took over, if any (for the log).
        self.took_over: LockHolder | None = None
        self._holder: LockHolder | None = None

    def acquire(self) -> "DestinationLock":
        for _ in range(LOCK_ATTEMPTS):
            fd = self._open()
            previous = LockHolder.read(self.path)
            try:
                self._lock(fd, previous)
                if _same_file(fd, self.path):
                    break
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # the holder removed the file as we locked it: lock the new one
        else:
            raise DestinationLockedError("the lock file keeps changing (other runs are starting here)", self.folder,
                                         "run one medconv command per destination folder")
        self._fd = fd
        if previous is not None and previous.pid != os.getpid():
            self.took_over = previous
            log.info("%s: took over the lock left by a run that ended without releasing it (%s)", self.path,
                     previous.describe())
            if previous.converting:
                log.warning("the run that left it ended while converting %s in its own process (a crash of native "
                            "code there?); rerunning it with --jobs 2 contains such a crash", previous.converting)
        self._record(LockHolder.current())
        return self

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as exc:
            fault = environment_fault(exc, self.folder)
            if fault is None:
                raise
            raise type(fault)(f"cannot write into this folder: {fault.message}", self.folder, fault.hint) from None

    def _lock(self, fd: int, previous: LockHolder | None) -> None:
        try:
            import fcntl
        except ImportError:  # no flock on this system: decide from the file's content
            return self._check_content(previous)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise self._locked(self._holder_details(previous)) from None
            if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                return self._check_content(previous)
            raise

    def _holder_details(self, previous: LockHolder | None) -> LockHolder | None:
        """The live holder's details; it writes them just after locking, so give it a moment."""
        for _ in range(DETAILS_WAITS):
            holder = LockHolder.read(self.path)
            if holder is not None:
                return holder
            time.sleep(DETAILS_WAIT_SECONDS)
        return previous

    def _check_content(self, previous: LockHolder | None) -> None:
        if previous is None or previous.pid == os.getpid():
            return
        alive = previous.is_alive_here()
        if alive is False:
            return  # stale: its process is gone
        raise self._locked(previous)

    def _locked(self, holder: LockHolder | None) -> DestinationLockedError:
        who = holder.describe() if holder else "a process that has not written its details yet"
        return DestinationLockedError(
            f"another medconv run is writing into this folder ({who})", self.folder,
            "wait for it to finish, or choose another destination folder; if no such run exists (a run on "
            f"another machine that died), delete {self.path}")

    def note_converting(self, unit_id: str | None) -> None:
        """Record the unit this process is converting itself: if a crash ends the run, the next run names it."""
        if self._holder is not None:
            self._record(LockHolder(**{**self._holder.__dict__, "converting": unit_id}))

    def _record(self, holder: LockHolder) -> None:
        self._holder = holder
        data = json.dumps({"pid": holder.pid, "host": holder.host, "started": holder.started,
                           "command": holder.command, "converting": holder.converting}) + "\n"
        assert self._fd is not None
        with contextlib.suppress(OSError):  # the details are for people; the flock is the lock
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, data.encode("utf-8", "backslashreplace"), 0)

    def release(self) -> None:
        """Remove the lock file and release the lock (the file goes first, so nobody locks a dead inode)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.remove(self.path)
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "DestinationLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()



def _same_file(fd: int, path: str) -> bool:
    try:
        held, named = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)
