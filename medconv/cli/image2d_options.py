"""Option groups of 2D images and PET: the values of DICOM radiographs, SUV, resizing and bounding boxes.

* ``radiograph_input(default)`` (heading "Input: DICOM radiographs"): ``--voi``,
  ``--voi-index``, ``--voi-bits`` fill ``ReadOptions.voi`` / ``voi_bits``. The
  default differs per command: ``dcm2png`` shows the file's VOI (8-bit display
  values), ``tcia2nii`` and ``convert`` keep the modality values (lossless).
* ``pet_input`` ("Input: PET"): ``--pet suv|sul`` fills ``ReadOptions.pet``.
* ``colour_input`` ("Input: colour images"): ``--rgb-to-gray`` fills ``ReadOptions.rgb_to_gray``
  (PNG, JPEG, BMP, GIF and TIFF colour becomes one grey channel).
* ``image2d_output`` ("2D images: size and boxes"): ``--size``, ``--keep-aspect``,
  ``--size-filter`` fill ``DatasetOptions.resize`` (a
  :class:`~medconv.transforms.resize2d.Resize2D`, run after the other
  preprocessing); ``--boxes``, ``--box-id-column``, ``--box-columns`` fill
  ``DatasetOptions.boxes`` (a :class:`~medconv.transforms.box_export.BoxSource`),
  which the dataset run turns into ``DST/boxes.csv``.

Values are checked while parsing (``click.BadParameter``, exit code 2); the
library types are imported only then, so ``--help`` stays fast.
"""

from __future__ import annotations

from typing import Any, Mapping

import click

from .options import OptionGroup, Target

#: ``--box-id-column``'s default (:data:`medconv.transforms.resize2d.BOX_ID_COLUMN`; not imported, so that
#: ``--help`` stays fast).
BOX_ID_COLUMN = "patientId"
#: ``--keep-aspect`` and ``--size-filter`` defaults: given without ``--size`` they are a usage error.
KEEP_ASPECT_DEFAULT = "yes"
SIZE_FILTER_DEFAULT = "linear"

#: ``--voi`` words and what they mean (docs/2d.md); a ``LEVEL,WIDTH`` pair is your own window.
VOI_MODES = {
    "modality": "no VOI: the modality values, lossless (MONOCHROME1 inverted by bit depth)",
    "file": "the file's VOI LUT, else its window, else the image's min..max",
    "window": "the file's window (WindowCenter/Width) only",
    "lut": "the file's VOI LUT Sequence only",
    "min-max": "the image's own min..max",
    "full": "the whole modality range, linearly",
}


def _parse_voi(ctx: click.Context, param: click.Parameter, value: str | None):
    if value is None:
        return None
    text = value.strip().lower()
    if text in VOI_MODES:
        return text
    parts = text.split(",")
    try:
        level, width = (float(part) for part in parts)
    except ValueError:
        raise click.BadParameter(f"{value!r}: use one of {', '.join(VOI_MODES)}, or LEVEL,WIDTH (e.g. 2048,4096)")
    if not width >= 1:
        raise click.BadParameter(f"{value!r}: a window needs a width of at least 1")
    return (level, width)


def _voi_choice(mode: Any, index: int | None):
    """The ``ReadOptions.voi`` value of ``--voi MODE`` and ``--voi-index N`` (1-based)."""
    if index is not None and mode not in ("file", "window", "lut"):
        raise click.BadParameter("--voi-index picks one of the file's windows or VOI LUTs: give --voi file, "
                                 "window or lut with it", param_hint="--voi-index")
    position = (index or 1) - 1
    if mode == "modality":
        return None  # the default: the greyscale pipeline is not imported for it
    from ..readers.dicom.greyscale import VoiChoice, VoiKind, Window

    if isinstance(mode, tuple):
        return VoiChoice(VoiKind.WINDOW, window=Window(*mode))
    kind = {"file": VoiKind.FILE, "window": VoiKind.FILE_WINDOW, "lut": VoiKind.FILE_LUT,
            "min-max": VoiKind.MIN_MAX, "full": VoiKind.NONE}[mode]
    return VoiChoice(kind, index=position)


def radiograph_input(default_voi: str = "modality") -> OptionGroup:
    """The "Input: DICOM radiographs" group, with ``default_voi`` (a :data:`VOI_MODES` word) as ``--voi``'s default."""

    def fields(values: Mapping[str, Any]):
        return {Target.READ: {"voi": _voi_choice(values["voi"], values["voi_index"]),
                              "voi_bits": int(values["voi_bits"])}}

    return OptionGroup(
        "Input: DICOM radiographs",
        click.option("--voi", default=default_voi, show_default=True, metavar="MODE|L,W", callback=_parse_voi,
                     help="Values of 2D DICOM images (CR, DX, MG, XA ...): modality (lossless, no VOI), file (its "
                          "VOI LUT, else window, else min..max), window, lut, min-max, full, or LEVEL,WIDTH "
                          "(docs/2d.md). CT/MR volumes are not affected (use --window)."),
        click.option("--voi-index", type=click.IntRange(min=1), default=None, metavar="N",
                     help="Which of the file's windows or VOI LUTs (1 = the first) [default: 1]."),
        click.option("--voi-bits", type=click.Choice(("8", "16")), default="8", show_default=True,
                     help="Depth of the values after a VOI: 8 (uint8, an 8-bit PNG) or 16 (uint16)."),
        fields=fields,
    )


