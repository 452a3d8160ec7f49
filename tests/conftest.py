"""Shared fixtures: the real-data corpora beside the project, and temporary trees."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CORPORA = Path(os.environ.get("MEDCONV_CORPORA", PROJECT_ROOT.parent / "shared" / "corpora"))


def corpus_path(*parts: str) -> Path:
    """A path inside ``../shared/corpora``; skips the test where it is absent, fails under CI."""
    path = CORPORA.joinpath(*parts)
    if not path.exists():
        message = f"corpus not found: {path}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must run the corpus tests)")
        pytest.skip(message)
    return path


@pytest.fixture
def corpora() -> Path:
    """The corpora folder (see ``../shared/corpora/README.md``)."""
    return corpus_path()
