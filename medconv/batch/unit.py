"""Converting one unit inside a worker: read, preprocess, write, and return a small result row.

This is the only code that runs in worker processes. It returns a dict of a few
hundred bytes (never the Volume), so the parent's memory does not grow with the
data. Failures are sorted here:

* :class:`~medconv.errors.NotAVolumeError` -> ``excluded`` (an RTSTRUCT, a localizer ...);
* any other :class:`~medconv.errors.MedconvError` -> ``failed`` with its one-line reason;
* anything else is a bug in medconv -> ``failed`` with ``error_type="internal"`` and
  the traceback, which the parent writes to the log file.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import traceback
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

from .._version import __version__
from ..errors import MedconvError, NotAVolumeError
from ..options import ReadOptions, WriteOptions
from .plan import PlannedUnit, source_location


@dataclass(frozen=True)
class UnitJob:
    """Everything a worker needs besides the unit; frozen and picklable.

    Parameters
    ----------
    fmt:
        Output format (``nii.gz``, ``nii``, ``npz``).
    read_options, write_options:
        Passed to the reader and writer as they are (the runner sets ``overwrite``).
    preprocessing:
        A picklable callable ``Volume -> Volume`` (e.g.
        ``medconv.transforms.pipeline.Preprocessing``) or ``None``.
    preview_dir:
        Folder for preview pictures, or ``None`` for none.
    converter:
        What runs each unit in the worker: a picklable callable ``(unit, job) -> manifest row``
        (with a ``describe()`` for the fingerprint); ``None`` is :func:`convert_unit`. A unit
        that writes several files (an exported training case) brings its own.
    """

    fmt: str = "nii.gz"
    read_options: ReadOptions = ReadOptions()
    write_options: WriteOptions = WriteOptions()
    preprocessing: Optional[Callable[[Any], Any]] = None
    preview_dir: Optional[str] = None
    converter: Optional[Callable[[PlannedUnit, "UnitJob"], dict]] = None


def unit_fingerprint(unit: PlannedUnit, job: UnitJob) -> str:
    """A short hash of what makes this unit's output: its files, reader, format and options.

    Recorded in the sidecar (``meta["job"]``) so that a rerun can tell its own
    finished output from one made of other files or with other options. Threads
    and other settings that do not change the result are left out.
    """
    preprocessing = job.preprocessing
    steps = preprocessing.describe() if hasattr(preprocessing, "describe") else repr(preprocessing)
    facts = [sorted(os.path.abspath(p) for p in unit.source.paths), unit.source.reader,
             unit.source.info.get("frame_group"), job.fmt, repr(job.read_options), steps]
    if job.converter is not None:
        facts.append(job.converter.describe() if hasattr(job.converter, "describe") else repr(job.converter))
    return hashlib.sha256(json.dumps(facts, default=str).encode()).hexdigest()[:16]


def base_row(unit: PlannedUnit) -> dict[str, Any]:
    """The manifest fields known before the unit runs."""
    return {
        "unit_id": unit.id,
        "source": source_location(unit.source),
        "reader": unit.source.reader,
        "files": len(unit.source.paths),
        "output": unit.relative,
        "medconv_version": __version__,
        "reason": "",
    }


def run_unit(unit: PlannedUnit, job: UnitJob) -> dict[str, Any]:
    """Run one unit with the job's converter (default :func:`convert_unit`); returns its manifest row."""
    return (job.converter or convert_unit)(unit, job)


def convert_unit(unit: PlannedUnit, job: UnitJob) -> dict[str, Any]:
    """Convert one unit and return its manifest row (see :mod:`medconv.batch.manifest`)."""
    from ..registry import readers, writer_for_format

    start = time.perf_counter()
    row = base_row(unit)
    try:
        volume = readers.get(unit.source.reader).read(unit.source, job.read_options)
        if job.preprocessing is not None:
            volume = job.preprocessing(volume)
        volume = volume.replace(meta={**volume.meta, "job": unit_fingerprint(unit, job)})
        writer, _ = writer_for_format(job.fmt)
        write_options = replace(job.write_options, sidecar=unit.sidecar is not None)
        writer.write(volume, unit.output, write_options)
        row.update(status="converted", shape=list(volume.shape), spacing=[round(s, 6) for s in volume.spacing],
                   dtype=str(volume.array.dtype), kind=volume.kind, warnings=list(volume.warnings),
                   history=list(volume.history))
        if job.preview_dir:
            row.update(_preview(volume, unit, job.preview_dir))
    except NotAVolumeError as exc:
        row.update(status="excluded", reason=exc.one_line(), error_type=exc.code)
    except MedconvError as exc:
        row.update(status="failed", reason=exc.one_line(), error_type=exc.code)
    except Exception as exc:  # a bug in medconv (or a plugin): recorded, the batch goes on
        row.update(status="failed", reason=f"internal error: {type(exc).__name__}: {exc}", error_type="internal",
                   traceback=traceback.format_exc())
    if row.get("status") != "converted":
        row["output"] = ""  # nothing was written
    row["seconds"] = round(time.perf_counter() - start, 3)
    return row


def _preview(volume, unit: PlannedUnit, preview_dir: str) -> dict[str, Any]:
    """Write the unit's preview; a failure here is a warning, never a failed unit."""
    try:
        from ..preview import write_unit_preview

        write_unit_preview(volume, os.path.join(preview_dir, *unit.relative.split("/")))
        return {}
    except Exception as exc:  # the output itself is fine
        return {"warnings": list(volume.warnings) + [f"preview not written: {type(exc).__name__}: {exc}"]}
