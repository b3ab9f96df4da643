import os

import pytest
from servers import ADMIN_KEY, FakeUpstream, Gateway, postgres_database

POSTGRES_URL = os.environ.get("HELIOGRAPH_TEST_POSTGRES_URL")


@pytest.fixture(scope="session")
def upstream():
    server = FakeUpstream()
    yield server
    server.stop()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def database_url(request, tmp_path_factory):
    """Every end-to-end test runs once per store."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'heliograph.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("HELIOGRAPH_TEST_POSTGRES_URL not set: PostgreSQL tests skipped")
    url, drop = postgres_database(POSTGRES_URL)
    yield url
    drop()


@pytest.fixture(scope="session")
def gateway(upstream, database_url, tmp_path_factory):
    """One gateway per store, shared by the tests that only read and write records."""
    gw = Gateway(tmp_path_factory.mktemp("gw"), upstream.url, database_url)
    yield gw
    gw.stop()


@pytest.fixture
def openai_client(gateway):
    import openai
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=ADMIN_KEY, max_retries=0)


@pytest.fixture
def async_openai_client(gateway):
    import openai
    return openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=ADMIN_KEY, max_retries=0)


REDIS_URL = os.environ.get("HELIOGRAPH_TEST_REDIS_URL")


@pytest.fixture(scope="session", params=["sqlite+embedded", "postgres+embedded",
                                        "sqlite+redis"])
def state_gateway(request, upstream, tmp_path_factory):
    """A two-worker gateway whose shared state (cache, rate limits) lives in the embedded
    store (SQLite or PostgreSQL) or in Redis."""
    store, state = request.param.split("+")
    env = {}
    drop = None
    if store == "postgres":
        if not POSTGRES_URL:
            pytest.skip("HELIOGRAPH_TEST_POSTGRES_URL not set: PostgreSQL tests skipped")
        database_url, drop = postgres_database(POSTGRES_URL)
    else:
        database_url = f"sqlite:///{tmp_path_factory.mktemp('statedb') / 'heliograph.db'}"
    if state == "redis":
        if not REDIS_URL:
            pytest.skip("HELIOGRAPH_TEST_REDIS_URL not set: Redis tests skipped")
        env["HELIOGRAPH_REDIS_URL"] = REDIS_URL
    gw = Gateway(tmp_path_factory.mktemp("state"), upstream.url, database_url, workers=2,
                 env=env)
    yield gw
    gw.stop()
    if drop:
        drop()


@pytest.fixture
def state_client(state_gateway):
    import openai
    return openai.OpenAI(base_url=state_gateway.url + "/v1", api_key=ADMIN_KEY, max_retries=0)
