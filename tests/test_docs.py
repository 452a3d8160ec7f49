"""The documentation stays in step with the code it describes."""

from pathlib import Path

from medconv.volume import META_KEYS
from medconv.writers.npz import npz_fields
from medconv import Volume
import numpy as np

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_meta_key_is_documented():
    text = (DOCS / "conventions.md").read_text()
    for key, meaning in META_KEYS.items():
        assert f"| `{key}` | {meaning} |" in text, key


def test_every_npz_field_is_documented():
    text = (DOCS / "conventions.md").read_text()
    for field in npz_fields(Volume(np.zeros((1, 1, 1)), spacing=(1, 1, 1))):
        assert f"| `{field}` |" in text, field
