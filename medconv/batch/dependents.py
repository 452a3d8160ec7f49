"""An annotation unit's row waits for its image unit's: masks stand only beside an image this run converted or kept.

An annotation unit reads its image's grid from the image's headers alone, so it can
succeed while the image unit itself fails (a truncated slice, a fault found only in
the pixels). Its masks would then lie beside no image. The units still run side by
side; only the recording of an annotation unit's row waits until its image unit's
row is known, and so does the row of an annotation unit a rerun skips (its masks
exist from an earlier run) while its image unit is redone. The masks stay when the
image stands after the run (:func:`image_stands`): its row is ``converted`` or
``skipped``, or it failed but an earlier output made from the same files with the
same options is still there (an ``--overwrite`` rerun that failed leaves it), on
whose grid the masks lie. Otherwise the annotation's files are removed
(:func:`~.outputs.withdraw_unit_outputs`), those of this run or of the earlier one
alike, and its row fails, naming the image unit and why it failed.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

from ..errors import AnnotationReferenceError
from .manifest import WITH_OUTPUT, Status
from .outputs import withdraw_unit_outputs
from .plan import PlannedUnit
from .unit import base_row

#: Statuses of an image unit's row beside which its annotation units' masks may stand.
IMAGE_KEPT_STATUSES = WITH_OUTPUT
#: Statuses of an annotation unit's row whose masks are on disk (written now, or by an earlier run).
MASKS_WRITTEN_STATUSES = WITH_OUTPUT


def image_stands(image: PlannedUnit | None, image_row: dict[str, Any],
                 fingerprint: Callable[[PlannedUnit], str]) -> bool:
    """Whether an image output on whose grid its annotations' masks lie stands after this run.

    Its row is converted or skipped; or it failed, but an earlier output of this unit,
    made from the same files with the options of this run (``fingerprint``), is still
    complete (a failed ``--overwrite`` rerun keeps it): masks drawn for this run lie on its grid.
    """
    if image_row.get("status") in IMAGE_KEPT_STATUSES:
        return True
    return image is not None and image.existing_output(fingerprint(image)) == "done"


class ImageGate:
    """Orders the recording of rows so that each annotation unit's row follows its image unit's.

    Feed it every row of the run (those known before converting first, in plan order, then
    the converted ones as they come); :meth:`rows` gives back the rows to record now.

    Parameters
    ----------
    units:
        Every unit of the plan.
    fingerprint:
        The job fingerprint of a unit in this run (:func:`.unit.unit_fingerprint`), to tell
        an image's earlier output made as this run would make it.
    preview_dir:
        The run's preview folder (``--preview``), whose pictures of withdrawn units go too.
    """

    def __init__(self, units: Sequence[PlannedUnit], fingerprint: Callable[[PlannedUnit], str],
                 preview_dir: str | None = None):
        self._preview_dir = preview_dir
        self._fingerprint = fingerprint
        self._units = {unit.id: unit for unit in units}
        self._image_of = {unit.id: unit.source.annotates for unit in units if unit.source.annotates}
        self._image_rows: dict[str, dict[str, Any]] = {}
        self._waiting: dict[str, list[dict[str, Any]]] = {}

    def rows(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        """The rows to record now that ``row`` came in (none while an annotation's image is still running)."""
        unit_id = row["unit_id"]
        image = self._image_of.get(unit_id)
        if image is None:  # an image unit (or any other): it goes first, then what waited for it
            self._image_rows[unit_id] = row
            return [row] + [self._checked(waiting, row) for waiting in self._waiting.pop(unit_id, ())]
        if image in self._image_rows:
            return [self._checked(row, self._image_rows[image])]
        if image in self._units:
            self._waiting.setdefault(image, []).append(row)
            return []
        return [row]  # its image unit is not in this run's plan: nothing to wait for

    def held(self) -> Iterator[dict[str, Any]]:
        """The rows still waiting (their image unit gave no row: the run was interrupted), as they came."""
        for rows in self._waiting.values():
            yield from rows
        self._waiting.clear()

    def _checked(self, row: dict[str, Any], image_row: dict[str, Any]) -> dict[str, Any]:
        if row.get("status") not in MASKS_WRITTEN_STATUSES or image_stands(
                self._units.get(image_row["unit_id"]), image_row, self._fingerprint):
            return row
        unit = self._units[row["unit_id"]]
        withdraw_unit_outputs(unit, self._preview_dir)
        why = image_row.get("reason") or image_row.get("status")
        earlier = " (written by an earlier run)" if row.get("status") == Status.SKIPPED else ""
        error = AnnotationReferenceError(f"its image unit {image_row['unit_id']} was not converted ({why})",
                                         path=unit.source.path,
                                         hint=f"none of its masks{earlier} are kept; fix the image, then rerun the "
                                              "same command")
        failed = base_row(unit)
        failed.update(status=Status.FAILED, reason=error.one_line(), error_type=error.code, output="",
                      seconds=row.get("seconds", 0.0))
        return failed
