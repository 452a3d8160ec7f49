"""An annotation unit's row waits for its image unit's: masks stand only beside an image this run converted or kept.

An annotation unit reads its image's grid from the image's headers alone, so it can
succeed while the image unit itself fails (a truncated slice, a fault found only in
the pixels). Its masks would then lie beside no image. The units still run side by
side; only the recording of an annotation unit's row waits until its image unit's
row is known. When that row is not ``converted`` or ``skipped``, the annotation's
files are removed again (:func:`~.outputs.withdraw_unit_outputs`) and its row fails,
naming the image unit and why it failed.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence

from ..errors import AnnotationReferenceError
from .manifest import WITH_OUTPUT, Status
from .outputs import withdraw_unit_outputs
from .plan import PlannedUnit
from .unit import base_row

#: Statuses of an image unit's row beside which its annotation units' masks may stand.
IMAGE_KEPT_STATUSES = WITH_OUTPUT


class ImageGate:
    """Orders the recording of rows so that each annotation unit's row follows its image unit's.

    Parameters
    ----------
    todo:
        The units this run converts, in any order.
    known:
        Rows recorded before they run (skipped or planned failures), by unit id.
    preview_dir:
        The run's preview folder (``--preview``), whose pictures of withdrawn units go too.
    """

    def __init__(self, todo: Sequence[PlannedUnit], known: Mapping[str, dict[str, Any]],
                 preview_dir: str | None = None):
        self._preview_dir = preview_dir
        self._units = {unit.id: unit for unit in todo}
        self._image_of = {unit.id: unit.source.annotates for unit in todo if unit.source.annotates}
        self._image_rows: dict[str, dict[str, Any]] = dict(known)
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
        if row.get("status") != Status.CONVERTED or image_row.get("status") in IMAGE_KEPT_STATUSES:
            return row
        unit = self._units[row["unit_id"]]
        withdraw_unit_outputs(unit, self._preview_dir)
        why = image_row.get("reason") or image_row.get("status")
        error = AnnotationReferenceError(f"its image unit {image_row['unit_id']} was not converted ({why})",
                                         path=unit.source.path,
                                         hint="none of its masks are kept; fix the image, then rerun the same command")
        failed = base_row(unit)
        failed.update(status=Status.FAILED, reason=error.one_line(), error_type=error.code, output="",
                      seconds=row.get("seconds", 0.0))
        return failed
