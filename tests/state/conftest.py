"""Every SharedState conformance test runs once per backend: SQLite (a copy of a migrated
temp file), PostgreSQL (the session's migrated schema, emptied) and Redis (a unique key
prefix, deleted afterwards)."""

import pytest
from state_backends import KINDS, make_backend


@pytest.fixture(params=KINDS)
def backend(request, tmp_path):
    yield from make_backend(request.param, tmp_path, request)
