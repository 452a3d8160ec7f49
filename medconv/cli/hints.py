"""What to tell a user whose source holds nothing the command converts: what *is* there, and what to run.

When a dataset command finds no unit, :func:`nothing_found` looks at what SRC
holds (:func:`survey`: every installed reader's suffixes and ``sniff``, plus the
things medconv never reads itself: archives, NBIA ``.tcia`` manifests, 2D
pictures no reader claims) and builds one :class:`~medconv.errors.NothingFoundError`
that names SRC and says what to do: unpack the archive, download the series
with the NBIA Data Retriever, or run the command that reads those files
(``tcia2nii`` for DICOM, ``mhd2nii`` for MetaImage, ``convert`` for the rest).

The survey runs only on this failure path, and looks at no more than
:data:`SURVEY_LIMIT` files.
"""

from __future__ import annotations

import os
import shlex
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator, Sequence

from ..errors import NothingFoundError

#: At most this many files are looked at (a failing run on a huge tree answers quickly).
SURVEY_LIMIT = 5000

#: Archives medconv does not look into, by suffix, with the command that unpacks one into a folder of its name.
ARCHIVE_SUFFIXES = {".zip": "unzip {path} -d {folder}", ".tar": "mkdir {folder} && tar -xf {path} -C {folder}",
                    ".tar.gz": "mkdir {folder} && tar -xzf {path} -C {folder}",
                    ".tgz": "mkdir {folder} && tar -xzf {path} -C {folder}",
                    ".tar.bz2": "mkdir {folder} && tar -xjf {path} -C {folder}",
                    ".tar.xz": "mkdir {folder} && tar -xJf {path} -C {folder}",
                    ".7z": "7z x {path} -o{folder}", ".rar": "unrar x {path} {folder}/"}

#: NBIA/TCIA download manifests: a list of series UIDs for the NBIA Data Retriever, not images.
MANIFEST_SUFFIX = ".tcia"

#: 2D picture files, named when no installed reader claims them.
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")

#: The command that converts a reader's files as a dataset (readers not listed: ``convert``).
COMMAND_FOR_READER = {"dicom": "tcia2nii", "metaimage": "mhd2nii"}

#: How a reader's files are called in a hint.
FORMAT_NAMES = {"dicom": "DICOM", "metaimage": "MetaImage", "nifti": "NIfTI", "tiff": "TIFF", "npz": "npz",
                "image2d": "2D picture (PNG, JPEG, BMP, GIF)"}

#: What each dataset command looks for, for "no ... found".
WANTED = {("dicom",): "no DICOM image series found", ("metaimage",): "no MetaImage volume (.mhd, .mha) found"}


@dataclass(frozen=True)
class Survey:
    """What a source holds, file by file (up to :data:`SURVEY_LIMIT` files)."""

    files: int = 0
    by_reader: Counter = field(default_factory=Counter)  # reader name -> files it recognises
    archives: tuple[str, ...] = ()
    manifests: tuple[str, ...] = ()
    pictures: tuple[str, ...] = ()
    truncated: bool = False


def _files(src: str) -> Iterator[str]:
    if not os.path.isdir(src):
        yield src
        return
    for folder, subfolders, names in os.walk(src):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        for name in sorted(names):
            if not name.startswith("."):
                yield os.path.join(folder, name)


def _suffix_in(path: str, suffixes) -> str | None:
    lower = path.lower()
    matches = [suffix for suffix in suffixes if lower.endswith(suffix)]
    return max(matches, key=len) if matches else None


def _recognising_reader(path: str, readers: list) -> str | None:
    """The first installed reader whose suffix ``path`` has, else the first whose sniff accepts it."""
    for reader in readers:
        if _suffix_in(path, getattr(reader, "suffixes", ())) and _sniffs(reader, path):
            return reader.name
    for reader in readers:
        if _sniffs(reader, path):
            return reader.name
    return None


def _sniffs(reader, path: str) -> bool:
    try:
        return bool(reader.sniff(path))
    except Exception:  # a sniff never raises; a broken one says no
        return False


