"""Exporting one case inside a worker: read, check grids, preprocess, labels follow, remap, write, record.

A failure is one line (the manifest's reason; the summary prefixes the case id):
the file concerned, what is wrong, what to do.

The batch runner sees a case as one unit (:class:`CaseUnit`) and runs it with
:class:`CaseExporter` (``UnitJob.converter``). For each case:

1. every unit is read once, channels as images and the label map as a label map
   (pairing knows which is which: no name or content heuristic decides);
2. the channels must be on the first channel's grid and the label map on it too,
   within nnU-Net's tolerances (:mod:`.grids`); otherwise the case fails with the
   difference, or, with ``on_grid_mismatch="resample"``, the odd one is resampled
   onto that grid on purpose (nearest neighbour for the label map) with a warning;
3. the images get the preprocessing (reorient, resample, intensity, cast); the
   label map follows onto exactly the grid the first image ends on, with nearest
   neighbour, and takes its geometry bit for bit;
4. label values are mapped onto the dataset's label table (values it does not
   cover fail the case), by name when the map is named by its own table (an
   annotation's ``meta["labels"]``, read with it: :class:`~.cases.LabelNaming`);
5. nothing is written until all of that succeeded; then the files are written
   (each atomically), then the case record (``medconv-cases/<case>.json``, the
   unit's sidecar: what a rerun checks to resume, and the statistics the summary
   uses). A case that fails leaves none of its files behind.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
import traceback
from dataclasses import dataclass
from typing import Any, Literal, Optional

import numpy as np

from .._version import __version__
from ..batch.manifest import Status
from ..batch.plan import PlannedUnit
from ..batch.unit import UnitJob, base_row, unit_fingerprint
from ..errors import GeometryError, MedconvError
from ..transforms.resample import Grid, resample_to_grid
from ..volume import Volume
from .annotation_maps import read_annotation_map
from .cases import Case, Channel, LabelNaming, LabelSource, Unpaired
from .formats.base import CaseFiles, Layout, write_json
from .grids import describe_differences, grid_differences
from .labelmap import LabelTable, value_counts
from .stats import case_statistics
from .survey import own_label_table

GridPolicy = Literal["error", "resample"]
#: Folder (inside the dataset folder) holding one record per exported case.
RECORDS_DIR = "medconv-cases"
#: Reader name of a case unit in the manifest.
CASE_READER = "case"


@dataclass(frozen=True)
class CaseUnit(PlannedUnit):
    """A planned case (or a pairing problem reported as a manifest row).

    Attributes
    ----------
    case:
        The case to export (``None`` for a problem row).
    files:
        Where its files go, relative to the dataset folder.
    problem:
        For a problem row: what pairing found (the unit fails or is excluded without work).
    """

    case: Optional[Case] = None
    files: Optional[CaseFiles] = None
    problem: Optional[Unpaired] = None

    def existing_output(self, fingerprint: str) -> Optional[str]:
        if self.problem is not None or self.case is None:
            return None  # a problem is reported again on every run
        return super().existing_output(case_fingerprint(fingerprint, self))


def case_fingerprint(job_fingerprint: str, unit: CaseUnit) -> str:
    """The job's fingerprint combined with what makes up the case (its units, channels and files)."""
    case = unit.case
    facts = [job_fingerprint, case.case_id, [(c.name, c.source.id, c.volume_index) for c in case.channels],
             [(label.source.id, sorted(label.names.items())) for label in case.labels], list(unit.files.files)]
    return hashlib.sha256(json.dumps(facts, default=str).encode()).hexdigest()[:16]


def record_path(dataset_dir: str, case_id: str) -> str:
    return os.path.join(dataset_dir, RECORDS_DIR, f"{case_id}.json")


