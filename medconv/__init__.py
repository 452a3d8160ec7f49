"""medconv: convert and preprocess medical-imaging datasets into analysis-ready NIfTI or npz.

The public API::

    import medconv
    volume = medconv.read("scan.nii.gz")          # or a DICOM series folder, .mhd, .tif
    medconv.write(volume, "scan.npz")
    medconv.convert("scan.mhd", "scan.nii.gz")
"""

from ._version import __version__
from .api import convert, discover, read, write
from .options import ReadOptions, WriteOptions
from .source import Source
from .volume import META_KEYS, Volume

__all__ = [
    "Volume", "Source", "ReadOptions", "WriteOptions", "META_KEYS",
    "read", "write", "convert", "discover", "__version__",
]
