"""The start-up budget, kept structurally: what a command imports, never how long it takes.

A small job's time is mostly fixed cost (issue 10's 20-file series, issue 14's
4-series folder): the interpreter, imports, the CLI and batch layers. These tests
run medconv in a fresh interpreter and check that it imports only what the run
uses; the times themselves are measured by ``scripts/bench_startup.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dicom_synth import axial, oriented, write_enhanced_dwi, write_series

#: Libraries a plain DICOM -> NIfTI run or ``--help`` never needs (each costs 20-300 ms to import).
HEAVY = ("SimpleITK", "nibabel", "pydicom", "highdicom", "PIL", "tifffile", "imagecodecs", "rich", "joblib",
         "distributed", "dask", "scipy", "threadpoolctl", "pylibjpeg", "jpeg_ls", "importlib.metadata",
         "multiprocessing", "concurrent.futures")
#: medconv modules a plain conversion without preprocessing never needs.
UNUSED_BY_A_PLAIN_RUN = ("medconv.export", "medconv.preview", "medconv.guard.process", "medconv.batch.pool",
                         "medconv.readers.annotations", "medconv.readers.nifti", "medconv.readers.tiff",
                         "medconv.readers.image2d", "medconv.writers.png", "medconv.writers.npz",
                         "medconv.writers.nrrd", "medconv.writers.metaimage", "medconv.cli.hints",
                         "medconv.readers.dicom.greyscale", "medconv.transforms")


def imported_by(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code`` (fails on an exception)."""
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    return set(json.loads(completed.stdout.strip().splitlines()[-1]))


def loaded(modules: set[str], names) -> list[str]:
    """The ``names`` (packages count with their submodules) found in ``modules``."""
    return sorted(module for module in modules for name in names if module == name or module.startswith(name + "."))


def test_importing_the_cli_loads_click_only():
    modules = imported_by("import medconv.cli.main")
    assert loaded(modules, HEAVY + ("numpy", "medconv.batch", "medconv.readers", "medconv.registry")) == []


@pytest.mark.parametrize("argv", [["--help"], ["tcia2nii", "--help"], ["convert", "--help"]],
                         ids=["medconv", "tcia2nii", "convert"])
def test_help_imports_no_heavy_library(argv):
    modules = imported_by(f"from medconv.cli.main import main\nassert main({argv!r}) == 0")
    assert loaded(modules, HEAVY + ("numpy", "medconv.transforms", "medconv.readers.dicom")) == []


def test_a_small_dicom_run_imports_only_what_it_uses(tmp_path):
    """A CT series and an enhanced MR object to NIfTI, as ``medconv tcia2nii`` runs them (no terminal)."""
    iop, positions = axial(4)
    write_series(tmp_path / "in" / "ct", positions, iop)
    write_enhanced_dwi(tmp_path / "in" / "mr" / "dwi.dcm", [(0.0, None, "NONE")], oriented(iop, [0.0, 3.0, 6.0]),
                       iop)
    argv = ["tcia2nii", str(tmp_path / "in"), str(tmp_path / "out")]
    modules = imported_by(f"from medconv.cli.main import main\nassert main({argv!r}) == 0")
    assert len(list((tmp_path / "out").rglob("*.nii.gz"))) == 2
    assert loaded(modules, HEAVY + UNUSED_BY_A_PLAIN_RUN) == []


def test_the_writer_of_a_format_is_the_only_writer_loaded():
    modules = imported_by("from medconv.registry import writer_for_format, writer_for\n"
                          "assert writer_for_format('nii.gz')[0].name == 'nifti'\n"
                          "assert writer_for('x.nii.gz').name == 'nifti'\n"
                          "from medconv.cli.output_options import output_formats\n"
                          "assert 'png' in output_formats()")
    assert loaded(modules, ("medconv.writers.png", "medconv.writers.npz", "medconv.writers.nrrd",
                            "medconv.writers.metaimage", "PIL", "importlib.metadata")) == []


def test_the_reader_of_a_suffix_is_the_only_reader_loaded(tmp_path):
    path = tmp_path / "a.mhd"
    modules = imported_by(f"from medconv.registry import reader_for\nassert reader_for({str(path)!r}).name == 'metaimage'")
    assert loaded(modules, ("medconv.readers.nifti", "medconv.readers.dicom", "medconv.readers.tiff",
                            "medconv.readers.image2d", "medconv.readers.annotations", "PIL", "tifffile",
                            "nibabel", "pydicom", "importlib.metadata")) == []


#: Runs the console entry (``argv`` None) on ``--version``, then reports OpenBLAS's thread count as threadpoolctl reads it.
BLAS_THREADS_AFTER_A_RUN = """
import json, sys
from medconv.cli.main import main
sys.argv = ["medconv", "--version"]
try:
    main()
except SystemExit:
    pass
import numpy, threadpoolctl
print(json.dumps([info["num_threads"] for info in threadpoolctl.threadpool_info() if info["internal_api"] == "openblas"]))
"""


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="OpenBLAS starts one thread on one core anyway")
@pytest.mark.parametrize("user, expected", [(None, 1), ("2", 2)], ids=["default", "user's choice"])
def test_the_console_script_starts_one_blas_thread_unless_told(user, expected):
    env = {key: value for key, value in os.environ.items() if key not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    if user is not None:
        env["OPENBLAS_NUM_THREADS"] = user
    completed = subprocess.run([sys.executable, "-c", BLAS_THREADS_AFTER_A_RUN], capture_output=True, text=True,
                               timeout=120, env=env)
    assert completed.returncode == 0, completed.stderr
    counts = json.loads(completed.stdout.strip().splitlines()[-1])
    if not counts:
        pytest.skip("numpy is not built against OpenBLAS here")
    assert counts == [expected]
