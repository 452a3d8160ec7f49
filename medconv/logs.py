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

**Other libraries' messages** (tifffile's "invalid PLANARCONFIG", nibabel's,
pydicom's, Python warnings) are medconv's messages too, under
:data:`THIRD_PARTY` (``medconv.external.tifffile``, ``medconv.external.py.warnings``):
never written straight to the terminal. Made while a unit converts (in a worker or
in this process), they travel with the unit's row like its own records, once each
(a message a library repeats, for every page, is counted), and are logged with the
unit's id: at their level (a library's warning shows with ``-v``), Python warnings
at DEBUG; outside a unit (discovery, ``medconv scan``), :func:`configure_logging`
routes them the same way.
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

#: Where other libraries' records (and Python warnings) are logged: ``THIRD_PARTY + "." + their logger's name``.
THIRD_PARTY = PACKAGE + ".external"

logging.getLogger(PACKAGE).addHandler(logging.NullHandler())  # no "last resort" output for library users


def is_medconv_logger(name: str) -> bool:
    """Whether ``name`` is medconv's logger or one below it."""
    return name == PACKAGE or name.startswith(PACKAGE + ".")


def medconv_logger_name(name: str) -> str:
    """The medconv logger a record of logger ``name`` is logged under (:data:`THIRD_PARTY` for other libraries)."""
    return name if is_medconv_logger(name) else f"{THIRD_PARTY}.{name}"


class _ThirdPartyToMedconv(logging.Handler):
    """On the root logger: hands each record of another library to the same-named logger under :data:`THIRD_PARTY`."""

    def emit(self, record: logging.LogRecord) -> None:
        if is_medconv_logger(record.name):
            return  # medconv's own records reach the root too; medconv's handlers have them already
        routed = logging.makeLogRecord(record.__dict__)
        routed.name = medconv_logger_name(record.name)
        logging.getLogger(routed.name).handle(routed)


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
    root = logging.getLogger()
    for owner in (logger, root):
        for handler in [h for h in owner.handlers if getattr(h, "_medconv", False)]:
            owner.removeHandler(handler)
            handler.close()
    router = _ThirdPartyToMedconv()
    router._medconv = True  # type: ignore[attr-defined]
    root.addHandler(router)  # other libraries' records: medconv's handlers show them, nothing else does
    logging.captureWarnings(True)  # Python warnings: records of "py.warnings", routed the same way
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
