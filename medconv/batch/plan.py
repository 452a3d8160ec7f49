"""Planning a batch: every unit of a dataset and the output path it will be written to.

Planning reads headers only (through the readers' ``discover``), never pixels, and
knows no format: it asks the registry for Sources and :mod:`medconv.layout` for
names. It guarantees that no two units write the same path and that no output
lands on an input file.

Planning never aborts over one bad input: a reader whose discovery breaks off
(an exception it did not foresee) becomes one unit that fails with the reason,
naming the file when the error does, and the other readers' units are planned
as usual. (Readers catch their own per-file problems first; this is the last net.)
"""

from __future__ import annotations

import json
import logging
import os
import traceback
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from ..errors import MedconvError, MissingDependencyError, NothingFoundError, OutputCollisionError, UsageError
from ..layout import check_template_fields, id_fragment, output_stem, sanitize_component, uid_fragment
from ..registry import writer_for_format
from ..source import InfoKey, Source
from .manifest import DEFAULT_NAME as MANIFEST_NAME

log = logging.getLogger(__name__)

#: Key of a unit record's ``meta`` listing the files a unit of several files wrote (names relative to the record).
RECORD_OUTPUTS = "outputs"


@dataclass(frozen=True)
class PlannedFailure:
    """Why a unit fails before it runs: its reader's discovery broke off (one manifest row, no work)."""

    reason: str
    code: str
    traceback: str = ""


@dataclass(frozen=True)
class PlannedUnit:
    """One unit of work: a Source and where its output goes.

    Parameters
    ----------
    source:
        The unit found by a reader (picklable; travels to the worker).
    output:
        The output file's path.
    relative:
        ``output`` relative to the destination folder, with ``/`` (manifest and preview names).
    sidecar:
        The JSON sidecar's path, or ``None`` when no sidecar is written.
    excluded:
        The reader's note that this unit is probably not an image volume
        (:attr:`Source.excluded <medconv.source.Source.excluded>`), shown by ``--dry-run``; ``None`` otherwise. The
        reader still decides when the unit runs (an option such as ``--include-2d``
        may make it convertible), so excluded units cost one quick task each.
    failure:
        Set when the unit fails before it runs (its reader's discovery broke off);
        ``output``, ``relative`` and ``sidecar`` are then empty.
    name:
        ``relative`` without the format suffix: the unit's name in the manifest and
        the order of its rows (the unit id when it has no output).
    companions:
        The other files the writer may write for ``output`` (a ``.mhd`` header's
        ``.raw`` or ``.zraw``): checked against the inputs when planning, and their
        temporaries removed like the output's.
    """

    source: Source
    output: str
    relative: str
    sidecar: str | None = None
    excluded: str | None = None
    failure: PlannedFailure | None = None
    name: str = ""
    companions: tuple[str, ...] = ()

    def __post_init__(self):
        if not self.name:
            object.__setattr__(self, "name", self.relative or self.source.id)

    @property
    def id(self) -> str:
        return self.source.id

    def is_complete(self) -> bool:
        """True when the output (and its sidecar, if one is written) exists under its final name.

        Never for a unit that fails when planning (it has no output).

        Writers rename a file to its final name only when it is complete
        (:mod:`medconv.atomic`) and write the sidecar after the image, so both
        existing means the unit finished. A unit that writes several files writes its
        record (the sidecar) last, listing them: it is complete when they all exist.
        """
        if self.failure is not None:
            return False
        if self.sidecar is not None and os.path.isfile(self.sidecar):
            listed = record_outputs(_sidecar_meta(self.sidecar))
            if listed is not None:
                folder = os.path.dirname(self.sidecar)
                return all(os.path.isfile(os.path.join(folder, *name.split("/"))) for name in listed)
        return os.path.isfile(self.output) and (self.sidecar is None or os.path.isfile(self.sidecar))

    def existing_output(self, fingerprint: str) -> str | None:
        """What an output already under this unit's name is, for resuming.

        ``None``: nothing complete is there (convert). ``"done"``: this unit's own
        output, made from the same files with the same options (skip it).
        ``"other-source"`` or ``"other-options"``: an output made from other files
        or with other options, which neither a skip nor a silent overwrite may hide.
        The sidecar records the files and the options' ``fingerprint``; without a
        sidecar only existence can be checked.
        """
        if not self.is_complete():
            return None
        if self.sidecar is None:
            return "done"
        meta = _sidecar_meta(self.sidecar)
        if meta is None:
            return None  # unreadable sidecar: an incomplete unit
        recorded = meta.get("source_files")
        if recorded and sorted(map(os.path.abspath, recorded)) != sorted(map(os.path.abspath, self.source.paths)):
            return "other-source"
        if meta.get("job") not in (None, fingerprint):
            return "other-options"
        return "done"


