"""One call for a whole dataset: discover, plan, then print the plan or run it and show the summary.

This is what ``medconv convert``, ``tcia2nii`` and ``mhd2nii`` call; they differ
only in the readers they allow and their defaults.
"""

from __future__ import annotations

import os
from typing import Sequence

from ..layout import check_template
from .manifest import Status
from .plan import discover_sources, make_plan
from .report import EXIT_OK, Report
from .run import RunOptions, print_plan, run_plan
from .unit import UnitJob


def convert_dataset(src: str | os.PathLike, dest: str | os.PathLike, *, reader_names: Sequence[str] | None = None,
                    job: UnitJob = UnitJob(), options: RunOptions = RunOptions(), template: str | None = None,
                    dry_run: bool = False, console=None) -> int:
    """Convert every unit under ``src`` that ``reader_names`` (default: all) recognise; return the exit code.

    Raises :class:`~medconv.errors.NothingFoundError` (exit code 3) when there is
    nothing to convert, and :class:`~medconv.errors.UsageError` /
    :class:`~medconv.errors.OutputCollisionError` for problems found while planning;
    a unit's own failure never raises (it is a manifest row).
    """
    from ..logs import configure_logging
    from .progress import batch_console

    configure_logging(options.verbosity, options.log_file)
    if console is None:
        console = batch_console()  # a log file or pipe: plain lines, never wrapped
    if template:
        check_template(template)
    src, dest = os.fspath(src), os.fspath(dest)
    if options.backend == "dask":  # workers elsewhere resolve paths against their own working folder
        src, dest = os.path.abspath(src), os.path.abspath(dest)
    sources = discover_sources(src, reader_names, dest)
    plan = make_plan(sources, dest, fmt=job.fmt, template=template, sidecar=job.write_options.sidecar,
                     root=src if os.path.isdir(src) else os.path.dirname(src))
    if dry_run:
        from rich.console import Console

        screen = Console()
        print_plan(plan, screen if screen.is_terminal else Console(width=200), limit=None)
        return EXIT_OK
    report: Report = run_plan(plan, job, options, console=console)
    if options.summary:
        if plan.notes:
            console.print(f"note: {len(plan.notes)} output name(s) got a UID fragment to stay unique "
                          "(--dry-run lists them)", highlight=False)
        for note in report.notes[len(plan.notes):]:
            console.print(f"note: {note}", highlight=False, markup=False)
        report.render(console)
    elif report.counts[Status.FAILED] or report.internal_errors:
        console.print(f"{report.counts[Status.FAILED]} of {report.total} unit(s) failed; see {report.manifest_paths[0]}",
                      highlight=False)
    return report.exit_code
