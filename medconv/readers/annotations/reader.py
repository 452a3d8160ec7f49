"""The annotation reader: reads an annotation unit (made by discovery) onto the grid of the image it annotates.

Registered as ``annotation`` (:data:`~.discovery.ANNOTATION_READER`). It finds nothing on
its own (:meth:`AnnotationReader.discover` yields nothing, :meth:`~AnnotationReader.sniff`
says no): annotation units come from the discovery of their image's reader, which pairs
them (:mod:`.discovery`), because a mask means nothing without its image. Reading one:

1. the unit's :class:`~.discovery.AnnotationPlan` says which image unit it annotates (or
   why none: that error is raised, so the unit fails alone);
2. the image unit's own reader gives its :class:`~medconv.image_reference.ImageReference`
   (the grid the image is written on, headers only: ``image_reference(image_source)``);
3. the object is read onto that grid (:func:`~medconv.readers.annotations.read_annotation`).

:meth:`~AnnotationReader.read_outputs` gives every output of the chosen layout (map /
split / stack; LIDC: consensus and per-reader maps) and the LIDC characteristics table,
named after the unit; :meth:`~AnnotationReader.read` gives the object's one label map
(LIDC: the consensus map), whatever the layout, for callers that want one Volume.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Iterator

from ...errors import AnnotationReferenceError, NotAVolumeError, UsageError
from ...options import AnnotationOptions, FractionalHandling, MaskLayout, ReadOptions
from ...outputs import NamedTable, NamedVolume, UnitOutputs
from ...source import Source

if TYPE_CHECKING:  # loading the registry's reader imports nothing heavy: the rest loads when a unit is read
    from ...image_reference import ImageReference
    from ...volume import Volume
    from .discovery import AnnotationPlan
    from .model import AnnotationResult

#: The registry name of this reader (also :data:`.discovery.ANNOTATION_READER`).
ANNOTATION_READER = "annotation"

#: The suffix of the LIDC characteristics table, after the unit's name (``<image>_lidc-characteristics.csv``).
CHARACTERISTICS_SUFFIX = "-characteristics"

#: Why an annotation unit is not read when annotations are off.
OFF_REASON = "annotations are off (--no-annotations): not read"


def reader_image_reference(image: Source) -> "ImageReference | None":
    """The ImageReference its own reader gives for the image unit ``image`` (headers only); ``None`` when that
    reader gives none. Raises the reader's typed error when the unit will not be converted."""
    from ...registry import readers

    reader = readers.get(image.reader)
    return reader.image_reference(image) if hasattr(reader, "image_reference") else None


def image_reference_of(image: Source) -> "ImageReference":
    """The ImageReference of an image unit, from its own reader (headers only).

    An image unit that will not be converted (excluded, or its geometry refused) makes
    the annotation fail with that reason: it is never drawn on another image.
    """
    from ...errors import MedconvError

    try:
        reference = reader_image_reference(image)
    except NotAVolumeError as error:
        raise AnnotationReferenceError(f"its image unit {image.id} is not converted ({error.message})",
                                       path=image.path,
                                       hint="the annotation fails with it: fix that image unit, then rerun") from None
    except MedconvError as error:
        raise type(error)(f"its image unit {image.id} cannot be read: {error.message}", path=error.path,
                          hint=error.hint) from None
    if reference is None:
        raise AnnotationReferenceError(f"its image unit {image.id} comes from the {image.reader} reader, which gives "
                                       "no image reference", path=image.path)
    return reference


def _plan(source: Source) -> "AnnotationPlan":
    from .discovery import AnnotationPlan

    if not isinstance(source.plan, AnnotationPlan):
        raise UsageError("an annotation unit is made by discovery (it needs the image unit it is drawn on)",
                         path=source.path, hint="use medconv.read_annotations(path, reference) for one file")
    return source.plan


def _annotation_options(options: ReadOptions) -> AnnotationOptions:
    if options.annotations is None:
        raise NotAVolumeError(OFF_REASON, hint="drop --no-annotations to write its masks")
    return options.annotations


def record_of(result: "AnnotationResult", plan: "AnnotationPlan") -> dict:
    """The JSON facts of an annotation unit's record: what it is, what it annotates, its labels and ROIs."""
    return {
        "annotation": {
            "kind": result.kind.value,
            "source": plan.path,
            "annotates": result.annotates,
            "pairing": plan.pairing.rule.value if plan.pairing is not None else "",
            "labels": [entry.as_meta() for entry in result.labels],
            "rois": [{"number": r.number, "name": r.name, "status": r.status.value, "value": r.value,
                      "voxels": r.voxels, "contours": len(r.contours), "reason": r.reason} for r in result.rois],
            "warnings": list(result.warnings),
        }
    }


