"""Unit tests of the cache and rate limiter over the real SharedState backends
(see tests/state/state_backends.py)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "state"))

from state_backends import KINDS, make_backend  # noqa: E402


@pytest.fixture(params=KINDS)
def backend(request, tmp_path):
    yield from make_backend(request.param, tmp_path)
