"""Unit tests of the cache and rate limiter over the real SharedState backends
(see tests/state_backends.py)."""

import pytest
from state_backends import KINDS, make_backend


@pytest.fixture(params=KINDS)
def backend(request, tmp_path):
    yield from make_backend(request.param, tmp_path, request)
