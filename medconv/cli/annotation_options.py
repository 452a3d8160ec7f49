"""The annotation option group: RTSTRUCT, DICOM SEG and LIDC-IDRI XML found beside their image series.

It fills ``ReadOptions.annotations`` with one frozen
:class:`~medconv.options.AnnotationOptions` (``None`` with ``--no-annotations``) and is
offered by the commands that discover DICOM (``tcia2nii``, ``convert``). The rules behind
each option: docs/annotations.md.
"""

from __future__ import annotations

from typing import Any, Mapping

import click

from ..errors import UsageError
from ..options import DEFAULT_CONSENSUS, DEFAULT_FRACTIONAL_THRESHOLD, AnnotationOptions, FractionalHandling, \
    MaskLayout
from .options import OptionGroup, Target

#: ``--fractional`` value that keeps a FRACTIONAL SEG's fractions as float32.
KEEP = FractionalHandling.KEEP.value


def _fraction(ctx: click.Context, param: click.Parameter, value: Any):
    """A number in (0, 1] (``--consensus``); refused while parsing otherwise."""
    if value is None:
        return None
    if not 0.0 < float(value) <= 1.0:
        raise click.BadParameter(f"{value:g} is not in (0, 1]: give a fraction such as 0.5")
    return float(value)


def _fractional(ctx: click.Context, param: click.Parameter, value: str):
    """``keep`` or a threshold in (0, 1] -> ``(KEEP, default)`` or ``(THRESHOLD, t)`` (:class:`FractionalHandling`)."""
    text = str(value).strip().lower()
    if text == KEEP:
        return FractionalHandling.KEEP, DEFAULT_FRACTIONAL_THRESHOLD
    try:
        threshold = float(text)
    except ValueError:
        raise click.BadParameter(f"{value!r}: give 'keep' or a threshold in (0, 1], e.g. 0.5") from None
    if not 0.0 < threshold <= 1.0:
        raise click.BadParameter(f"{value!r}: the threshold must be in (0, 1], e.g. 0.5")
    return FractionalHandling.THRESHOLD, threshold


def _annotation_fields(values: Mapping[str, Any]):
    if values["no_annotations"]:
        return {Target.READ: {"annotations": None}}
    handling, threshold = values["fractional"]
    if handling is FractionalHandling.KEEP and values["masks"] == MaskLayout.MAP.value:  # said with the flags
        raise click.BadParameter("--fractional keep needs --masks split or --masks stack: one label map cannot "
                                 "hold fractions")
    try:
        options = AnnotationOptions(masks=values["masks"], consensus=values["consensus"], fractional=handling,
                                    fractional_threshold=threshold)
    except UsageError as error:  # a combination that cannot be honoured (keep fractions in one label map)
        raise click.BadParameter(f"{error.message} ({error.hint})" if error.hint else error.message) from None
    return {Target.READ: {"annotations": options}}


annotation_options = OptionGroup(
    "Input: annotations",
    click.option("--no-annotations", "no_annotations", is_flag=True,
                 help="Exclude RTSTRUCT, DICOM SEG and LIDC-IDRI XML objects. By default each is paired with the "
                      "image series it references and its masks are written beside that image, on its grid."),
    click.option("--masks", type=click.Choice(tuple(layout.value for layout in MaskLayout)),
                 default=MaskLayout.MAP.value, show_default=True,
                 help="Per annotation object: one label map (overlaps: the smaller ROI wins, with a warning), one "
                      "0/1 mask per ROI, or one 4D one-hot stack (keeps overlaps)."),
    click.option("--consensus", type=float, default=DEFAULT_CONSENSUS, show_default=True, callback=_fraction,
                 metavar="FRACTION",
                 help="LIDC-IDRI: a voxel is in a nodule's consensus mask when at least this fraction of the "
                      "readers who marked that nodule include it (pylidc's clevel)."),
    click.option("--fractional", default=str(DEFAULT_FRACTIONAL_THRESHOLD), show_default=True,
                 callback=_fractional, metavar="T|keep",
                 help="FRACTIONAL DICOM SEG: a voxel is in a segment when its fraction is >= T, or 'keep' the "
                      "fractions as float32 (with --masks split or stack)."),
    fields=_annotation_fields,
)
