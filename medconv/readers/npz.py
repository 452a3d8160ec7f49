"""Reading back the ``.npz`` files medconv writes (see :mod:`medconv.writers.npz` for the fields)."""

from __future__ import annotations

import json
import zipfile
from typing import Iterator

import numpy as np

from ..errors import UnreadableFileError
from ..options import ReadOptions
from ..source import Source
from ..volume import Volume
from .files import file_source_id, walk_files

_REQUIRED = ("array.npy", "spacing.npy", "origin.npy", "direction.npy")


class NpzReader:
    """medconv's own ``.npz`` volumes (array plus spacing, origin, direction, meta)."""

    name = "npz"
    suffixes = (".npz",)

    def sniff(self, path: str) -> bool:
        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
        except Exception:
            return False
        return all(name in names for name in _REQUIRED)

    def discover(self, root: str) -> Iterator[Source]:
        for path, suffix in walk_files(root, self.suffixes):
            if self.sniff(path):
                yield Source(id=file_source_id(path, root, suffix), reader=self.name, paths=(path,), root=root)

    def read(self, source: Source, options: ReadOptions = ReadOptions()) -> Volume:
        path = source.path
        try:
            with np.load(path, allow_pickle=False) as fields:
                missing = [name for name in _REQUIRED if name[:-4] not in fields.files]
                if missing:
                    raise UnreadableFileError(f"not a medconv volume: missing {', '.join(missing)}", path,
                                              "only .npz files written by medconv can be read")
                meta = json.loads(str(fields["meta"])) if "meta" in fields.files else {}
                history = tuple(json.loads(str(fields["history"]))) if "history" in fields.files else ()
                kind = str(fields["kind"]) if "kind" in fields.files else "intensity"
                return Volume(array=fields["array"], spacing=tuple(fields["spacing"]), origin=tuple(fields["origin"]),
                              direction=fields["direction"], kind=options.kind or kind, meta=meta, history=history)
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise UnreadableFileError(f"the .npz file cannot be read ({exc})", path,
                                      "the file is probably truncated; write it again") from exc
