"""The library entry points: read a file or series, write a volume, convert one to the other."""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Iterable, Iterator

from .errors import NothingFoundError, UsageError
from .options import ReadOptions, WriteOptions
from .registry import reader_for, readers, writer_for
from .source import Source
from .volume import Volume


def discover(root: str | os.PathLike, reader_names: Iterable[str] | None = None) -> Iterator[Source]:
    """Every unit under ``root`` that the named readers (default: all installed) recognise."""
    root = os.fspath(root)
    plugins = [readers.get(name) for name in reader_names] if reader_names else readers.available()
    for reader in plugins:
        yield from reader.discover(root)


def read(source: str | os.PathLike | Source, reader: str | None = None, options: ReadOptions = ReadOptions()) -> Volume:
    """Read one file, one single-series folder, or a discovered :class:`Source` into a Volume.

    A single file named on its own is read even if it is one 2D image (as if
    ``include_2d`` were set): naming it says it is wanted.
    """
    if not isinstance(source, Source):
        path = os.fspath(source)
        if not os.path.exists(path):
            raise UsageError("no such file or folder", path)
        if os.path.isdir(path):
            source = _the_one_image(path, list(discover(path, [reader] if reader else None)), options)
        else:
            plugin = reader_for(path, reader)
            source = Source(id=os.path.basename(path), reader=plugin.name, paths=(path,))
            # a file named on its own is wanted as an image even when it is a single 2D slice
            options = dataclasses.replace(options, include_2d=True)
    return readers.get(source.reader).read(source, options)


#: How many unit names an error about a folder of several units lists.
NAMES_SHOWN = 5


def _is_convertible(source: Source, options: ReadOptions) -> bool:
    """Whether ``source`` is an image discovery left to be read: not excluded (a localizer, a report ...)
    nor drawn on another unit (an annotation beside its series), or a 2D image that ``include_2d`` asks
    for (the reader decides the same way when it reads)."""
    if source.is_annotation:
        return False
    return not source.excluded or bool(options.include_2d and source.is_2d)


def _set_aside_reason(source: Source) -> str:
    if source.is_annotation:
        return "an annotation object (medconv.read_annotations reads its masks)"
    return str(source.excluded)


def _names(sources: list[Source]) -> str:
    shown = ", ".join(source.id for source in sources[:NAMES_SHOWN])
    return shown + (f" and {len(sources) - NAMES_SHOWN} more" if len(sources) > NAMES_SHOWN else "")


def _the_one_image(folder: str, found: list[Source], options: ReadOptions) -> Source:
    """The one image unit of ``folder``, leaving aside the units discovery excluded and annotations; else a typed error."""
    if not found:
        raise NothingFoundError("no convertible image found in this folder", folder)
    if len(found) == 1:
        return found[0]  # excluded or not, its reader says what it is when it reads
    images = [source for source in found if _is_convertible(source, options)]
    set_aside = [source for source in found if not _is_convertible(source, options)]
    if len(images) == 1:
        return images[0]
    if not images:
        reasons = sorted({_set_aside_reason(source) for source in set_aside})
        raise NothingFoundError(f"no image volume in this folder: its {len(set_aside)} units are excluded "
                                f"({'; '.join(reasons)})", folder,
                                "run 'medconv scan' on the folder to see what each unit is")
    besides = f" (besides {len(set_aside)} excluded: {_names(set_aside)})" if set_aside else ""
    raise UsageError(f"this folder holds {len(images)} images, not one: {_names(images)}{besides}", folder,
                     "give a destination folder to convert them all, or name one series folder or file")


def write(volume: Volume, dest: str | os.PathLike, writer: str | None = None,
          options: WriteOptions = WriteOptions()) -> list[str]:
    """Write ``volume`` to ``dest`` (format from ``writer`` or the suffix); returns the files written."""
    return writer_for(dest, writer).write(volume, os.fspath(dest), options)


def convert(source: str | os.PathLike | Source, dest: str | os.PathLike, *,
            read_options: ReadOptions = ReadOptions(), write_options: WriteOptions = WriteOptions(),
            transform: Callable[[Volume], Volume] | None = None, reader: str | None = None,
            writer: str | None = None) -> list[str]:
    """Read ``source``, apply ``transform`` if given, and write ``dest``; returns the files written."""
    volume = read(source, reader=reader, options=read_options)
    if transform is not None:
        volume = transform(volume)
    return write(volume, dest, writer=writer, options=write_options)


def read_annotations(annotation, reference=None, options=None):
    """An RTSTRUCT, DICOM SEG or LIDC-IDRI XML read onto its image's grid: label Volumes and their label table.

    ``annotation`` is the file (or an annotation unit from :func:`discover`); ``reference``
    the image it is drawn on (a series folder or file, an image unit, an
    ``ImageReference``; ``None``: the series beside it that it references); ``options`` an
    :class:`~medconv.options.AnnotationOptions`. Returns an ``AnnotationResult``: ``outputs``
    (label Volumes on the image's exact grid, ``meta["labels"]`` their label table),
    ``labels``, ``rois`` (what happened to each ROI), ``rows`` (LIDC characteristics),
    ``warnings``. See docs/annotations.md.
    """
    from .readers.annotations.reader import read_annotations as read

    return read(annotation, reference, options)
