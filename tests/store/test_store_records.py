"""Conformance: writing, reading, filtering and paging log records, feedback and scores."""

import pytest

from heliograph.analytics.filters import RequestFilter
from heliograph.records import RECORD_KEYS


def ids(records):
    return [r["id"] for r in records]


def all_ids(reader, flt=None, organization="org1"):
    records, _ = reader.list_requests(organization, flt or RequestFilter(), limit=1000)
    return sorted(ids(records))


def full_record(make_record):
    """Every key set, with every type a record can hold."""
    return make_record(
        "0b9c6a52-5d1e-4a8e-9d43-2f6a1c3e7b10", at="2024-03-04T10:15:30.123456Z",
        key_id="key_0123456789ab", model="gpt-4o", model_used="gpt-4o-mini",
        provider="openai", status=200, error=None, latency_ms=812.25, ttft_ms=120.5,
        prompt_tokens=1200, completion_tokens=345, total_tokens=1545, cached_tokens=1024,
        cache_write_tokens=0, reasoning_tokens=64, cost_usd=0.00123456789,
        cost_known=True, cost_saved_usd=0.0, user_id="alice",
        properties={"Workflow": "triage", "Env": "prod"},
        session_id="sess-1", session_path="/plan/search", session_name="Trip planner",
        cache="miss",
        attempts=[{"model": "gpt-4o", "provider": "openai", "status": 503,
                   "latency_ms": 40.5, "error": "overloaded"},
                  {"model": "gpt-4o-mini", "provider": "openai", "status": 200,
                   "latency_ms": 700.0, "error": None}],
        fallback_index=1,
        ratelimit={"x-ratelimit-limit-requests": 500, "x-ratelimit-remaining-requests": 499,
                   "x-ratelimit-limit-tokens": 30000, "x-ratelimit-remaining-tokens": 28455,
                   "retry-after": None},
        feedback=True, scores={"accuracy": 0.9, "label": "good", "ok": True},
        request={"model": "gpt-4o", "stream": True,
                 "messages": [{"role": "user", "content": "Grüß dich 👋 \"quoted\"\n"}]},
        response='data: {"choices":[{"delta":{"content":"Hi"}}]}\n\ndata: [DONE]\n\n',
    )


def test_insert_is_idempotent(store, make_record, reader):
    batch = [make_record(f"r{i}", properties={"Env": "prod"}) for i in range(5)]
    store.insert_records(batch)
    store.insert_records(batch)                       # a replayed journal
    store.insert_records(batch[:2] + batch[:2])       # duplicates inside one batch
    store.insert_records([])
    assert all_ids(reader) == ["r0", "r1", "r2", "r3", "r4"]
    assert all_ids(reader, RequestFilter(properties={"env": "prod"})) == [
        "r0", "r1", "r2", "r3", "r4"]
    assert reader.metrics("org1", RequestFilter(), "model")["total"]["requests"] == 5


def test_insert_keeps_the_first_version_of_a_record(store, make_record, reader):
    store.insert_records([make_record("r1", model="first")])
    store.insert_records([make_record("r1", model="second")])
    assert reader.get_request("org1", "r1")["model"] == "first"


def test_round_trip_every_key_and_type(store, make_record, reader):
    rec = full_record(make_record)
    bare = make_record("bare", at="2024-03-04T10:00:00.000000Z", feedback=False,
                       cost_usd=None, cost_known=False, request="raw text body",
                       response=[1, "two", None, 3.5, {"nested": []}])
    empty = make_record("empty", at="2024-03-04T09:00:00.000000Z")
    store.insert_records([rec, bare, empty])

    for original in (rec, bare, empty):
        got = reader.get_request("org1", original["id"])
        assert list(got) == list(RECORD_KEYS)
        assert got == original
        for key in RECORD_KEYS:  # == would let 1 pass for True and 1.0 for 1
            assert type(got[key]) is type(original[key]), key

    listed, _ = reader.list_requests("org1", RequestFilter())
    assert ids(listed) == [rec["id"], "bare", "empty"]
    assert all(r["request"] is None and r["response"] is None for r in listed)
    assert listed[0] == {**rec, "request": None, "response": None}

    with_bodies, _ = reader.list_requests("org1", RequestFilter(), with_bodies=True)
    assert with_bodies == [rec, bare, empty]


def test_reads_are_scoped_to_the_organization(store, make_record, reader):
    store.insert_records([make_record("mine"), make_record("theirs", organization="org2")])
    assert reader.get_request("org1", "theirs") is None
    assert reader.get_request("org2", "theirs")["organization"] == "org2"
    assert reader.get_request("org1", "missing") is None
    assert all_ids(reader) == ["mine"]
    assert all_ids(reader, organization="org2") == ["theirs"]


