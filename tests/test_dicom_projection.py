"""2D DICOM images through the reader: projection radiographs (Layout.PROJECTION) and 2D cine (Layout.CINE_2D).

References: pydicom's ``pixel_array`` / ``apply_modality_lut`` / ``apply_voi_lut``
on its own CR radiographs (``pydicom-data``: RG1 15-bit and RG3 10-bit MONOCHROME1,
uncompressed and JPEG 2000), the analytic MONOCHROME1 inversion
``2^BitsStored - 1 - x``, PS3.3's definition of PatientOrientation, and synthetic
CR / DX / MG / XA files written tag by tag (tests/test_greyscale.py's writer).
Issue 10 fault 8: a radiograph without ImagePositionPatient alone, or two in one
series, were excluded / failed; they are 2D images now, one unit per file.
"""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from pydicom.uid import generate_uid

from medconv.cli.main import main
from medconv.options import ReadOptions
from medconv.readers.dicom import DicomReader
from medconv.readers.dicom.greyscale import VoiChoice, VoiKind, Window
from medconv.readers.dicom.plan import Layout
from test_greyscale import CR_STORAGE, MG_PRESENTATION_STORAGE, pydicom_data, pydicom_range, radiograph, stored_ramp

XA_STORAGE = "1.2.840.10008.5.1.4.1.1.12.1"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
DISPLAY = ReadOptions(voi=VoiChoice())


def sources_of(folder):
    reader = DicomReader(jobs=1)
    return reader, list(reader.discover(str(folder)))


def pixels(volume) -> np.ndarray:
    """The volume as the (rows, columns) picture pydicom gives."""
    return np.asarray(volume.array)[:, :, 0].T


def manifest(folder) -> list[dict]:
    return [json.loads(line) for line in (folder / "medconv-manifest.jsonl").read_text().splitlines()]


# -- pydicom's radiographs -----------------------------------------------------------------------

@pytest.mark.corpus
@pytest.mark.parametrize("name, bits, orientation", [("RG1_UNCR.dcm", 15, "LF"), ("RG3_UNCR.dcm", 10, "RF"),
                                                     ("RG3_J2KR.dcm", 10, "RF")])
def test_pydicom_radiographs_through_the_reader(tmp_path, name, bits, orientation):
    shutil.copy(pydicom_data(name), tmp_path / name)
    reader, (source,) = sources_of(tmp_path)
    assert source.info["layout"] == "projection" and "excluded" not in source.info
    ds = pydicom.dcmread(tmp_path / name)
    stored = ds.pixel_array
    # the default: modality values, MONOCHROME1 inverted by bit depth (never by the data's maximum), lossless
    lossless = reader.read(source)
    assert lossless.shape == (ds.Columns, ds.Rows, 1) and lossless.array.dtype == np.uint16
    np.testing.assert_array_equal(pixels(lossless), (2**bits - 1) - stored.astype(np.int64))
    assert lossless.meta["dicom"]["greyscale"]["presentation"] == "INVERSE"
    # display values: pydicom's VOI on its output range, scaled to 8 bits and inverted once
    shown = reader.read(source, DISPLAY)
    reference = apply_voi_lut(apply_modality_lut(stored, ds), ds)
    low, high = pydicom_range(ds)
    expected = np.floor(255.0 - (reference - low) / (high - low) * 255.0 + 0.5)
    ours = pixels(shown).astype(np.float64)
    assert shown.array.dtype == np.uint8 and np.abs(ours - expected).max() <= 1 and np.mean(ours == expected) > 0.999
    # PatientOrientation (PS3.3 C.7.6.1.1.1): first entry along a row (i), second down a column (j); LPS letters
    letters = {"L": (1, 0, 0), "R": (-1, 0, 0), "F": (0, 0, -1)}
    np.testing.assert_allclose(lossless.direction[:, 0], letters[orientation[0]])
    np.testing.assert_allclose(lossless.direction[:, 1], letters[orientation[1]])
    assert lossless.meta["dicom"]["OrientationSource"] == "PatientOrientation"


