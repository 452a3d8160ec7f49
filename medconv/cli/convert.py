"""``medconv convert SRC DST``: one file to one file, or every unit any reader recognises under a folder."""

from __future__ import annotations

import os

import click

from ..registry import matching_suffix, writers
from .options import (batch_options, format_option, preprocessing_from, read_options_from, reader_options,
                      run_dataset, transform_options, write_options_from)


def _output_suffixes() -> tuple[str, ...]:
    return tuple(suffix for writer in writers.available() for suffix in writer.suffixes)


@click.command()
@click.argument("src", type=click.Path(exists=True))
@click.argument("dst", type=click.Path())
@format_option("nii.gz")
@click.option("--reader", "reader_names", multiple=True, metavar="NAME",
              help="Only use these readers (nifti, dicom, metaimage, tiff, npz ...); repeatable. Default: all.")
@batch_options
@reader_options
@transform_options
def convert(src: str, dst: str, reader_names: tuple[str, ...], **kwargs) -> int:
    """Convert SRC into DST.

    \b
    SRC a file, DST a file:    convert that one image (format from DST's suffix).
    SRC a folder, DST a file:  the folder must hold one image (e.g. one DICOM series).
    SRC a file, DST a folder:  write DST/<stem>.<format>.
    SRC a folder:              every unit any reader recognises (DICOM series,
                               MetaImage, NIfTI, TIFF ...), like tcia2nii/mhd2nii:
                               parallel, resumable, with a manifest.
    """
    if matching_suffix(dst, _output_suffixes()) and not os.path.isdir(dst):
        return _convert_one_file(src, dst, reader_names[0] if reader_names else None, kwargs)
    return run_dataset(src, dst, reader_names, kwargs)


def _convert_one_file(src: str, dst: str, reader: str | None, kwargs) -> int:
    from ..api import convert as convert_file

    written = convert_file(src, dst, read_options=read_options_from(kwargs), write_options=write_options_from(kwargs),
                           transform=preprocessing_from(kwargs), reader=reader)
    if not kwargs.get("quiet"):
        click.echo(f"wrote {', '.join(written)}")
    return 0
