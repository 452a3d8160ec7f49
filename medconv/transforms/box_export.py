"""Bounding boxes of a whole run: a box table (RSNA's ``stage_2_train_labels.csv``) moved into the outputs' frames.

After a batch has converted (or, on a rerun, skipped) its 2D images, :func:`export_boxes`
writes **one** CSV next to the outputs, ``DST/boxes.csv``: every row of the input
table whose image was converted, its box rescaled into that image's output frame
(``meta["resize"]`` of the output's sidecar, as :class:`~.resize2d.Resize2D`
recorded it; an image that was not resized keeps its box), every other column as
it was, and a last column ``output`` naming the output file the box is on.

**Which image a row is on**: its id (the ``--box-id-column``, ``patientId`` by
default) equals the source file's name, with or without its suffix
(``00436515-870c-4b36-a041-de91049b9ab4`` is ``00436515-870c-4b36-a041-de91049b9ab4.dcm``;
NIH's ``Image Index`` ``00013118_008.png`` is the file itself). Rows nothing
matches (the image failed, was excluded, or is not under SRC), and rows whose id
names several images (two ``1-1.dcm`` in different folders), are never dropped
and never guessed: they go to ``DST/boxes-unmatched.csv`` with a ``reason`` column.

The batch stays format-blind: this reads only the manifest and the sidecars.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass
from typing import Optional

from ..errors import UsageError
from .resize2d import BOX_COLUMNS, BOX_ID_COLUMN, BoxRow, ResizeFrame, read_box_csv, rescale_box_rows, write_box_csv

__all__ = ["BoxSource", "BoxExport", "export_boxes", "image_ids", "BOXES_NAME", "UNMATCHED_NAME"]

#: The file written next to the outputs.
BOXES_NAME = "boxes.csv"
#: The rows no output (or several) matched, with why.
UNMATCHED_NAME = "boxes-unmatched.csv"
#: The column added to every row: the output file (relative to DST) the box is on.
OUTPUT_COLUMN = "output"
REASON_COLUMN = "reason"

#: Suffixes left out when a file name is an image id (longest first).
ID_SUFFIXES = (".dcm.gz", ".nii.gz", ".dicom", ".dcm", ".ima", ".png", ".jpeg", ".jpg", ".bmp", ".gif", ".tiff",
               ".tif")


@dataclass(frozen=True)
class BoxSource:
    """A box table to carry into a run's outputs: the CSV, its image-id column and its four box columns."""

    path: str
    id_column: str = BOX_ID_COLUMN
    box_columns: tuple[str, str, str, str] = BOX_COLUMNS

    def check(self) -> None:
        """Read the table once now, so that a missing column is a usage error before anything runs."""
        read_box_csv(self.path, self.id_column, self.box_columns)


@dataclass(frozen=True)
class BoxExport:
    """What :func:`export_boxes` wrote."""

    path: str
    rows: int
    images: int
    unmatched_path: Optional[str] = None
    unmatched_rows: int = 0

    def summary(self) -> str:
        """One line for the end of a run."""
        text = f"boxes: {self.rows} row(s) on {self.images} image(s) -> {self.path}"
        if self.unmatched_rows:
            text += f"; {self.unmatched_rows} row(s) on no converted image -> {self.unmatched_path}"
        return text


def image_ids(path: str) -> tuple[str, ...]:
    """The ids a box table may use for the image of ``path``: its file name, and that name without its suffix."""
    name = os.path.basename(path)
    lower = name.lower()
    for suffix in ID_SUFFIXES:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name, name[: -len(suffix)]
    return (name,)


def _converted_images(dest: str, manifest_jsonl: str, suffix: str) -> dict[str, list[tuple[str, Optional[ResizeFrame]]]]:
    """``{image id: [(output relative to dest, its resize frame or None)]}`` of every 2D output of the run."""
    from ..batch.manifest import WITH_OUTPUT, read_manifest, rows_by_unit
    from ..writers.sidecar import sidecar_path

    images: dict[str, list[tuple[str, Optional[ResizeFrame]]]] = defaultdict(list)
    for row in rows_by_unit(read_manifest(manifest_jsonl)).values():
        output = row.get("output") or ""
        if row.get("status") not in WITH_OUTPUT or not output.endswith(suffix):
            continue
        side = sidecar_path(os.path.join(dest, *output.split("/")), suffix)
        try:
            with open(side, encoding="utf-8") as handle:
                meta = json.load(handle).get("meta") or {}
        except (OSError, ValueError):
            continue
        files = meta.get("source_files") or []
        if len(files) != 1:  # a series of files is not one 2D image
            continue
        frame = ResizeFrame.from_meta(meta["resize"]) if meta.get("resize") else None
        for key in image_ids(files[0]):
            images[key].append((output, frame))
    return images


def export_boxes(source: BoxSource, dest: str, manifest_jsonl: str, suffix: str) -> BoxExport:
    """Write ``dest/boxes.csv`` (and ``boxes-unmatched.csv`` when needed) for a finished run (module notes).

    ``manifest_jsonl`` is the run's JSON Lines manifest, ``suffix`` its outputs'
    suffix (``.png``). Raises :class:`~medconv.errors.UsageError` or
    :class:`~medconv.errors.UnreadableFileError` for a table that cannot be read.
    """
    table = read_box_csv(source.path, source.id_column, source.box_columns)
    if OUTPUT_COLUMN in table.columns:
        raise UsageError(f"the box table already has a column {OUTPUT_COLUMN!r}", source.path,
                         "rename it: medconv adds that column to name each box's output")
    images = _converted_images(dest, manifest_jsonl, suffix)
    moved: list[BoxRow] = []
    unmatched: list[BoxRow] = []
    on_images: set[str] = set()
    for row in table.rows:
        found = images.get(row.image_id, [])
        outputs = sorted({output for output, _ in found})
        if len(outputs) != 1:
            why = "no converted image of that name" if not outputs else \
                f"{len(outputs)} images of that name: {', '.join(outputs[:3])}"
            unmatched.append(BoxRow(row.image_id, row.box, row.values + (why,)))
            continue
        output, frame = found[0]
        (placed,) = rescale_box_rows([row], frame, table) if frame is not None else (row,)
        moved.append(BoxRow(placed.image_id, placed.box, placed.values + (output,)))
        on_images.add(output)
    path = write_box_csv(os.path.join(dest, BOXES_NAME), table.columns + (OUTPUT_COLUMN,), moved)
    unmatched_path = os.path.join(dest, UNMATCHED_NAME)
    if unmatched:
        write_box_csv(unmatched_path, table.columns + (REASON_COLUMN,), unmatched)
    elif os.path.exists(unmatched_path):  # an earlier run's list would no longer be true
        os.remove(unmatched_path)
    return BoxExport(path, len(moved), len(on_images), unmatched_path if unmatched else None, len(unmatched))