@pytest.mark.corpus
@pytest.mark.parametrize("name, modality_lut", [("mlut_18.dcm", True), ("vlut_04.dcm", False)])
def test_lut_files_as_digitised_film_through_the_reader(tmp_path, name, modality_lut):
    """pydicom's Modality LUT and VOI LUT files (secondary captures), given a projection modality (a digitised MG)."""
    ds = pydicom.dcmread(pydicom_data(name))
    ds.Modality = "MG"
    ds.save_as(tmp_path / name)
    reader, (source,) = sources_of(tmp_path)
    assert source.info["layout"] == "projection"
    stored = ds.pixel_array
    modality = apply_modality_lut(stored, ds)
    np.testing.assert_array_equal(pixels(reader.read(source)), modality)
    if not modality_lut:
        voi = apply_voi_lut(modality, ds)  # the file's VOI LUT, entry by entry, onto its own output range
        top = 2 ** int(ds.VOILUTSequence[0].LUTDescriptor[2]) - 1
        for bits in (8, 16):
            shown = reader.read(source, ReadOptions(voi=VoiChoice(), voi_bits=bits))
            np.testing.assert_array_equal(pixels(shown), np.floor(voi / top * (2**bits - 1) + 0.5))
            assert shown.meta["dicom"]["greyscale"]["voi"]["kind"] == "file-lut"


# -- synthetic radiographs ------------------------------------------------------------------------

def test_window_display_equals_pydicom_and_sixteen_bits(tmp_path):
    stored = stored_ramp(12, shape=(48, 64))
    radiograph(tmp_path / "cr.dcm", stored, sop_class=CR_STORAGE, modality="CR", photometric="MONOCHROME2",
               WindowCenter=[1800, 2400], WindowWidth=[1200, 3000], RescaleSlope=1, RescaleIntercept=0,
               PixelSpacing=[0.16, 0.15])
    reader, (source,) = sources_of(tmp_path)
    ds = pydicom.dcmread(tmp_path / "cr.dcm")
    low, high = pydicom_range(ds)
    for index in (0, 1):
        reference = apply_voi_lut(ds.pixel_array, ds, index=index)
        for bits in (8, 16):
            shown = reader.read(source, ReadOptions(voi=VoiChoice(index=index), voi_bits=bits))
            top = 2**bits - 1
            expected = np.floor((reference - low) / (high - low) * top + 0.5)
            ours = pixels(shown).astype(np.float64)
            assert np.abs(ours - expected).max() <= 1 and np.mean(ours == expected) > 0.999
            assert shown.array.dtype == (np.uint8 if bits == 8 else np.uint16)
            assert "window" not in shown.meta  # applied: not carried on as if it still applied
    volume = reader.read(source)
    assert volume.spacing[:2] == (0.15, 0.16) and volume.meta["dicom"]["PixelSpacingSource"] == "PixelSpacing"
    given = reader.read(source, ReadOptions(voi=VoiChoice(VoiKind.WINDOW, window=Window(2000, 1001))))
    y = np.clip((stored - 1999.5) / 1000.0 + 0.5, 0, 1) * 255  # PS3.3 C.11.2.1.2 LINEAR, written out
    np.testing.assert_array_equal(pixels(given), np.floor(y + 0.5))


def test_signed_rescaled_modality_values_equal_pydicom(tmp_path):
    stored = stored_ramp(12, signed=True)
    radiograph(tmp_path / "dx.dcm", stored, photometric="MONOCHROME2", signed=True, RescaleSlope=2,
               RescaleIntercept=-100)
    reader, (source,) = sources_of(tmp_path)
    ds = pydicom.dcmread(tmp_path / "dx.dcm")
    volume = reader.read(source)
    np.testing.assert_array_equal(pixels(volume), apply_modality_lut(ds.pixel_array, ds))
    assert volume.array.dtype == np.int16


def test_spacing_from_imager_pixel_spacing_and_magnification_in_the_sidecar(tmp_path):
    stored = stored_ramp(12, shape=(30, 40))
    (tmp_path / "in").mkdir()
    radiograph(tmp_path / "in" / "dx.dcm", stored, ImagerPixelSpacing=[0.15, 0.12], EstimatedRadiographicMagnificationFactor=1.5)
    assert main(["tcia2nii", str(tmp_path / "in"), str(tmp_path / "out"), "-q", "-j", "1"]) == 0
    (row,) = manifest(tmp_path / "out")
    image = nib.load(tmp_path / "out" / row["output"])
    np.testing.assert_allclose(image.header.get_zooms(), (0.12 / 1.5, 0.15 / 1.5, 1.0), rtol=1e-6)
    sidecar = json.loads((tmp_path / "out" / row["output"].replace(".nii.gz", ".json")).read_text())
    dicom = sidecar["meta"]["dicom"]
    assert dicom["PixelSpacingSource"] == "ImagerPixelSpacing / EstimatedRadiographicMagnificationFactor"
    assert dicom["EstimatedRadiographicMagnificationFactor"] == 1.5
    np.testing.assert_array_equal(np.asarray(image.dataobj)[:, :, 0].T, 4095 - stored)  # MONOCHROME1, lossless


