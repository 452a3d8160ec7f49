"""The Report of a batch: counts, first reasons, the one-screen summary, and the exit code.

Exit codes (the same as the CLI's): 0 every unit converted, skipped or excluded;
1 some failed; 2 usage error (raised before a Report exists); 3 nothing found;
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .manifest import Status

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOTHING, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
#: How many reasons per status the summary shows.
SHOWN_REASONS = 5
#: The longest unit id a summary line shows (a longer one, a LUNA16 SeriesInstanceUID say, keeps its
#: start and its end); the manifest has every id, and every reason, in full.
SHOWN_NAME_CHARS = 28
_ELLIPSIS = "..."


def short_name(name: str, width: int = SHOWN_NAME_CHARS) -> str:
    """``name`` in at most ``width`` characters: its start and its end around ``...`` (the end tells UIDs apart)."""
    if len(name) <= width:
        return name
    keep = width - len(_ELLIPSIS)
    head = keep // 3
    return name[:head] + _ELLIPSIS + name[len(name) - (keep - head):]


def summary_line(row: dict[str, Any], text: str) -> str:
    """``text`` (a reason or a warning) prefixed by the unit's short id, for the summary on the terminal.

    A reason that starts with the unit's own source (the one-line error names its
    file) starts after it instead: the name already says which unit; a file inside
    the unit's folder (one slice of a series) keeps its path below that folder.
    """
    source = os.path.abspath(str(row["source"])) if row.get("source") else None
    named, separator, rest = text.partition(": ")
    if source and separator and named:
        named = os.path.abspath(named)  # the error names it as the reader opened it (relative, or absolute)
        if named == source:
            text = rest
        elif named.startswith(source.rstrip(os.sep) + os.sep):
            text = f"{os.path.relpath(named, source)}: {rest}"
    return f"{short_name(str(row['unit_id']))}: {text}"


@dataclass
class Report:
    """What happened to the units of one run."""

    total: int = 0
    counts: Counter = field(default_factory=Counter)
    reasons: dict[str, list[str]] = field(default_factory=dict)
    internal_errors: int = 0
    interrupted: bool = False
    manifest_paths: tuple[str, ...] = ()
    log_path: str | None = None
    preview_index: str | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    notes: list[str] = field(default_factory=list)
    warned: list[str] = field(default_factory=list)
    warned_count: int = 0
    #: Set when the manifest could not be written (the run stopped there): the one-line reason.
    manifest_error: str | None = None
    #: Where the units ran: ``in-process``, ``workers`` or ``dask`` (None: nothing was converted).
    execution: str | None = None

    def add(self, row: dict[str, Any]) -> None:
        """Count one manifest row."""
        status = row["status"]
        self.counts[status] += 1
        if status == Status.CONVERTED and row.get("warnings"):
            self.warned_count += 1
            if len(self.warned) < SHOWN_REASONS:
                self.warned.append(summary_line(row, row["warnings"][0])
                                   + (f" (+{len(row['warnings']) - 1} more)" if len(row["warnings"]) > 1 else ""))
        if row.get("error_type") == "internal":
            self.internal_errors += 1
        if status != Status.CONVERTED and row.get("reason"):
            self.reasons.setdefault(status, [])
            if len(self.reasons[status]) < SHOWN_REASONS:
                self.reasons[status].append(summary_line(row, row["reason"]))

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.total == 0:
            return EXIT_NOTHING
        if self.counts[Status.FAILED] or self.manifest_error:
            return EXIT_FAILED
        return EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        """A machine-readable summary (written as ``medconv-summary.json`` beside the manifest)."""
        return {
            "total": self.total,
            **{status.value: self.counts[status] for status in Status},
            "internal_errors": self.internal_errors,
            "converted_with_warnings": self.warned_count,
            "interrupted": self.interrupted,
            "not_run": self.total - self.done,
            "exit_code": self.exit_code,
            "seconds": round((self.finished or time.time()) - self.started, 3),
            "manifest": list(self.manifest_paths),
            "manifest_error": self.manifest_error,
            "execution": self.execution,
            "log": self.log_path,
            "preview_index": self.preview_index,
        }

    def write_json(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(self.as_dict(), handle, indent=2)
            handle.write("\n")

    def render(self, console) -> None:
        """Print the one-screen summary on a rich console (or a :class:`~.progress.PlainConsole`)."""
        seconds = (self.finished or time.time()) - self.started
        styles = {Status.CONVERTED: "green", Status.SKIPPED: "cyan", Status.FAILED: "red", Status.EXCLUDED: "yellow"}
        counts = [(f"[{styles[status]}]{status}[/]", status, str(self.counts[status])) for status in styles]
        if self.total - self.done:
            counts.append(("not run", "not run", str(self.total - self.done)))
        if console.is_terminal:
            from rich.table import Table

            table = Table(show_header=False, box=None, pad_edge=False)
            for styled, _, count in counts:
                table.add_row(styled, count)
            console.print(table)
        else:
            for _, status, count in counts:
                console.print(f"{status:<10} {count}", markup=False, highlight=False)
        if self.counts[Status.SKIPPED]:
            console.print(f"skipped {self.counts[Status.SKIPPED]} unit(s) whose output exists "
                          "(resume; --overwrite redoes them)", highlight=False)
        if self.warned:  # converted, but something was decided on the way (resampled tilt, filled gap ...)
            console.print(f"[bold]converted with warnings ({self.warned_count}):[/]")
            for line in self.warned:
                console.print(f"  {line}", markup=False, highlight=False)
            if self.warned_count > len(self.warned):
                console.print(f"  ... and {self.warned_count - len(self.warned)} more (see the manifest)")
        for status in (Status.FAILED, Status.EXCLUDED):
            shown = self.reasons.get(status, [])
            if shown:
                more = self.counts[status] - len(shown)
                console.print(f"[bold]{status}:[/]")
                for reason in shown:
                    console.print(f"  {reason}", markup=False, highlight=False)
                if more > 0:
                    console.print(f"  ... and {more} more (see the manifest)")
        if self.internal_errors:
            console.print(f"[bold red]{self.internal_errors} INTERNAL ERROR(S): a bug in medconv; tracebacks in "
                          f"{self.log_path}. Please report them.[/]")
        if self.interrupted:
            console.print("[bold yellow]interrupted[/]: rerun the same command to finish (finished units are kept)")
        if self.manifest_error:
            console.print(f"[bold red]MANIFEST NOT WRITTEN[/]: {self.manifest_error}; the run stopped after "
                          f"{self.done} of {self.total} unit(s) (outputs under their final names are complete; "
                          "rerun the same command once this is fixed)", highlight=False)
        for path in self.manifest_paths[:1]:
            console.print(f"manifest: {os.path.relpath(path) if not os.path.isabs(path) else path}", highlight=False)
        if self.preview_index:
            console.print(f"preview: {self.preview_index}", highlight=False)
        console.print(f"{self.done}/{self.total} units in {seconds:.1f} s", highlight=False)
