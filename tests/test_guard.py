"""medconv.guard: a call that kills its process (signal, abort, panic, runaway memory, no end) is only an error.

The crashes are real: ``os.abort`` raises SIGABRT as an uncaught C++ exception does,
a NULL read raises SIGSEGV, GDCM itself aborts on a JPEG-LS slice with Rows 32768,
and pylibjpeg-rle's Rust code panics on a corrupt RLE frame (issue 16 items 2, 3).
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

import crash_readers as crash
from medconv.errors import DecoderCrashedError, DecoderTimeoutError, MemoryLimitError
from medconv.guard import GuardedProcess, Limits, Returned, clean_sys_path, guarded


@pytest.mark.parametrize("function, signal_text", [
    pytest.param(crash.abort, "signal 6, SIGABRT", id="abort"),
    pytest.param(crash.segfault, "signal 11, SIGSEGV", id="segfault"),
])
def test_a_fatal_signal_becomes_a_decoder_crashed_error_and_the_caller_lives_on(function, signal_text):
    with pytest.raises(DecoderCrashedError) as error:
        guarded(function, what="JPEG-LS decoding", path="/data/1.dcm")
    assert signal_text in str(error.value)
    assert error.value.path == "/data/1.dcm" and "JPEG-LS decoding" in error.value.message
    assert error.value.reason == signal_text
    assert guarded(crash.echo, 42) == 42  # a new helper took over


def test_a_panic_is_a_decoder_crash_not_an_escaped_base_exception():
    with pytest.raises(DecoderCrashedError, match="PanicException: index out of bounds"):
        guarded(crash.panic, what="RLE decoding", path="x.dcm")


def test_ordinary_exceptions_come_back_unchanged():
    with pytest.raises(ValueError, match="an ordinary error from the decoder"):
        guarded(crash.fail_with_value_error)


def test_a_call_past_its_time_limit_is_stopped():
    started = time.perf_counter()
    with pytest.raises(DecoderTimeoutError, match="no answer within 0.5 s"):
        guarded(crash.hang, 30, limits=Limits(seconds=0.5), path="slow.dcm")
    assert time.perf_counter() - started < 10
    assert guarded(crash.echo, "alive") == "alive"


def test_a_runaway_allocation_is_a_memory_error_of_the_call_only():
    with pytest.raises(MemoryLimitError, match="needed more than 256 MB"):
        guarded(crash.allocate, 1 << 30, limits=Limits(memory_bytes=256 << 20), path="bomb.dcm")
    assert guarded(crash.allocate, 1 << 20, limits=Limits(memory_bytes=256 << 20)) == 1 << 20


@pytest.mark.parametrize("shape", [pytest.param((64, 64), id="in-the-pipe"),
                                   pytest.param((256, 256, 20), id="shared-memory")])
def test_arrays_come_back_equal(shape):
    array = np.random.default_rng(0).integers(-1024, 3000, size=shape, dtype=np.int16)
    back = guarded(crash.echo, array)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable  # a reader may go on working on it in place


def test_one_helper_is_reused_and_a_dead_one_replaced():
    helper = GuardedProcess("test")
    try:
        first = helper.call(crash.echo, 1)
        pid = helper.pid
        assert isinstance(first, Returned) and helper.call(crash.echo, 2) == Returned(2)
        assert helper.pid == pid and helper.starts == 1
        death = helper.call(crash.abort).death
        assert death.signal == 6 and "abort" in death.crash_site  # faulthandler's innermost frame
        assert helper.call(crash.echo, 3) == Returned(3) and helper.starts == 2
    finally:
        helper.stop()
    assert not helper.alive


def test_helpers_never_import_from_the_working_directory(tmp_path, monkeypatch):
    """A json.py in the folder medconv runs from would run in every helper (issue 16 item 4)."""
    (tmp_path / "json.py").write_text("import os\nos.environ['MEDCONV_PLANTED'] = '1'\nraise SystemExit(3)\n")
    (tmp_path / "numpy.py").write_text("raise SystemExit(4)\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend("")  # as `python -m` or an interactive session has it
    assert str(tmp_path) not in clean_sys_path() and "" not in clean_sys_path()
    helper = GuardedProcess("test")
    try:
        facts = helper.call(crash.process_facts).value
    finally:
        helper.stop()
    assert not facts["planted"]
    assert os.path.dirname(facts["json_file"]) != str(tmp_path)
    assert str(tmp_path) not in facts["sys_path"] and "" not in facts["sys_path"]


@pytest.mark.corpus
def test_gdcm_aborting_on_a_jpeg_ls_slice_with_rows_32768_is_contained(tmp_path):
    """The real thing: GDCM throws a C++ exception nobody catches (SIGABRT) on this slice."""
    from conftest import corpus_path

    import pydicom

    dataset = pydicom.dcmread(corpus_path("pydicom_test_files", "MR_small_jpeg_ls_lossless.dcm"))
    dataset.Rows = 32768
    path = tmp_path / "rows32768.dcm"
    dataset.save_as(path)
    with pytest.raises(DecoderCrashedError) as error:
        guarded(decode_with_gdcm, str(path), what="JPEG-LS decoding", path=path)
    assert "signal 6, SIGABRT" in str(error.value) and str(path) in str(error.value)
    assert "gdcm::Exception" in str(error.value)  # GDCM's last words, from the helper's stderr


@pytest.mark.corpus
def test_a_rust_panic_on_a_corrupt_rle_frame_is_contained(tmp_path):
    from conftest import corpus_path

    path = tmp_path / "rle_panic.dcm"
    path.write_bytes(corrupt_rle(corpus_path("pydicom_test_files", "MR_small_RLE.dcm")))
    with pytest.raises(DecoderCrashedError, match="PanicException: index out of bounds"):
        guarded(decode_with_plugin, str(path), "pylibjpeg", what="RLE decoding", path=path)


def decode_with_gdcm(path: str):
    import pydicom

    return pydicom.pixels.pixel_array(pydicom.dcmread(path), decoding_plugin="gdcm")


def decode_with_plugin(path: str, plugin: str):
    import pydicom

    return pydicom.pixels.pixel_array(pydicom.dcmread(path), decoding_plugin=plugin)


#: Four bytes of MR_small_RLE.dcm's first RLE segment that make pylibjpeg-rle 2.2 panic
#: (found by random mutation; the frame starts at byte 1536 of the file).
RLE_PANIC_OFFSET, RLE_PANIC_BYTES = 1536 + 5065, bytes.fromhex("804b9e32")


def corrupt_rle(path) -> bytes:
    data = bytearray(open(path, "rb").read())
    data[RLE_PANIC_OFFSET:RLE_PANIC_OFFSET + 4] = RLE_PANIC_BYTES
    return bytes(data)