# -- issue 10, fault 8: radiographs without ImagePositionPatient -----------------------------------

def test_fault_8_one_radiograph_alone_and_two_in_a_series(tmp_path):
    stored = stored_ramp(12, shape=(20, 24))
    study, series = generate_uid(), generate_uid()
    (tmp_path / "in").mkdir()
    radiograph(tmp_path / "in" / "alone.dcm", stored)
    for number, view in ((1, "PA"), (2, "LL")):
        radiograph(tmp_path / "in" / f"view{number}.dcm", stored + number, sop_class=CR_STORAGE, modality="CR",
                   photometric="MONOCHROME2", StudyInstanceUID=study, SeriesInstanceUID=series, SeriesNumber=2,
                   InstanceNumber=number, ViewPosition=view, SeriesDescription="chest 2 views", PatientID="RAD-002")
    reader, sources = sources_of(tmp_path / "in")
    assert len(sources) == 3 and all(s.info["layout"] == "projection" and "excluded" not in s.info for s in sources)
    views = sorted((s for s in sources if s.info["patient_id"] == "RAD-002"), key=lambda s: s.info["file"])
    assert [s.info["series_description"] for s in views] == ["chest 2 views image-1", "chest 2 views image-2"]
    for number, source in enumerate(views, start=1):
        np.testing.assert_array_equal(pixels(reader.read(source)), stored + number)
    assert main(["tcia2nii", str(tmp_path / "in"), str(tmp_path / "out"), "-q", "-j", "1"]) == 0  # none fails now
    rows = manifest(tmp_path / "out")
    assert sorted(r["status"] for r in rows) == ["converted"] * 3
    assert len({r["output"] for r in rows}) == 3 and all(r["shape"] == [24, 20, 1] for r in rows)


def test_other_2d_images_without_geometry_are_excluded_alike_and_include_2d_converts_them(tmp_path):
    """Two OT (not projection) greyscale images without position in one series: two excluded 2D units, never a
    stack that fails; --include-2d converts both through the same 2D path."""
    stored = stored_ramp(8, shape=(10, 12))
    series = generate_uid()
    (tmp_path / "in").mkdir()
    for number in (1, 2):
        radiograph(tmp_path / "in" / f"ot{number}.dcm", stored, modality="OT", sop_class="1.2.840.10008.5.1.4.1.1.4", photometric="MONOCHROME2",
                   bits_stored=8, SeriesInstanceUID=series, InstanceNumber=number)
    _, sources = sources_of(tmp_path / "in")
    assert len(sources) == 2 and all(s.info.get("is_2d") and "2D image" in s.info["excluded"] for s in sources)
    assert main(["tcia2nii", str(tmp_path / "in"), str(tmp_path / "out"), "-q", "-j", "1"]) == 0
    assert [r["status"] for r in manifest(tmp_path / "out")] == ["excluded"] * 2
    assert all("--include-2d" in r["reason"] for r in manifest(tmp_path / "out"))
    assert main(["tcia2nii", str(tmp_path / "in"), str(tmp_path / "out2"), "-q", "-j", "1", "--include-2d"]) == 0
    assert [r["status"] for r in manifest(tmp_path / "out2")] == ["converted"] * 2


def test_greyscale_secondary_capture_of_a_projection_modality_is_a_radiograph(tmp_path):
    """CBIS-DDSM's mammograms are Secondary Captures of Modality MG; a CT screenshot stays excluded."""
    stored = stored_ramp(12, shape=(16, 16))
    radiograph(tmp_path / "mg.dcm", stored, sop_class=SECONDARY_CAPTURE, modality="MG", photometric="MONOCHROME2")
    radiograph(tmp_path / "ct.dcm", stored, sop_class=SECONDARY_CAPTURE, modality="CT", photometric="MONOCHROME2")
    _, sources = sources_of(tmp_path)
    by_modality = {s.info["modality"]: s for s in sources}
    assert by_modality["MG"].info["layout"] == "projection" and "excluded" not in by_modality["MG"].info
    assert by_modality["CT"].info["excluded"].startswith("secondary capture")


# -- multi-frame 2D: one volume ------------------------------------------------------------------

