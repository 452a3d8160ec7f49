"""Shared click options of the dataset commands, and the frozen option objects built from them.

Each decorator adds one group of options; ``batch_options`` bundles those every
dataset command has. The builders (``read_options_from`` ...) turn the parsed
values into the frozen objects the library takes: commands never hold state.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any, Callable

import click

from ..options import ReadOptions, WriteOptions

if TYPE_CHECKING:
    from ..batch import RunOptions

FORMATS = ("nii.gz", "nii", "npz")

#: The names of the options defined here; everything else a command receives
#: belongs to the preprocessing options (``medconv.cli.transform_options``).
BATCH_KEYS = ("jobs", "overwrite", "quiet", "dry_run", "manifest", "preview", "backend", "scheduler", "name",
              "fmt", "sidecar")
READER_KEYS = ("on_tilt", "on_uneven", "include_2d", "labels", "kind")


def _compose(*decorators: Callable) -> Callable:
    def apply(function: Callable) -> Callable:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


def format_option(default: str = "nii.gz") -> Callable:
    """``-f/--format``: the output format."""
    return click.option("-f", "--format", "fmt", type=click.Choice(FORMATS, case_sensitive=False), default=default,
                        show_default=True, help="Output format.")


jobs = click.option("-j", "--jobs", type=click.IntRange(min=0), default=None, metavar="N",
                    help="Worker processes (default: all cores, fewer if memory is short; 1: no subprocesses). "
                         "With --backend dask: tasks in flight (default: all workers).")
overwrite = click.option("--overwrite", is_flag=True,
                         help="Redo units whose output exists (default: skip them, which resumes an interrupted run).")
quiet = click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary; errors only.")
dry_run = click.option("-n", "--dry-run", is_flag=True, help="Print the plan (units and output names) and stop.")
manifest = click.option("--manifest", type=click.Path(dir_okay=False), default=None, metavar="PATH",
                        help="Manifest path (.csv or .jsonl; both are written). Default: DST/medconv-manifest.csv.")
preview = click.option("--preview", is_flag=True,
                       help="Also write a PNG of three mid-slices per output and DST/_preview/index.html.")
backend = click.option("--backend", type=click.Choice(("local", "dask")), default="local", show_default=True,
                       help="local: worker processes on this machine; dask: a distributed scheduler (--scheduler).")
scheduler = click.option("--scheduler", envvar="MEDCONV_SCHEDULER", default=None, metavar="ADDRESS",
                         help="Dask scheduler address for --backend dask, e.g. tcp://10.0.0.5:8786 "
                              "[env: MEDCONV_SCHEDULER]. Workers must see SRC and DST under the same paths.")
name = click.option("--name", "name", default=None, metavar="TEMPLATE",
                    help="Output name template, e.g. '{patient_id}/{series_number}_{modality}'. Fields: the unit's "
                         "header facts plus {id} {stem} {parent} {reader} {ext}. Default: DICOM "
                         "'{patient_id}/{study_date}_{series_number}_{modality}_{series_description}', files '{id}'.")
sidecar = click.option("--sidecar/--no-sidecar", default=True, show_default=True,
                       help="Write a JSON sidecar (geometry, header facts, warnings) beside each output.")

batch_options = _compose(jobs, overwrite, quiet, dry_run, manifest, preview, backend, scheduler, name, sidecar)

on_tilt = click.option("--on-tilt", type=click.Choice(("resample", "error")), default="resample", show_default=True,
                       help="DICOM gantry tilt: resample onto an orthogonal grid, or refuse the series.")
on_uneven = click.option("--on-uneven", type=click.Choice(("resample", "error")), default="resample",
                         show_default=True,
                         help="Uneven slice spacing or missing slices: resample onto a regular grid, or refuse.")
include_2d = click.option("--include-2d", is_flag=True, help="Convert single 2D images as one-slice volumes.")
labels = click.option("--labels", multiple=True, metavar="PATTERN",
                      help="Glob (relative to SRC) marking label masks, e.g. 'seg-lungs-*/*'; repeatable. "
                           "Default: the documented name patterns (seg, mask, label ...).")
kind = click.option("--kind", type=click.Choice(("intensity", "label")), default=None,
                    help="Treat every volume as an intensity image or as a label map (default: decide per file).")

reader_options = _compose(on_tilt, on_uneven, include_2d, labels, kind)


def transform_options(function: Callable) -> Callable:
    """The preprocessing options (resample, window, reorient, cast) when that module is installed."""
    if importlib.util.find_spec("medconv.cli.transform_options") is None:
        return function
    from .transform_options import transform_options as decorator

    return decorator(function)


def preprocessing_from(kwargs: dict[str, Any]):
    """The preprocessing callable built from the options not defined here, or ``None``."""
    rest = {key: value for key, value in kwargs.items() if key not in BATCH_KEYS + READER_KEYS}
    if not rest or importlib.util.find_spec("medconv.cli.transform_options") is None:
        return None
    from .transform_options import preprocessing_from_cli

    return preprocessing_from_cli(**rest)


def read_options_from(kwargs: dict[str, Any]) -> ReadOptions:
    """ReadOptions from the reader-policy options."""
    return ReadOptions(on_tilt=kwargs.get("on_tilt") or "resample", on_uneven=kwargs.get("on_uneven") or "resample",
                       include_2d=bool(kwargs.get("include_2d")), kind=kwargs.get("kind"),
                       label_patterns=tuple(kwargs["labels"]) if kwargs.get("labels") else None)


def write_options_from(kwargs: dict[str, Any]) -> WriteOptions:
    """WriteOptions from the batch options."""
    return WriteOptions(sidecar=kwargs.get("sidecar", True), overwrite=bool(kwargs.get("overwrite")))


def run_options_from(kwargs: dict[str, Any]) -> "RunOptions":
    """RunOptions from the batch options."""
    from ..batch import RunOptions

    quiet = bool(kwargs.get("quiet"))
    return RunOptions(jobs=kwargs.get("jobs") or None, backend=kwargs.get("backend") or "local",
                      scheduler=kwargs.get("scheduler"), overwrite=bool(kwargs.get("overwrite")),
                      manifest=kwargs.get("manifest"), preview=bool(kwargs.get("preview")),
                      progress=not quiet, summary=not quiet)


def run_dataset(src: str, dst: str, reader_names: tuple[str, ...] | None, kwargs: dict[str, Any]) -> int:
    """Build the option objects from parsed CLI values and convert the dataset; returns the exit code."""
    from ..batch import UnitJob
    from ..batch.dataset import convert_dataset

    job = UnitJob(fmt=kwargs.get("fmt") or "nii.gz", read_options=read_options_from(kwargs),
                  write_options=write_options_from(kwargs), preprocessing=preprocessing_from(kwargs))
    return convert_dataset(src, dst, reader_names=reader_names or None, job=job, options=run_options_from(kwargs),
                           template=kwargs.get("name"), dry_run=bool(kwargs.get("dry_run")))


def dataset_arguments(default_format: str = "nii.gz") -> Callable:
    """SRC and DST plus every option of a dataset command (format, batch, reader policy, preprocessing)."""
    return _compose(click.argument("src", type=click.Path(exists=True)),
                    click.argument("dst", type=click.Path(file_okay=False)),
                    format_option(default_format), batch_options, reader_options, transform_options)
