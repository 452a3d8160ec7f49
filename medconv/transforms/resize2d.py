"""Resizing 2D images to a training size, and moving bounding boxes with them.

``Resize2D(size=(512, 512))`` (``--size 512``) keeps the aspect ratio: the image
is scaled by ``min(512 / columns, 512 / rows)`` and padded to 512 x 512, centred
(the odd pixel of padding goes right / bottom). ``keep_aspect=False``
(``--size 512x512 --keep-aspect no``) stretches each axis to its own size.

Coordinates are **pixel edges**, as in Pillow and in box annotations: the
input's column edge ``x`` (0 at the left edge of the first column, ``columns``
at the right edge of the last) lands at ``x * scale_x + offset_x`` in the
output, and the same for rows. :class:`ResizeFrame` holds that mapping; it is
recorded in ``meta["resize"]`` and maps bounding boxes (:func:`rescale_box`).
The geometry follows: spacing grows by ``1 / scale``, the origin moves to the
new first pixel's centre, so the output lies exactly over the input in world
space (padding included).

* **Intensities**: Pillow's resampling filters (antialiased when shrinking:
  the filter widens with the scale). ``linear`` (the default) never leaves the
  input's value range, so an integer image keeps its dtype exactly (values
  rounded); ``cubic`` and ``lanczos`` are sharper but overshoot (results are
  clipped to the dtype's range); ``area`` averages the covered pixels (box
  filter); ``nearest`` copies. 8-bit grey and 8-bit RGB(A) are resized by Pillow
  as they are; every other type through float32 and back.
* **Labels** always use nearest neighbour (the output pixel takes the label of
  the input pixel under its centre); values never change.
* **Padding** takes ``fill`` (default 0; labels 0).

Boxes come from a CSV (RSNA Pneumonia's ``patientId,x,y,width,height,Target``);
rows without a box (``Target = 0``) pass through with empty coordinates, and
every other column is kept. :func:`write_box_csv` writes them next to the outputs.
"""

from __future__ import annotations

import csv
import enum
import math
import os
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np

from ..atomic import atomic_output
from ..errors import NotApplicableError, UnreadableFileError, UsageError
from ..volume import Volume

__all__ = ["Interpolation", "ResizeFrame", "Resize2D", "ThenResize", "with_resize", "parse_size", "Box", "BoxRow",
           "BoxTable", "read_box_csv", "rescale_box", "rescale_box_rows", "write_box_csv", "BOX_COLUMNS",
           "BOX_ID_COLUMN"]


class Interpolation(str, enum.Enum):
    """How intensity images are resampled (labels are always ``NEAREST``)."""

    NEAREST = "nearest"
    LINEAR = "linear"
    CUBIC = "cubic"
    LANCZOS = "lanczos"
    AREA = "area"


def _pillow_filter(interpolation: Interpolation) -> int:
    from PIL import Image

    return {Interpolation.LINEAR: Image.Resampling.BILINEAR, Interpolation.CUBIC: Image.Resampling.BICUBIC,
            Interpolation.LANCZOS: Image.Resampling.LANCZOS, Interpolation.AREA: Image.Resampling.BOX,
            Interpolation.NEAREST: Image.Resampling.NEAREST}[interpolation]


def parse_size(text: str | int | Sequence[int]) -> tuple[int, int]:
    """``"512"`` -> ``(512, 512)``; ``"640x480"`` -> ``(640, 480)`` (columns x rows, like image tools)."""
    if isinstance(text, int):
        parts = [str(text)]
    elif isinstance(text, (tuple, list)):
        parts = [str(p) for p in text]
    else:
        parts = [p.strip() for p in str(text).lower().replace("*", "x").split("x")]
    if len(parts) == 1:
        parts = parts * 2
    hint = "give one size in pixels (e.g. 512) or COLUMNSxROWS (e.g. 512x384)"
    if len(parts) != 2:
        raise UsageError(f"size {text!r} needs one or two values", hint=hint)
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise UsageError(f"size {text!r} is not a whole number of pixels", hint=hint) from None
    if min(values) < 1:
        raise UsageError(f"size {text!r} must be at least 1 pixel", hint=hint)
    return values  # type: ignore[return-value]


