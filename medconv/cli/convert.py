"""``medconv convert SRC DST``: one file to one file, or every unit any reader recognises under a folder."""

from __future__ import annotations

import click

from .annotation_options import annotation_options
from .batch_options import batch_options
from .datasets import run_dataset, source_argument
from .image2d_options import colour_input, image2d_output, pet_input, radiograph_input
from .input_options import dicom_input, label_input, limit_input, reader_choice, tiff_input
from .options import Example, ParsedOptions, command
from .output_options import Destination, destination_kind, output_options
from .transform_options import transform_options


CONVERT_EXAMPLES = (
    Example("one file to another format (from DST's suffix)", "medconv convert scan.mhd scan.nii.gz"),
    Example("a NIfTI dataset (MSD, LiTS, KiTS) to one orientation and spacing; labelsTr/ stays labels",
            "medconv convert ./Task03_Liver ./out --orient RAS --spacing 1,1,1.5"),
    Example("TIFF stacks that state no physical size", "medconv convert ./stacks ./out --reader tiff --tiff-spacing 0.5,0.5,2"),
    Example("every image under a folder to npz", "medconv convert ./Task03_Liver ./out-npz --format npz"),
)


@command(examples=CONVERT_EXAMPLES, short_help="One file to another format, or every image under a folder.")
@source_argument
@click.argument("dst", type=click.Path(), metavar="DST")
@reader_choice
@dicom_input
@annotation_options
@radiograph_input()
@pet_input
@label_input
@tiff_input
@colour_input
@limit_input
@output_options
@transform_options
@image2d_output
@batch_options
def convert(src: str, dst: str, options: ParsedOptions) -> int:
    """Convert SRC into DST.

    \b
    SRC a file, DST a file:    convert that one image (format from DST's suffix).
    SRC a folder, DST a file:  the folder must hold one image (e.g. one DICOM series).
    SRC a file, DST a folder:  write DST/<stem>.<format>.
    SRC a folder:              every unit any reader recognises (DICOM series,
                               MetaImage, NIfTI, TIFF ...), like tcia2nii/mhd2nii:
                               parallel, resumable, with a manifest.
    """
    if destination_kind(dst, file_allowed=True) is Destination.FILE:
        return _convert_one_file(src, dst, options)
    return run_dataset(src, dst, options)


def _convert_one_file(src: str, dst: str, options: ParsedOptions) -> int:
    from ..api import convert as convert_file

    _refuse_annotation_alone(src)
    from ..logs import configure_logging

    configure_logging(options.run.verbosity, options.run.log_file)
    readers = options.dataset.readers
    if options.dataset.boxes is not None:
        from ..errors import UsageError

        raise UsageError("--boxes moves a table into a folder of outputs (DST/boxes.csv)", dst,
                         "give a folder as DST")
    written = convert_file(src, dst, read_options=options.read, write_options=options.write,
                           transform=options.dataset.transform, reader=readers[0] if readers else None)
    if options.run.summary:
        click.echo(f"wrote {', '.join(written)}")
    return 0


def _refuse_annotation_alone(src: str) -> None:
    """An RTSTRUCT, SEG or LIDC XML named alone: its masks need its image, so say how to get them."""
    import os

    if not os.path.isfile(src):
        return
    from ..readers.annotations.headers import annotation_kind

    kind = annotation_kind(src)
    if kind is not None:
        from ..errors import UsageError

        folder = os.path.dirname(os.path.dirname(os.path.abspath(src)))
        raise UsageError(f"an annotation object ({kind.value}) is drawn on the image series it references, "
                         "not converted alone", src,
                         f"convert the folder holding both, e.g. medconv convert '{folder}' DST (its masks are "
                         "written beside the image), or use medconv.read_annotations(path) in Python")
