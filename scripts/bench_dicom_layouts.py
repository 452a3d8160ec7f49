"""Benchmark ``medconv tcia2nii`` against ``dcm2niix`` on an enhanced multi-frame series (issue 10, fault 13).

Writes, once, into FOLDER/in a 20-file enhanced MR BOLD series laid out as
Siemens XA writes it (one Enhanced MR Image Storage file per time point, 60 slices
of 96x96 each), tag by tag like ``dcm_qa_enh``'s XA10 files: the top-level
attributes, a shared functional group with MR timing, FOV geometry, coils and
Siemens's private "SIEMENS MR SDS 01" sequence holding an XProtocol text blob,
and one per-frame group per slice (MREcho, MRAverages, MRImageFrameType,
FrameContent with DimensionIndexValues, PlanePosition, PlaneOrientation,
PixelMeasures, FrameVOILUT, PixelValueTransformation and the private
"SIEMENS MR SDI 02" sequence). Then it runs, interleaved (the machine is shared
and noisy), REPEATS times each, into fresh output folders:

* ``dcm2niix -b y -z n -o OUT IN`` (the dcm2niix from the test extra);
* ``medconv tcia2nii IN OUT -q --format nii`` (one process, the same work: read,
  4D NIfTI, JSON sidecar);

and prints each run, the medians and their ratio (target: medconv <= 2x dcm2niix).
``--gz`` compares ``dcm2niix -z y`` with medconv's default ``.nii.gz`` instead.
``--undefined-lengths`` writes every sequence and item with undefined length, as
the real XA10 (and Philips) files of ``dcm_qa_enh`` are encoded (the default
writes defined lengths, pydicom's default, which both parsers skip in one step);
it applies when FOLDER/in is written, so give it a FOLDER of its own.
``--profile`` also writes a cProfile of medconv's conversion in this process
(``FOLDER/medconv.prof``) and prints its top entries.

Usage: python scripts/bench_dicom_layouts.py FOLDER [REPEATS] [--gz] [--profile] [--undefined-lengths]
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

FILES = 20
SLICES = 60
MATRIX = 96
PIXEL_MM = 2.4
SLICE_MM = 2.4
TR_MS = 800.0


def _sequence(*items):
    from pydicom.sequence import Sequence

    return Sequence(list(items))


def _item(**values):
    from pydicom.dataset import Dataset

    item = Dataset()
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def _shared_group(rng):
    """The shared functional group of Siemens XA BOLD, with its private SDS sequence (XProtocol blob)."""
    shared = _item(
        MRImagingModifierSequence=_sequence(_item(PixelBandwidth="2298", MagnetizationTransfer="NONE",
                                                  BloodSignalNulling="NO", Tagging="NONE",
                                                  TransmitterFrequency=123.210568)),
        MRReceiveCoilSequence=_sequence(_item(
            ReceiveCoilName="HeadNeck_20_TCS", ReceiveCoilManufacturerName="NN", ReceiveCoilType="MULTICOIL",
            QuadratureReceiveCoil="NO",
            MultiCoilDefinitionSequence=_sequence(*[_item(MultiCoilElementName=f"H{n}", MultiCoilElementUsed="YES")
                                                    for n in range(16)]))),
        MRTransmitCoilSequence=_sequence(_item(TransmitCoilName="Body", TransmitCoilManufacturerName="Siemens",
                                               TransmitCoilType="BODY")),
        MRTimingAndRelatedParametersSequence=_sequence(_item(RepetitionTime=f"{TR_MS:g}", EchoTrainLength="56",
                                                             FlipAngle="52", RFEchoTrainLength=0,
                                                             GradientEchoTrainLength=56)),
        MRModifierSequence=_sequence(_item(InversionRecovery="NO", FlowCompensation="NONE", Spoiling="NONE",
                                           ParallelAcquisition="YES", ParallelAcquisitionTechnique="SMS",
                                           PartialFourier="YES", PartialFourierDirection="PHASE")),
        MRFOVGeometrySequence=_sequence(_item(PercentSampling="100", PercentPhaseFieldOfView="100",
                                              InPlanePhaseEncodingDirection="COLUMN",
                                              MRAcquisitionFrequencyEncodingSteps=MATRIX,
                                              MRAcquisitionPhaseEncodingStepsInPlane=MATRIX)),
    )
    block = shared.private_block(0x0021, "SIEMENS MR SDS 01", create=True)
    protocol = "".join(f'<ParamLong."{name}{n}"> {{ {int(rng.integers(0, 1000))} }}\n'
                       for n in range(1500) for name in ("lValue",))
    inner = _item()
    inner_block = inner.private_block(0x0021, "SIEMENS MR SDS 01", create=True)
    inner_block.add_new(0x01, "IS", "90")
    inner_block.add_new(0x0F, "DS", ["30.312", "28.138", "29.305"])
    inner_block.add_new(0x18, "SH", "Bore Local")
    inner_block.add_new(0x19, "OB", ("<XProtocol>\n{\n" + protocol + "}\n").encode())
    inner_block.add_new(0x2B, "ST", "1;HFS;90;;O;0;0;-198878115")
    block.add_new(0xFE, "SQ", _sequence(inner))
    return shared


def _frame_group(k: int, t: int, position, iop):
    """One per-frame group of a Siemens XA BOLD file (slice k of time point t)."""
    group = _item(
        MREchoSequence=_sequence(_item(EffectiveEchoTime=30.0)),
        MRAveragesSequence=_sequence(_item(NumberOfAverages="1")),
        MRImageFrameTypeSequence=_sequence(_item(FrameType=["ORIGINAL", "PRIMARY", "M", "NONE"],
                                                 PixelPresentation="MONOCHROME", VolumetricProperties="DISTORTED",
                                                 VolumeBasedCalculationTechnique="NONE",
                                                 ComplexImageComponent="MAGNITUDE", AcquisitionContrast="UNKNOWN")),
        FrameContentSequence=_sequence(_item(FrameAcquisitionDateTime=f"20181022083634.{t:02d}{k:04d}",
                                             FrameReferenceDateTime=f"20181022083634.{t:02d}{k:04d}",
                                             FrameAcquisitionDuration=229000.0, StackID="1",
                                             InStackPositionNumber=k + 1, TemporalPositionIndex=1,
                                             FrameAcquisitionNumber=t + 1, DimensionIndexValues=[1, k + 1, 1])),
        PlanePositionSequence=_sequence(_item(ImagePositionPatient=[f"{v:.6g}" for v in position])),
        PlaneOrientationSequence=_sequence(_item(ImageOrientationPatient=[f"{v:.6g}" for v in iop])),
        PixelMeasuresSequence=_sequence(_item(SliceThickness=f"{SLICE_MM:g}", SpacingBetweenSlices=f"{SLICE_MM:g}",
                                              PixelSpacing=[f"{PIXEL_MM:g}", f"{PIXEL_MM:g}"])),
        FrameVOILUTSequence=_sequence(_item(WindowCenter="625", WindowWidth="1361")),
        PixelValueTransformationSequence=_sequence(_item(RescaleIntercept="0", RescaleSlope="1", RescaleType="US")),
    )
    block = group.private_block(0x0021, "SIEMENS MR SDI 02", create=True)
    inner = _item()
    inner_block = inner.private_block(0x0021, "SIEMENS MR SDI 02", create=True)
    for offset, vr, value in ((0x03, "DS", "229000"), (0x04, "DS", "0.195"), (0x06, "LO", "X_1_1_1_1_1_1_4_1_1"),
                              (0x1A, "SH", "predicted"), (0x1C, "IS", "1"), (0x33, "IS", "32"), (0x42, "IS", "3400"),
                              (0x4F, "LO", "HE1-4"), (0x53, "FD", 24.414), (0x58, "SH", "96p*96"),
                              (0x5B, "FD", [float(v) for v in position]), (0x75, "CS", ["ORIGINAL", "PRIMARY", "M"]),
                              (0x88, "DS", f"{position[2]:.6g}"), (0x8A, "IS", str(k + 1))):
        inner_block.add_new(offset, vr, value)
    block.add_new(0xFE, "SQ", _sequence(inner))
    return group


def write_series(folder: Path, undefined_lengths: bool = False) -> None:
    """The 20 files (one per time point) of the synthetic Siemens XA BOLD series (``undefined_lengths``: every
    sequence and item of undefined length, as the scanner writes them)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    iop = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    corner = np.array([-115.2, -115.2, -70.0])
    study, series, frame_of_reference, organisation = generate_uid(), generate_uid(), generate_uid(), generate_uid()
    base = rng.integers(0, 1200, size=(SLICES, MATRIX, MATRIX), dtype=np.uint16)
    shared = _shared_group(rng)
    for t in range(FILES):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
        ds.SpecificCharacterSet, ds.ImageType = "ISO_IR 100", ["ORIGINAL", "PRIMARY", "M", "NONE"]
        ds.InstanceCreationDate = ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20181022"
        ds.AcquisitionDateTime = f"20181022083634.{t:06d}"
        ds.StudyTime, ds.SeriesTime, ds.ContentTime = "082758.2", "083634.733", f"083634.{t:03d}"
        ds.Modality, ds.Manufacturer, ds.ManufacturerModelName = "MR", "Siemens Healthcare GmbH", "MAGNETOM Vida"
        ds.InstitutionName, ds.StationName, ds.SoftwareVersions = "Bench", "AWP175689", "syngo MR XA30"
        ds.SeriesDescription = ds.ProtocolName = "BOLD rest"
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Bench^Bold", "BENCH-XA", "19930101", "O"
        ds.BodyPartExamined, ds.MRAcquisitionType, ds.MagneticFieldStrength = "BRAIN", "2D", "3"
        ds.SpacingBetweenSlices, ds.PatientPosition, ds.PulseSequenceName = f"{SLICE_MM:g}", "HFS", "*epfid2d1_96"
        ds.EchoPulseSequence, ds.EchoPlanarPulseSequence, ds.ComplexImageComponent = "GRADIENT", "YES", "MAGNITUDE"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame_of_reference
        ds.SeriesNumber, ds.AcquisitionNumber, ds.InstanceNumber = 6, 1, t + 1
        ds.DimensionOrganizationSequence = _sequence(_item(DimensionOrganizationUID=organisation))
        ds.DimensionIndexSequence = _sequence(*[_item(DimensionOrganizationUID=organisation,
                                                      DimensionIndexPointer=0x00209056,
                                                      FunctionalGroupPointer=0x00209111) for _ in range(3)])
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.NumberOfFrames, ds.Rows, ds.Columns = SLICES, MATRIX, MATRIX
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PresentationLUTShape = "IDENTITY"
        ds.SharedFunctionalGroupsSequence = _sequence(shared)
        ds.PerFrameFunctionalGroupsSequence = _sequence(*[
            _frame_group(k, t, corner + (0.0, 0.0, k * SLICE_MM), iop) for k in range(SLICES)])
        ds.PixelData = ((base + 3 * t) & 0x0FFF).astype("<u2").tobytes()
        if undefined_lengths:
            for element in ds.iterall():
                if element.VR == "SQ":
                    element.is_undefined_length = True
                    for item in element.value:
                        item.is_undefined_length_sequence_item = True
        ds.save_as(folder / f"6_{t + 1}.dcm", enforce_file_format=True)


