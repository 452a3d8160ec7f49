"""The files a reader may touch: finding them under a dataset folder, and refusing the ones it must not read.

Shared by every file reader (and, for the containment rule, by the DICOM reader):

* :func:`walk_files` finds the files of a suffix under a dataset folder (SRC);
* :func:`check_dataset_file` is **the one place** of the "stay inside SRC" rule: a
  file a unit needs (the file itself when it is a symbolic link, a MetaImage
  ``ElementDataFile``, the ``.img`` of an Analyze pair) must be a regular file
  (never a device, FIFO or socket: reading ``/dev/zero`` never ends, opening a
  FIFO blocks) and must resolve inside SRC, unless ``ReadOptions.follow_outside``;
* :func:`dataset_root` says what SRC is for a Source: its ``root``, or, for a file
  given on its own, the folder it is in;
* :func:`guarded_source` is the per-file net of discovery: a file that a reader
  cannot parse (whatever it raises) becomes a Source whose reading fails with an
  ``unreadable`` reason (:func:`check_source`, which every ``read`` calls first), so
  one bad file is one manifest row and never stops planning.
"""

from __future__ import annotations

import os
import re
import stat
from typing import Callable, Iterable, Iterator

from ..atomic import is_temporary
from ..errors import MedconvError, OutsideDatasetError, SpecialFileError, UnreadableFileError
from ..registry import matching_suffix
from ..source import InfoKey, Source

#: ``Source.info`` key of the failure :func:`discovery_failure_source` records (only :func:`check_source` reads it).
_DISCOVERY_FAILURE_KEY = "discovery_failure"

OUTSIDE_HINT = "copy the file into the dataset folder, or allow it with --follow-outside / ReadOptions(follow_outside=True)"


def natural_key(text: str) -> list:
    """Sort key that orders ``slice2`` before ``slice10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def walk_files(root: str, suffixes: Iterable[str]) -> Iterator[tuple[str, str]]:
    """``(path, suffix)`` for every file under ``root`` ending in one of ``suffixes``.

    In natural sort order, folder by folder; hidden files and folders and medconv's
    own temporary outputs are skipped; folder links are not followed (a file link is
    yielded, and :func:`check_dataset_file` decides whether it may be read). A file
    ``root`` itself is yielded alone if it matches.
    """
    suffixes = tuple(suffixes)
    if os.path.isfile(root):
        suffix = matching_suffix(root, suffixes)
        if suffix:
            yield root, suffix
        return
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted((d for d in dirs if not d.startswith(".")), key=natural_key)
        # match first, then sort the matches: every reader walks SRC, and most names match none of its suffixes
        matches = [(name, suffix) for name in files if not name.startswith(".") and not is_temporary(name)
                   for suffix in (matching_suffix(name, suffixes),) if suffix]
        for name, suffix in sorted(matches, key=lambda match: natural_key(match[0])):
            yield os.path.join(folder, name), suffix


def file_source_id(path: str, root: str, suffix: str) -> str:
    """A file's id: its path relative to the dataset root without the format suffix, with ``/``."""
    relative = os.path.relpath(path, root) if root and os.path.isdir(root) else os.path.basename(path)
    stem = relative[: len(relative) - len(suffix)] if relative.lower().endswith(suffix) else relative
    return stem.replace(os.sep, "/")


# -- stay inside SRC ---------------------------------------------------------------------------------------------

def dataset_root(source: Source) -> str:
    """SRC for ``source``: its ``root``, or the folder of its file when it was given on its own (no root)."""
    return source.root or os.path.dirname(os.path.abspath(source.path))