@dataclass(frozen=True)
class CaseExporter:
    """Exports one case in a worker (``UnitJob.converter``); frozen and picklable.

    Attributes
    ----------
    layout:
        Where the files go.
    labels:
        The dataset's label table.
    on_grid_mismatch:
        ``"error"``: a channel or label map off the first channel's grid fails the case;
        ``"resample"``: it is resampled onto that grid (nearest for labels), with a warning.
    drawn_with:
        For a dataset whose label maps are annotation objects: the annotation options they
        are drawn with (``ReadOptions.annotations``: LIDC's consensus level, a SEG's
        threshold), so that they enter the cases' fingerprint and a rerun with another
        ``--consensus`` redoes, never resumes, those cases. ``""`` otherwise.
    """

    layout: Layout
    labels: LabelTable
    on_grid_mismatch: GridPolicy = "error"
    drawn_with: str = ""

    def describe(self) -> dict:
        described = {"layout": self.layout.describe(), "labels": self.labels.describe(),
                     "on_grid_mismatch": self.on_grid_mismatch}
        if self.drawn_with:  # only for annotated datasets: the others keep their fingerprints
            described["annotations"] = self.drawn_with
        return described

    def __call__(self, unit: CaseUnit, job: UnitJob) -> dict[str, Any]:
        start = time.perf_counter()
        row = base_row(unit)
        if unit.problem is not None:
            status = Status.FAILED if unit.problem.reason.is_error else Status.EXCLUDED
            row.update(status=status, reason=unit.problem.message, error_type=unit.problem.reason.value, output="",
                       seconds=0.0)
            return row
        dataset_dir = os.path.dirname(os.path.dirname(unit.sidecar))
        try:
            built = build_case(unit.case, job, self)
            outputs = write_case(built, unit.files, dataset_dir, job)
            record = {
                "medconv_version": __version__,
                "meta": {"source_files": list(unit.source.paths),
                         "job": case_fingerprint(unit_fingerprint(unit, job), unit)},
                "case": describe_case(unit.case),
                "files": {"images": list(unit.files.images), "label": unit.files.label, "stacked": unit.files.stacked},
                "outputs": outputs,
                "label_mapping": {str(k): v for k, v in built.mapping.items()},
                "stats": built.stats,
                "warnings": built.warnings,
                "history": built.history,
            }
            write_json(unit.sidecar, record)
            first = built.images[0]
            row.update(status=Status.CONVERTED, kind=CASE_READER, shape=list(first.shape),
                       spacing=[round(s, 6) for s in first.spacing], dtype=str(first.array.dtype),
                       warnings=built.warnings, history=built.history)
        except MedconvError as exc:
            remove_case_outputs(unit, dataset_dir)
            row.update(status=Status.FAILED, reason=exc.one_line(), error_type=exc.code, output="")
        except Exception as exc:  # a bug in medconv: recorded, the batch goes on
            remove_case_outputs(unit, dataset_dir)
            row.update(status=Status.FAILED, reason=f"internal error: {type(exc).__name__}: {exc}", error_type="internal",
                       traceback=traceback.format_exc(), output="")
        row["seconds"] = round(time.perf_counter() - start, 3)
        return row


@dataclass
class BuiltCase:
    """A case ready to write: its channel volumes and label map on one grid, and what was decided."""

    images: list[Volume]
    label: Optional[Volume]
    mapping: dict[int, int]
    stats: dict[str, Any]
    warnings: list[str]
    history: list[str]


def describe_case(case: Case) -> dict[str, Any]:
    """The case as JSON: its rule, channels and label map with their units and files."""
    return {
        "case_id": case.case_id, "rule": case.rule, "split": case.split.value,
        "channels": [{"name": c.name, "unit": c.source.id, "files": list(c.source.paths),
                      "volume_index": c.volume_index} for c in case.channels],
        "labels": [{"unit": label.source.id, "files": list(label.source.paths),
                    "names": {str(k): v for k, v in label.names.items()}} for label in case.labels],
    }


def _read(source, job: UnitJob, kind: str) -> Volume:
    from ..registry import readers

    options = dataclasses.replace(job.read_options, kind=kind)  # pairing knows the kind: no heuristic decides
    return readers.get(source.reader).read(source, options)


