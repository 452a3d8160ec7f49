"""DICOM text decoded with its SpecificCharacterSet, and output names made ASCII by one rule.

References: pydicom's own decoding (``dcmread`` of the whole file, its ``PersonName``
and text conversion) for every value, pydicom's charset test files (shipped in the
pydicom wheel, ``pydicom.data.get_charset_files``) for real ISO 2022 / GB18030 /
UTF-8 encodings, and Unicode's code points and NFKD (``unicodedata``) for names.
Synthetic series are written with pydicom tag by tag (``tests/dicom_synth.py``),
pydicom encoding the text in the declared character set.
"""

from __future__ import annotations

import json
import re
import unicodedata
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_charset_files
from pydicom.multival import MultiValue

from dicom_synth import axial, write_series
from medconv.cli.main import main
from medconv.layout import ascii_name, restore_name, sanitize_component
from medconv.readers.dicom.headers import read_header_pydicom, read_header_raw

#: A path component medconv may write: ASCII letters, digits and ``._+-`` only.
ASCII_SAFE = re.compile(r"[A-Za-z0-9_.+\-]+")
#: Header attribute of each text keyword the files of pydicom hold.
TEXT_FIELDS = {"PatientName": "patient_name", "PatientID": "patient_id", "SeriesDescription": "series_description",
               "StudyDescription": "study_description", "ProtocolName": "protocol_name",
               "Manufacturer": "manufacturer"}
CHARSET_FILES = sorted(Path(p) for p in get_charset_files("chr*.dcm"))


def pydicom_text(ds, keyword: str) -> str | None:
    """What pydicom decodes for ``keyword`` (multiple values joined by backslashes), or ``None`` if absent."""
    if keyword not in ds:
        return None
    value = ds[keyword].value
    if isinstance(value, MultiValue):
        return "\\".join(str(v) for v in value)
    return str(value).strip("\x00 ")


@pytest.mark.parametrize("read", [read_header_raw, read_header_pydicom], ids=["raw", "pydicom"])
@pytest.mark.parametrize("path", CHARSET_FILES, ids=[p.stem for p in CHARSET_FILES])
def test_pydicom_charset_files_decode_as_pydicom_does(path, read):
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    header = read(str(path))
    assert header is not None  # every one is a little-endian Part-10 file the raw parser takes
    compared = 0
    for keyword, attribute in TEXT_FIELDS.items():
        expected = pydicom_text(ds, keyword)
        if expected is not None:
            assert getattr(header, attribute) == expected, keyword
            compared += 1
    assert header.text_warnings == ()
    if "PatientName" in ds:
        assert compared >= 2


def test_the_charset_files_hold_the_scripts_they_are_named_for():
    """The comparisons above exercise real multi-byte and ISO 2022 text, not only ASCII."""
    names = {p.stem: str(pydicom.dcmread(p, stop_before_pixels=True).PatientName) for p in CHARSET_FILES
             if p.stem in ("chrH31", "chrX2", "chrI2", "chrRuss")}
    assert "山田" in names["chrH31"] and "小东" in names["chrX2"] and "길동" in names["chrI2"]
    assert not names["chrRuss"].isascii()


def series(root: Path, name: str, number: int, *, charset, patient="SYNTH-001", person="Synthetic^Phantom",
           description="synthetic", edit=None) -> list[Path]:
    iop, positions = axial(3)
    extra = {"PatientName": person} if charset is None else {"SpecificCharacterSet": charset, "PatientName": person}
    return write_series(root / name, positions, iop, series_number=number, patient_id=patient, description=description,
                        extra=extra, edit=edit, seed=number).paths


def convert(source: Path, out: Path) -> dict[str, dict]:
    assert main(["tcia2nii", str(source), str(out), "-q", "-j", "1"]) == 0
    rows = [json.loads(line) for line in (out / "medconv-manifest.jsonl").read_text().splitlines()]
    return {row["output"]: row for row in rows}


def sidecar(out: Path, output: str) -> dict:
    return json.loads((out / output.replace(".nii.gz", ".json")).read_text())["meta"]


def reference(path: Path) -> pydicom.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the bogus character set it falls back from
        return pydicom.dcmread(path, stop_before_pixels=True)