@pytest.fixture
def filter_set(store, make_record):
    store.insert_records([
        make_record("a1", at="2024-03-04T10:00:00.000000Z", model="m-a", provider="p1",
                    user_id="u1", session_id="s1", cache="hit",
                    properties={"Workflow": "w1", "Env": "prod"},
                    request={"messages": [{"content": "Hello World"}]},
                    response="50% off"),
        make_record("a2", at="2024-03-04T11:00:00.000000Z", model="m-a", provider="p2",
                    status=500, user_id="u2", cache="miss",
                    properties={"workflow": "w1", "env": "dev"},
                    request={"text": "a_b"}, response="50x off"),
        make_record("b1", at="2024-03-04T12:00:00.000000Z", model="m-b", provider="p1",
                    status=429, session_id="s1", properties={"WORKFLOW": "w2"},
                    request={"text": "axb"}, response=None),
        make_record("b2", at="2024-03-04T13:00:00.000000Z", model="m-b", provider="p2",
                    user_id="u1", request=None, response={"text": "Nothing here"}),
        make_record("x1", at="2024-03-04T12:30:00.000000Z", organization="org2",
                    model="m-a", provider="p1", user_id="u1", session_id="s1",
                    cache="hit", properties={"workflow": "w1"},
                    request={"messages": [{"content": "hello world"}]}),
    ])
    store.index_search()  # text search runs behind the writer


@pytest.mark.parametrize("flt, expected", [
    (RequestFilter(), ["a1", "a2", "b1", "b2"]),
    (RequestFilter(model="m-a"), ["a1", "a2"]),
    (RequestFilter(provider="p1"), ["a1", "b1"]),
    (RequestFilter(status=500), ["a2"]),
    (RequestFilter(status=200), ["a1", "b2"]),
    (RequestFilter(user_id="u1"), ["a1", "b2"]),
    (RequestFilter(session_id="s1"), ["a1", "b1"]),
    (RequestFilter(cache="hit"), ["a1"]),
    (RequestFilter(cache="miss"), ["a2"]),
    (RequestFilter(model="m-a", provider="p2"), ["a2"]),
    (RequestFilter(model="nope"), []),
])
def test_equality_filters(store, filter_set, flt, expected, reader):
    assert all_ids(reader, flt) == expected


@pytest.mark.parametrize("properties, expected", [
    ({"workflow": "w1"}, ["a1", "a2"]),
    ({"Workflow": "w1"}, ["a1", "a2"]),        # names are case-insensitive
    ({"WORKFLOW": "w2"}, ["b1"]),
    ({"workflow": "W1"}, []),                  # values are not
    ({"workflow": "w1", "env": "prod"}, ["a1"]),  # every pair must match
    ({"workflow": "w2", "env": "prod"}, []),
    ({"missing": "x"}, []),
])
def test_property_filters(store, filter_set, properties, expected, reader):
    assert all_ids(reader, RequestFilter(properties=properties)) == expected


@pytest.mark.parametrize("since, until, expected", [
    ("2024-03-04T11:00:00.000000Z", None, ["a2", "b1", "b2"]),   # since is inclusive
    (None, "2024-03-04T12:00:00.000000Z", ["a1", "a2"]),         # until is exclusive
    ("2024-03-04T11:00:00Z", "2024-03-04T13:00:00Z", ["a2", "b1"]),
    ("2024-03-04T12:00:00+01:00", None, ["a2", "b1", "b2"]),    # offsets converted to UTC
    ("2024-03-04", "2024-03-05", ["a1", "a2", "b1", "b2"]),     # a date is its midnight UTC
    ("2024-03-05T00:00:00Z", None, []),
])
def test_time_filters(store, filter_set, since, until, expected, reader):
    assert all_ids(reader, RequestFilter(since=since, until=until)) == expected


def test_invalid_timestamp_is_a_value_error(store, filter_set, reader):
    with pytest.raises(ValueError):
        reader.list_requests("org1", RequestFilter(since="yesterday"))


@pytest.mark.parametrize("q, expected", [
    ("hello world", ["a1"]),         # case-insensitive, and org2's match is not shown
    ("HELLO", ["a1"]),
    ("50%", ["a1"]),                 # % is literal, so "50x off" does not match
    ("a_b", ["a2"]),                 # _ is literal, so "axb" does not match
    ("nothing HERE", ["b2"]),        # response bodies are searched too
    ("off", ["a1", "a2"]),
    ("absent", []),
])
def test_text_search(store, filter_set, q, expected, reader):
    assert all_ids(reader, RequestFilter(q=q)) == expected


def test_filters_combine_with_text_search_and_properties(store, filter_set, reader):
    flt = RequestFilter(model="m-a", q="off", properties={"env": "dev"})
    assert all_ids(reader, flt) == ["a2"]


