"""Finding files of a suffix under a dataset folder, shared by the single-file readers."""

from __future__ import annotations

import os
import re
from typing import Iterable, Iterator

from ..atomic import is_temporary
from ..registry import matching_suffix


def natural_key(text: str) -> list:
    """Sort key that orders ``slice2`` before ``slice10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def walk_files(root: str, suffixes: Iterable[str]) -> Iterator[tuple[str, str]]:
    """``(path, suffix)`` for every file under ``root`` ending in one of ``suffixes``.

    In natural sort order, folder by folder; hidden files and folders and medconv's
    own temporary outputs are skipped. A file ``root`` itself is yielded alone if
    it matches.
    """
    suffixes = tuple(suffixes)
    if os.path.isfile(root):
        suffix = matching_suffix(root, suffixes)
        if suffix:
            yield root, suffix
        return
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted((d for d in dirs if not d.startswith(".")), key=natural_key)
        for name in sorted(files, key=natural_key):
            if name.startswith(".") or is_temporary(name):
                continue
            suffix = matching_suffix(name, suffixes)
            if suffix:
                yield os.path.join(folder, name), suffix


def file_source_id(path: str, root: str, suffix: str) -> str:
    """A file's id: its path relative to the dataset root without the format suffix, with ``/``."""
    relative = os.path.relpath(path, root) if root and os.path.isdir(root) else os.path.basename(path)
    stem = relative[: len(relative) - len(suffix)] if relative.lower().endswith(suffix) else relative
    return stem.replace(os.sep, "/")