@dataclass(frozen=True)
class ResizeFrame:
    """Where a resize put the input: ``x_out = x_in * scale[0] + offset[0]`` (pixel edges), same for ``y``.

    Attributes
    ----------
    input_size, output_size:
        ``(columns, rows)`` before and after.
    scale:
        ``(x, y)`` output pixels per input pixel.
    offset:
        ``(x, y)`` output position of the input's top-left corner (the left and
        top padding for one resize).
    padding:
        ``(left, top, right, bottom)`` pixels of fill around the image.
    """

    input_size: tuple[int, int]
    output_size: tuple[int, int]
    scale: tuple[float, float]
    offset: tuple[float, float] = (0.0, 0.0)
    padding: tuple[float, float, float, float] = (0, 0, 0, 0)

    def to_output(self, x: float, y: float) -> tuple[float, float]:
        """The output position of input position ``(x, y)`` (pixel-edge coordinates)."""
        return x * self.scale[0] + self.offset[0], y * self.scale[1] + self.offset[1]

    def then(self, later: "ResizeFrame") -> "ResizeFrame":
        """This resize followed by ``later`` as one mapping from the original input."""
        scale = (self.scale[0] * later.scale[0], self.scale[1] * later.scale[1])
        offset = (self.offset[0] * later.scale[0] + later.offset[0], self.offset[1] * later.scale[1] + later.offset[1])
        left, top = offset
        right = later.output_size[0] - (left + self.input_size[0] * scale[0])
        bottom = later.output_size[1] - (top + self.input_size[1] * scale[1])
        return ResizeFrame(self.input_size, later.output_size, scale, offset, (left, top, right, bottom))

    def as_meta(self) -> dict[str, Any]:
        """The JSON form stored in ``meta["resize"]``."""
        return {"input_size": list(self.input_size), "output_size": list(self.output_size),
                "scale": list(self.scale), "offset": list(self.offset), "padding": list(self.padding)}

    @classmethod
    def from_meta(cls, value: Mapping[str, Any]) -> "ResizeFrame":
        """The frame recorded in ``meta["resize"]`` (as :meth:`as_meta` wrote it)."""
        return cls(tuple(value["input_size"]), tuple(value["output_size"]), tuple(value["scale"]),
                   tuple(value["offset"]), tuple(value["padding"]))


def plan_frame(columns: int, rows: int, size: tuple[int, int], keep_aspect: bool) -> ResizeFrame:
    """The frame that fits a ``columns x rows`` image into ``size`` (module notes)."""
    width, height = size
    if not keep_aspect:
        return ResizeFrame((columns, rows), (width, height), (width / columns, height / rows))
    factor = min(width / columns, height / rows)
    new_columns = min(width, max(1, int(math.floor(columns * factor + 0.5))))
    new_rows = min(height, max(1, int(math.floor(rows * factor + 0.5))))
    left, top = (width - new_columns) // 2, (height - new_rows) // 2
    return ResizeFrame((columns, rows), (width, height), (new_columns / columns, new_rows / rows),
                       (float(left), float(top)), (left, top, width - new_columns - left, height - new_rows - top))


def _nearest(plane: np.ndarray, new_columns: int, new_rows: int) -> np.ndarray:
    """Nearest neighbour: each output pixel takes the input pixel under its centre (exact for any dtype)."""
    rows, columns = plane.shape[:2]
    x = np.minimum(((np.arange(new_columns) + 0.5) * (columns / new_columns)).astype(np.intp), columns - 1)
    y = np.minimum(((np.arange(new_rows) + 0.5) * (rows / new_rows)).astype(np.intp), rows - 1)
    return plane[y[:, np.newaxis], x[np.newaxis, :]]


def _resized(plane: np.ndarray, new_columns: int, new_rows: int, interpolation: Interpolation) -> np.ndarray:
    """``plane`` (rows, columns[, channels]) resampled to ``new_rows x new_columns``, in its dtype (floats: float32)."""
    from PIL import Image

    if interpolation is Interpolation.NEAREST:
        return _nearest(plane, new_columns, new_rows)
    pillow_filter = _pillow_filter(interpolation)
    size = (new_columns, new_rows)
    if plane.dtype == np.uint8 and (plane.ndim == 2 or plane.shape[2] in (3, 4)):
        return np.asarray(Image.fromarray(np.ascontiguousarray(plane)).resize(size, pillow_filter))
    if plane.ndim == 3:
        return np.stack([_resized(plane[..., c], new_columns, new_rows, interpolation)
                         for c in range(plane.shape[2])], axis=-1)
    floats = np.asarray(Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32)).resize(size, pillow_filter))
    if plane.dtype.kind in "iub":
        info = np.iinfo(plane.dtype) if plane.dtype.kind != "b" else np.iinfo(np.uint8)
        return np.clip(np.floor(floats + 0.5), info.min, info.max).astype(plane.dtype)
    return floats