def is_inside(path: str, root: str) -> bool:
    """Whether ``path`` resolves (links followed) to ``root`` or below it (``root`` resolved too)."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def check_dataset_file(path: str, root: str, *, follow_outside: bool = False, referrer: str | None = None,
                       role: str = "file") -> None:
    """Refuse a file a unit needs that is not a regular file, or that resolves outside SRC.

    Parameters
    ----------
    path:
        The file (as named: a link is followed).
    root:
        SRC (:func:`dataset_root`).
    follow_outside:
        ``ReadOptions.follow_outside``: allow files that resolve outside ``root``.
    referrer:
        The file that names ``path`` (a MetaImage header naming its data file); the
        error is about it. ``None``: the error is about ``path`` itself.
    role:
        What ``path`` is, for the message (``"data file"``).

    Raises
    ------
    SpecialFileError
        ``path`` is a device, FIFO or socket (always, whatever ``follow_outside`` says).
    OutsideDatasetError
        ``path`` resolves outside ``root`` and ``follow_outside`` is not set.
    UnreadableFileError
        ``path`` does not exist (or a link points nowhere).

    Nothing is opened: only ``stat`` and ``realpath``, so checking never blocks.
    """
    about = referrer or path
    named = f"the {role} {path!r}" if referrer else f"this {role}"
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise UnreadableFileError(f"{named} does not exist", about,
                                  "a link points nowhere, or the file was moved" if os.path.islink(path) else None
                                  ) from None
    except OSError as exc:
        raise UnreadableFileError(f"cannot reach {named} ({exc.strerror or exc})", about) from exc
    if not stat.S_ISREG(mode):
        if stat.S_ISDIR(mode):
            raise UnreadableFileError(f"{named} is a folder, not a file", about)
        kind = "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a FIFO" if stat.S_ISFIFO(mode) else \
            "a socket" if stat.S_ISSOCK(mode) else "not a regular file"
        target = os.path.realpath(path)
        shown = f" ({target})" if target != os.path.abspath(path) else ""
        raise SpecialFileError(f"{named} is {kind}{shown}, not an image file", about,
                               "medconv reads regular files only; point the header at the real data file")
    if follow_outside or is_inside(path, root):
        return
    target = os.path.realpath(path)
    how = "is a link to" if os.path.islink(path) and not referrer else "resolves to"
    raise OutsideDatasetError(f"{named} {how} {target}, outside the dataset folder {root}", about, OUTSIDE_HINT)


def is_regular_file(path: str | os.PathLike) -> bool:
    """Whether :func:`check_dataset_file`'s special-file rule lets ``path`` be opened: a regular file (a link
    followed), never a folder, device, FIFO or socket. For sniffers, which never raise; it never blocks."""
    try:
        check_dataset_file(os.fspath(path), "", follow_outside=True)
    except MedconvError:
        return False
    return True


# -- discovery never aborts ------------------------------------------------------------------------------------

def discovery_failure_source(reader: str, path: str, root: str, suffix: str, error: BaseException,
                             **info) -> Source:
    """The Source of a file discovery could not parse: reading it raises the error again (:func:`check_source`).

    ``error`` is whatever the parse raised: a medconv error keeps its message; anything
    else (an unforeseen exception from a third-party parser) becomes "cannot be parsed
    (TypeName: message)". ``info`` adds header facts that are still known (``kind_guess``).
    """
    if isinstance(error, MedconvError):
        message, hint = error.message, error.hint
    else:
        message = f"cannot be parsed ({type(error).__name__}: {error})"
        hint = "the file is probably corrupt or not of this format; check it or leave it out"
    failure = {"message": " ".join(message.split())[:500], "hint": hint, "code": getattr(error, "code", "unreadable")}
    one_line = UnreadableFileError(failure["message"], path, hint).one_line()
    return Source(id=file_source_id(path, root, suffix), reader=reader, paths=(path,),
                  root=root if os.path.isdir(root) else "",
                  info={**info, InfoKey.ERROR: one_line, _DISCOVERY_FAILURE_KEY: failure})


def outside_source(reader: str, path: str, root: str, suffix: str, error: OutsideDatasetError) -> Source:
    """The Source of a file link pointing outside SRC, found by discovery without opening it.

    Reading it raises ``error`` again unless ``ReadOptions.follow_outside`` is set; then
    the reader reads it as any other file.
    """
    return Source(id=file_source_id(path, root, suffix), reader=reader, paths=(path,),
                  root=root if os.path.isdir(root) else "",
                  info={InfoKey.ERROR: error.one_line(), InfoKey.OUTSIDE_DATASET: True})


def check_source(source: Source, options) -> None:
    """What every reader's ``read`` does first: refuse a Source that must not be read.

    Raises the error discovery recorded (:func:`discovery_failure_source`), then
    applies :func:`check_dataset_file` to each of the Source's files: the
    special-file rule always, the stay-inside-SRC rule when the Source was found
    under a dataset folder (a file given on its own was named on purpose; the files
    *it* names are checked by its reader against its folder, :func:`dataset_root`).
    """
    failure = source.info.get(_DISCOVERY_FAILURE_KEY)
    if failure:
        raise _error_class(failure.get("code"))(failure["message"], source.path, failure.get("hint"))
    follow = options.follow_outside or not source.root
    for path in source.paths:
        check_dataset_file(path, dataset_root(source), follow_outside=follow)


def guarded_source(reader: str, path: str, root: str, suffix: str, describe: Callable[[], Source]) -> Source:
    """The Source ``describe()`` builds for the file ``path`` found under ``root``, whatever goes wrong.

    A special file, or an exception of any kind while its header is parsed, gives the
    Source of :func:`discovery_failure_source`; a link pointing outside SRC is not
    opened at all (:func:`outside_source`). So discovery never stops at one file.
    """
    try:
        outside = check_discovered_file(path, root)
        if outside is not None:
            return outside_source(reader, path, root, suffix, outside)
        return describe()
    except Exception as exc:  # any parse failure of any file: one unreadable row, and discovery goes on
        return discovery_failure_source(reader, path, root, suffix, exc)


def _error_class(code: str | None) -> type[MedconvError]:
    """The medconv error class whose ``code`` is ``code`` (``UnreadableFileError`` for anything else)."""
    pending = [MedconvError]
    while pending:
        cls = pending.pop()
        if cls.code == code and cls is not MedconvError:
            return cls
        pending.extend(cls.__subclasses__())
    return UnreadableFileError


def check_discovered_file(path: str, root: str) -> OutsideDatasetError | None:
    """For discovery: raise for a special file, return (not raise) the error of a link pointing outside SRC.

    Discovery never opens a file outside SRC (its header text could end up in a
    manifest); whether it is read after all is the reader's decision, with the options.
    """
    if not root or not os.path.isdir(root):
        check_dataset_file(path, root, follow_outside=True)  # a file named on its own: only the special-file rule
        return None
    try:
        check_dataset_file(path, root)
    except OutsideDatasetError as exc:
        return exc
    return None
