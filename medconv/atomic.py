"""Writing files so that a final name only ever holds a complete file.

Every writer writes through :func:`atomic_output`: the data goes to a hidden
temporary file in the destination folder, which is closed and renamed to the
final name only when complete (a rename within one folder is atomic). A crash, Ctrl-C or ``kill -9`` leaves at
most a temporary file behind (recognised by :data:`TEMP_MARKER` and cleaned up by
the batch runner), never a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import Iterator

from .errors import OutputExistsError

#: Substring of every temporary output name.
TEMP_MARKER = ".medconv-tmp-"


def temporary_name(final_path: str) -> str:
    """A unique hidden temporary path beside ``final_path`` that keeps its suffixes."""
    folder, name = os.path.split(final_path)
    return os.path.join(folder, f".{uuid.uuid4().hex[:12]}{TEMP_MARKER}{name}")


def is_temporary(path: str) -> bool:
    """True for a leftover temporary output of :func:`atomic_output`."""
    return TEMP_MARKER in os.path.basename(path)


@contextlib.contextmanager
def atomic_output(final_path: str | os.PathLike, overwrite: bool = False) -> Iterator[str]:
    """Yield a temporary path to write; rename it to ``final_path`` on success.

    The folder is created if needed. On any exception the temporary file is
    removed and the final path is left as it was.
    """
    final_path = os.fspath(final_path)
    if not overwrite and os.path.exists(final_path):
        raise OutputExistsError("the output exists", final_path, "pass --overwrite to replace it")
    folder = os.path.dirname(final_path) or "."
    os.makedirs(folder, exist_ok=True)
    temp = temporary_name(final_path)
    try:
        yield temp
        os.replace(temp, final_path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temp)
        raise
