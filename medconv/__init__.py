"""medconv: convert and preprocess medical-imaging datasets into analysis-ready NIfTI or npz.

The public API::

    import medconv
    volume = medconv.read("scan.nii.gz")          # or a DICOM series folder, .mhd, .tif
    medconv.write(volume, "scan.npz")
    medconv.convert("scan.mhd", "scan.nii.gz")
    masks = medconv.read_annotations("LIDC-IDRI-0001/.../069.xml")   # RTSTRUCT, SEG, LIDC XML on its image's grid

The names below load on first use (PEP 562), so that ``import medconv.cli.main``
(every ``medconv`` command, ``--help`` included) does not import numpy and the
registry before a command needs them.
"""

from ._version import __version__

#: public name -> the submodule defining it
_PUBLIC = {
    "Volume": "volume", "META_KEYS": "volume", "Source": "source", "ReadOptions": "options",
    "WriteOptions": "options", "AnnotationOptions": "options", "read": "api", "write": "api",
    "convert": "api", "discover": "api", "read_annotations": "api",
}

__all__ = [
    "Volume", "Source", "ReadOptions", "WriteOptions", "AnnotationOptions", "META_KEYS",
    "read", "write", "convert", "discover", "read_annotations", "__version__",
]


def __getattr__(name: str):
    import importlib

    if name in _PUBLIC:
        value = getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)
        globals()[name] = value
        return value
    if not name.startswith("__"):
        import importlib.util

        if importlib.util.find_spec(f"{__name__}.{name}") is not None:  # a submodule not imported yet
            return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