def _pet_fields(values: Mapping[str, Any]):
    return {Target.READ: {"pet": values["pet"]}}


pet_input = OptionGroup(
    "Input: PET",
    click.option("--pet", type=click.Choice(("suv", "sul")), default=None,
                 help="Convert PET activity (Bq/ml) to SUVbw (suv) or SUL, lean body mass (sul), float32; a unit "
                      "whose header lacks the dose, times or weight fails naming the tag [default: keep Bq/ml]."),
    fields=_pet_fields,
)


colour_input = OptionGroup(
    "Input: colour images",
    click.option("--rgb-to-gray", is_flag=True,
                 help="PNG, JPEG, BMP, GIF and TIFF colour becomes one grey channel (ITU-R BT.601 luma, "
                      "0.299 R + 0.587 G + 0.114 B) [default: colour kept as channels, the 4th axis]."),
    fields=lambda values: {Target.READ: {"rgb_to_gray": values["rgb_to_gray"]}},
)


def _parse_size(ctx: click.Context, param: click.Parameter, value: str | None):
    if value is None:
        return None
    from ..errors import MedconvError
    from ..transforms.resize2d import parse_size

    try:
        return parse_size(value)
    except MedconvError as exc:
        raise click.BadParameter(exc.one_line()) from None


def _parse_box_columns(ctx: click.Context, param: click.Parameter, value: str | None):
    if value is None:
        return None
    names = tuple(part.strip() for part in value.split(","))
    if len(names) != 4 or not all(names):
        raise click.BadParameter(f"{value!r}: name four columns, X,Y,WIDTH,HEIGHT (e.g. x,y,width,height)")
    return names


def _image2d_fields(values: Mapping[str, Any]):
    from ..errors import MedconvError

    size, boxes = values["size"], values["boxes"]
    resize = boxes_source = None
    if size is None and (values["keep_aspect"] != KEEP_ASPECT_DEFAULT or values["size_filter"] != SIZE_FILTER_DEFAULT):
        raise click.BadParameter("--keep-aspect and --size-filter only apply to --size", param_hint="--size")
    if size is not None:
        from ..transforms.resize2d import Resize2D

        resize = Resize2D(size, keep_aspect=values["keep_aspect"] == KEEP_ASPECT_DEFAULT,
                          interpolation=values["size_filter"])
    if boxes is not None:
        from ..transforms.box_export import BoxSource
        from ..transforms.resize2d import BOX_COLUMNS

        boxes_source = BoxSource(boxes, values["box_id_column"], values["box_columns"] or BOX_COLUMNS)
        try:
            boxes_source.check()
        except MedconvError as exc:
            raise click.BadParameter(exc.one_line(), param_hint="--boxes") from None
    elif values["box_columns"] or values["box_id_column"] != BOX_ID_COLUMN:
        raise click.BadParameter("--box-id-column and --box-columns describe the --boxes table", param_hint="--boxes")
    return {Target.DATASET: {"resize": resize, "boxes": boxes_source}}


image2d_output = OptionGroup(
    "2D images: size and boxes",
    click.option("--size", metavar="N|WxH", callback=_parse_size,
                 help="Resize 2D images to N x N (aspect kept, padded, the frame in the sidecar) or W x H. "
                      "Label masks use nearest neighbour."),
    click.option("--keep-aspect", type=click.Choice(("yes", "no")), default=KEEP_ASPECT_DEFAULT, show_default=True,
                 help="With --size WxH: no stretches each axis to its size instead of padding."),
    click.option("--size-filter", type=click.Choice(("linear", "cubic", "lanczos", "area", "nearest")),
                 default=SIZE_FILTER_DEFAULT, show_default=True,
                 help="Resampling filter of --size for intensity images."),
    click.option("--boxes", type=click.Path(exists=True, dir_okay=False), metavar="CSV",
                 help="Bounding boxes (RSNA's patientId,x,y,width,height,...) to move into the outputs' frames: "
                      "written to DST/boxes.csv with an output column; rows on no converted image go to "
                      "DST/boxes-unmatched.csv."),
    click.option("--box-id-column", default=BOX_ID_COLUMN, show_default=True, metavar="NAME",
                 help="The --boxes column naming each row's image (its file name, with or without suffix)."),
    click.option("--box-columns", metavar="X,Y,W,H", callback=_parse_box_columns,
                 help="The --boxes columns of the top-left corner, width and height [default: x,y,width,height]."),
    fields=_image2d_fields,
)
