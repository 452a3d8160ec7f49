"""Progress on a terminal: units done/total, failures so far, throughput, ETA.

Silent when the console is not a terminal (a log file, a pipe, a cluster job) or
when asked to be quiet; the manifest and the summary say what happened either way.
"""

from __future__ import annotations

import re
import sys
from typing import Any, TextIO

from .manifest import Status

#: The rich markup the batch's own messages use (``[bold]``, ``[red]``, ``[/]`` ...).
_MARKUP = re.compile(r"\[(?:/|(?:bold|red|green|cyan|yellow)(?: (?:bold|red|green|cyan|yellow))*)\]")


class PlainConsole:
    """The part of ``rich.console.Console`` the batch uses, as plain lines on a stream that is not a terminal.

    A log file or a pipe gets one unstyled line per message, never wrapped,
    and a run without a terminal does not import rich (~25 ms of start-up).
    """

    is_terminal = False

    def __init__(self, file: TextIO | None = None):
        self.file = file

    def print(self, *objects: Any, markup: bool = True, **_: Any) -> None:
        text = " ".join(str(item) for item in objects)
        if markup:
            text = _MARKUP.sub("", text)
        print(text, file=self.file or sys.stderr, flush=True)


def batch_console(stderr: bool = True):
    """A rich console on a terminal, else a :class:`PlainConsole` (no rich import)."""
    stream = sys.stderr if stderr else sys.stdout
    try:
        terminal = stream.isatty()
    except (AttributeError, ValueError):
        terminal = False
    if not terminal:
        return PlainConsole(stream)
    from rich.console import Console

    return Console(stderr=stderr)


class BatchProgress:
    """A rich progress bar fed with manifest rows; a no-op when disabled."""

    def __init__(self, console, total: int, enabled: bool):
        self.enabled = enabled and total > 0
        self.failed = 0
        self._progress = None
        if not self.enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
            TimeRemainingColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("[red]{task.fields[failed]} failed"), TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=console, transient=False,
        )
        self._task = self._progress.add_task("converting", total=total, failed=0, rate="")

    def __enter__(self) -> "BatchProgress":
        if self._progress is not None:
            self._progress.start()
        return self

    def advance(self, row: dict[str, Any]) -> None:
        """Count one finished unit."""
        if row.get("status") == Status.FAILED:
            self.failed += 1
        if self._progress is None:
            return
        task = self._progress.tasks[0]
        elapsed = task.elapsed or 0.0
        rate = f"{(task.completed + 1) / elapsed:.2f} units/s" if elapsed > 0 else ""
        self._progress.update(self._task, advance=1, failed=self.failed, rate=rate)

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()
