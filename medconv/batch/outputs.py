"""Writing a unit that makes several files (a reader's ``read_outputs``): volumes, tables, then its record.

The files are named after the unit's planned output: ``<name><suffix><format suffix>``
for each volume (with its own sidecar), ``<name><suffix>.csv`` for each table. The
unit's **record** goes last to its planned sidecar path ``<name>.json``: the files it
wrote (``meta["outputs"]``, names relative to the record's folder), its source files
and job fingerprint (what a rerun checks to resume), and the reader's facts about the
unit. When a unit is redone (``--overwrite``), the files its earlier record listed and
this run no longer makes (another ``--masks`` layout) are removed. A volume whose
suffix is ``""`` *is* ``<name>.<format>``; its sidecar is then the record itself (its
volume description plus those facts). Every file is written atomically; if one fails,
the files this unit already wrote are removed again, so a failed unit leaves nothing
behind and a rerun starts it afresh. :func:`withdraw_unit_outputs` removes a written
unit's files after the fact (an annotation unit whose image unit failed: :mod:`.dependents`).

Labels get the same preprocessing as any volume: the steps that move voxels (reorient,
resample) treat a label map with nearest neighbour and the intensity steps leave it
alone (:mod:`medconv.transforms`), so a mask stays on its image's grid.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from dataclasses import replace
from typing import Any

from .._version import __version__
from ..atomic import atomic_output
from ..outputs import UnitOutputs
from ..registry import writer_for_format
from .manifest import Status
from .plan import RECORD_OUTPUTS, PlannedUnit, _sidecar_meta, record_outputs

#: gzip-style compression level used for label volumes when none is asked for: label maps are mostly
#: background, where ISA-L's level 1 is both faster and smaller than the CT default (level 3): on a
#: 512x512x200 uint8 mask, 14 ms and 51 KB against 196 ms and 178 KB (scripts/bench_annotations.py).
LABEL_COMPRESSION_LEVEL = 1


def _stem(unit: PlannedUnit, suffix: str) -> str:
    """The unit's output path without its format suffix."""
    return unit.output[: len(unit.output) - len(suffix)] if suffix and unit.output.endswith(suffix) else unit.output


def _write_table(path: str, columns, rows) -> None:
    with atomic_output(path, overwrite=True) as temp:
        with open(temp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)


def _write_record(path: str, record: dict) -> None:
    with atomic_output(path, overwrite=True) as temp:
        with open(temp, "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=2, allow_nan=False)
            handle.write("\n")


def write_unit_outputs(unit: PlannedUnit, job, outputs: UnitOutputs, fingerprint: str) -> dict[str, Any]:
    """Write every file of ``outputs`` for ``unit``; returns the manifest fields of the converted row."""
    from ..writers.sidecar import to_jsonable, volume_description

    writer, suffix = writer_for_format(job.fmt)
    stem = _stem(unit, suffix)
    folder = os.path.dirname(stem)
    earlier = record_outputs(_sidecar_meta(unit.sidecar)) if unit.sidecar and os.path.isfile(unit.sidecar) else None
    write_options = job.write_options
    written: list[str] = []
    primary = None
    first = None
    warnings = list(outputs.warnings)
    try:
        for named in outputs.volumes:
            volume = named.volume
            if job.preprocessing is not None:
                volume = job.preprocessing(volume)
            volume = volume.replace(meta={**volume.meta, "job": fingerprint})
            options = write_options
            if volume.kind == "label" and options.compression_level is None:
                options = replace(options, compression_level=LABEL_COMPRESSION_LEVEL)
            own_sidecar = unit.sidecar is not None and named.suffix != ""
            path = stem + named.suffix + suffix
            written.extend(writer.write(volume, path, replace(options, sidecar=own_sidecar)))
            warnings.extend(w for w in volume.warnings if w not in warnings)
            first = first or volume
            if named.suffix == "":
                primary = volume
        for table in outputs.tables:
            path = stem + table.suffix + ".csv"
            _write_table(path, table.columns, table.rows)
            written.append(path)
        names = [os.path.relpath(path, folder).replace(os.sep, "/") for path in written]
        if unit.sidecar is not None:
            facts = {"source_files": list(unit.source.paths), "job": fingerprint, RECORD_OUTPUTS: names,
                     **outputs.record}
            if primary is not None:
                record = volume_description(primary)
                record["meta"] = {**record["meta"], **to_jsonable(facts)}
            else:
                record = {"medconv_version": __version__, "meta": to_jsonable(facts)}
            _write_record(unit.sidecar, record)
            written.append(unit.sidecar)
    except BaseException:
        for path in written:  # a unit that failed leaves none of its files behind
            with contextlib.suppress(OSError):
                os.remove(path)
        raise
    for name in set(earlier or ()) - set(names):  # what the earlier run of this unit wrote, no longer made (--overwrite)
        with contextlib.suppress(OSError):
            os.remove(os.path.join(folder, *name.split("/")))
    dest = os.path.dirname(unit.output[: len(unit.output) - len(unit.relative)]) if unit.relative else folder
    relative = [os.path.relpath(path, dest).replace(os.sep, "/") for path in written]
    row: dict[str, Any] = {"status": Status.CONVERTED, "output": relative, "warnings": warnings}
    if first is not None:
        row.update(shape=list(first.shape), spacing=[round(s, 6) for s in first.spacing], dtype=str(first.array.dtype),
                   kind=first.kind, history=list(first.history))
        if job.preview_dir:  # the first volume's picture, under the unit's own name (the preview index lists it)
            try:
                from ..preview import write_unit_preview

                write_unit_preview(first, os.path.join(job.preview_dir, *unit.relative.split("/")))
            except Exception as exc:  # a picture is a convenience: never fail the unit over it
                row["warnings"] = warnings + [f"preview not written: {type(exc).__name__}: {exc}"]
    return row


def withdraw_unit_outputs(unit: PlannedUnit, preview_dir: str | None = None) -> None:
    """Remove every file a written unit's record lists, then the record (and its preview, when ``preview_dir``):
    the unit leaves nothing behind.

    For a unit whose files were written but must not stand (an annotation unit whose
    image unit failed, :mod:`.dependents`); a file already gone is no error.
    """
    if preview_dir and unit.relative:
        from ..preview import remove_unit_preview

        remove_unit_preview(os.path.join(preview_dir, *unit.relative.split("/")))
    if unit.sidecar is None:
        return
    folder = os.path.dirname(unit.sidecar)
    for name in record_outputs(_sidecar_meta(unit.sidecar)) or ():
        with contextlib.suppress(OSError):
            os.remove(os.path.join(folder, *name.split("/")))
    with contextlib.suppress(OSError):
        os.remove(unit.sidecar)
