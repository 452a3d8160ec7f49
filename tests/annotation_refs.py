"""ImageReferences built for tests independently of the annotation readers.

The grid comes from ``medconv.read`` (the image as medconv writes it, the contract
of :class:`medconv.image_reference.ImageReference`), the acquired instances and
UIDs from pydicom headers. Until the DICOM reader provides ``image_reference``
this is how the tests tie an annotation to its image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pydicom

import medconv
from medconv.source import Source
from medconv.image_reference import ImageReference, ReferencedInstance
from medconv.transforms.resample import Grid


def image_files(folder: Path, series_uid: str | None = None) -> list[Path]:
    """The image files (with pixels and a position) of ``folder``, optionally of one series."""
    files = []
    for path in sorted(Path(folder).iterdir()):
        if not path.is_file():
            continue
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - not DICOM
            continue
        if "ImagePositionPatient" not in ds and "PerFrameFunctionalGroupsSequence" not in ds:
            continue
        if ds.get("Modality") in ("RTSTRUCT", "SEG"):
            continue
        if series_uid is None or ds.SeriesInstanceUID == series_uid:
            files.append(path)
    return files


def reference_for(files: Iterable[Path], unit_id: str = "image", grid: Grid | None = None) -> ImageReference:
    """The ImageReference of the single-frame series made of ``files``."""
    files = [Path(f) for f in files]
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    if grid is None:
        grid = Grid.of(medconv.read(Source(id=unit_id, reader="dicom", paths=tuple(str(f) for f in files))))
    first = headers[0]
    normal = np.cross(np.asarray(first.ImageOrientationPatient[:3], float),
                      np.asarray(first.ImageOrientationPatient[3:], float))
    instances = sorted((ReferencedInstance(str(h.SOPInstanceUID), tuple(float(v) for v in h.ImagePositionPatient))
                        for h in headers), key=lambda inst: float(np.dot(inst.position, normal)))
    return ImageReference(unit_id=unit_id, series_uid=str(first.SeriesInstanceUID),
                          study_uid=str(first.StudyInstanceUID),
                          frame_of_reference_uid=str(first.get("FrameOfReferenceUID", "")),
                          modality=str(first.Modality), grid=grid, instances=tuple(instances))
