"""The preprocessing option group of every converting command, and the object built from it.

``@transform_options`` (an :class:`~medconv.cli.options.OptionGroup`, heading
"Preprocessing") adds ``--orient --spacing --like --interpolation --fill
--antialias/--no-antialias --window --clip --scale --normalize --dtype``; each value is
checked when parsed (a bad one is a ``click.BadParameter`` naming the option),
and :func:`preprocessing_from_cli` turns them into one frozen
:class:`~medconv.transforms.Preprocessing` (``None`` when nothing was asked).
The steps run in the fixed order reorient -> resample -> window/clip/normalize -> cast.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import click

from ..errors import MedconvError
from .options import OptionGroup, Target
from ..preprocessing_names import DTYPES, SCALES, WINDOW_PRESETS

__all__ = ["transform_options", "preprocessing_from_cli", "TRANSFORM_KEYS"]

#: the keyword names these options give the command function.
TRANSFORM_KEYS = ("orient", "spacing", "like", "interpolation", "fill", "antialias", "window", "clip", "scale",
                  "normalize", "dtype")


def _checked(parser: Callable[[str], Any]) -> Callable:
    """A click callback running ``parser`` on the value; its UsageError becomes BadParameter."""

    def callback(ctx: click.Context, param: click.Parameter, value):
        if value is None:
            return None
        try:
            parser(value)
        except MedconvError as exc:
            raise click.BadParameter(exc.one_line(), ctx=ctx, param=param) from None
        return value

    return callback


def _parse(name: str, *extra: Any) -> Callable[[str], Any]:
    def run(value: str):
        from ..transforms import parse  # lazy: keeps --help fast

        return getattr(parse, name)(value, *extra)

    return run


def _orient(value: str):
    from ..transforms.orientation import validate_axis_codes

    return validate_axis_codes(value)


_PRESETS = ", ".join(WINDOW_PRESETS)  # their values: docs/preprocessing.md

def _preprocessing_fields(values: dict[str, Any]):
    return {Target.DATASET: {"preprocessing": preprocessing_from_cli(**values)}}


_OPTIONS = (
    click.option("--orient", metavar="CODES", callback=_checked(_orient),
                 help="Reorient to these axis codes (nibabel's 'to' letters: RAS, LPS, LAS ...); flips and "
                      "permutes voxels, never interpolates."),
    click.option("--spacing", metavar="S|SX,SY,SZ", callback=_checked(_parse("parse_spacing")),
                 help="Resample to this spacing in mm: one value or three; 'keep' keeps an axis, e.g. 0.7,0.7,keep."),
    click.option("--like", metavar="PATH", type=click.Path(exists=True, dir_okay=False),
                 help="Resample onto this image's grid (shape, spacing, origin, direction). Not with --spacing."),
    click.option("--interpolation", metavar="linear|bspline|nearest", callback=_checked(_parse("parse_interpolation")),
                 help="Interpolation for intensity images [default: linear]. Label maps always use nearest."),
    click.option("--fill", metavar="VALUE", callback=_checked(_parse("parse_number", "fill")),
                 help="Value outside the input when resampling [default: -1024 for CT, else 0; labels 0]."),
    click.option("--antialias/--no-antialias", default=True, show_default=True,
                 help="Smooth intensity images along downsampled axes."),
    click.option("--window", metavar="PRESET|L,W|dicom", callback=_checked(_parse("parse_window")),
                 help=f"Clip to a window [L-W/2, L+W/2] in HU: a preset ({_PRESETS}), LEVEL,WIDTH, or 'dicom' "
                      "(the series' own). Never applied to labels."),
    click.option("--clip", metavar="MIN,MAX", callback=_checked(_parse("parse_range", "clip")),
                 help="Clip values to [MIN, MAX], e.g. -1000,400 (then --scale). Not with --window or --normalize."),
    click.option("--scale", type=click.Choice(SCALES, case_sensitive=False), default=None,
                 help="After --window/--clip/--normalize percentile: none keeps the values, unit gives float32 "
                      "in [0, 1], uint8 0-255 [default: none; unit for percentile]."),
    click.option("--normalize", metavar="zscore|percentile[:LO,HI]", callback=_checked(_parse("parse_normalize")),
                 help="MR normalisation: zscore (over voxels above the mean, float32) or percentile clipping "
                      "(default 0.5,99.5, then --scale)."),
    click.option("--dtype", type=click.Choice(DTYPES, case_sensitive=False), default=None,
                 help="Cast the result (last step); floats are rounded, out-of-range values are an error."),
)


#: Adds the preprocessing options to a command (keywords in :data:`TRANSFORM_KEYS`).
transform_options = OptionGroup("Preprocessing (applied in order: reorient, resample, intensity, cast)", *_OPTIONS,
                                fields=_preprocessing_fields)


def preprocessing_from_cli(**kwargs: Any) -> Optional["Preprocessing"]:  # noqa: F821
    """The :class:`~medconv.transforms.Preprocessing` the options ask for, or ``None`` if none.

    Accepts the keywords of :data:`TRANSFORM_KEYS` (others are ignored, so a command
    can pass all of its keywords). Options that do not fit together raise
    ``click.BadParameter`` naming the option; a ``--like`` image is read here, once.
    """
    values = {key: kwargs.get(key) for key in TRANSFORM_KEYS}
    if all(value is None for key, value in values.items() if key != "antialias"):
        # no step asked (--antialias alone changes nothing): the transforms are never imported
        return None
    from ..transforms import Preprocessing

    values["antialias"] = True if values["antialias"] is None else bool(values["antialias"])
    try:
        preprocessing = Preprocessing.from_options(**values)
    except MedconvError as exc:
        message = exc.one_line()
        named = [(message.find(f"--{key}"), f"--{key}") for key in TRANSFORM_KEYS if f"--{key}" in message]
        hint = min(named)[1] if named else None
        raise click.BadParameter(message, param_hint=hint) from None
    return None if preprocessing.is_identity else preprocessing
