"""``medconv tcia2nii`` (DICOM series) and ``medconv mhd2nii`` (MetaImage): whole datasets, one reader each."""

from __future__ import annotations

import click

from .options import dataset_arguments, run_dataset


@click.command()
@dataset_arguments("nii.gz")
def tcia2nii(src: str, dst: str, **kwargs) -> int:
    """Convert every DICOM image series under SRC (a TCIA/NBIA download, any folder layout) into DST.

    One output per image series, named
    PATIENT/STUDYDATE_SERIESNUMBER_MODALITY_DESCRIPTION (a UID fragment is added
    when two series would share a name). Non-image objects and localizers are
    excluded with their reason in DST/medconv-manifest.csv. A rerun resumes.
    """
    return run_dataset(src, dst, ("dicom",), kwargs)


@click.command()
@dataset_arguments("nii.gz")
def mhd2nii(src: str, dst: str, **kwargs) -> int:
    """Convert every MetaImage volume (.mhd/.raw, .mhd/.zraw, .mha) under SRC into DST.

    Outputs mirror SRC's subfolders and keep each file's stem (LUNA16's
    SeriesInstanceUID names are kept). Label masks (by --labels, name patterns or
    content) are written as integer label maps. A rerun resumes.
    """
    return run_dataset(src, dst, ("metaimage",), kwargs)
