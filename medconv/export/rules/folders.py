"""Case folders: one folder per case, holding its images and its mask (KiTS, BraTS-style downloads).

::

    kits19/data/case_00000/imaging.nii.gz           BraTS2021_00000/BraTS2021_00000_flair.nii.gz
    kits19/data/case_00000/segmentation.nii.gz      BraTS2021_00000/BraTS2021_00000_t1.nii.gz ...
                                                    BraTS2021_00000/BraTS2021_00000_seg.nii.gz

The case id is the folder's name. In each folder the file whose name is a mask
by medconv's label-word rule (``segmentation``, ``seg``, ``mask``, ``label`` ...)
is the label map; every other image is a channel, named by what its file name
adds to the folder's name (``imaging``; ``flair``, ``t1``, ``t1ce``, ``t2``).
The dataset's channels are those more than half of the cases have; a case
without one of them fails with "channel ... is missing". A folder without a mask
is a test case. Channel names come from the file names (``imaging`` for KiTS):
name a CT channel "CT" with ``--channel-names CT`` so that nnU-Net uses its CT
normalisation (the export summary points this out when the values look like HU).
"""

from __future__ import annotations

import re
from collections import defaultdict

from ...labels import is_label_path
from ..cases import Pairing, Unpaired, UnpairedReason
from .base import Claim, DatasetView, Role, assemble

_SEPARATORS = re.compile(r"[^A-Za-z0-9]+")


class CaseFoldersRule:
    """One folder per case: channels plus one mask named like a mask."""

    name = "case-folders"
    summary = "one folder per case: images + a mask named seg/segmentation/mask/label (KiTS, BraTS)"

    def claims(self, dataset: DatasetView) -> bool:
        with_mask = 0
        for folder, sources in _by_folder(dataset).items():
            labels = [s for s in sources if _is_mask(dataset, s)]
            if folder and labels and len(labels) < len(sources):
                with_mask += 1
        return with_mask >= 2

    def pair(self, dataset: DatasetView) -> Pairing:
        claims, unpaired = [], dataset.set_apart()
        for folder, sources in _by_folder(dataset).items():
            if not folder:
                unpaired += [Unpaired(UnpairedReason.NOT_A_CHANNEL, "not inside a case folder; left out",
                                      sources=(s,)) for s in sources]
                continue
            case_id = folder.rsplit("/", 1)[-1]
            for source in sources:
                if _is_mask(dataset, source):
                    claims.append(Claim(source, case_id, Role.LABEL))
                else:
                    channel = _channel_key(dataset.stem(source), case_id)
                    claims.append(Claim(source, case_id, Role.IMAGE, channel))
        return assemble(self.name, claims, unpaired=unpaired)


def _by_folder(dataset: DatasetView) -> dict[str, list]:
    groups: dict[str, list] = defaultdict(list)
    for source in dataset.images():
        groups[dataset.folder(source)].append(source)
    return groups


def _is_mask(dataset: DatasetView, source) -> bool:
    """Whether the file name (not its folders) names a mask by the label-word rule."""
    return is_label_path(dataset.stem(source))


def _channel_key(stem: str, case_id: str) -> str:
    """What a file name adds to its case folder's name: ``BraTS2021_00000_flair`` in ``BraTS2021_00000`` -> ``flair``."""
    if stem.lower().startswith(case_id.lower()):
        rest = _SEPARATORS.sub("_", stem[len(case_id):]).strip("_")
        if rest:
            return rest
    return stem