def survey(src: str, limit: int = SURVEY_LIMIT) -> Survey:
    """Count what ``src`` (a folder or one file) holds: each reader's files, archives, manifests, pictures."""
    from ..registry import readers as registry

    readers = registry.available()
    by_reader: Counter = Counter()
    archives, manifests, pictures = [], [], []
    count = 0
    truncated = False
    for path in _files(src):
        if count == limit:
            truncated = True
            break
        count += 1
        if _suffix_in(path, ARCHIVE_SUFFIXES):
            archives.append(path)
        elif path.lower().endswith(MANIFEST_SUFFIX):
            manifests.append(path)
        else:
            reader = _recognising_reader(path, readers)
            if reader:
                by_reader[reader] += 1
            elif _suffix_in(path, PICTURE_SUFFIXES):
                pictures.append(path)
    return Survey(count, by_reader, tuple(archives), tuple(manifests), tuple(pictures), truncated)


def _quote(path: str) -> str:
    return shlex.quote(path)


def _unpack_command(archive: str) -> str:
    suffix = _suffix_in(archive, ARCHIVE_SUFFIXES) or ".zip"
    folder = archive[: len(archive) - len(suffix)]
    return ARCHIVE_SUFFIXES[suffix].format(path=_quote(archive), folder=_quote(folder))


def _counted(paths: Sequence[str], src: str, one: str, many: str) -> str:
    """``"x.zip is an archive"`` or ``"3 archives, e.g. a.zip,"`` (names relative to a folder ``src``)."""
    first = os.path.relpath(paths[0], src) if os.path.isdir(src) else os.path.basename(paths[0])
    if len(paths) == 1:
        return f"{first} is {one}"
    return f"{len(paths)} {many}, e.g. {first}"


def _archive_and_manifest_clauses(archives: Sequence[str], manifests: Sequence[str], src: str) -> list[str]:
    clauses = []
    if archives:
        clauses.append(f"{_counted(archives, src, 'an archive', 'archives')}: medconv does not look inside "
                       f"archives; unpack first, e.g. {_unpack_command(archives[0])}")
    if manifests:
        clauses.append(f"{_counted(manifests, src, 'an NBIA download manifest', 'NBIA download manifests')}, "
                       "a list of series to download, not images: download the series with the NBIA Data Retriever "
                       "first, then run medconv on the folder it writes")
    return clauses


def unread_inputs(src: str, limit: int = SURVEY_LIMIT * 10) -> list[str]:
    """Archives and NBIA manifests under ``src`` (by name only, up to ``limit`` files), as notes for ``scan``."""
    archives, manifests = [], []
    for count, path in enumerate(_files(src)):
        if count == limit:
            break
        if _suffix_in(path, ARCHIVE_SUFFIXES):
            archives.append(path)
        elif path.lower().endswith(MANIFEST_SUFFIX):
            manifests.append(path)
    return _archive_and_manifest_clauses(archives, manifests, src)


def advice(src: str, dst: str | None, used: Sequence[str], found: Survey) -> list[str]:
    """What the user can do, one clause per kind of thing ``found`` under ``src`` that ``used`` readers did not read."""
    target = _quote(dst) if dst else "DST"
    clauses = _archive_and_manifest_clauses(found.archives, found.manifests, src)
    for reader, count in found.by_reader.most_common():
        if reader in used:
            continue
        name = FORMAT_NAMES.get(reader, reader)
        command = COMMAND_FOR_READER.get(reader, "convert")
        what = f"it is a {name} file" if os.path.isfile(src) else f"it holds {count} {name} file(s)"
        clauses.append(f"{what}: run medconv {command} {_quote(src)} {target}")
    if found.pictures:
        clauses.append(f"{_counted(found.pictures, src, 'a 2D picture', '2D pictures')}, which no installed "
                       "medconv reader reads")
    return clauses


def nothing_found(src: str, dst: str | None, readers: Sequence[str]) -> NothingFoundError:
    """The error for "no unit under ``src``" with what is there instead and what to run."""
    from ..registry import readers as registry

    found = survey(src)
    used = tuple(readers) or tuple(registry.names())
    message = WANTED.get(tuple(readers), "no convertible image found")
    if os.path.isfile(src):
        message += " in this file"
    clauses = advice(src, dst, used, found)
    if not clauses:
        if os.path.isfile(src):
            suffixes = sorted({s for reader in registry.available() for s in reader.suffixes})
            clauses = [f"it is no format medconv reads ({', '.join(suffixes)}, DICOM with any name)"]
        elif found.files == 0:
            clauses = ["the folder holds no files"]
        else:
            looked = f"the first {found.files}" if found.truncated else f"its {found.files}"
            clauses = [f"none of {looked} file(s) is an image medconv reads; 'medconv scan "
                       f"{_quote(src)}' lists what every reader finds"]
    return NothingFoundError(message, src, "; ".join(clauses))
