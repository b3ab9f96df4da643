import os
import shutil
from collections import Counter
from pathlib import Path

import pytest
from servers import (
    ADMIN_KEY,
    FakeUpstream,
    Gateway,
    migrated_postgres_schema,
    postgres_database,
)

POSTGRES_URL = os.environ.get("HELIOGRAPH_TEST_POSTGRES_URL")

# -- the e2e mark: every test that starts a process ------------------------------------
# Applied here, centrally, so `pytest -m "not e2e"` is the fast tier (unit + in-process)
# without each module having to remember to mark itself.
E2E_DIR = Path(__file__).parent / "e2e"
# Fixtures that start a subprocess: the gateway (`heliograph serve`), the fake upstream
# process, `python -m heliograph.fake_upstream`.
PROCESS_FIXTURES = frozenset({"gateway", "upstream", "state_gateway", "module_server"})
# Tests that start processes themselves (multiprocessing workers, writer scripts).
PROCESS_TESTS = frozenset({"test_exact_across_two_processes",
                           "test_five_per_minute_across_two_worker_processes",
                           "test_two_sqlite_writer_processes_lose_nothing",
                           "test_the_writer_job_waits_out_a_database_that_is_not_there_yet",
                           "test_one_replica_holds_a_deployment_job_and_another_takes_over",
                           "test_fake_upstream_does_not_use_the_gateway_translations"})


def pytest_ignore_collect(collection_path, config):
    """Under exactly `-m "not e2e"` nothing in tests/e2e can be selected (all of it is
    e2e): do not import those modules at all. Importing them (and the SDKs they use) was
    most of the fast tier's collection time; the tests they hold were deselected anyway."""
    if collection_path == E2E_DIR and " ".join(config.option.markexpr.split()) == "not e2e":
        return True
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        in_e2e = E2E_DIR in Path(str(item.path)).parents
        fixtures = set(getattr(item, "fixturenames", ()))
        name = getattr(item, "originalname", item.name)
        if in_e2e or fixtures & PROCESS_FIXTURES or name in PROCESS_TESTS:
            item.add_marker(pytest.mark.e2e)


# -- skips: one summary line instead of one line per skipped test ----------------------
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Without PostgreSQL/Redis hundreds of tests skip for the same two or three reasons:
    say so once (`-rs` still lists them one by one)."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped or set(config.option.reportchars or "") & set("saA"):
        return
    reasons: Counter[str] = Counter()
    for report in skipped:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reasons[reason.removeprefix("Skipped: ")] += 1
    summary = "; ".join(f"{reason} ({count})" for reason, count in reasons.most_common())
    terminalreporter.write_line(f"{len(skipped)} skipped: {summary}")


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
def migrated_postgres_url():
    """One PostgreSQL schema, migrated once for the whole session, for the unit tests of
    the store and the shared state: each empties it first (servers.empty_postgres_tables),
    which is far cheaper than a fresh schema and every migration per test."""
    if not POSTGRES_URL:
        pytest.skip("HELIOGRAPH_TEST_POSTGRES_URL not set: PostgreSQL tests skipped")
    with migrated_postgres_schema(POSTGRES_URL) as url:
        yield url


@pytest.fixture(scope="session")
def migrated_sqlite_file(tmp_path_factory):
    """A SQLite database migrated once for the session: unit tests copy it (copy_of, in
    servers.py) rather than run every migration on a fresh file each time."""
    from heliograph.store import open_store

    path = tmp_path_factory.mktemp("template") / "migrated.db"
    open_store(f"sqlite:///{path}").close()  # closed cleanly: no -wal file left over
    return path


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


@pytest.fixture(scope="module")
def chromium():
    """Debian's chromium driven by Playwright (never Playwright's own browser download),
    one per test module."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable)
        yield browser
        browser.close()