def test_xa_cine_is_one_volume_of_its_frames(tmp_path):
    frames = np.stack([stored_ramp(10, shape=(12, 16)) // (k + 1) for k in range(5)]).astype(np.uint16)
    radiograph(tmp_path / "xa.dcm", frames[0], sop_class=XA_STORAGE, modality="XA", photometric="MONOCHROME2",
               bits_stored=10, NumberOfFrames=5, FrameTime=66.7, FrameIncrementPointer=0x00181063,
               PixelSpacing=[0.3, 0.3])
    ds = pydicom.dcmread(tmp_path / "xa.dcm")
    ds.PixelData = frames.tobytes()
    ds.save_as(tmp_path / "xa.dcm")
    reader, (source,) = sources_of(tmp_path)
    assert source.info["layout"] == "cine" and source.info["shape"] == [16, 12, 5]
    volume = reader.read(source)
    assert volume.shape == (16, 12, 5)
    np.testing.assert_array_equal(np.asarray(volume.array).transpose(2, 1, 0), pydicom.dcmread(tmp_path / "xa.dcm")
                                  .pixel_array)
    assert volume.meta["dicom"]["FrameTime"] == 66.7 and any("frame index" in w for w in volume.warnings)
    assert main(["tcia2nii", str(tmp_path), str(tmp_path / "out"), "-q", "-j", "1"]) == 0
    (row,) = manifest(tmp_path / "out")
    assert row["status"] == "converted" and row["shape"] == [16, 12, 5]


def test_a_projection_unit_plan_is_frozen_and_names_its_file(tmp_path):
    import pickle

    radiograph(tmp_path / "00436515-870c.dcm", stored_ramp(12, shape=(8, 8)), sop_class=MG_PRESENTATION_STORAGE,
               modality="MG")
    _, (source,) = sources_of(tmp_path)
    assert source.plan.layout is Layout.PROJECTION and len(source.plan.frames) == 1
    assert source.info["file"] == "00436515-870c"
    assert pickle.loads(pickle.dumps(source)) == source


def test_ct_slices_that_all_lost_their_geometry_stay_one_stack_that_fails(tmp_path):
    """Cross-sectional slices without geometry are a broken series, not 2D images: one unit, one clear failure."""
    from medconv.errors import GeometryError

    series = generate_uid()
    for number in (1, 2, 3):
        radiograph(tmp_path / f"ct{number}.dcm", stored_ramp(12, shape=(8, 8)), modality="CT",
                   sop_class="1.2.840.10008.5.1.4.1.1.2", photometric="MONOCHROME2", SeriesInstanceUID=series,
                   InstanceNumber=number)
    reader, (source,) = sources_of(tmp_path)
    assert source.info["layout"] == "single" and source.info["n_files"] == 3
    with pytest.raises(GeometryError, match="ImagePositionPatient"):
        reader.read(source)


def test_an_orientation_rounded_within_the_tolerance_converts_orthonormal(tmp_path):
    """ImageOrientationPatient written with few decimals is accepted (|row . column| <= 1e-3) and must then convert
    (it failed in Volume: 'direction is not orthonormal'), along the directions the file states."""
    stated_row, stated_column = np.array([1.0, 0.0, 0.0]), np.array([0.0005, 1.0, 0.0])
    radiograph(tmp_path / "dx.dcm", stored_ramp(12, shape=(20, 24)), ImagePositionPatient=[0, 0, 0],
               ImageOrientationPatient=[*stated_row, *stated_column])
    reader, (source,) = sources_of(tmp_path)
    volume = reader.read(source)
    np.testing.assert_allclose(volume.direction.T @ volume.direction, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(volume.direction[:, 0], stated_row, atol=1e-3)
    np.testing.assert_allclose(volume.direction[:, 1], stated_column / np.linalg.norm(stated_column), atol=1e-3)
    assert volume.meta["dicom"]["OrientationSource"] == "ImageOrientationPatient"


def test_an_orientation_beyond_the_tolerance_is_ignored_with_the_measure(tmp_path):
    """A 2D picture keeps its policy (a bad orientation is ignored, with a warning), by the stacks' one rule."""
    radiograph(tmp_path / "dx.dcm", stored_ramp(12, shape=(20, 24)), ImagePositionPatient=[0, 0, 0],
               ImageOrientationPatient=[0.99, 0.0, 0.0, 0.0, 1.0, 0.0], PatientOrientation=["L", "F"])
    reader, (source,) = sources_of(tmp_path)
    volume = reader.read(source)
    assert volume.meta["dicom"]["OrientationSource"] == "PatientOrientation"
    assert any("row vector has length 0.99" in w and w.endswith("ignored") for w in volume.meta["warnings"])
