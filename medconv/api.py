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
            # the image of a series folder: units drawn on another unit (an annotation beside it) are not it
            found = [s for s in discover(path, [reader] if reader else None) if not s.info.get("annotates")]
            if len(found) != 1:
                if not found:
                    raise NothingFoundError("no convertible image found in this folder", path)
                raise UsageError(f"this folder holds {len(found)} images, not one", path,
                                 "give a destination folder to convert them all, or name one series folder or file")
            source = found[0]
        else:
            plugin = reader_for(path, reader)
            source = Source(id=os.path.basename(path), reader=plugin.name, paths=(path,))
            # a file named on its own is wanted as an image even when it is a single 2D slice
            options = dataclasses.replace(options, include_2d=True)
    return readers.get(source.reader).read(source, options)


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
