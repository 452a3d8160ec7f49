"""``Source.info`` keys: one definition each (``InfoKey``), stored as the plain strings they always were.

A Source travels to worker processes (pickle) and Dask, its ``info`` is printed by
``medconv scan`` (JSON) and used by ``--name`` templates, and its facts enter the resume
fingerprint: an ``InfoKey`` given as a key must leave all of that exactly as a literal
string key does, or outputs written before the keys were typed would look stale.
"""

from __future__ import annotations

import json
import pickle

import pytest

from medconv.layout import output_stem
from medconv.source import InfoKey, Source

LITERAL_INFO = {"excluded": "a localizer", "is_2d": True, "frame_group": "echo 2", "patient_id": "P1", "n_files": 3}
TYPED_INFO = {InfoKey.EXCLUDED: "a localizer", InfoKey.IS_2D: True, InfoKey.FRAME_GROUP: "echo 2",
              InfoKey.PATIENT_ID: "P1", "n_files": 3}


def _source(info) -> Source:
    return Source("unit", "dicom", ("/data/a.dcm",), "/data", info)


def test_typed_keys_are_stored_as_plain_strings():
    source = _source(TYPED_INFO)
    assert [type(key) for key in source.info] == [str] * len(LITERAL_INFO)
    assert list(source.info) == list(LITERAL_INFO)


def test_a_source_with_typed_keys_pickles_and_prints_as_one_with_literal_keys():
    typed, literal = _source(TYPED_INFO), _source(LITERAL_INFO)
    assert pickle.dumps(typed) == pickle.dumps(literal)  # what a worker process or Dask receives
    assert json.dumps(dict(typed.info), sort_keys=True) == json.dumps(LITERAL_INFO, sort_keys=True)  # medconv scan
    assert pickle.loads(pickle.dumps(typed)) == literal


def test_templates_see_typed_keys_under_their_text():
    assert output_stem(_source(TYPED_INFO), "{patient_id}_{frame_group}") == "P1_echo_2"


def test_every_key_has_one_distinct_text():
    values = [key.value for key in InfoKey]
    assert len(values) == len(set(values))  # @unique would refuse an alias; a copy-pasted value would be one
    assert all(str(key) == key.value and f"{key}" == key.value for key in InfoKey)


@pytest.mark.parametrize("info, expected", [
    pytest.param({}, (None, False, None, None, False, ""), id="image"),
    pytest.param({"excluded": "a localizer", "is_2d": True}, ("a localizer", True, None, None, False, ""),
                 id="excluded-2d"),
    pytest.param({"unreadable": "truncated", "error": "cannot parse"}, (None, False, "truncated", "cannot parse",
                                                                        False, ""), id="unreadable"),
    pytest.param({"annotates": "", "error": "no such series"}, (None, False, None, "no such series", True, ""),
                 id="unpaired-annotation"),
    pytest.param({"annotates": "P1_CT"}, (None, False, None, None, True, "P1_CT"), id="paired-annotation"),
])
def test_the_decision_properties_read_what_readers_write(info, expected):
    source = _source(info)
    assert (source.excluded, source.is_2d, source.unreadable, source.error, source.is_annotation,
            source.annotates) == expected