class AnnotationReader:
    """RTSTRUCT, DICOM SEG and LIDC-IDRI XML units, each read onto its image's grid."""

    name = ANNOTATION_READER
    suffixes: tuple[str, ...] = ()

    def sniff(self, path: str) -> bool:
        """Always ``False``: an annotation file alone is not an image (its units come from discovery)."""
        return False

    def discover(self, root: str) -> Iterator[Source]:
        """Nothing: the image readers' discovery makes annotation units, paired with their images."""
        return iter(())

    def result(self, source: Source, options: ReadOptions = ReadOptions()) -> "AnnotationResult":
        """The annotation unit ``source`` read onto its image's grid (every output, reports, rows).

        A unit is drawn whole or not at all: an object with a ROI that cannot be drawn
        honestly (NaN or absurd coordinates) raises :class:`~medconv.errors.InvalidAnnotationError`
        naming it, so that no label map silently lacks a structure (the library call
        :func:`~medconv.readers.annotations.read_annotation` reports it and draws the others).
        """
        from . import read_annotation
        from ...errors import InvalidAnnotationError
        from .model import RoiStatus

        plan = _plan(source)
        annotation = _annotation_options(options)
        plan.raise_failure()
        result = read_annotation(plan.path, image_reference_of(plan.image), annotation)
        failed = [report for report in result.rois if report.status is RoiStatus.FAILED]
        if failed:
            what = "; ".join(f"ROI {report.name!r} (#{report.number}): {report.reason}" for report in failed)
            raise InvalidAnnotationError(f"{len(failed)} ROI(s) cannot be drawn: {what}", path=plan.path,
                                         hint="nothing of this object is written, so that no mask lacks a structure "
                                              "silently; fix or remove that ROI, or read the others with "
                                              "medconv.read_annotations")
        return result

    def read(self, source: Source, options: ReadOptions = ReadOptions()) -> "Volume":
        """The object's label map (LIDC: the consensus map), whatever ``masks`` layout the options ask for."""
        from .model import OutputRole

        annotation = _annotation_options(options)
        if annotation.masks is not MaskLayout.MAP:
            options = replace(options, annotations=replace(annotation, masks=MaskLayout.MAP,
                                                           fractional=FractionalHandling.THRESHOLD))
        result = self.result(source, options)
        for role in (OutputRole.CONSENSUS, OutputRole.MAP):
            for output in result.outputs:
                if output.role is role:
                    return output.volume
        raise AnnotationReferenceError("the annotation gave no label map", path=source.path)  # pragma: no cover

    def read_outputs(self, source: Source, options: ReadOptions = ReadOptions()) -> UnitOutputs:
        """Every output of the unit, named after it (``<image><object suffix><output part>``), and its table."""
        result = self.result(source, options)
        stem = result.name_suffix
        volumes = tuple(NamedVolume(output.suffix[len(stem):] if output.suffix.startswith(stem) else output.suffix,
                                    output.volume) for output in result.outputs)
        tables = ()
        if result.rows:
            from .lidc import ROW_COLUMNS

            tables = (NamedTable(CHARACTERISTICS_SUFFIX, ROW_COLUMNS, tuple(row.as_row() for row in result.rows)),)
        return UnitOutputs(volumes, tables, record_of(result, _plan(source)), tuple(result.warnings))


def read_annotations(annotation, reference=None, options: AnnotationOptions | None = None) -> "AnnotationResult":
    """An annotation object read onto its image's grid: label Volumes with their label table, and reports.

    Parameters
    ----------
    annotation:
        An RTSTRUCT, DICOM SEG or LIDC-IDRI XML file, or an annotation unit (a Source whose
        reader is ``annotation``, from :func:`medconv.discover`).
    reference:
        The image it is drawn on: an :class:`~medconv.image_reference.ImageReference`, an
        image unit (Source), or a path (a series folder or an image file). ``None``: the image
        units found beside the annotation (in its folder, else its parent folder) are paired
        with it by the rules of docs/annotations.md.
    options:
        :class:`~medconv.options.AnnotationOptions` (default: one label map, consensus 0.5).

    Unlike a batch, which writes an object whole or not at all, this returns every ROI it
    could draw, with a :class:`~.model.RoiReport` for each (``FAILED`` ones name the reason).
    """
    import os

    from . import read_annotation
    from ...image_reference import ImageReference

    options = options if options is not None else AnnotationOptions()
    if isinstance(annotation, Source):
        plan = _plan(annotation)
        plan.raise_failure()
        path, image = plan.path, plan.image
    else:
        path, image = os.fspath(annotation), None
    if isinstance(reference, ImageReference):
        return read_annotation(path, reference, options)
    if isinstance(reference, Source):
        image = reference
    elif reference is not None:
        image = _single_image(os.fspath(reference))
    elif image is None:
        image = _paired_image(path)
    return read_annotation(path, image_reference_of(image), options)


def _single_image(path: str) -> Source:
    """The one image unit of a series folder or image file."""
    from ...api import discover

    found = [s for s in discover(path) if s.reader != ANNOTATION_READER and not s.excluded and not s.unreadable]
    if len(found) != 1:
        raise UsageError(f"the reference holds {len(found)} image units, not one", path=path,
                         hint="name one series folder or file, or pass an ImageReference")
    return found[0]


def _paired_image(path: str) -> Source:
    """The image unit the annotation at ``path`` is paired with among the units beside it."""
    return paired_plan(path).image


def paired_plan(path: str) -> "AnnotationPlan":
    """The plan of the annotation at ``path`` paired among the units in its folder, else in the folder above.

    Raises the pairing's error when it does not pair, or :class:`AnnotationReferenceError`
    when no image unit is there at all.
    """
    import os

    from ...api import discover

    folder = os.path.dirname(os.path.abspath(path))
    for root in (folder, os.path.dirname(folder)):
        for source in discover(root, ["dicom"]):
            if source.reader == ANNOTATION_READER and os.path.samefile(source.path, path):
                plan = _plan(source)
                if plan.image is None and root == folder and plan.failure is not None:
                    break  # not paired here: its series may be in a sibling folder
                plan.raise_failure()
                return plan
    raise AnnotationReferenceError("no image series was found beside it (in its folder or the one above)", path=path,
                                   hint="pass reference= (the image series folder, an image unit or an ImageReference)")
