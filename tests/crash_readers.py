"""Misbehaving code for the crash-containment tests: functions that die like native decoders do.

Everything here is importable by reference (module-level), so that it can run in
guarded helpers and batch workers. :class:`CrashReader` is a reader plugin whose
units do what their file name says (``abort.crash`` aborts, ``ok-1.crash`` converts);
tests register it through an entry point (:func:`install_crash_reader`), the way a
third-party plugin is found, so that worker processes find it too.
"""

from __future__ import annotations

import ctypes
import os
import sys
import time
from pathlib import Path

import numpy as np

from medconv.source import Source
from medconv.volume import Volume

HERE = Path(__file__).resolve().parent


class PanicException(BaseException):
    """Like pyo3's ``pyo3_runtime.PanicException``: a ``BaseException``, not an ``Exception``."""


def abort() -> None:
    os.abort()  # SIGABRT, as an uncaught C++ exception ends a process


def segfault() -> None:
    ctypes.string_at(0)  # SIGSEGV


def panic(message: str = "index out of bounds: the len is 8192 but the index is 8192") -> None:
    raise PanicException(message)


def hang(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def allocate(n_bytes: int) -> int:
    return int(np.ones(n_bytes, np.uint8).sum())


def echo(value):
    return value


def fail_with_value_error() -> None:
    raise ValueError("an ordinary error from the decoder")


def process_facts() -> dict:
    """What a helper process sees: its path, the folder it runs in, and whether a planted json.py ran."""
    import json  # noqa: F401  (must be the standard library's)

    return {"sys_path": list(sys.path), "cwd": os.getcwd(), "planted": "MEDCONV_PLANTED" in os.environ,
            "json_file": json.__file__}


def guarded_abort() -> None:
    """A reader's risky decode through the guard: the helper aborts, the caller gets an error."""
    from medconv.guard import guarded

    guarded(abort, what="JPEG-LS decoding", path="frame.dcm")


def bug() -> None:
    {}["a key that is not there"]  # a bug in a reader: an internal error with a traceback


def decide() -> None:
    """What a built-in reader does when it has to decide something: it logs it (and goes on)."""
    import logging

    logging.getLogger("medconv.readers.crash_test").info("decided to fill a gap of 2 slices")
    logging.getLogger("medconv.readers.crash_test").debug("gap between slices 4 and 7")


def chatty() -> None:
    """What a third-party library does while it decodes: it logs a warning for every page, and warns."""
    import logging
    import warnings

    for _ in range(3):
        logging.getLogger("somelib.decoder").warning("page has an odd tag")
    warnings.warn("a deprecated call", UserWarning)


BEHAVIOURS = {
    "abort": abort, "segfault": segfault, "panic": panic, "guarded-abort": guarded_abort,
    "allocate": lambda: allocate(1 << 40), "hang": lambda: hang(60), "bug": bug, "decide": decide,
    "chatty": chatty,
}


class CrashReader:
    """Units ``<behaviour>[-anything].crash``: ``ok`` converts, the others die as named."""

    name = "crash"
    suffixes = (".crash",)

    def sniff(self, path):
        return path.endswith(".crash")

    def discover(self, root):
        for name in sorted(os.listdir(root)):
            if name.endswith(".crash"):
                yield Source(id=name[: -len(".crash")], reader=self.name, paths=(os.path.join(root, name),), root=root)

    def read(self, source, options):
        behaviour = source.id.split("-")[0] if not source.id.startswith("guarded-") else "guarded-abort"
        if behaviour in BEHAVIOURS:
            BEHAVIOURS[behaviour]()
        return Volume(np.full((4, 3, 2), len(source.id), np.int16), spacing=(1.0, 1.0, 1.0))


class BrokenDiscoveryReader:
    """A reader whose discovery yields one unit, then raises an error it did not foresee."""

    name = "brokendiscovery"
    suffixes = (".brk",)

    def sniff(self, path):
        return path.endswith(".brk")

    def discover(self, root):
        from medconv.errors import UnreadableFileError

        names = sorted(n for n in os.listdir(root) if n.endswith(".brk"))
        for name in names:
            if name.startswith("bad"):
                raise NotImplementedError(f"Unknown Value Representation in {name}")
            if name.startswith("typed"):
                raise UnreadableFileError("the header's DimSize is inf", os.path.join(root, name))
            yield Source(id=name[:-4], reader=self.name, paths=(os.path.join(root, name),), root=root)

    def read(self, source, options):
        return Volume(np.ones((2, 2, 2), np.int16), spacing=(1.0, 1.0, 1.0))


def install_crash_reader(folder: Path, monkeypatch) -> None:
    """Register :class:`CrashReader` and :class:`BrokenDiscoveryReader` as entry points visible to workers.

    Writes a minimal ``dist-info`` into ``folder`` and puts ``folder`` and this
    tests folder on ``sys.path`` (workers inherit it), then refreshes the registry.
    """
    from medconv.registry import readers

    info = folder / "medconv_crash_plugin-0.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: medconv-crash-plugin\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text("[medconv.readers]\ncrash = crash_readers:CrashReader\n"
                                           "brokendiscovery = crash_readers:BrokenDiscoveryReader\n")
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.syspath_prepend(str(folder))
    readers.refresh()
    monkeypatch.setattr(readers, "_specs", None)  # refreshed again when the test ends
