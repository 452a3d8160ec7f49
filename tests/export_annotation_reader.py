"""A stand-in annotation reader for the export tests (what issue 11's phase 2 will register for RTSTRUCT/SEG/LIDC).

It discovers ``*.annotation.json`` files, each naming the image unit it is drawn
on (``annotates``), its label table (``labels``) and a ``.npy`` mask on that
image's grid; ``read`` returns the label Volume with ``meta["annotates"]`` and
``meta["labels"]``, the contract of ``medconv/volume.py`` META_KEYS. Geometry comes
from the image file via nibabel.
"""

from __future__ import annotations

import json
import os

import nibabel as nib
import numpy as np

from medconv.geometry import LPS_TO_RAS, geometry_from_affine
from medconv.source import Source
from medconv.volume import Volume


class FakeAnnotationReader:
    name = "fakeannot"
    suffixes = (".annotation.json",)

    def sniff(self, path: str) -> bool:
        return path.endswith(".annotation.json")

    def discover(self, root: str):
        for folder, _, files in os.walk(root):
            for name in sorted(files):
                if name.endswith(".annotation.json"):
                    path = os.path.join(folder, name)
                    with open(path) as handle:
                        content = json.load(handle)
                    unit = os.path.relpath(path, root)[: -len(".annotation.json")]
                    yield Source(unit, self.name, (path, os.path.join(folder, content["mask"])), root,
                                 {"annotates": content["annotates"], "labels": content["labels"]})

    def read(self, source: Source, options=None) -> Volume:
        with open(source.paths[0]) as handle:
            content = json.load(handle)
        image = nib.load(os.path.join(source.root, content["image_file"]))
        spacing, origin, direction = geometry_from_affine(LPS_TO_RAS @ image.affine)
        return Volume(np.load(source.paths[1]), spacing, origin, direction, kind="label",
                      meta={"annotates": content["annotates"], "labels": content["labels"],
                            "source_files": list(source.paths)})
