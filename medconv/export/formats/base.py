"""What every training layout shares: case file names, the dataset description, the index read back."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import ClassVar, Mapping, Optional

from ...atomic import atomic_output
from ...layout import sanitize_component
from ..cases import CaseSplit

#: The file type every layout writes (nnU-Net's ``file_ending``).
FILE_ENDING = ".nii.gz"


@dataclass(frozen=True)
class CaseFiles:
    """The files of one exported case, relative to the dataset folder (``/`` separated).

    Attributes
    ----------
    case_id:
        The case identifier.
    images:
        One file per channel, or one file holding every channel along its 4th axis (``stacked``).
    label:
        The label map, ``None`` for a test case.
    stacked:
        True when ``images`` is one 4D file of all channels (Decathlon, MONAI).
    """

    case_id: str
    images: tuple[str, ...]
    label: Optional[str] = None
    stacked: bool = False

    @property
    def files(self) -> tuple[str, ...]:
        return self.images + ((self.label,) if self.label else ())


@dataclass(frozen=True)
class DatasetInfo:
    """What an index file says about a dataset.

    Attributes
    ----------
    name, description:
        The dataset's name and a sentence about where it came from.
    channel_names:
        In channel order.
    labels:
        ``{value: name}``, background 0 first, consecutive.
    training, test:
        The cases, with their files.
    validation:
        Cases held out for validation (MONAI's datalist only).
    folds:
        ``{case id: fold}`` for cross-validation (MONAI's datalist only).
    """

    name: str
    description: str
    channel_names: tuple[str, ...]
    labels: Mapping[int, str]
    training: tuple[CaseFiles, ...] = ()
    test: tuple[CaseFiles, ...] = ()
    validation: tuple[CaseFiles, ...] = ()
    folds: Mapping[str, int] = field(default_factory=dict)

    @property
    def labelled(self) -> tuple[CaseFiles, ...]:
        """Every case with a label map (training and validation)."""
        return self.training + self.validation


@dataclass(frozen=True)
class DatasetIndex:
    """An exported dataset as read back from its folder, for the checks.

    ``problems`` lists, one line each, what is wrong with the folder's structure
    (a missing channel file, a label map without images, a count that does not
    match); the checks add what is wrong inside the files.
    """

    format: str
    folder: str
    info: DatasetInfo
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Layout:
    """A training layout; subclasses say where files go and how the index is written.

    Attributes
    ----------
    name:
        The dataset's name (``Lung`` in ``Dataset501_Lung``).
    dataset_id:
        The dataset's number (required by nnU-Net, optional elsewhere).
    """

    name: str
    dataset_id: Optional[int] = None

    format_name: ClassVar[str] = ""
    index_name: ClassVar[str] = "dataset.json"
    stacked: ClassVar[bool] = False
    file_ending: ClassVar[str] = FILE_ENDING

    def folder_name(self) -> str:
        """The dataset folder's name inside DST."""
        return sanitize_component(self.name)

    def case_files(self, case_id: str, split: CaseSplit, channels: int) -> CaseFiles:
        """Where the case's files go."""
        images_dir = "imagesTr" if split is CaseSplit.TRAINING else "imagesTs"
        label = f"labelsTr/{case_id}{self.file_ending}" if split is CaseSplit.TRAINING else None
        if self.stacked:
            return CaseFiles(case_id, (f"{images_dir}/{case_id}{self.file_ending}",), label, stacked=True)
        return CaseFiles(case_id, tuple(f"{images_dir}/{case_id}_{c:04d}{self.file_ending}" for c in range(channels)),
                         label)

    def describe(self) -> dict:
        """For fingerprints and the summary."""
        return {"format": self.format_name, "name": self.name, "id": self.dataset_id, "folder": self.folder_name()}

    def index_content(self, info: DatasetInfo) -> dict:
        raise NotImplementedError

    def write_index(self, folder: str, info: DatasetInfo) -> str:
        """Write the index file (atomically); returns its path."""
        path = os.path.join(folder, self.index_name)
        write_json(path, self.index_content(info))
        return path


def write_json(path: str, content) -> None:
    with atomic_output(path, overwrite=True) as temp:
        with open(temp, "w", encoding="utf-8") as handle:
            json.dump(content, handle, indent=2)
            handle.write("\n")


def read_json(path: str) -> tuple[Optional[dict], Optional[str]]:
    """``(content, None)`` or ``(None, problem)`` for a JSON object file."""
    try:
        with open(path, encoding="utf-8") as handle:
            content = json.load(handle)
    except FileNotFoundError:
        return None, f"{os.path.basename(path)} is missing"
    except (OSError, ValueError) as exc:
        return None, f"{os.path.basename(path)} cannot be read ({exc})"
    if not isinstance(content, dict):
        return None, f"{os.path.basename(path)} is not a JSON object"
    return content, None


def numbered_names(table) -> Optional[tuple[str, ...]]:
    """The names of an index table ``{"0": name, "1": name, ...}`` (nnU-Net's ``channel_names``, the
    Decathlon's ``modality``) in the order of their numbers; ``None`` when it is not such a table."""
    try:
        return tuple(str(name) for _, name in sorted((table or {}).items(), key=lambda item: int(item[0])))
    except (AttributeError, ValueError, TypeError):
        return None


def relative_entry(folder: str, entry) -> Optional[str]:
    """An index entry's path relative to ``folder`` with ``/`` (``None`` when it is not a string)."""
    if not isinstance(entry, str) or not entry:
        return None
    path = entry if os.path.isabs(entry) else os.path.join(folder, entry)
    return os.path.relpath(os.path.normpath(path), folder).replace(os.sep, "/")