def test_non_ascii_series_convert_with_ascii_safe_names_and_their_text_in_the_sidecar(tmp_path):
    src = tmp_path / "src"
    written = {
        "utf8": series(src, "utf8", 2, charset="ISO_IR 192", patient="Müller^Jürgen", person="Müller^Jürgen"),
        "gb18030": series(src, "gb18030", 3, charset="GB18030", person="王^小东", description="胸部平扫 CT"),
        "jis": series(src, "jis", 4, charset=["", "ISO 2022 IR 87"], person="ヤマダ^タロウ=山田^太郎=やまだ^たろう",
                      description="胸部単純ＣＴ"),
    }
    raw = {kind: paths[0].read_bytes() for kind, paths in written.items()}
    assert "胸部".encode("gb18030") in raw["gb18030"] and b"\x1b$B" in raw["jis"]  # encoded as declared
    rows = convert(src, tmp_path / "out")
    assert len(rows) == 3
    for output in rows:
        assert all(ASCII_SAFE.fullmatch(part) for part in output.split("/")), output
    # names by the rule: NFKD transliteration where it gives ASCII, else u + the UTF-16 code unit
    names = {"Muller_Jurgen/20000101_2_CT_synthetic.nii.gz": "utf8",
             "SYNTH-001/20000101_3_CT_u80f8u90e8u5e73u626b_CT.nii.gz": "gb18030",  # 胸 U+80F8 部 U+90E8 平 扫
             "SYNTH-001/20000101_4_CT_u80f8u90e8u5358u7d14CT.nii.gz": "jis"}  # 単 U+5358 純 U+7D14, ＣＴ -> CT
    assert set(rows) == set(names)
    for output, row in rows.items():
        ds = reference(written[names[output]][0])
        meta = sidecar(tmp_path / "out", output)
        assert meta["patient_id"] == ds.PatientID == row["patient_id"]
        assert meta["series_description"] == ds.SeriesDescription == row["series_description"]
        assert meta["warnings"] == []
    header = read_header_raw(str(written["jis"][0]))
    assert header.patient_name == str(reference(written["jis"][0]).PatientName)


def test_a_bogus_character_set_converts_with_a_warning(tmp_path):
    def bogus(ds, k):
        ds.SpecificCharacterSet = "ISO_IR 999"
        ds["SeriesDescription"].value = "Thorax Körper".encode("latin-1")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom, writing, warns about the bogus set it cannot encode in
        paths = series(tmp_path / "src", "bogus", 5, charset=None, edit=bogus)
    rows = convert(tmp_path / "src", tmp_path / "out")
    (output, row), = rows.items()
    assert row["status"] == "converted" and output == "SYNTH-001/20000101_5_CT_Thorax_Korper.nii.gz"
    meta = sidecar(tmp_path / "out", output)
    assert meta["series_description"] == reference(paths[0]).SeriesDescription == "Thorax Körper"
    warning, = meta["warnings"]
    assert "ISO_IR 999" in warning and "SeriesDescription" in warning and "latin-1" in warning
    assert row["warnings"] == [warning] and row["series_description"] == "Thorax Körper"


def test_bytes_invalid_in_the_declared_set_fall_back_with_a_warning(tmp_path):
    def latin1_in_utf8(ds, k):
        ds["SeriesDescription"].value = "Schädel".encode("latin-1")  # declared UTF-8, written latin-1

    path = series(tmp_path, "s", 6, charset="ISO_IR 192", edit=latin1_in_utf8)[0]
    for read in (read_header_raw, read_header_pydicom):
        header = read(str(path))
        assert header.series_description == "Schädel"
        warning, = header.text_warnings
        assert "ISO_IR 192" in warning and "latin-1" in warning and path.name in warning


def test_undeclared_utf8_is_read_as_utf8_with_a_warning(tmp_path):
    def utf8_undeclared(ds, k):
        ds["SeriesDescription"].value = "胸部".encode("utf-8")

    path = series(tmp_path, "s", 7, charset=None, edit=utf8_undeclared)[0]
    header = read_header_raw(str(path))
    assert header.series_description == "胸部"
    warning, = header.text_warnings
    assert "none, i.e. ASCII" in warning and "UTF-8" in warning


@pytest.mark.parametrize("text, expected", [
    pytest.param("Müller^Jürgen", "Muller_Jurgen", id="umlauts-transliterated"),
    pytest.param("Buc^Jérôme", "Buc_Jerome", id="accents-transliterated"),
    pytest.param("ＣＴ　Ｔｈｏｒａｘ", "CT_Thorax", id="full-width-and-ideographic-space"),
    pytest.param("中", "u4e2d", id="cjk-escaped"),
    pytest.param("やまだ", "u3084u307eu3060", id="kana-with-voicing-mark-kept"),
    pytest.param("ß", "u00df", id="no-decomposition-escaped"),
    pytest.param("T1+C 3.0", "T1+C_3.0", id="ascii-unchanged"),
    pytest.param("𠀋", "ud840udc0b", id="beyond-bmp-as-utf16"),
    pytest.param("Ø°", "u00d8", id="symbols-become-underscore"),
])
def test_names_are_made_ascii_by_the_rule(text, expected):
    assert sanitize_component(text) == expected