def _channel_volume(channel: Channel, volume: Volume) -> Volume:
    """The 3D volume of one channel (one index of a 4D unit's 4th axis, or a 3D unit)."""
    array = volume.array
    if channel.volume_index is None:
        if array.ndim == 4 and array.shape[3] == 1:
            array = array[..., 0]
        elif array.ndim == 4:
            raise GeometryError(f"channel {channel.name!r} is a 4D image of {array.shape[3]} volumes",
                                channel.source.path, "export one volume per channel, or name the channels with --pairs")
        meta = dict(volume.meta)
    else:
        if array.ndim != 4 or channel.volume_index >= array.shape[3]:
            held = array.shape[3] if array.ndim == 4 else 1
            raise GeometryError(f"channel {channel.name!r} is volume {channel.volume_index} but the "
                                f"image holds {held}", channel.source.path,
                                "fix the image or the dataset's channel list (dataset.json 'modality')")
        array = array[..., channel.volume_index]
        meta = {key: value for key, value in volume.meta.items() if key != "axis4"}
    return volume.replace(array=array, meta=meta)


def _onto_reference(volume: Volume, reference: Volume, what: str, policy: GridPolicy, warnings: list[str],
                    threads: int = 0) -> Volume:
    """``volume`` on ``reference``'s grid: snapped when within tolerance, else resampled (policy) or refused."""
    differences = grid_differences(reference, volume)
    if not differences:  # the same grid within nnU-Net's tolerances: take the reference's geometry exactly
        return volume.replace(spacing=reference.spacing, origin=reference.origin, direction=reference.direction)
    where = (volume.meta.get("source_files") or [None])[0]
    text = describe_differences(differences)
    if policy != "resample":
        raise GeometryError(f"the {what} is not on the image's grid ({text})", where,
                            "fix or re-register the file, or pass --on-grid-mismatch resample to resample it "
                            "onto the image grid (nearest neighbour for label maps)")
    how = "nearest neighbour" if volume.kind == "label" else "linear"
    warnings.append(f"{what} resampled onto the image grid ({how}) because it differed: {text}")
    return resample_to_grid(volume, Grid.of(reference), threads=threads)


def _no_nan(volume: Volume, what: str) -> None:
    if volume.array.dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(volume.array)))
        if bad:
            raise GeometryError(f"the {what} holds {bad} NaN or infinite voxel(s)",
                                (volume.meta.get("source_files") or [None])[0],
                                "replace them in the source image (nnU-Net refuses NaN)")


def follow_image(label: Volume, image_out: Volume, orient: Optional[str], threads: int = 0) -> Volume:
    """The label map (on the input image's grid) carried onto the grid the image was preprocessed onto.

    The same reorientation as the image (exact), then nearest-neighbour resampling
    onto the image's final grid (nothing to do when there was no resampling), then
    the image's geometry exactly.
    """
    from ..transforms.orientation import reorient

    if orient:
        label = reorient(label, orient)
    if grid_differences(image_out, label):
        label = resample_to_grid(label, Grid.of(image_out), threads=threads)
    if grid_differences(image_out, label):
        raise GeometryError("the label map did not land on the image grid (a bug in medconv)")
    return label.replace(spacing=image_out.spacing, origin=image_out.origin, direction=image_out.direction)


def _by_roi(label: LabelSource) -> bool:
    """Whether the map is an object's ROIs named by its own table (RTSTRUCT, SEG), composed of the table's ROIs."""
    return label.naming is LabelNaming.OWN_TABLE and not label.one_class