@dataclass
class Plan:
    """The units of one batch, in discovery order, and what planning had to decide."""

    root: str
    dest: str
    fmt: str
    suffix: str
    units: list[PlannedUnit] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.units)


def source_location(source: Source) -> str:
    """Where a unit comes from, as an absolute path: its file, or the folder holding its files.

    A unit of one file, or named after its first file (a NIfTI file, a ``.mhd``
    header with its ``.raw``), is that file; a unit of several files (a DICOM
    series) is the deepest folder holding all of them.
    """
    stem = source.id.replace("\\", "/").rsplit("/", 1)[-1]
    if len(source.paths) == 1 or os.path.basename(source.paths[0]).startswith(stem + "."):
        return os.path.abspath(source.paths[0])
    try:
        return os.path.abspath(os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in source.paths]))
    except ValueError:
        return os.path.abspath(source.paths[0])


def discover_sources(root: str, reader_names: Sequence[str] | None, dest: str | None = None) -> list[Source]:
    """Every unit under ``root`` (or the single file ``root``), minus medconv's own outputs under ``dest``.

    Files claimed by several readers are kept once (the first reader in registry
    order); one reader may make several units of the same files (e.g. the frame
    groups of one enhanced DICOM file). A reader whose discovery raises gives one
    extra Source marked ``InfoKey.DISCOVERY_FAILED`` (see :func:`discovery_failure`),
    and the other readers go on.
    """
    from ..registry import readers

    root = os.fspath(root)
    if not os.path.exists(root):
        raise UsageError("no such file or folder", root)
    dest_real = os.path.realpath(dest) if dest else None
    root_real = os.path.realpath(root)
    skip_dest = dest_real is not None and dest_real != root_real and _inside(dest_real, root_real)
    sources: list[Source] = []
    claimed_by: dict[tuple[str, ...], str] = {}
    earlier_output = _earlier_output_roots(root_real)
    plugins = [readers.get(name) for name in reader_names] if reader_names else readers.available()
    for reader in plugins:
        found = 0
        try:
            for source in reader.discover(root):
                if skip_dest and all(_inside(os.path.realpath(p), dest_real) for p in source.paths):
                    continue  # an earlier output of ours inside the dataset folder
                if all(earlier_output(os.path.dirname(os.path.realpath(p))) for p in source.paths):
                    continue  # the output of another medconv run kept inside the dataset folder
                key = tuple(sorted(source.paths))
                if claimed_by.setdefault(key, source.reader) != source.reader:
                    continue
                sources.append(source)
                found += 1
        except (KeyboardInterrupt, SystemExit, MissingDependencyError):
            raise
        except BaseException as exc:  # the last net: the plan goes on without the rest of this reader's units
            sources.append(discovery_failure(getattr(reader, "name", type(reader).__name__), root, exc, found))
    return sources


def discovery_failure(reader: str, root: str, exc: BaseException, found: int = 0) -> Source:
    """A Source standing for a reader's discovery that raised ``exc`` after ``found`` units.

    It names the file the error names (``MedconvError.path``, ``OSError.filename``),
    else ``root``. Planning turns it into a unit that fails with this reason.
    """
    from ..errors import environment_fault

    fault = environment_fault(exc) if isinstance(exc, OSError) else None
    typed = fault or (exc if isinstance(exc, MedconvError) else None)
    path = getattr(typed, "path", None) or getattr(exc, "filename", None) or root
    path = os.fsdecode(path) if isinstance(path, bytes) else str(path)
    if typed is not None:
        reason, code, trace = typed.one_line(), typed.code, ""
    else:
        reason, code, trace = f"internal error: {type(exc).__name__}: {exc}", "internal", traceback.format_exc()
    partial = f" after {found} unit(s)" if found else ""
    reason = f"the {reader} reader's search of {root} stopped{partial}: {reason} (the other readers' units go on)"
    log.warning("%s", reason)
    ident = f"{reader}-discovery-failed"
    info = {InfoKey.DISCOVERY_FAILED: True, InfoKey.ERROR: reason, InfoKey.ERROR_TYPE: code, InfoKey.TRACEBACK: trace}
    return Source(ident, reader, (path,), root if os.path.isdir(root) else "", info)