def test_pagination_walks_every_record_once_newest_first(store, make_record, reader):
    # Three records per second, so created_at ties are broken by id across page edges.
    records = [make_record(f"req-{i:02d}", at=f"2024-03-04T10:00:{i // 3:02d}.000000Z",
                           model="even" if i % 2 == 0 else "odd")
               for i in range(25)]
    store.insert_records(records)
    expected = [r["id"] for r in sorted(records, key=lambda r: (r["created_at"], r["id"]),
                                        reverse=True)]

    seen, cursor, pages = [], None, 0
    while True:
        page, cursor = reader.list_requests("org1", RequestFilter(), limit=7, cursor=cursor)
        pages += 1
        seen += ids(page)
        if cursor is None:
            break
    assert pages == 4
    assert seen == expected

    # The cursor carries over with a filter too.
    first, cursor = reader.list_requests("org1", RequestFilter(model="even"), limit=10)
    second, last = reader.list_requests("org1", RequestFilter(model="even"), limit=10,
                                       cursor=cursor)
    assert last is None
    assert ids(first) + ids(second) == [i for i in expected if int(i[-2:]) % 2 == 0]


def test_page_exactly_full_has_no_next_cursor(store, make_record, reader):
    store.insert_records([make_record(f"r{i}") for i in range(4)])
    page, cursor = reader.list_requests("org1", RequestFilter(), limit=4)
    assert len(page) == 4 and cursor is None


def test_limit_is_clamped(store, make_record, reader):
    store.insert_records([make_record(f"r{i:04d}", at=f"2024-03-04T10:{i // 60:02d}:"
                                                      f"{i % 60:02d}.000000Z")
                          for i in range(1003)])
    page, cursor = reader.list_requests("org1", RequestFilter(), limit=0)
    assert len(page) == 1 and cursor is not None
    page, cursor = reader.list_requests("org1", RequestFilter(), limit=5000)
    assert len(page) == 1000 and cursor is not None


def test_invalid_cursor_is_a_value_error(store, reader):
    with pytest.raises(ValueError):
        reader.list_requests("org1", RequestFilter(), cursor="!!not-a-cursor!!")


def test_feedback(store, make_record, reader):
    store.insert_records([make_record("r1"), make_record("r2", organization="org2")])
    assert store.set_feedback("org1", "r1", True) is True
    assert reader.get_request("org1", "r1")["feedback"] is True
    assert store.set_feedback("org1", "r1", False) is True
    assert reader.get_request("org1", "r1")["feedback"] is False
    assert store.set_feedback("org1", "r2", True) is False       # another organization's
    assert reader.get_request("org2", "r2")["feedback"] is None
    assert store.set_feedback("org1", "missing", True) is False


def test_scores_merge(store, make_record, reader):
    store.insert_records([make_record("r1", scores={"seed": 1}),
                          make_record("r2", organization="org2")])
    assert store.set_score("org1", "r1", {"accuracy": 0.5, "label": "ok"}) is True
    assert store.set_score("org1", "r1", {"accuracy": 0.75}) is True
    assert reader.get_request("org1", "r1")["scores"] == {
        "seed": 1, "accuracy": 0.75, "label": "ok"}
    assert store.set_score("org1", "r2", {"accuracy": 1}) is False
    assert reader.get_request("org2", "r2")["scores"] == {}
    assert store.set_score("org1", "missing", {"accuracy": 1}) is False


def test_a_reused_id_is_never_dropped_and_a_replay_never_doubled(store, reader, make_record):
    """Two workers may accept the same Helicone-Request-Id within the journal's delay:
    the later record is stored under a fresh id, saying so. Replaying a journal segment
    (the same records again) stores nothing twice."""
    first = make_record("same-id", at="2024-03-04T10:00:00.000000Z", key_id="k1",
                        properties={"team": "red"})
    second = make_record("same-id", at="2024-03-04T10:00:00.100000Z", key_id="k1",
                         properties={"team": "blue"}, error="upstream said no")
    other_org = make_record("same-id", organization="org2", properties={"team": "green"})
    store.insert_records([first])
    store.insert_records([first, second, other_org])
    store.insert_records([first, other_org])  # a replay

    assert reader.get_request("org1", "same-id")["properties"] == {"team": "red"}
    assert reader.get_request("org2", "same-id")["properties"] == {"team": "green"}
    records, _ = reader.list_requests("org1", RequestFilter())
    assert len(records) == 2
    moved = [r for r in records if r["id"] != "same-id"][0]
    assert moved["properties"] == {"team": "blue"}
    assert moved["error"] == ("upstream said no [request id same-id was already used; "
                              "stored under a fresh id]")
    blue, _ = reader.list_requests("org1", RequestFilter(properties={"team": "blue"}))
    assert [r["id"] for r in blue] == [moved["id"]]
    assert len(reader.list_requests("org2", RequestFilter())[0]) == 1