@dataclass(frozen=True)
class Resize2D:
    """Resize a 2D image (grey or colour) to ``size``; calling it on a Volume returns the resized Volume.

    Parameters
    ----------
    size:
        ``(columns, rows)`` of the output (``parse_size`` reads ``"512"`` or ``"512x384"``).
    keep_aspect:
        Scale both axes alike and pad (default), or stretch each axis to its size.
    interpolation:
        For intensity images (:class:`Interpolation`); labels always use nearest.
    fill:
        Value of the padding for intensity images (labels: 0).
    """

    size: tuple[int, int]
    keep_aspect: bool = True
    interpolation: Interpolation = Interpolation.LINEAR
    fill: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "size", parse_size(self.size))
        try:
            object.__setattr__(self, "interpolation", Interpolation(self.interpolation))
        except ValueError:
            known = ", ".join(i.value for i in Interpolation)
            raise UsageError(f"unknown interpolation {self.interpolation!r}", hint=f"use one of {known}") from None

    def describe(self) -> dict[str, Any]:
        """The choices as JSON values, for manifests and fingerprints."""
        return {"size": list(self.size), "keep_aspect": self.keep_aspect, "interpolation": self.interpolation.value,
                "fill": self.fill}

    def frame_for(self, columns: int, rows: int) -> ResizeFrame:
        """Where this resize puts a ``columns x rows`` image."""
        return plan_frame(columns, rows, self.size, self.keep_aspect)

    def __call__(self, volume: Volume) -> Volume:
        array = volume.array
        if array.ndim >= 3 and array.shape[2] != 1:
            source = (volume.meta.get("source_files") or [None])[0]
            raise NotApplicableError(f"--size resizes 2D images; this volume has {array.shape[2]} slices", source,
                                     "resample volumes with --spacing instead")
        plane = array.T if array.ndim == 2 else (array[:, :, 0].T if array.ndim == 3 else
                                                  array[:, :, 0, :].transpose(1, 0, 2))
        rows, columns = plane.shape[:2]
        frame = self.frame_for(columns, rows)
        new_columns = int(round(frame.scale[0] * columns))
        new_rows = int(round(frame.scale[1] * rows))
        label = volume.kind == "label"
        interpolation = Interpolation.NEAREST if label else self.interpolation
        resized = _resized(plane, new_columns, new_rows, interpolation)
        width, height = frame.output_size
        left, top = int(frame.offset[0]), int(frame.offset[1])
        out = np.full((height, width) + plane.shape[2:], 0 if label else self.fill, dtype=resized.dtype)
        out[top : top + new_rows, left : left + new_columns] = resized
        view = out.T if array.ndim == 2 else (out.T[:, :, np.newaxis] if array.ndim == 3 else
                                               out.transpose(1, 0, 2)[:, :, np.newaxis, :])
        spacing = (volume.spacing[0] / frame.scale[0], volume.spacing[1] / frame.scale[1], volume.spacing[2])
        # continuous input index of the output's first pixel centre, per axis
        first = [((0.5 - frame.offset[n]) / frame.scale[n]) - 0.5 for n in (0, 1)]
        shift = volume.direction @ np.array([first[0] * volume.spacing[0], first[1] * volume.spacing[1], 0.0])
        origin = tuple(np.asarray(volume.origin) + shift)
        previous = volume.meta.get("resize")
        recorded = ResizeFrame.from_meta(previous).then(frame) if previous else frame
        meta = {**volume.meta, "resize": recorded.as_meta()}
        fitted = "aspect kept, padded" if self.keep_aspect else "stretched"
        step = (f"resize {columns}x{rows} -> {width}x{height} ({fitted}, "
                f"scale {frame.scale[0]:.6g} x {frame.scale[1]:.6g}, padding {frame.padding}, {interpolation.value})")
        return volume.with_step(step, array=view, spacing=spacing, origin=origin, meta=meta)


@dataclass(frozen=True)
class ThenResize:
    """Other preprocessing (``before``: a :class:`~medconv.transforms.Preprocessing` or ``None``), then a
    :class:`Resize2D`: the per-unit transform of ``--size`` in a batch (frozen, picklable)."""

    resize: Resize2D
    before: Optional[Any] = None

    def __call__(self, volume: Volume) -> Volume:
        if self.before is not None:
            volume = self.before(volume)
        return self.resize(volume)

    def describe(self) -> dict[str, Any]:
        """The steps as JSON values (the batch's fingerprint of a unit's options)."""
        before = self.before.describe() if hasattr(self.before, "describe") else repr(self.before)
        return {"preprocessing": before if self.before is not None else None, "resize": self.resize.describe()}


