"""medconv: convert and preprocess medical-imaging datasets into analysis-ready NIfTI or npz.

The public API::

    import medconv
    volume = medconv.read("scan.nii.gz")          # or a DICOM series folder, .mhd, .tif
    medconv.write(volume, "scan.npz")
    medconv.convert("scan.mhd", "scan.nii.gz")
    masks = medconv.read_annotations("LIDC-IDRI-0001/.../069.xml")   # RTSTRUCT, SEG, LIDC XML on its image's grid
"""

from ._version import __version__
from .api import convert, discover, read, read_annotations, write
from .options import AnnotationOptions, ReadOptions, WriteOptions
from .source import Source
from .volume import META_KEYS, Volume

__all__ = [
    "Volume", "Source", "ReadOptions", "WriteOptions", "AnnotationOptions", "META_KEYS",
    "read", "write", "convert", "discover", "read_annotations", "__version__",
]
