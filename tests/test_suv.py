"""PET SUV: synthetic PET series from a known activity map, dose, half-life and times, against the analytic SUV.

The series are written tag by tag as a Siemens / GE PET export is (PET Image
Storage, Units BQML, per-slice RescaleSlope, RadiopharmaceuticalInformationSequence),
read with medconv's DICOM reader, and the SUV is checked against
``A x weight / (dose x 2^(-t / T_half))`` computed here from the same numbers.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

import medconv
from medconv.errors import HeaderError, NotApplicableError
from medconv.readers.dicom.suv import (SuvKind, apply_suv, decayed_dose, lean_body_mass_kg,
                                       pet_dose_facts, suv_scale, with_frame_time)

PET_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
F18_HALF_LIFE = 6586.2  # s, as scanners write it
DOSE = 3.5e8  # Bq
WEIGHT = 72.5  # kg
SLOPES = (0.5, 0.25, 0.125)  # per slice, exact in binary
RNG = np.random.default_rng(5)
STORED = RNG.integers(0, 30000, (len(SLOPES), 6, 8)).astype(np.int16)  # (slice, row, column)


def activity() -> np.ndarray:
    """The activity map in Bq/ml, (slice, row, column)."""
    return STORED.astype(np.float64) * np.array(SLOPES)[:, None, None]


def pet_header(**changes) -> Dataset:
    """One PET image header with the SUV attributes (changes: keyword=value, None removes)."""
    ds = Dataset()
    ds.Modality, ds.Manufacturer, ds.Units, ds.DecayCorrection = "PT", "SIEMENS", "BQML", "START"
    ds.CorrectedImage = ["NORM", "DTIM", "ATTN", "SCAT", "DECY", "RAN"]
    ds.SeriesDate, ds.SeriesTime = "20240305", "110230.000000"
    ds.AcquisitionDate, ds.AcquisitionTime = "20240305", "110230.000000"
    ds.StudyDate = "20240305"
    ds.PatientWeight, ds.PatientSize, ds.PatientSex = WEIGHT, 1.78, "M"
    ds.ActualFrameDuration = 180000  # ms
    item = Dataset()
    item.Radiopharmaceutical = "Fluorodeoxyglucose"
    item.RadiopharmaceuticalStartTime = "100000.000000"
    item.RadiopharmaceuticalStartDateTime = "20240305100000.000000"
    item.RadionuclideTotalDose = DOSE
    item.RadionuclideHalfLife = F18_HALF_LIFE
    item.RadionuclidePositronFraction = 0.9673
    ds.RadiopharmaceuticalInformationSequence = [item]
    for keyword, value in changes.items():
        target = item if keyword.startswith("Radio") else ds
        if value is None:
            if keyword in target:
                delattr(target, keyword)
        else:
            setattr(target, keyword, value)
    return ds


def write_pet_series(folder, **changes) -> list:
    """Three axial PET slices (2 mm apart) with the activity map; returns the paths in slice order."""
    folder.mkdir(parents=True, exist_ok=True)
    series_uid, study_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    paths = []
    for k, slope in enumerate(SLOPES):
        ds = pet_header(**changes)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = PET_STORAGE, generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = PET_STORAGE, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.PatientID, ds.SeriesNumber, ds.InstanceNumber, ds.ImageIndex = "PET-001", 4, k + 1, k + 1
        ds.SeriesDescription = "PET WB"
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-20.0, -15.0, 100.0 + 2.0 * k]
        ds.PixelSpacing, ds.SliceThickness = [4.0, 4.0], 2.0
        ds.Rows, ds.Columns = STORED.shape[1:]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = slope, 0, "BQML"
        ds.PixelData = STORED[k].tobytes()
        path = folder / f"PT{k + 1:04d}.dcm"
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
        paths.append(path)
    return paths


def analytic_suv(elapsed_s: float, mass_kg: float = WEIGHT) -> np.ndarray:
    """The SUV of the activity map, (i, j, k), for a dose decayed over ``elapsed_s``."""
    dose = DOSE * 2.0 ** (-elapsed_s / F18_HALF_LIFE)
    return (activity() * mass_kg * 1000.0 / dose).transpose(2, 1, 0)


@pytest.mark.parametrize("decay, elapsed", [("START", 3750.0), ("ADMIN", 0.0)])
def test_suv_of_a_pet_series_equals_the_analytic_value(tmp_path, decay, elapsed):
    paths = write_pet_series(tmp_path / "pet", DecayCorrection=decay)
    volume = medconv.read(tmp_path / "pet")
    assert volume.meta["units"] == "BQML"
    np.testing.assert_allclose(volume.array, activity().transpose(2, 1, 0), rtol=1e-6)
    scale = suv_scale(pet_dose_facts(pydicom.dcmread(paths[0], stop_before_pixels=True)))
    suv = apply_suv(volume, scale)
    assert suv.array.dtype == np.float32 and suv.meta["units"] == "SUVbw g/ml"
    np.testing.assert_allclose(suv.array, analytic_suv(elapsed), rtol=1e-4)
    assert suv.meta["dicom"]["suv"]["decay_reference"].startswith(decay)
    medconv.write(suv, tmp_path / "suv.nii.gz")
    assert medconv.read(tmp_path / "suv.nii.gz").array.dtype == np.float32


def test_injection_time_of_day_across_midnight(tmp_path):
    header = pet_header(SeriesDate="20240306", SeriesTime="004000", AcquisitionDate="20240306",
                        AcquisitionTime="004000", RadiopharmaceuticalStartDateTime=None,
                        RadiopharmaceuticalStartTime="233000")
    facts = pet_dose_facts(header)
    assert facts.injection == datetime(2024, 3, 5, 23, 30) and any("day before" in n for n in facts.notes)
    dose, _ = decayed_dose(facts)
    assert dose == pytest.approx(DOSE * 2.0 ** (-4200.0 / F18_HALF_LIFE), rel=1e-12)  # 70 minutes
    assert suv_scale(facts).factor == pytest.approx(WEIGHT * 1000.0 / dose, rel=1e-12)


def test_no_decay_correction_decays_to_each_frame_and_averages_over_it():
    facts = pet_dose_facts(pet_header(DecayCorrection="NONE", AcquisitionTime="103000"))  # 30 min after
    decay_constant = math.log(2) / F18_HALF_LIFE
    mean_over_frame = (1 - math.exp(-decay_constant * 180.0)) / (decay_constant * 180.0)
    expected = DOSE * math.exp(-decay_constant * 1800.0) * mean_over_frame
    assert decayed_dose(facts)[0] == pytest.approx(expected, rel=1e-12)
    later = with_frame_time(facts, datetime(2024, 3, 5, 10, 45))
    assert decayed_dose(later)[0] == pytest.approx(expected * math.exp(-decay_constant * 900.0), rel=1e-12)


def test_ge_scan_start_and_post_processed_series_time():
    ge = pet_header(Manufacturer="GE MEDICAL SYSTEMS", SeriesTime="120000")
    block = ge.private_block(0x0009, "GEMS_PETD_01", create=True)
    block.add_new(0x0D, "DT", "20240305110230.00")
    facts = pet_dose_facts(ge)
    assert facts.decay_reference == (datetime(2024, 3, 5, 11, 2, 30), "START: GE scan start (0009,100D)")
    reprocessed = pet_dose_facts(pet_header(SeriesTime="150000", AcquisitionTime="110230"))
    reference, why = reprocessed.decay_reference
    assert reference == datetime(2024, 3, 5, 11, 2, 30) and "post-processed" in why


def test_philips_counts_use_the_activity_concentration_factor():
    header = pet_header(Manufacturer="Philips", Units="CNTS")
    block = header.private_block(0x7053, "Philips PET Private Group", create=True)
    block.add_new(0x09, "DS", "2.5")  # Bq/ml per count
    scale = suv_scale(pet_dose_facts(header))
    assert scale.factor == pytest.approx(2.5 * WEIGHT * 1000.0 / (DOSE * 2.0 ** (-3750.0 / F18_HALF_LIFE)), rel=1e-12)
    only_suv = pet_header(Manufacturer="Philips", Units="CNTS")
    only_suv.private_block(0x7053, "Philips PET Private Group", create=True).add_new(0x00, "DS", "0.00042")
    assert suv_scale(pet_dose_facts(only_suv)).factor == pytest.approx(0.00042)
    with pytest.raises(HeaderError, match=r"\(7053,1009\)"):
        suv_scale(pet_dose_facts(pet_header(Units="CNTS")))


def test_sul_uses_janmahasatian_lean_body_mass():
    for sex, height, constants in (("M", 1.78, (6680.0, 216.0)), ("F", 1.62, (8780.0, 244.0))):
        facts = pet_dose_facts(pet_header(PatientSex=sex, PatientSize=height))
        bmi = WEIGHT / height**2
        lbm = 9270.0 * WEIGHT / (constants[0] + constants[1] * bmi)
        assert lean_body_mass_kg(WEIGHT, height, sex) == pytest.approx(lbm, rel=1e-12)
        sul, suv = suv_scale(facts, SuvKind.LEAN_BODY_MASS), suv_scale(facts)
        assert sul.factor == pytest.approx(suv.factor * lbm / WEIGHT, rel=1e-12)
        assert sul.units.startswith("SUL")


@pytest.mark.parametrize("changes, message", [
    pytest.param({"PatientWeight": None}, r"PatientWeight \(0010,1030\) is missing", id="no-weight"),
    pytest.param({"PatientWeight": 72500}, r"PatientWeight \(0010,1030\) is 72500 kg", id="weight-in-grams"),
    pytest.param({"RadionuclideTotalDose": None}, r"RadionuclideTotalDose \(0018,1074\) is missing", id="no-dose"),
    pytest.param({"RadionuclideTotalDose": 350}, r"RadionuclideTotalDose \(0018,1074\) is 350 Bq", id="dose-in-MBq"),
    pytest.param({"RadionuclideHalfLife": None}, r"RadionuclideHalfLife \(0018,1075\)", id="no-half-life"),
    pytest.param({"DecayCorrection": None}, r"DecayCorrection \(0054,1102\)", id="no-decay-correction"),
    pytest.param({"Units": "CPS"}, r"Units \(0054,1001\) is CPS", id="counts-per-second"),
    pytest.param({"RadiopharmaceuticalStartDateTime": "20240305120000"}, "after the decay reference",
                 id="injection-after-scan"),
    pytest.param({"RadiopharmaceuticalStartDateTime": None, "RadiopharmaceuticalStartTime": None},
                 r"RadiopharmaceuticalStartTime \(0018,1072\) are missing", id="no-injection-time"),
    pytest.param({"RadiopharmaceuticalStartDateTime": None, "RadionuclideHalfLife": 282276.0},
                 "injection day is unknown", id="zr89-time-of-day-only"),
])
def test_missing_or_contradictory_inputs_name_the_tag(changes, message):
    with pytest.raises(HeaderError, match=message):
        suv_scale(pet_dose_facts(pet_header(**changes), path="PT0001.dcm"))


@pytest.mark.parametrize("changes, message", [
    pytest.param({"PatientSize": None}, r"PatientSize \(0010,1020\) is missing", id="no-height"),
    pytest.param({"PatientSize": 178}, "stored in cm", id="height-in-cm"),
    pytest.param({"PatientSex": "O"}, r"PatientSex \(0010,0040\) is O", id="sex-other"),
])
def test_sul_needs_height_and_sex(changes, message):
    facts = pet_dose_facts(pet_header(**changes))
    assert suv_scale(facts).factor > 0  # SUVbw does not need them
    with pytest.raises(HeaderError, match=message):
        suv_scale(facts, SuvKind.LEAN_BODY_MASS)


def test_series_without_weight_fails_naming_the_tag(tmp_path):
    paths = write_pet_series(tmp_path / "pet", PatientWeight=None)
    with pytest.raises(HeaderError, match="PatientWeight") as caught:
        pet_dose_facts(pydicom.dcmread(paths[0], stop_before_pixels=True), path=str(paths[0]))
    assert caught.value.path == str(paths[0])


def test_apply_suv_per_slice_and_refusals(tmp_path):
    write_pet_series(tmp_path / "pet")
    volume = medconv.read(tmp_path / "pet")
    facts = pet_dose_facts(pet_header(DecayCorrection="NONE"))
    scales = [suv_scale(with_frame_time(facts, datetime(2024, 3, 5, 11, 0) + timedelta(minutes=k))) for k in range(3)]
    suv = apply_suv(volume, scales)
    for k, scale in enumerate(scales):
        np.testing.assert_allclose(suv.array[:, :, k], volume.array[:, :, k] * scale.factor, rtol=1e-6)
    assert suv.meta["dicom"]["suv"]["factor"] == [s.factor for s in scales]
    with pytest.raises(NotApplicableError, match="already"):
        apply_suv(suv, scales[0])
    with pytest.raises(NotApplicableError, match="2 SUV scales"):
        apply_suv(volume, scales[:2])
    with pytest.raises(NotApplicableError, match="made for"):
        apply_suv(volume.replace(meta={**volume.meta, "units": "CNTS"}), scales[0])


# -- in the reader: ReadOptions(pet="suv" | "sul") ------------------------------------------------

def frame_decay(elapsed_s: float, duration_s: float = 180.0) -> float:
    """The dose fraction left at ``elapsed_s`` after injection, averaged over a frame of ``duration_s`` (written out)."""
    decay_constant = math.log(2.0) / F18_HALF_LIFE
    return math.exp(-decay_constant * elapsed_s) * (1 - math.exp(-decay_constant * duration_s)) / (
        decay_constant * duration_s)


@pytest.mark.parametrize("decay, elapsed", [("START", 3750.0), ("ADMIN", 0.0)])
def test_the_reader_gives_suv_on_request(tmp_path, decay, elapsed):
    write_pet_series(tmp_path / "pet", DecayCorrection=decay)
    stored = medconv.read(tmp_path / "pet")
    assert stored.meta["units"] == "BQML"  # the default is unchanged
    suv = medconv.read(tmp_path / "pet", options=medconv.ReadOptions(pet="suv"))
    assert suv.array.dtype == np.float32 and suv.meta["units"] == "SUVbw g/ml"
    np.testing.assert_allclose(suv.array, analytic_suv(elapsed), rtol=1e-4)
    assert suv.meta["dicom"]["suv"]["decay_reference"].startswith(decay) and suv.history[0].startswith("suv x")
    sul = medconv.read(tmp_path / "pet", options=medconv.ReadOptions(pet="sul"))
    lbm = 9270.0 * WEIGHT / (6680.0 + 216.0 * WEIGHT / 1.78**2)  # Janmahasatian, a man of 1.78 m
    np.testing.assert_allclose(sul.array, analytic_suv(elapsed, lbm), rtol=1e-4)


def test_no_decay_correction_gives_each_slice_its_own_factor(tmp_path):
    paths = write_pet_series(tmp_path / "pet", DecayCorrection="NONE")
    minutes = (30, 33, 36)  # each slice acquired later: AcquisitionTime per file
    for path, minute in zip(paths, minutes):
        ds = pydicom.dcmread(path)
        ds.AcquisitionTime = f"10{minute:02d}00"
        ds.save_as(path)
    suv = medconv.read(tmp_path / "pet", options=medconv.ReadOptions(pet="suv"))
    for k, minute in enumerate(minutes):
        expected = activity()[k].T * WEIGHT * 1000.0 / (DOSE * frame_decay(60.0 * minute))
        np.testing.assert_allclose(suv.array[:, :, k], expected, rtol=1e-4)
    assert len(set(suv.meta["dicom"]["suv"]["factor"])) == 3


@pytest.mark.parametrize("changes, file_changes, message", [
    pytest.param({"PatientWeight": None}, {}, r"PatientWeight \(0010,1030\) is missing", id="no-weight"),
    pytest.param({"RadionuclideTotalDose": None}, {}, r"RadionuclideTotalDose \(0018,1074\) is missing",
                 id="no-dose"),
    pytest.param({}, {"PatientWeight": 80.0}, r"PatientWeight \(0010,1030\) contradicts", id="weights-differ"),
    pytest.param({}, {"DecayCorrection": "ADMIN"}, r"DecayCorrection \(0054,1102\) contradicts", id="decay-differs"),
])
def test_the_reader_refuses_missing_or_contradictory_inputs(tmp_path, changes, file_changes, message):
    paths = write_pet_series(tmp_path / "pet", **changes)
    if file_changes:  # the last slice says otherwise
        ds = pydicom.dcmread(paths[-1])
        for keyword, value in file_changes.items():
            setattr(ds, keyword, value)
        ds.save_as(paths[-1])
    with pytest.raises(HeaderError, match=message):
        medconv.read(tmp_path / "pet", options=medconv.ReadOptions(pet="suv"))


def test_suv_units_are_in_the_nifti_description(tmp_path):
    import nibabel as nib

    write_pet_series(tmp_path / "pet")
    medconv.write(medconv.read(tmp_path / "pet", options=medconv.ReadOptions(pet="suv")), tmp_path / "suv.nii.gz")
    assert nib.load(tmp_path / "suv.nii.gz").header["descrip"].item().decode().endswith("; SUVbw g/ml")