def with_resize(before: Optional[Any], resize: Optional[Resize2D]) -> Optional[Any]:
    """The transform that runs ``before`` and then ``resize`` (either may be ``None``)."""
    return before if resize is None else ThenResize(resize, before)


# -- bounding boxes -----------------------------------------------------------------------

#: The box columns of RSNA Pneumonia's labels CSV: top-left corner, width and height in pixels.
BOX_COLUMNS = ("x", "y", "width", "height")
#: The column of RSNA Pneumonia's labels CSV naming each row's image (the default ``--box-id-column``).
BOX_ID_COLUMN = "patientId"


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixel-edge coordinates: top-left ``(x, y)``, ``width`` x ``height``."""

    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class BoxRow:
    """One row of a box table: the image it is on, its box (``None`` when the row has none), every column's text."""

    image_id: str
    box: Optional[Box]
    values: tuple[str, ...]


@dataclass(frozen=True)
class BoxTable:
    """A box CSV: its columns (in file order), which hold the image id and the box, and its rows."""

    columns: tuple[str, ...]
    id_column: str
    box_columns: tuple[str, str, str, str] = BOX_COLUMNS
    rows: tuple[BoxRow, ...] = field(default=(), repr=False)

    def for_image(self, image_id: str) -> list[BoxRow]:
        """The rows of one image, in file order."""
        return [row for row in self.rows if row.image_id == image_id]


def read_box_csv(path: str | os.PathLike, id_column: str = BOX_ID_COLUMN,
                 box_columns: tuple[str, str, str, str] = BOX_COLUMNS) -> BoxTable:
    """Read a box table. Rows whose four box cells are all empty have no box; half-filled rows are an error."""
    path = os.fspath(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            columns = tuple(next(reader, ()))
            missing = [name for name in (id_column, *box_columns) if name not in columns]
            if missing:
                raise UsageError(f"the box table has no column {', '.join(map(repr, missing))} "
                                 f"(columns: {', '.join(columns)})", path,
                                 "name its columns: --box-id-column NAME --box-columns X,Y,WIDTH,HEIGHT")
            where = [columns.index(name) for name in (id_column, *box_columns)]
            rows = []
            for line, values in enumerate(reader, start=2):
                if not values:
                    continue
                values = tuple(values) + ("",) * (len(columns) - len(values))
                cells = [values[index].strip() for index in where[1:]]
                box = None
                if any(cells):
                    try:
                        box = Box(*(float(cell) for cell in cells))
                    except ValueError:
                        raise UnreadableFileError(f"line {line}: box {cells} is not four numbers", path) from None
                rows.append(BoxRow(values[where[0]].strip(), box, values))
    except OSError as exc:
        raise UnreadableFileError(f"cannot read the box table ({exc})", path) from exc
    return BoxTable(columns, id_column, box_columns, tuple(rows))


def rescale_box(box: Box, frame: ResizeFrame) -> Box:
    """``box`` in the output frame of a resize."""
    x, y = frame.to_output(box.x, box.y)
    return Box(x, y, box.width * frame.scale[0], box.height * frame.scale[1])


def rescale_box_rows(rows: Iterable[BoxRow], frame: ResizeFrame, table: BoxTable) -> list[BoxRow]:
    """The rows with their boxes (and box cells) moved into ``frame``'s output; rows without a box unchanged."""
    where = [table.columns.index(name) for name in table.box_columns]
    moved = []
    for row in rows:
        if row.box is None:
            moved.append(row)
            continue
        box = rescale_box(row.box, frame)
        values = list(row.values)
        for index, number in zip(where, (box.x, box.y, box.width, box.height)):
            values[index] = _number_text(number)
        moved.append(replace(row, box=box, values=tuple(values)))
    return moved


def _number_text(value: float) -> str:
    """A coordinate as short text: 4 decimals at most, no trailing zeros (``128``, ``85.3333``)."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def write_box_csv(path: str | os.PathLike, columns: Sequence[str], rows: Iterable[BoxRow],
                  overwrite: bool = True) -> str:
    """Write ``rows`` under ``columns`` to ``path`` atomically; returns the path."""
    path = os.fspath(path)
    with atomic_output(path, overwrite=overwrite) as temp:
        with open(temp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            for row in rows:
                writer.writerow(row.values)
    return path
