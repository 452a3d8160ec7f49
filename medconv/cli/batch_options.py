"""The batch option group: worker processes, Dask, dry run, and how much is printed or logged."""

from __future__ import annotations

from typing import Any, Mapping

import click

from .options import OptionGroup, Target


def _batch_fields(values: Mapping[str, Any]):
    quiet = bool(values["quiet"])
    if quiet and values["verbose"]:
        raise click.BadParameter("-q and -v contradict each other: choose one", param_hint="-q/-v")
    return {
        Target.RUN: {"jobs": values["jobs"] or None, "backend": values["backend"], "scheduler": values["scheduler"],
                     "progress": not quiet, "summary": not quiet,
                     "verbosity": -1 if quiet else min(2, values["verbose"]), "log_file": values["log"]},
        Target.DATASET: {"dry_run": bool(values["dry_run"])},
    }


batch_options = OptionGroup(
    "Batch",
    click.option("-j", "--jobs", type=click.IntRange(min=0), default=None, metavar="N",
                 help="Worker processes [default: all cores, fewer if memory is short]; with dask: tasks in flight."),
    click.option("-n", "--dry-run", is_flag=True, help="Print the plan (units and output names) and stop."),
    click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary; errors only."),
    click.option("-v", "--verbose", count=True,
                 help="-v: one line per unit (output, shape, seconds, warnings); -vv: debug details too."),
    click.option("--log", type=click.Path(dir_okay=False), default=None, metavar="FILE",
                 help="Append every message (each unit's decisions, warnings, timings, tracebacks) to FILE."),
    click.option("--backend", type=click.Choice(("local", "dask")), default="local", show_default=True,
                 help="local: processes on this machine; dask: a distributed scheduler."),
    click.option("--scheduler", envvar="MEDCONV_SCHEDULER", default=None, metavar="ADDRESS",
                 help="Dask scheduler, e.g. tcp://10.0.0.5:8786 [env: MEDCONV_SCHEDULER]; workers must see SRC "
                      "and DST under the same paths."),
    fields=_batch_fields,
)
