"""Logging (issue 15 item 5): ``--log FILE`` holds everything, ``-v``/``-vv``/``-q`` set what the terminal shows.

What a unit logs inside a worker process reaches the parent's log with its row;
tracebacks of internal errors are in the log file and the manifest.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from batch_trees import write_nifti_tree
from crash_readers import install_crash_reader
from medconv.cli.main import main

MEDCONV = str(Path(sys.executable).parent / "medconv")


@pytest.fixture(autouse=True)
def fresh_logging():
    yield
    from medconv.logs import configure_logging

    configure_logging(0, None)  # the next test starts from the default


@pytest.mark.parametrize("jobs", [pytest.param("1", id="in-process"), pytest.param("2", id="workers")])
def test_the_log_file_holds_each_units_decisions_warnings_timings_and_tracebacks(tmp_path, monkeypatch, capsys, jobs):
    install_crash_reader(tmp_path / "plugin", monkeypatch)
    src = tmp_path / "src"
    src.mkdir()
    for name in ("decide", "ok-1", "bug"):
        (src / f"{name}.crash").write_text(name)
    log = tmp_path / "logs" / "run.log"
    assert main(["convert", str(src), str(tmp_path / "out"), "--reader", "crash", "-j", jobs, "--log", str(log)]) == 1
    text = log.read_text()
    assert re.search(r"converted ok-1 -> ok-1\.nii\.gz \(4x3x2 int16\) in \d+\.\d\d s", text)
    assert "decide: decided to fill a gap of 2 slices" in text  # logged by the reader, in a worker or here
    assert "decide: gap between slices 4 and 7" in text  # debug level reaches the file
    assert "failed bug: internal error: KeyError" in text
    assert "Traceback (most recent call last)" in text and "a key that is not there" in text
    assert re.search(r"execution: (in-process|workers)", text)
    err = capsys.readouterr().err
    assert "decided to fill" not in err and "converted ok-1 ->" not in err  # the terminal shows the summary only
    assert "INTERNAL ERROR" in err


def test_terminal_levels_quiet_default_verbose_debug(tmp_path):
    write_nifti_tree(tmp_path / "src", n_good=2)
    outputs = {}
    for flags in ([], ["-q"], ["-v"], ["-vv"]):
        dest = tmp_path / ("out" + "".join(flags))
        jobs = "2" if flags == ["-vv"] else "1"  # workers only where their start is what is shown
        done = subprocess.run([MEDCONV, "convert", str(tmp_path / "src"), str(dest), "-j", jobs, *flags],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 1
        outputs[" ".join(flags)] = done.stderr
    assert outputs["-q"].splitlines() == [f"2 of 4 unit(s) failed; see {tmp_path / 'out-q' / 'medconv-manifest.csv'}"]
    assert "converted  2" in outputs[""] and "converted group0/case000 ->" not in outputs[""]
    verbose = outputs["-v"]
    assert "converted group0/case000 -> group0/case000.nii.gz (12x10x8 int16)" in verbose
    assert "medconv: warning: failed broken/garbage:" in verbose and "converted  2" in verbose
    assert "started 2 worker process(es)" in outputs["-vv"] and "started 2 worker" not in verbose


def test_quiet_and_verbose_together_is_a_usage_error(tmp_path, capsys):
    write_nifti_tree(tmp_path / "src", n_good=1, bad=False)
    assert main(["convert", str(tmp_path / "src"), str(tmp_path / "out"), "-q", "-v"]) == 2
    assert "-q and -v contradict each other" in capsys.readouterr().err


def test_a_log_file_that_cannot_be_written_is_a_user_error(tmp_path, capsys):
    write_nifti_tree(tmp_path / "src", n_good=1, bad=False)
    (tmp_path / "file").write_text("x")
    assert main(["convert", str(tmp_path / "src"), str(tmp_path / "out"), "--log", str(tmp_path / "file" / "x.log")]) == 2
    err = capsys.readouterr().err
    assert "cannot write the log file" in err and "internal" not in err
    assert logging.getLogger("medconv").handlers  # the terminal handler is still there


def _planar_tiff(path: Path) -> Path:
    """An RGB TIFF (tifffile) whose PlanarConfiguration is 3: tifffile logs "invalid PLANARCONFIG" reading it."""
    import numpy as np
    import tifffile

    from hostile_inputs import fuzz_inputs

    tifffile.imwrite(path, np.zeros((8, 6, 3), np.uint8), photometric="rgb")
    data = path.read_bytes()
    order, entries, _ = fuzz_inputs.tiff_entries(data)
    place, _, kind, _, _ = next(entry for entry in entries if entry[1] == 284)
    path.write_bytes(fuzz_inputs.set_tiff_value(data, place, order, kind, 3))
    return path


@pytest.mark.parametrize("jobs", [pytest.param("1", id="in-process"), pytest.param("2", id="workers")])
def test_other_libraries_messages_are_medconvs_once_per_unit(tmp_path, jobs):
    src = tmp_path / "src"
    src.mkdir()
    _planar_tiff(src / "planar.tif")
    import shutil

    shutil.copy(src / "planar.tif", src / "other.tif")
    log = tmp_path / "run.log"
    done = subprocess.run([MEDCONV, "convert", str(src), str(tmp_path / "out"), "--reader", "tiff", "-j", jobs,
                           "--log", str(log)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert "PLANARCONFIG" not in done.stderr  # never straight on the terminal
    text = log.read_text()
    for unit in ("planar", "other"):
        lines = [line for line in text.splitlines()
                 if f"medconv.external.tifffile: {unit}: " in line and "PLANARCONFIG" in line]
        assert len(lines) == 1 and " WARNING " in lines[0], text
    verbose = subprocess.run([MEDCONV, "convert", str(src), str(tmp_path / "out-v"), "--reader", "tiff", "-j", jobs,
                              "-v"], capture_output=True, text=True, timeout=300)
    assert re.search(r"medconv: warning: planar: .*PLANARCONFIG", verbose.stderr), verbose.stderr


def test_a_library_repeating_itself_is_logged_once_with_a_count(tmp_path, monkeypatch, capsys):
    install_crash_reader(tmp_path / "plugin", monkeypatch)
    src = tmp_path / "src"
    src.mkdir()
    (src / "chatty.crash").write_text("chatty")
    log = tmp_path / "run.log"
    assert main(["convert", str(src), str(tmp_path / "out"), "--reader", "crash", "-j", "1", "--log", str(log)]) == 0
    text = log.read_text()
    assert "WARNING medconv.external.somelib.decoder: chatty: page has an odd tag (3 times)" in text
    assert text.count("page has an odd tag") == 1
    assert re.search(r"DEBUG   medconv.external.py.warnings: chatty: UserWarning: a deprecated call", text)
    assert "odd tag" not in capsys.readouterr().err
