"""Readers and writers: built-in ones as lazy import paths, third-party ones from entry points.

A *reader* is an object with

* ``name`` (str), ``suffixes`` (tuple of lower-case suffixes such as ``".nii.gz"``),
* ``sniff(path) -> bool``: cheap, never raises, True if the file looks like its format,
* ``discover(root) -> Iterator[Source]``: every unit of its format under a folder,
* ``read(source, options: ReadOptions) -> Volume``;
* optionally ``read_outputs(source, options) -> medconv.outputs.UnitOutputs`` for units that
  make several files (named volumes, tables): the batch then writes them all, named after
  the unit, and the unit's record last (:mod:`medconv.batch.outputs`); the annotation reader
  does this for an object's masks.

A *writer* has ``name``, ``suffixes`` and ``write(volume, dest, options: WriteOptions) -> list[str]``.

Third-party packages add formats under the entry-point groups ``medconv.readers`` and
``medconv.writers``; the entry point's name is the format name and its value
points at the reader/writer class (or an instance). Modules load on first use; a
missing optional dependency becomes :class:`MissingDependencyError` naming the
extra to install.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Iterable

from .errors import AmbiguousFormatError, MissingDependencyError, UnsupportedFormatError


@dataclass(frozen=True)
class PluginSpec:
    """Where to find a reader or writer, and which extra provides its dependencies."""

    name: str
    target: str  # "package.module:Attribute"
    extra: str | None = None
    origin: str = "built-in"


BUILTIN_READERS: tuple[PluginSpec, ...] = (
    PluginSpec("nifti", "medconv.readers.nifti:NiftiReader"),
    PluginSpec("dicom", "medconv.readers.dicom:DicomReader"),
    PluginSpec("metaimage", "medconv.readers.metaimage:MetaImageReader"),
    PluginSpec("tiff", "medconv.readers.tiff:TiffReader", extra="tiff"),
    PluginSpec("npz", "medconv.readers.npz:NpzReader"),
    PluginSpec("image2d", "medconv.readers.image2d:Image2DReader"),
    # annotation units (RTSTRUCT, SEG, LIDC XML) are found by the image readers' discovery, read by this one
    PluginSpec("annotation", "medconv.readers.annotations.reader:AnnotationReader"),
)

BUILTIN_WRITERS: tuple[PluginSpec, ...] = (
    PluginSpec("nifti", "medconv.writers.nifti:NiftiWriter"),
    PluginSpec("npz", "medconv.writers.npz:NpzWriter"),
    PluginSpec("png", "medconv.writers.png:PngWriter"),
    PluginSpec("nrrd", "medconv.writers.nrrd:NrrdWriter"),
    PluginSpec("metaimage", "medconv.writers.metaimage:MetaImageWriter"),
)


def _entry_point_specs(group: str) -> list[PluginSpec]:
    specs = []
    for entry_point in metadata.entry_points(group=group):
        dist = getattr(entry_point, "dist", None)
        origin = f"entry point of {dist.name}" if dist is not None else "entry point"
        specs.append(PluginSpec(entry_point.name, entry_point.value, origin=origin))
    return specs


def _load(spec: PluginSpec) -> Any:
    module_name, _, attribute = spec.target.partition(":")
    try:
        plugin = importlib.import_module(module_name)
        for part in attribute.split(".") if attribute else ():
            plugin = getattr(plugin, part)  # may import lazily, and so fail like an import
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        if spec.extra:
            hint = f"pip install 'medconv[{spec.extra}]'"
        else:
            hint = f"install the package that provides {missing!r}"
        raise MissingDependencyError(
            f"the {spec.name} format needs {missing!r}, which is not installed", hint=hint
        ) from exc
    if isinstance(plugin, type):
        plugin = plugin()
    return plugin


class Registry:
    """Known readers or writers by name; entries load on first use.

    Built-ins come first; an entry point with the name of a built-in replaces it
    (so a package can ship a better reader for a format).
    """

    def __init__(self, kind: str, builtins: Iterable[PluginSpec], group: str):
        self.kind = kind
        self.group = group
        self._builtins = tuple(builtins)
        self._specs: dict[str, PluginSpec] | None = None
        self._loaded: dict[str, Any] = {}

    @property
    def specs(self) -> dict[str, PluginSpec]:
        if self._specs is None:
            specs = {spec.name: spec for spec in self._builtins}
            for spec in _entry_point_specs(self.group):
                specs[spec.name] = spec
            self._specs = specs
        return self._specs

    def names(self) -> list[str]:
        """Every registered name, built-ins first."""
        return list(self.specs)

    def get(self, name: str) -> Any:
        """The plugin called ``name``, loading it if needed."""
        if name not in self._loaded:
            try:
                spec = self.specs[name]
            except KeyError:
                known = ", ".join(self.names())
                raise UnsupportedFormatError(f"no {self.kind} called {name!r}", hint=f"known: {known}") from None
            self._loaded[name] = _load(spec)
        return self._loaded[name]

    def available(self) -> list[Any]:
        """Every plugin whose dependencies are installed."""
        plugins = []
        for name in self.names():
            try:
                plugins.append(self.get(name))
            except MissingDependencyError:
                continue
        return plugins

    def refresh(self) -> None:
        """Forget what was found and loaded (after installing a plugin at run time)."""
        self._specs = None
        self._loaded.clear()


readers = Registry("reader", BUILTIN_READERS, "medconv.readers")
writers = Registry("writer", BUILTIN_WRITERS, "medconv.writers")


def matching_suffix(path: str, suffixes: Iterable[str]) -> str | None:
    """The longest of ``suffixes`` that ``path`` ends with (case-insensitive), if any."""
    lower = os.fspath(path).lower()
    best = None
    for suffix in suffixes:
        if lower.endswith(suffix) and (best is None or len(suffix) > len(best)):
            best = suffix
    return best


def reader_for(path: str | os.PathLike, name: str | None = None) -> Any:
    """The reader for one file: by explicit name, then by suffix, then by sniffing.

    A suffix claimed by several readers is decided by sniffing among them; a file
    no reader claims, or several claim equally, is an error that says so.
    """
    path = os.fspath(path)
    if name:
        return readers.get(name)
    candidates = []
    best_length = 0
    for reader in readers.available():
        suffix = matching_suffix(path, getattr(reader, "suffixes", ()))
        if suffix and len(suffix) >= best_length:
            if len(suffix) > best_length:
                candidates, best_length = [], len(suffix)
            candidates.append(reader)
    if len(candidates) == 1:
        return candidates[0]
    pool = candidates or readers.available()
    sniffed = [reader for reader in pool if _safe_sniff(reader, path)]
    if len(sniffed) == 1:
        return sniffed[0]
    if len(sniffed) > 1:
        names = ", ".join(reader.name for reader in sniffed)
        raise AmbiguousFormatError(f"several readers accept this file ({names})", path, "name one with --reader")
    missing = [name for name in readers.names() if name not in {r.name for r in readers.available()}]
    hint = "supported: " + ", ".join(sorted({s for r in readers.available() for s in r.suffixes}))
    if missing:
        hint += f"; not installed: {', '.join(missing)}"
    raise UnsupportedFormatError("no reader recognises this file", path, hint)


def writer_for(dest: str | os.PathLike, name: str | None = None) -> Any:
    """The writer for an output path: by explicit name, else by the path's suffix."""
    if name:
        return writers.get(name)
    dest = os.fspath(dest)
    best, best_suffix = None, ""
    for writer in writers.available():
        suffix = matching_suffix(dest, writer.suffixes)
        if suffix and len(suffix) > len(best_suffix):
            best, best_suffix = writer, suffix
    if best is None:
        known = ", ".join(sorted({s for w in writers.available() for s in w.suffixes}))
        raise UnsupportedFormatError("no writer for this output suffix", dest, f"use one of: {known}")
    return best


def writer_for_format(fmt: str) -> tuple[Any, str]:
    """The writer and file suffix for a ``--format`` value such as ``nii.gz`` or ``npz``."""
    suffix = "." + fmt.lstrip(".").lower()
    for writer in writers.available():
        if suffix in writer.suffixes:
            return writer, suffix
    known = ", ".join(sorted(s.lstrip(".") for w in writers.available() for s in w.suffixes))
    raise UnsupportedFormatError(f"unknown output format {fmt!r}", hint=f"use one of: {known}")


def _safe_sniff(reader: Any, path: str) -> bool:
    try:
        return bool(reader.sniff(path))
    except Exception:  # a sniff must never raise; a broken one simply says no
        return False

