"""Bounds on what a header may make a reader do: the memory limit, and hard limits on header-driven loops.

A header is untrusted input: a 70-byte NIfTI may declare 32767³ voxels, a
263-byte MetaImage header 50 million slice files. Every reader checks what a
header declares **before** it allocates or loops:

* :func:`check_voxel_count`: the declared voxels against ``ReadOptions.max_voxels``
  (default :func:`default_max_voxels`, from the memory available at read time);
* :mod:`medconv.readers.bounded_io`: the bytes a header needs against the bytes the
  file holds, and decompression that stops at the declared size;
* the hard limits below, which no real file comes near, bound loops whose length a
  header sets (file-name patterns, slice-file lists, TIFF page chains).
"""

from __future__ import annotations

from ..errors import VolumeTooLargeError
from ..options import ReadOptions
from ..resources import available_memory, physical_memory

#: Bytes of memory the default limit counts per voxel: a volume is refused when its
#: voxels as 4-byte values (float32, int32: what a rescale or a transform makes of
#: them) would not fit the memory available now. The largest CT (512×512×2000 int16)
#: is 0.5 G voxels; on a machine with 24 GiB available the default allows 6 G.
DEFAULT_BYTES_PER_VOXEL = 4

#: Used when the available memory cannot be found (no /proc/meminfo, no sysconf).
FALLBACK_MAX_VOXELS = 2**31

#: At most this many data files for one MetaImage volume (``LIST`` or a file-name
#: pattern): one per slice of a very large stack; checked before any name is built.
MAX_DATA_FILES = 100_000

#: At most this many bytes of NIfTI header extensions (a CIFTI-2 XML, the largest real kind, is a few MB).
MAX_NIFTI_EXTENSION_BYTES = 256 << 20

#: At most this many pages (IFDs) in one TIFF file: longer chains are refused
#: (a 100,000-plane light-sheet stack is the largest real case we know).
MAX_TIFF_PAGES = 1_000_000


def default_max_voxels() -> int:
    """The default ``ReadOptions.max_voxels``: available memory / :data:`DEFAULT_BYTES_PER_VOXEL`
    (the physical memory where the available memory is unknown)."""
    memory = available_memory() or physical_memory()
    return memory // DEFAULT_BYTES_PER_VOXEL if memory else FALLBACK_MAX_VOXELS


def max_voxels(options: ReadOptions) -> int:
    """The voxel limit that applies: ``options.max_voxels``, else :func:`default_max_voxels`."""
    return options.max_voxels if options.max_voxels is not None else default_max_voxels()


def voxel_count(shape) -> int:
    """The number of voxels of ``shape`` as an exact Python integer (no overflow, whatever the header says)."""
    count = 1
    for size in shape:
        count *= int(size)
    return count


def check_voxel_count(shape, path: str, options: ReadOptions) -> int:
    """Refuse a declared ``shape`` (every axis, channels included) with more voxels than the limit.

    Returns the voxel count. Raises :class:`VolumeTooLargeError` naming the file,
    the count, the limit and how to raise it.
    """
    count = voxel_count(shape)
    limit = max_voxels(options)
    if count > limit:
        where = "--max-voxels / ReadOptions.max_voxels" if options.max_voxels is not None else \
            f"the default: the memory available now at {DEFAULT_BYTES_PER_VOXEL} bytes per voxel"
        dims = "x".join(str(int(s)) for s in shape)
        raise VolumeTooLargeError(f"the header declares {dims} = {count:,} voxels, more than the limit of "
                                  f"{limit:,} ({where})", path,
                                  "a corrupt header declares sizes like this too; if the file is right and the machine "
                                  "has the memory, raise the limit with --max-voxels N / ReadOptions(max_voxels=N)")
    return count
