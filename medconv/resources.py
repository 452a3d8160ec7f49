"""What this machine offers a run now: the cores this process may use, and the memory available.

The one place these are measured: the batch sizes its workers and their threads by
them (:mod:`medconv.batch.execution`), the readers' voxel limit follows the memory
(:mod:`medconv.readers.limits`), the resampling and the compressors default to the
cores (:mod:`medconv.transforms.separable`, :mod:`medconv.writers.voxels`).
"""

from __future__ import annotations

import os


def cores() -> int:
    """The cores this process may use (its CPU affinity; else every core)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def available_memory() -> int | None:
    """Bytes of memory available now for new work, or ``None`` when unknown.

    Linux: ``MemAvailable`` of ``/proc/meminfo`` (free memory plus the page cache
    that can be dropped; the free pages alone are a fraction of it on a machine that
    has read files). Elsewhere: the free physical pages.
    """
    try:
        with open("/proc/meminfo", "rb") as handle:
            for line in handle:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return _sysconf_bytes("SC_AVPHYS_PAGES")


def physical_memory() -> int | None:
    """Bytes of physical memory in all, or ``None`` when unknown."""
    return _sysconf_bytes("SC_PHYS_PAGES")


def _sysconf_bytes(pages: str) -> int | None:
    try:
        return os.sysconf(pages) * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
