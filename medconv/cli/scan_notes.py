"""What ``medconv scan`` says will happen to a unit: one note from its exclusion, error and geometry flags.

Every flagged unit gets a note. The first that applies wins: the reader's
exclusion or read error (the unit will be excluded or fail), a geometry error
(it will fail, and why), then one consequence per flag in :data:`FLAG_NOTES`
(joined with ``; ``). A flag not listed here still gets a note naming it, so a
new reader flag is never shown without one.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..source import InfoKey

#: Flag -> what converting the unit will do about it (with the default options).
FLAG_NOTES: dict[str, str] = {
    "tilt": "gantry tilt: will be resampled onto an orthogonal grid (--on-tilt error refuses it)",
    "uneven": "uneven slice spacing: will be resampled onto a regular grid (--on-uneven error refuses it)",
    "gap": "missing slices: will be resampled onto a regular grid, a gap over ten slices fails "
           "(--on-uneven error refuses it)",
    "duplicate": "slices repeat positions: will fail unless they form a 4D series",
    "corrupt-slice": "a truncated or corrupt slice: the series will fail, naming the file",
    "no-series-uid": "SeriesInstanceUID blank: grouped by folder, frame of reference, orientation and matrix",
    "single-slice": "one slice: converted as a one-slice volume, slice step from SliceThickness (else 1 mm)",
    "2d": "a 2D image: excluded unless --include-2d",
    "localizer": "a localizer: excluded",
    "non_image": "not an image: excluded",
    "multiframe": "multi-frame: its frames become the slices",
    "mosaic": "Siemens mosaic: its tiles become the slices",
    "rgb": "colour: channels kept as a 4th axis",
    "4d": "4D: written as one 4D volume",
    "label": "a label map: written as integers, resampled nearest-neighbour",
}

#: Flags a 4D grouping writes, as a prefix (``"4D over echo (2 volumes)"``).
FOUR_D_PREFIX = "4D over "


def flag_note(flag: str) -> str:
    """The consequence of one flag."""
    if flag in FLAG_NOTES:
        return FLAG_NOTES[flag]
    if flag.startswith(FOUR_D_PREFIX):
        return f"{flag}: written as one 4D volume"
    return f"flagged {flag!r} by its reader: see the warnings in the manifest after converting"


def annotation_note(info: Mapping[str, Any]) -> str:
    """``annotates <image unit> (series-uid, 3 ROI(s), 41 contour(s))``: an annotation unit and its pairing.

    The counts are named for the object's kind (a SEG's segments and frames:
    :data:`~medconv.readers.annotations.model.COUNT_NOUNS`).
    """
    from ..readers.annotations.model import COUNT_NOUNS, AnnotationKind

    item, part = COUNT_NOUNS[AnnotationKind(info[InfoKey.ANNOTATION_KIND])]
    facts = [str(info[InfoKey.PAIRING])] if info.get(InfoKey.PAIRING) else []
    if info.get(InfoKey.ROI_NAMES) is not None:
        facts.append(f"{len(info[InfoKey.ROI_NAMES])} {item}(s)")
    if info.get(InfoKey.CONTOURS) is not None:
        facts.append(f"{info[InfoKey.CONTOURS]} {part}(s)")
    return f"annotates {info[InfoKey.ANNOTATES]}" + (f" ({', '.join(facts)})" if facts else "")


def unit_note(info: Mapping[str, Any], flags: list[str]) -> str:
    """The note of one unit: why it will be excluded or fail, else what each flag will mean."""
    for key, prefix in ((InfoKey.EXCLUDED, "excluded: "), (InfoKey.UNREADABLE, "will fail: "),
                        (InfoKey.ERROR, "will fail: ")):
        if info.get(key):
            return prefix + str(info[key])
    if info.get(InfoKey.ANNOTATES):
        return annotation_note(info)
    if info.get("reason"):
        return str(info["reason"])
    if "geometry-error" in flags:
        return "will fail: " + str(info.get(InfoKey.GEOMETRY_ERROR) or "the slice geometry is inconsistent")
    return "; ".join(flag_note(flag) for flag in flags)
