"""``medconv tcia2nii`` (DICOM series) and ``medconv mhd2nii`` (MetaImage): whole datasets, one reader each.

Both take SRC and DST, and the option groups that apply to their reader; both
run :func:`run_dataset`, which ``medconv convert`` uses for folders too.
"""

from __future__ import annotations

import click

from .annotation_options import annotation_options
from .batch_options import batch_options
from .image2d_options import pet_input, radiograph_input
from .input_options import dicom_input, label_input, limit_input
from .options import Example, ParsedOptions, command
from .output_options import destination_kind, output_options
from .transform_options import transform_options

source_argument = click.argument("src", type=click.Path(exists=True), metavar="SRC")
folder_argument = click.argument("dst", type=click.Path(file_okay=False), metavar="DST")


def run_dataset(src: str, dst: str, options: ParsedOptions, readers: tuple[str, ...] = ()) -> int:
    """Convert every unit under ``src`` that ``readers`` (else ``options``' readers, else all) recognise."""
    from ..batch import UnitJob
    from ..batch.dataset import convert_dataset

    from ..errors import NothingFoundError, UsageError

    destination_kind(dst, file_allowed=False)  # a file name here is a usage error, never a folder of that name
    chosen = options.dataset
    readers = readers or chosen.readers
    if chosen.boxes is not None and not options.write.sidecar:
        raise UsageError("--boxes needs the sidecars (each records its image's resize frame)", hint="drop --no-sidecar")
    job = UnitJob(fmt=chosen.fmt, read_options=options.read, write_options=options.write,
                  preprocessing=chosen.transform)
    try:
        code = convert_dataset(src, dst, reader_names=readers or None, job=job, options=options.run,
                               template=chosen.template, dry_run=chosen.dry_run)
    except NothingFoundError:
        from .hints import nothing_found

        raise nothing_found(src, dst, readers) from None
    if chosen.boxes is not None and not chosen.dry_run:
        from .boxes import write_run_boxes

        write_run_boxes(chosen.boxes, dst, options)
    return code


TCIA_EXAMPLES = (
    Example("every image series of a TCIA/NBIA download, one NIfTI each, with the masks of its RTSTRUCT, SEG or "
            "LIDC XML beside it", "medconv tcia2nii ./LIDC-IDRI ./out"),
    Example("see the plan (units, output names) first, then run on 2 cores with preview pictures",
            "medconv tcia2nii ./LIDC-IDRI ./out --dry-run && medconv tcia2nii ./LIDC-IDRI ./out -j 2 --preview"),
    Example("training-ready: RAS, 1 mm isotropic, lung window scaled to [0, 1]",
            "medconv tcia2nii ./NSCLC-Radiomics ./out --orient RAS --spacing 1 --window lung --scale unit"),
    Example("LIDC-IDRI nodule masks: one file per nodule, consensus of three readers in four",
            "medconv tcia2nii ./LIDC-IDRI ./out --masks split --consensus 0.75"),
    Example("your own output names", "medconv tcia2nii ./LIDC-IDRI ./out --name '{patient_id}/{series_number}_{modality}'"),
)


@command(examples=TCIA_EXAMPLES, short_help="Every DICOM image series under SRC -> one NIfTI (or --format) each.")
@source_argument
@folder_argument
@dicom_input
@annotation_options
@radiograph_input()
@pet_input
@limit_input
@output_options
@transform_options
@batch_options
def tcia2nii(src: str, dst: str, options: ParsedOptions) -> int:
    """Convert every DICOM image series under SRC (a TCIA/NBIA download, any folder layout) into DST.

    One output per image series, named
    PATIENT/STUDYDATE_SERIESNUMBER_MODALITY_DESCRIPTION (a UID fragment is added
    when two series would share a name). Each RTSTRUCT, DICOM SEG and LIDC-IDRI
    XML is paired with the series it references and its masks are written
    beside that series' output, on its grid (IMAGE_rtstruct-LABEL,
    IMAGE_seg-LABEL, IMAGE_lidc-consensus50, IMAGE_lidc-reader1 ...). Other
    non-image objects and localizers are excluded with their reason in
    DST/medconv-manifest.csv. A rerun resumes.
    """
    return run_dataset(src, dst, options, ("dicom",))


MHD_EXAMPLES = (
    Example("LUNA16: subset folders and SeriesInstanceUID file names kept, lung masks as labels",
            "medconv mhd2nii ./LUNA16 ./out"),
    Example("Sliver07, with the masks named by a pattern", "medconv mhd2nii ./sliver07 ./out --labels '*seg*'"),
    Example("1 mm isotropic on 2 cores (masks resampled nearest)", "medconv mhd2nii ./LUNA16 ./out --spacing 1 -j 2"),
    Example("arrays and geometry for numpy", "medconv mhd2nii ./LUNA16 ./out-npz --format npz"),
)


@command(examples=MHD_EXAMPLES, short_help="Every MetaImage volume (.mhd/.raw, .mha) under SRC -> NIfTI (or --format).")
@source_argument
@folder_argument
@label_input
@limit_input
@output_options
@transform_options
@batch_options
def mhd2nii(src: str, dst: str, options: ParsedOptions) -> int:
    """Convert every MetaImage volume (.mhd/.raw, .mhd/.zraw, .mha) under SRC into DST.

    Outputs mirror SRC's subfolders and keep each file's stem (LUNA16's
    SeriesInstanceUID names are kept). Label masks (by --labels, name patterns or
    content) are written as integer label maps. A rerun resumes.
    """
    return run_dataset(src, dst, options, ("metaimage",))