def build_case(case: Case, job: UnitJob, exporter: CaseExporter) -> BuiltCase:
    """Read and prepare every file of ``case`` (see the module notes); nothing is written."""
    warnings: list[str] = []
    volumes = {source.id: _read(source, job, "label" if any(label.source.id == source.id for label in case.labels)
                                else "intensity") for source in case.sources
               if case.label is None or source.id != case.label.source.id or not _by_roi(case.label)}
    if case.label is not None and _by_roi(case.label):  # only the ROIs the table names, each whole
        volumes[case.label.source.id] = read_annotation_map(case.label.source, job.read_options, exporter.labels)
    channels = [_channel_volume(channel, volumes[channel.source.id]) for channel in case.channels]
    reference = channels[0]
    for index, channel in enumerate(case.channels):
        if index:
            channels[index] = _onto_reference(channels[index], reference, f"channel {channel.name!r}",
                                              exporter.on_grid_mismatch, warnings, job.threads)
        _no_nan(channels[index], f"channel {channel.name!r}")
    label_in = None
    if case.label is not None:
        label_in = volumes[case.label.source.id]
        label_names = case.label.names_of(own_label_table(label_in.meta))
        if label_in.array.ndim == 4 and label_in.array.shape[3] == 1:
            label_in = label_in.replace(array=label_in.array[..., 0])
        if label_in.array.ndim != reference.array.ndim:
            raise GeometryError(f"the label map has shape {label_in.shape}, the image "
                                f"{reference.shape}", case.label.source.path, "give one 3D label map per case")
        label_in = _onto_reference(label_in, reference, "label map", exporter.on_grid_mismatch, warnings, job.threads)
    preprocessing = job.preprocessing
    images = [preprocessing(channel) if preprocessing is not None else channel for channel in channels]
    for index in range(1, len(images)):  # one grid for all channels, also after preprocessing
        images[index] = images[index].replace(spacing=images[0].spacing, origin=images[0].origin,
                                              direction=images[0].direction)
    label_out, mapping = None, {}
    if label_in is not None:
        followed = follow_image(label_in, images[0], getattr(preprocessing, "orient", None), job.threads)
        mapping = exporter.labels.mapping(label_names)
        try:
            mapped = exporter.labels.apply(followed.array, label_names)
        except MedconvError as exc:
            raise type(exc)(exc.message, case.label.source.path, exc.hint) from None
        label_out = followed.replace(array=mapped, meta={**followed.meta, "labels": [
            {"value": value, "name": name} for value, name in exporter.labels.names_by_value().items() if value]})
        warnings += [w for w in followed.warnings if w not in warnings]  # the reader's too: outlines not drawn ...
    for image in images:
        warnings += [w for w in image.warnings if w not in warnings]
    counts = value_counts(label_out.array, len(exporter.labels.all_classes)) if label_out is not None else None
    stats = case_statistics(images, [c.name for c in case.channels], label_out, counts)
    history = [f"{case.channels[0].name}: {step}" for step in images[0].history]
    if label_out is not None:
        history += [f"label: {step}" for step in label_out.history]
    return BuiltCase(images, label_out, mapping, stats, warnings, history)


def _stacked(images: list[Volume]) -> Volume:
    """All channels in one 4D volume (Decathlon, MONAI), or the one channel."""
    if len(images) == 1:
        return images[0]
    dtype = np.result_type(*[image.array.dtype for image in images])
    array = np.stack([image.array.astype(dtype, copy=False) for image in images], axis=3)
    return images[0].replace(array=array, meta={**images[0].meta, "axis4": "channel"})


def write_case(built: BuiltCase, files: CaseFiles, dataset_dir: str, job: UnitJob) -> list[str]:
    """Write the case's files (each atomically); on any failure remove what this call wrote."""
    from ..registry import writer_for_format

    writer, _ = writer_for_format("nii.gz")
    options = dataclasses.replace(job.write_options, sidecar=False, overwrite=True)
    items = [(_stacked(built.images), files.images[0])] if files.stacked else list(zip(built.images, files.images))
    if built.label is not None:
        items.append((built.label, files.label))
    written: list[str] = []
    try:
        for volume, relative in items:
            path = os.path.join(dataset_dir, *relative.split("/"))
            writer.write(volume, path, options)
            written.append(relative)
    except BaseException:
        for relative in written:
            _remove(os.path.join(dataset_dir, *relative.split("/")))
        raise
    return written


def remove_case_outputs(unit: CaseUnit, dataset_dir: str) -> None:
    """Remove a failed case's files (this layout's, and those an earlier record lists) and its record.

    The dataset folder then never holds a case this export did not produce.
    """
    relatives = set(unit.files.files) if unit.files else set()
    try:
        with open(unit.sidecar, encoding="utf-8") as handle:
            relatives |= set(json.load(handle).get("outputs") or [])
    except (OSError, ValueError, TypeError, AttributeError):
        pass
    for relative in relatives:
        _remove(os.path.join(dataset_dir, *str(relative).split("/")))
    _remove(unit.sidecar)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