def test_the_escapes_are_those_of_the_unicode_code_points():
    for char in "中王小東홍길동ßØµ":
        assert ascii_name(char) == f"u{ord(char):04x}" == "u" + char.encode("utf-16-be").hex()
    assert ascii_name("é") == unicodedata.normalize("NFKD", "é")[0]


@pytest.mark.parametrize("text", ["王^小東", "胸部平扫 CT", "Yamada^Tarou=山田^太郎", "ｶﾀｶﾅ", "𠀋x", "ßØ"])
def test_escapes_restore_the_original_text(text):
    assert restore_name(ascii_name(text)) == unicodedata.normalize("NFC", text)


def test_every_sanitised_name_is_ascii_safe():
    hostile = ["王/../小東", "\u202eevil", "a\u0000b", "\ufeffbom", "…", "👍", "Ａ/Ｂ", "x\u0301", "\u00a0"]
    for text in hostile:
        assert ASCII_SAFE.fullmatch(sanitize_component(text)), text


JIS_NAME = b"\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B"  # Yamada^Tarou in JIS X 0208 (PS3.5 H.3.1), escapes and all


def _with_raw_charset(path: Path, value: bytes) -> None:
    """Rewrite the file's SpecificCharacterSet value bytes as ``value`` (explicit VR little endian, VR CS)."""
    data = path.read_bytes()
    at = data.index(b"\x08\x00\x05\x00CS")
    length = int.from_bytes(data[at + 6:at + 8], "little")
    value += b" " * (len(value) % 2)
    path.write_bytes(data[:at + 6] + len(value).to_bytes(2, "little") + value + data[at + 8 + length:])


@pytest.mark.parametrize("declared", [pytest.param(None, id="absent"), pytest.param(b"", id="empty"),
                                      pytest.param(b"\x00", id="nul"), pytest.param(b"  ", id="spaces")])
def test_escape_sequences_without_a_declared_code_extension_are_not_text_of_the_set(tmp_path, declared):
    """Escapes are no text of the default repertoire: decoded by the fallback (UTF-8 keeps the bytes), with a
    warning; they used to pass as ASCII in silence."""
    def jis(ds, k):
        ds["PatientName"].value = JIS_NAME

    path = series(tmp_path, "s", 8, charset=None if declared is None else "XX", edit=jis)[0]
    if declared is not None:
        _with_raw_charset(path, declared)
    for read in (read_header_raw, read_header_pydicom):
        header = read(str(path))
        assert header.patient_name == JIS_NAME.decode("utf-8")
        warning, = header.text_warnings
        assert "PatientName" in warning and "none, i.e. ASCII" in warning and path.name in warning


def test_an_unknown_first_term_keeps_the_code_extensions_after_it_as_pydicom_does(tmp_path):
    def jis(ds, k):
        ds["PatientName"].value = JIS_NAME

    path = series(tmp_path, "s", 9, charset="XX", edit=jis)[0]
    _with_raw_charset(path, b"XYZ\\ISO 2022 IR 87")
    expected = str(reference(path).PatientName)
    assert expected == "山田^太郎"
    for read in (read_header_raw, read_header_pydicom):
        header = read(str(path))
        assert header.patient_name == expected
        warning, = header.text_warnings
        assert "'XYZ'" in warning and path.name in warning


@pytest.mark.parametrize("value, terms", [
    pytest.param(b"ISO_IR 100", ("ISO_IR 100",), id="bytes"),
    pytest.param(100, ("100",), id="a-number"),
    pytest.param(2.5, ("2.5",), id="a-float"),
    pytest.param(MultiValue(str, ["", "ISO 2022 IR 87"]), ("", "ISO 2022 IR 87"), id="multivalue"),
])
def test_declared_terms_of_values_pydicom_did_not_make_text_never_raise(value, terms):
    """A SpecificCharacterSet element that reached the header as bytes or a number (a wrong VR in the file): the
    declared terms are its text, never an exception (a number used to raise TypeError)."""
    from medconv.readers.dicom.charset import SPECIFIC_CHARACTER_SET, _declared_terms, decode_texts
    from medconv.readers.dicom.headers import FIELD_TAGS, Unconvertible

    assert _declared_terms((None, value)) == terms
    assert _declared_terms((None, Unconvertible("BytesLengthException: 3 bytes for US"))) == (
        "BytesLengthException: 3 bytes for US",)
    name = "Müller^Jürgen".encode("latin-1")
    texts = decode_texts({FIELD_TAGS["PatientName"]: (name, None), SPECIFIC_CHARACTER_SET: (None, value)},
                         FIELD_TAGS, "x.dcm")
    assert texts.values["PatientName"] == name.decode("latin-1")  # latin-1 declared, or the fallback's
