"""Rules that pair an image and its mask by name: LUNA16, Sliver07, LiTS.

=========  ==============================================  =============================  ==========
rule       image                                           label map                      case id
=========  ==============================================  =============================  ==========
luna16     ``subsetN/<SeriesInstanceUID>.mhd``              ``seg-lungs-LUNA16/<uid>.mhd`` ``<uid>``
sliver07   ``liver-orig001.mhd``                            ``liver-seg001.mhd``           ``liver_001``
lits       ``volume-0.nii``                                 ``segmentation-0.nii``         ``case_0``
=========  ==============================================  =============================  ==========

Folders do not matter for Sliver07 and LiTS (images and masks may sit side by
side or apart). All three are CT: the channel is "CT". An image without a mask
is a test case.
"""

from __future__ import annotations

import re
from typing import Optional

from ..cases import Pairing, Unpaired, UnpairedReason
from .base import CT_CHANNEL, Claim, DatasetView, Role, assemble

_SUBSET = re.compile(r"^subset\d+$", re.IGNORECASE)
_LUNG_MASKS = re.compile(r"^seg-lungs", re.IGNORECASE)
_SLIVER = re.compile(r"^(?P<prefix>[a-z]+)[-_]?(?P<role>orig|seg)(?P<number>\d+)$", re.IGNORECASE)
_LITS = re.compile(r"^(?P<role>volume|segmentation)-(?P<number>\d+)$", re.IGNORECASE)

#: LiTS's documented label values (0 is background).
LITS_LABELS = {1: "liver", 2: "tumor"}
#: Sliver07's masks mark the liver with 1.
SLIVER07_LABELS = {1: "liver"}


class _NameRule:
    """A rule that gives each unit a case id and a role from its path alone."""

    name = ""
    summary = ""
    label_names: dict[int, str] = {}

    def claim(self, dataset: DatasetView, source) -> Optional[Claim]:
        raise NotImplementedError

    def claims(self, dataset: DatasetView) -> bool:
        roles = {claim.role for claim in (self.claim(dataset, s) for s in dataset.images()) if claim}
        return roles == {Role.IMAGE, Role.LABEL}

    def pair(self, dataset: DatasetView) -> Pairing:
        claims, unpaired = [], dataset.set_apart()
        for source in dataset.images():
            claim = self.claim(dataset, source)
            if claim is None:
                unpaired.append(Unpaired(UnpairedReason.NOT_A_CHANNEL,
                                         f"not named like a {self.name} image or mask; left out", sources=(source,)))
            else:
                claims.append(claim)
        return assemble(self.name, claims, channel_names=(CT_CHANNEL,), label_names=self.label_names,
                        unpaired=unpaired)


class Luna16Rule(_NameRule):
    """LUNA16: ``subsetN/<uid>.mhd`` and ``seg-lungs-LUNA16/<uid>.mhd``."""

    name = "luna16"
    summary = "subsetN/<uid>.mhd + seg-lungs-LUNA16/<uid>.mhd (LUNA16)"

    def claim(self, dataset: DatasetView, source) -> Optional[Claim]:
        parts = dataset.parts(source)
        folders = parts[:-1]
        if any(_LUNG_MASKS.match(folder) for folder in folders):
            return Claim(source, parts[-1], Role.LABEL)
        if any(_SUBSET.match(folder) for folder in folders):
            return Claim(source, parts[-1], Role.IMAGE)
        return None


class Sliver07Rule(_NameRule):
    """Sliver07: ``liver-orig001`` and ``liver-seg001``."""

    name = "sliver07"
    summary = "liver-orig001 + liver-seg001 (Sliver07)"
    label_names = SLIVER07_LABELS

    def claim(self, dataset: DatasetView, source) -> Optional[Claim]:
        match = _SLIVER.match(dataset.stem(source))
        if not match:
            return None
        role = Role.IMAGE if match["role"].lower() == "orig" else Role.LABEL
        return Claim(source, f"{match['prefix'].lower()}_{match['number']}", role)


class LitsRule(_NameRule):
    """LiTS: ``volume-N`` and ``segmentation-N``."""

    name = "lits"
    summary = "volume-N + segmentation-N (LiTS)"
    label_names = LITS_LABELS

    def claim(self, dataset: DatasetView, source) -> Optional[Claim]:
        match = _LITS.match(dataset.stem(source))
        if not match:
            return None
        role = Role.IMAGE if match["role"].lower() == "volume" else Role.LABEL
        return Claim(source, f"case_{match['number']}", role)
