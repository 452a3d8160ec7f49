"""Where medconv's messages go: the one place logging is configured (stdlib :mod:`logging`).

Every module logs under the ``medconv`` logger (``logging.getLogger(__name__)``);
worker processes send their records back with each unit's row, and the parent
logs them, so a log file is complete whatever ran where. What each level holds:

=========  ====================================================================
DEBUG      details: how each unit was converted (steps applied, timings), worker
           processes started and how they died, tracebacks of internal errors
INFO       one line per unit (converted, skipped, excluded, with its output, shape,
           dtype and seconds) and each unit's warnings; the plan and how it runs
WARNING    units that failed, with their reason; a reader's search that broke off
ERROR      the run itself: the manifest cannot be written, the run stopped
=========  ====================================================================

The terminal shows errors only by default (the summary at the end says what
failed), INFO with ``-v`` and DEBUG with ``-vv``; ``-q`` keeps it to errors and
drops the progress bar and the summary. ``--log FILE`` appends everything (DEBUG)
to FILE, whatever the terminal shows.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import datetime, timezone

from ._version import __version__

#: The package logger.
PACKAGE = "medconv"
#: Terminal level by verbosity: -1 (``-q``), 0 (default), 1 (``-v``), 2 (``-vv``).
TERMINAL_LEVELS = {-1: logging.ERROR, 0: logging.ERROR, 1: logging.INFO, 2: logging.DEBUG}
FILE_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

logging.getLogger(PACKAGE).addHandler(logging.NullHandler())  # no "last resort" output for library users


class _TerminalHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (a progress bar redirects it above itself)."""

    def __init__(self, level: int):
        super().__init__(sys.stderr)
        self.setLevel(level)
        self.setFormatter(_TerminalFormatter())

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # StreamHandler.__init__ assigns it
        pass


class _TerminalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}: {record.exc_info[1]}"
        if record.levelno >= logging.WARNING:
            return f"medconv: {record.levelname.lower()}: {message}"
        return message


def configure_logging(verbosity: int = 0, log_file: str | os.PathLike | None = None) -> None:
    """Send medconv's messages to the terminal (by ``verbosity``) and, with ``log_file``, to that file.

    Calling it again replaces what an earlier call installed. Raises the
    :class:`~medconv.errors.EnvironmentFaultError` (a user error) when the log file
    cannot be opened.
    """
    logger = logging.getLogger(PACKAGE)
    for handler in [h for h in logger.handlers if getattr(h, "_medconv", False)]:
        logger.removeHandler(handler)
        handler.close()
    terminal = _TerminalHandler(TERMINAL_LEVELS[max(-1, min(2, verbosity))])
    handlers: list[logging.Handler] = [terminal]
    if log_file is not None:
        path = os.fspath(log_file)
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            file_handler = logging.FileHandler(path, mode="a", encoding="utf-8", errors="backslashreplace")
        except OSError as exc:
            from .errors import environment_fault

            fault = environment_fault(exc, path)
            if fault is None:
                raise
            raise type(fault)(f"cannot write the log file: {fault.message}", fault.path,
                              "choose another --log path") from None
        file_handler.setLevel(logging.DEBUG)
        file_handler.setFormatter(logging.Formatter(FILE_FORMAT))
        handlers.append(file_handler)
    for handler in handlers:
        handler._medconv = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(min(handler.level for handler in handlers))
    if log_file is not None:
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        logger.debug("=== medconv %s, %s: %s", __version__, stamp, " ".join(sys.argv))


def log_file_path() -> str | None:
    """The file :func:`configure_logging` logs to, if any."""
    for handler in logging.getLogger(PACKAGE).handlers:
        if getattr(handler, "_medconv", False) and isinstance(handler, logging.FileHandler):
            return handler.baseFilename
    return None