def dcm2niix_binary() -> str:
    candidate = Path(sys.executable).parent / "dcm2niix"
    found = str(candidate) if candidate.exists() else shutil.which("dcm2niix")
    if not found:
        raise SystemExit("dcm2niix not found: pip install -e '.[test]'")
    return found


def medconv_binary() -> str:
    candidate = Path(sys.executable).parent / "medconv"
    return str(candidate) if candidate.exists() else "medconv"


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if completed.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({completed.returncode}): {completed.stdout}{completed.stderr}")
    return seconds


def profile(source: Path, folder: Path) -> None:
    """A cProfile of the conversion in this process (imports excluded), its top entries printed."""
    import cProfile
    import pstats

    from medconv.cli.main import main

    out = folder / "profile-out"
    shutil.rmtree(out, ignore_errors=True)
    main(["tcia2nii", str(source), str(out), "-q", "--format", "nii", "--jobs", "1"])  # warm imports
    shutil.rmtree(out, ignore_errors=True)
    path = folder / "medconv.prof"
    cProfile.runctx('main(["tcia2nii", source, out, "-q", "--format", "nii", "--jobs", "1"])',
                    {"main": main}, {"source": str(source), "out": str(out)}, str(path))
    pstats.Stats(str(path)).sort_stats("cumulative").print_stats(25)


