"""One meta builder for every DICOM layout (issue 10, fault 14): one key set, one MONOCHROME1 window rule.

Single-frame, mosaic and enhanced multi-frame units of the same acquisition must give
sidecars with the same DICOM keyword keys, each value what pydicom reads from the file,
and ``meta["window"]`` must follow the MONOCHROME1 inversion in every layout (the window
selects the same pixels of medconv's output as the header's window selects of pydicom's
rescaled values of the original).
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.datadict import tag_for_keyword

from dicom_synth import oriented, write_enhanced_dwi, write_mosaic, write_series
from medconv.readers.dicom import DicomReader

#: Keys a layout adds to meta["dicom"] that are not one DICOM attribute (documented in docs/dicom.md).
LAYOUT_KEYS = {"NumberOfImagesInMosaic", "FrameGroup", "EchoTimes"}
#: What every file below states at the top level, with the same values.
COMMON = {"ProtocolName": "ep2d_test", "SequenceName": "epfid2d1_64", "MagneticFieldStrength": "3",
          "EchoTime": "30", "RepetitionTime": "2000", "FlipAngle": "90", "PatientPosition": "HFS",
          "BodyPartExamined": "HEAD", "SliceThickness": "3", "SpacingBetweenSlices": "3"}
MONOCHROME1 = {"PhotometricInterpretation": "MONOCHROME1", "BitsStored": 12, "HighBit": 11,
               "WindowCenter": "1990", "WindowWidth": "400", "RescaleSlope": "1", "RescaleIntercept": "0"}
IOP = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def _tiles(count=4, rows=4, columns=6):
    return (1800 + 40 * np.arange(count)[:, None, None] + np.arange(rows * columns).reshape(1, rows, columns)
            ).astype(np.uint16)


def write_layout(folder, layout: str, extra: dict) -> None:
    """One unit of ``layout`` whose files state ``extra`` at the top level (pixels around 1800-2000)."""
    attributes = {"Manufacturer": "SIEMENS", **COMMON, **extra}
    positions = oriented(IOP, [0.0, 3.0, 6.0, 9.0], origin=(-30.0, -20.0, 10.0))
    if layout == "single-frame":
        write_series(folder, positions, IOP, modality="MR", rows=4, columns=6, intercept=0.0,
                     function=lambda p: 2000 + 5 * p[..., 0] + 3 * p[..., 2] - 2 * p[..., 1], extra=attributes)
    elif layout == "mosaic":
        write_mosaic(folder / "mosaic.dcm", _tiles(), first_tile=tuple(positions[0]), step=3.0, extra=attributes)
    else:
        write_enhanced_dwi(folder / "enhanced.dcm", [(0.0, None, "NONE")], positions, IOP, rows=4, columns=6,
                           function=lambda p: 2000 + 5 * p[..., 0] + 3 * p[..., 2] - 2 * p[..., 1],
                           extra=attributes)


def _read(folder):
    reader = DicomReader(jobs=1)
    (source,) = [s for s in reader.discover(str(folder)) if not s.info.get("excluded")]
    return reader.read(source), source


LAYOUTS = ["single-frame", "mosaic", "enhanced"]


def test_every_layout_writes_the_same_dicom_keyword_keys_with_the_files_values(tmp_path):
    keys = {}
    for layout in LAYOUTS:
        write_layout(tmp_path / layout, layout, {})
        volume, source = _read(tmp_path / layout)
        dicom = volume.meta["dicom"]
        unknown = [key for key in dicom if key not in LAYOUT_KEYS and tag_for_keyword(key) is None]
        assert unknown == [], (layout, unknown)  # DICOM keywords only (no snake_case twins)
        first = pydicom.dcmread(source.paths[0], stop_before_pixels=True)
        for key in set(dicom) - LAYOUT_KEYS:
            if key in first:
                expected = first[key].value
                if isinstance(expected, (list, pydicom.multival.MultiValue)):
                    assert list(dicom[key]) == [type(dicom[key][0])(v) for v in expected], (layout, key)
                else:
                    assert dicom[key] == type(dicom[key])(expected), (layout, key)
        keys[layout] = set(dicom) - LAYOUT_KEYS - {"SOPClassUID", "ImageType", "TransferSyntaxUID"}
    assert keys["single-frame"] == keys["mosaic"] == keys["enhanced"], keys
    assert set(COMMON) <= keys["single-frame"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_monochrome1_window_follows_the_inversion_in_every_layout(tmp_path, layout):
    write_layout(tmp_path, layout, MONOCHROME1)
    volume, source = _read(tmp_path)
    # PS3.3 C.11.2.1.2: the window applies before the inversion; medconv stores v -> low + high - v
    signed = pydicom.dcmread(source.paths[0], stop_before_pixels=True).PixelRepresentation == 1
    low, high = (-(1 << 11), (1 << 11) - 1) if signed else (0, (1 << 12) - 1)
    centre, width = 1990.0, 400.0
    assert volume.meta["window"] == [low + high - centre, width]
    assert volume.meta["dicom"]["WindowCenter"] == centre  # the header's, as stored
    # the header's window on pydicom's (rescaled) original selects the same pixels as meta["window"] on ours
    from pydicom.pixels import apply_modality_lut

    ours = np.asarray(volume.array, dtype=float)
    original = []
    for path in source.paths:
        ds = pydicom.dcmread(path)
        values = apply_modality_lut(ds.pixel_array, ds).astype(float)
        original.append(values if values.ndim == 3 else values[None])
    original = np.concatenate(original)
    inside_ours = np.abs(ours - volume.meta["window"][0]) <= width / 2
    inside_original = np.abs(original - centre) <= width / 2
    assert inside_ours.sum() == inside_original.sum() > 0
    assert np.allclose(np.sort(ours[inside_ours]), np.sort(low + high - original[inside_original]))
