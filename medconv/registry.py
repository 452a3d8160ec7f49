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

Nothing here costs a run that does not need it: a built-in's spec states the
suffixes its plugin claims (like imageio's extension table), so that finding the
writer for ``nii.gz`` imports the NIfTI writer only (not Pillow for the PNG
writer); and :mod:`importlib.metadata` (30-40 ms to import on the project's
machine) is imported only when some installed distribution's ``entry_points.txt``
mentions a ``medconv.`` group (:func:`_entry_points_may_exist`, a directory listing).
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from typing import Any, Iterable

from .errors import AmbiguousFormatError, MissingDependencyError, UnsupportedFormatError


@dataclass(frozen=True)
class PluginSpec:
    """Where to find a reader or writer, and which extra provides its dependencies."""

    name: str
    target: str  # "package.module:Attribute"
    extra: str | None = None
    origin: str = "built-in"
    #: The suffixes the plugin claims, stated so that dispatch by suffix loads only the plugins that
    #: match; ``None`` (entry points) when only loading the plugin tells. A test checks them.
    suffixes: tuple[str, ...] | None = None


BUILTIN_READERS: tuple[PluginSpec, ...] = (
    PluginSpec("nifti", "medconv.readers.nifti:NiftiReader",
               suffixes=(".nii", ".nii.gz", ".hdr", ".hdr.gz", ".img", ".img.gz")),
    PluginSpec("dicom", "medconv.readers.dicom:DicomReader", suffixes=(".dcm", ".dcm.gz", ".ima")),
    PluginSpec("metaimage", "medconv.readers.metaimage:MetaImageReader", suffixes=(".mhd", ".mha")),
    PluginSpec("tiff", "medconv.readers.tiff:TiffReader", extra="tiff",
               suffixes=(".tif", ".tiff", ".ome.tif", ".ome.tiff")),
    PluginSpec("npz", "medconv.readers.npz:NpzReader", suffixes=(".npz",)),
    PluginSpec("image2d", "medconv.readers.image2d:Image2DReader",
               suffixes=(".png", ".jpg", ".jpeg", ".bmp", ".gif")),
    # annotation units (RTSTRUCT, SEG, LIDC XML) are found by the image readers' discovery, read by this one
    PluginSpec("annotation", "medconv.readers.annotations.reader:AnnotationReader", suffixes=()),
)

BUILTIN_WRITERS: tuple[PluginSpec, ...] = (
    PluginSpec("nifti", "medconv.writers.nifti:NiftiWriter", suffixes=(".nii", ".nii.gz")),
    PluginSpec("npz", "medconv.writers.npz:NpzWriter", suffixes=(".npz",)),
    PluginSpec("png", "medconv.writers.png:PngWriter", suffixes=(".png",)),
    PluginSpec("nrrd", "medconv.writers.nrrd:NrrdWriter", suffixes=(".nrrd", ".nhdr")),
    PluginSpec("metaimage", "medconv.writers.metaimage:MetaImageWriter", suffixes=(".mha", ".mhd")),
)

#: What marks an entry-point group of medconv's in an ``entry_points.txt``.
ENTRY_POINT_GROUP_PREFIX = b"[medconv."


def _entry_points_may_exist() -> bool:
    """Whether some installed distribution may declare a ``medconv.*`` entry point; never a false no.

    Looks where :mod:`importlib.metadata` looks: the ``*.dist-info`` / ``*.egg-info``
    folders (and an ``.egg``'s ``EGG-INFO``) of every ``sys.path`` folder, for an
    ``entry_points.txt`` naming a ``[medconv.`` group. Anything it cannot judge this
    way (a zip on ``sys.path``, a meta-path finder of its own that lists
    distributions) counts as a yes.
    """
    from importlib.machinery import PathFinder

    if any(getattr(finder, "find_distributions", None) is not None and finder is not PathFinder
           for finder in sys.meta_path):
        return True
    for entry in sys.path:
        root = entry or "."
        try:
            names = os.listdir(root)
        except NotADirectoryError:
            return True  # a zip file or an egg: importlib.metadata reads inside it
        except OSError:
            continue
        folders = [name for name in names if name.lower().endswith((".dist-info", ".egg-info"))]
        if root.lower().endswith(".egg"):
            folders.append("EGG-INFO")
        for folder in folders:
            try:
                with open(os.path.join(root, folder, "entry_points.txt"), "rb") as handle:
                    if ENTRY_POINT_GROUP_PREFIX in handle.read():
                        return True
            except OSError:
                continue
    return False


def _entry_point_specs(group: str) -> list[PluginSpec]:
    if not _entry_points_may_exist():
        return []
    from importlib import metadata

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

    def claimed_suffixes(self) -> list[str]:
        """Every suffix the installed plugins claim, in registry order, without loading a plugin whose
        spec states its suffixes (built-ins: their dependencies are installed with medconv, but for
        the ``extra`` of a reader)."""
        suffixes: list[str] = []
        for name, spec in self.specs.items():
            if spec.suffixes is not None and spec.extra is None:
                suffixes.extend(spec.suffixes)
                continue
            try:
                suffixes.extend(getattr(self.get(name), "suffixes", ()))
            except MissingDependencyError:
                continue
        return suffixes

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


def _claiming_longest_suffix(registry: Registry, path: str) -> list[Any]:
    """The installed plugins (in registry order) claiming the longest suffix of ``path`` that any installed
    plugin claims; only plugins whose stated suffixes match are loaded."""
    claims: list[tuple[int, str]] = []
    for name, spec in registry.specs.items():
        suffixes = spec.suffixes
        if suffixes is None:
            try:
                suffixes = tuple(getattr(registry.get(name), "suffixes", ()))
            except MissingDependencyError:
                continue
        suffix = matching_suffix(path, suffixes)
        if suffix:
            claims.append((len(suffix), name))
    for length in sorted({length for length, _ in claims}, reverse=True):
        plugins = []
        for claimed, name in claims:
            if claimed == length:
                try:
                    plugins.append(registry.get(name))
                except MissingDependencyError:  # not installed: as if it claimed nothing
                    continue
        if plugins:
            return plugins
    return []


def reader_for(path: str | os.PathLike, name: str | None = None) -> Any:
    """The reader for one file: by explicit name, then by suffix, then by sniffing.

    A suffix claimed by several readers is decided by sniffing among them; a file
    no reader claims, or several claim equally, is an error that says so.
    """
    path = os.fspath(path)
    if name:
        return readers.get(name)
    candidates = _claiming_longest_suffix(readers, path)
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
    claiming = _claiming_longest_suffix(writers, dest)
    if not claiming:
        known = ", ".join(sorted({s for w in writers.available() for s in w.suffixes}))
        raise UnsupportedFormatError("no writer for this output suffix", dest, f"use one of: {known}")
    return claiming[0]


def writer_for_format(fmt: str) -> tuple[Any, str]:
    """The writer and file suffix for a ``--format`` value such as ``nii.gz`` or ``npz``."""
    suffix = "." + fmt.lstrip(".").lower()
    for name, spec in writers.specs.items():
        if spec.suffixes is not None and suffix not in spec.suffixes:
            continue  # not this one: never loaded
        try:
            writer = writers.get(name)
        except MissingDependencyError:
            continue
        if suffix in writer.suffixes:
            return writer, suffix
    known = ", ".join(sorted(s.lstrip(".") for w in writers.available() for s in w.suffixes))
    raise UnsupportedFormatError(f"unknown output format {fmt!r}", hint=f"use one of: {known}")


def _safe_sniff(reader: Any, path: str) -> bool:
    try:
        return bool(reader.sniff(path))
    except Exception:  # a sniff must never raise; a broken one simply says no
        return False

