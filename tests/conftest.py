"""Shared fixtures. Tests run offline and from any working directory."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# model/ runs from the repository (python -m model.train); make it importable
# whatever the current directory is.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def scorer():
    from kefuguard import Scorer

    return Scorer.load()


@pytest.fixture(scope="session")
def scorers():
    from kefuguard import Scorer

    return {mode: Scorer.load(mode=mode) for mode in ("hybrid", "model", "rules")}