def record_outputs(record_meta: dict | None) -> list[str] | None:
    """The files a unit record lists (``None`` when the sidecar is not the record of a unit of several files)."""
    names = (record_meta or {}).get(RECORD_OUTPUTS)
    return [str(name) for name in names] if isinstance(names, list) else None


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _sidecar_meta(path: str) -> dict | None:
    """The ``meta`` of a medconv sidecar, or ``None`` when ``path`` is not one (or unreadable)."""
    try:
        with open(path, encoding="utf-8") as handle:
            content = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(content, dict) or "medconv_version" not in content:
        return None
    return content.get("meta") or {}


def _earlier_output_roots(root: str) -> Callable[[str], bool]:
    """A test ``folder -> bool``: is ``folder`` (below ``root``) inside an earlier medconv run's DST?

    A destination folder is recognised by the manifest every run leaves in it.
    """
    cache: dict[str, bool] = {}

    def inside_output(folder: str) -> bool:
        if folder in cache:
            return cache[folder]
        if not _inside(folder, root) or folder == root:
            result = False
        else:
            result = os.path.isfile(os.path.join(folder, MANIFEST_NAME + ".csv")) or \
                os.path.isfile(os.path.join(folder, MANIFEST_NAME + ".jsonl")) or \
                inside_output(os.path.dirname(folder))
        cache[folder] = result
        return result

    return inside_output


def make_plan(sources: Iterable[Source], dest: str | os.PathLike, *, fmt: str = "nii.gz",
              template: str | None = None, sidecar: bool = True, root: str = "") -> Plan:
    """Name the outputs of ``sources`` under ``dest`` and check that they cannot clash.

    Parameters
    ----------
    sources:
        The units, e.g. from :func:`discover_sources`.
    dest:
        The destination folder.
    fmt:
        Output format (``nii.gz``, ``nii``, ``npz`` or a plugin writer's suffix).
    template:
        Naming template (:mod:`medconv.layout`); ``None`` for the default policy.
    sidecar:
        Whether a JSON sidecar is written beside each output.
    root:
        The dataset folder, for the record.

    Raises
    ------
    NothingFoundError
        No units.
    OutputCollisionError
        Two non-DICOM units would write the same path; an output, its sidecar or a file
        written with it (a ``.mhd`` header's ``.raw``: the writer's ``companion_files``)
        would replace an input; a sidecar would replace a JSON file that medconv did not
        write (a BIDS sidecar); or a data file would replace one that exists without its header.
    """
    writer, suffix = writer_for_format(fmt)
    companion_files = getattr(writer, "companion_files", lambda output: ())
    dest = os.fspath(dest)
    sources = list(sources)
    if not sources:
        raise NothingFoundError("no convertible image found", root or dest,
                                "check the folder, or run 'medconv scan' on it to see what is there")
    failed = [source for source in sources if source.info.get(InfoKey.DISCOVERY_FAILED)]
    sources = [source for source in sources if not source.info.get(InfoKey.DISCOVERY_FAILED)]
    if template and sources:
        check_template_fields(template, sources)
    annotated = _annotated_units(sources)
    stems = {index: output_stem(source, template) for index, source in enumerate(sources) if index not in annotated}
    notes: list[str] = []
    stems = _resolve_collisions(sources, stems, notes)
    if annotated:  # named after the (final) names of the units they annotate, then told apart if they clash
        for index, target in annotated.items():
            addition = str(sources[index].info.get(InfoKey.NAME_SUFFIX) or "").lstrip("_")
            stems[index] = stems[target] + "_" + (sanitize_component(addition) if addition else "annotation")
        _tell_annotations_apart(sources, stems, annotated, notes)
        stems = _resolve_collisions(sources, dict(sorted(stems.items())), notes)
    sources = _unique_ids(sources)
    plan = Plan(root=os.fspath(root), dest=dest, fmt=fmt, suffix=suffix, notes=notes)
    inputs = {os.path.realpath(path) for source in sources for path in source.paths}
    for index, source in enumerate(sources):
        relative = stems[index] + suffix
        output = os.path.join(dest, *relative.split("/"))
        side = os.path.join(dest, *(stems[index] + ".json").split("/")) if sidecar else None
        companions = tuple(companion_files(output))
        for path, what in ((output, "an output"), (side, "a sidecar"),
                           *((c, f"the data file of {os.path.basename(output)}") for c in companions)):
            if path and os.path.realpath(path) in inputs:
                raise OutputCollisionError(f"{what} would replace an input file", path,
                                           "choose a destination folder outside the dataset, or another --format")
        if side and os.path.exists(side) and _sidecar_meta(side) is None:
            raise OutputCollisionError("the sidecar would replace a file medconv did not write", side,
                                       "choose a destination folder outside the dataset, or --no-sidecar")
        stray = next((path for path in companions if os.path.exists(path)), None) if not os.path.exists(output) else None
        if stray:  # a data file without its header: not ours (or left in the instant between the two renames)
            raise OutputCollisionError(f"the data file of {os.path.basename(output)} would replace a file medconv "
                                       "did not write", stray, "choose a destination folder outside the dataset, or "
                                       "another --format; remove the file if an interrupted medconv run left it")
        plan.units.append(PlannedUnit(source, output, relative, side, source.excluded,
                                      name=stems[index], companions=companions))
    for source in failed:
        failure = PlannedFailure(source.error or "", str(source.info[InfoKey.ERROR_TYPE]),
                                 str(source.info.get(InfoKey.TRACEBACK) or ""))
        plan.units.append(PlannedUnit(source, "", "", None, failure=failure))
    return plan