def main(argv: list[str]) -> int:
    args = [a for a in argv[1:] if not a.startswith("--")]
    if not args:
        print(__doc__)
        return 2
    folder = Path(args[0])
    repeats = int(args[1]) if len(args) > 1 else 7
    gz = "--gz" in argv
    source = folder / "in"
    if not source.exists():
        write_series(source, undefined_lengths="--undefined-lengths" in argv)
    size = sum(p.stat().st_size for p in source.iterdir()) / 1e6
    print(f"{FILES} enhanced MR files, {SLICES} frames of {MATRIX}x{MATRIX} each, {size:.1f} MB")
    results: dict[str, list[float]] = {"dcm2niix": [], "medconv": []}
    for run in range(repeats + 1):  # run 0 warms the caches and is not counted
        out = folder / "out"
        for name in ("dcm2niix", "medconv"):
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            if name == "dcm2niix":
                command = [dcm2niix_binary(), "-b", "y", "-z", "y" if gz else "n", "-o", str(out), str(source)]
            else:
                command = [medconv_binary(), "tcia2nii", str(source), str(out), "-q"] + ([] if gz else ["--format",
                                                                                                        "nii"])
            seconds = timed(command)
            if run:
                results[name].append(seconds)
        if run:
            print(f"run {run}: dcm2niix {results['dcm2niix'][-1]:.3f} s, medconv {results['medconv'][-1]:.3f} s")
    ours, theirs = statistics.median(results["medconv"]), statistics.median(results["dcm2niix"])
    print(f"medians: dcm2niix {theirs:.3f} s, medconv {ours:.3f} s, ratio {ours / theirs:.2f}x (target <= 2x)")
    if "--profile" in argv:
        profile(source, folder)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
