"""Output names made ASCII by one rule (the DICOM character-set tests follow in this file).

References: Unicode's code points and NFKD (``unicodedata``).
"""

from __future__ import annotations

import re
import unicodedata

import pytest

from medconv.layout import ascii_name, restore_name, sanitize_component

#: A path component medconv may write: ASCII letters, digits and ``._+-`` only.
ASCII_SAFE = re.compile(r"[A-Za-z0-9_.+\-]+")
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
