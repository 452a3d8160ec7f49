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
from .files import check_discovered_file, check_source, file_source_id, walk_files
from .limits import check_voxel_count

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
        """medconv's ``.npz`` files under ``root`` (others are not this reader's: never opened past ``sniff``)."""
        for path, suffix in walk_files(root, self.suffixes):
            try:
                if check_discovered_file(path, root) is not None:
                    continue  # a link out of the dataset: not opened (its sniff would read it)
            except UnreadableFileError:
                continue  # a special file is nobody's .npz
            if self.sniff(path):
                yield Source(id=file_source_id(path, root, suffix), reader=self.name, paths=(path,), root=root)

    def read(self, source: Source, options: ReadOptions = ReadOptions()) -> Volume:
        check_source(source, options)
        path = source.path
        try:
            check_voxel_count(_declared_shape(path), path, options)
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
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
            raise UnreadableFileError(f"the .npz file cannot be read ({exc})", path,
                                      "the file is probably truncated; write it again") from exc


def _declared_shape(path: str) -> tuple[int, ...]:
    """The shape ``array.npy`` declares in its header, read without loading the array (``()`` if absent)."""
    with zipfile.ZipFile(path) as archive:
        if "array.npy" not in archive.namelist():
            return ()  # reported below as "not a medconv volume"
        member = archive.open("array.npy")
        version = np.lib.format.read_magic(member)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        with member:
            shape, _, _ = read_header(member)
    return tuple(shape)