def _annotated_units(sources: list[Source]) -> dict[int, int]:
    """``{index of a unit that annotates another: index of that unit}`` (units whose target is in the plan)."""
    index_of = {source.id: index for index, source in enumerate(sources)}
    pairs = {}
    for index, source in enumerate(sources):
        target = index_of.get(source.annotates)
        if target is not None and target != index and not sources[target].is_annotation:
            pairs[index] = target
    return pairs


def _tell_annotations_apart(sources: list[Source], stems: dict[int, str], annotated: dict[int, int],
                            notes: list[str]) -> None:
    """Units named after one unit with the same suffix (two structure sets of one CT) get their file's stem, then a hash."""
    for fragment in (lambda s: sanitize_component(os.path.basename(s.path).split(".")[0]), id_fragment):
        for indices in _clashes({index: stems[index] for index in annotated}):
            for index in indices:
                added = fragment(sources[index])
                notes.append(f"{sources[index].id}: name {stems[index]!r} is shared by {len(indices)} units drawn on "
                             f"one image; added {added!r}")
                stems[index] = f"{stems[index]}_{added}"


def _resolve_collisions(sources: list[Source], stems: dict[int, str], notes: list[str]) -> dict[int, str]:
    """Give DICOM units that share a name a UID fragment (then an id hash); refuse other clashes."""
    for make_fragment in (uid_fragment, id_fragment):
        groups = _clashes(stems)
        if not groups:
            return stems
        for indices in groups:
            if not all(sources[i].info.get(InfoKey.SERIES_UID) for i in indices):
                names = ", ".join(source_location(sources[i]) for i in indices[:4])
                field = "{reader}" if len({sources[i].reader for i in indices}) > 1 else "{ext}"
                raise OutputCollisionError(
                    f"{len(indices)} units would be written to the same output {stems[indices[0]]!r}: {names}",
                    hint=f"rename the inputs, or pass --name with a field that tells them apart, e.g. '{{id}}_{field}'")
            for i in indices:
                fragment = make_fragment(sources[i])
                notes.append(f"{sources[i].id}: name {stems[i]!r} is shared by {len(indices)} series; added {fragment!r}")
                stems[i] = f"{stems[i]}_{fragment}"
    groups = _clashes(stems)
    if groups:
        names = ", ".join(sources[i].id for i in groups[0][:4])
        raise OutputCollisionError(f"units would be written to the same output: {names}",
                                   hint="pass --name with a field that tells them apart, e.g. '{id}'")
    return stems


def _unique_ids(sources: list[Source]) -> list[Source]:
    """Sources whose ids repeat (same stem, other reader or suffix) get ``#2``, ``#3`` ... for the manifest."""
    seen: dict[str, int] = {}
    unique = []
    for source in sources:
        seen[source.id] = seen.get(source.id, 0) + 1
        if seen[source.id] > 1:
            source = Source(f"{source.id}#{seen[source.id]}", source.reader, source.paths, source.root,
                            dict(source.info), plan=source.plan)
        unique.append(source)
    return unique


def _clashes(stems: dict[int, str]) -> list[list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for index, stem in stems.items():
        groups[stem.casefold()].append(index)  # case-insensitive file systems (macOS, Windows)
    return [indices for indices in groups.values() if len(indices) > 1]
