"""How the writer reads a record's values: a record decoded from the journal holds every
key, so its requests row and rollup counters read them with one itemgetter call each (no
dict.get a value); a record lacking keys (one made elsewhere than the journal) is read
with get(), and a missing key counts as None. Both give the same rows and rollups."""

import math

import pytest

from heliograph.records import RECORD_KEYS
from heliograph.store import _rollup_writer
from heliograph.store._schema import property_rows, record_to_row
from heliograph.store.journal import decode_line, encode_line
from heliograph.store.sqlite import SQLiteStore


def batch(make_record) -> list[dict]:
    """Records of one hour: shared groups, a user without a session, a session without a
    user, no latency, an unpriced record, a cache hit, errors."""
    return [make_record(f"r{i}", at=f"2024-03-04T10:0{i}:00.000000Z",
                        model="m" if i % 3 else None, provider="p", key_id="k",
                        status=(200, 500, 429)[i % 3], user_id=f"u{i % 2}" if i < 6 else None,
                        session_id="s1" if i % 4 else None,
                        session_name="named" if i == 5 else None,
                        cache="hit" if i == 4 else None,
                        properties={"env": "prod", "Team": str(i % 2)},
                        prompt_tokens=3, completion_tokens=i, cached_tokens=i % 2 or None,
                        total_tokens=None if i % 2 else 3 + i, cost_usd=0.25 * i,
                        cost_known=i != 2, cost_saved_usd=0.5 if i == 4 else None,
                        latency_ms=None if i == 3 else 10.0 * i + 0.5,
                        attempts=[{"provider": "p", "status": 429}] if i == 2 else [],
                        ratelimit={"remaining_requests": "9"} if i % 2 else None,
                        request={"messages": [{"role": "user", "content": f"hi {i}"}]},
                        response={"id": i})
            for i in range(8)]


def without_nulls(rec: dict) -> dict:
    """The record as a caller might build it: only the keys with a value."""
    return {key: value for key, value in rec.items() if value is not None}


def comparable(row: tuple) -> tuple:
    """NaN (SQLite's NULL) made comparable."""
    return tuple("NaN" if isinstance(v, float) and math.isnan(v) else v for v in row)


class CountingGets(dict):
    """A record that counts the values read from it by get()."""
    gets = 0

    def get(self, *args):
        CountingGets.gets += 1
        return super().get(*args)


@pytest.mark.parametrize("to_row", [record_to_row, SQLiteStore._request_row],
                         ids=["plain", "sqlite"])
def test_a_record_lacking_keys_gives_the_row_of_the_same_record_with_them_null(
        make_record, to_row):
    for rec in batch(make_record):
        sparse = without_nulls(rec)
        assert len(sparse) < len(RECORD_KEYS)
        assert comparable(to_row(sparse)) == comparable(to_row(rec))
    with pytest.raises(ValueError):   # still refused without an id or a time
        to_row({"id": "r1", "organization": "org1"})


def test_a_record_lacking_keys_is_counted_in_the_rollups_as_with_them_null(make_record):
    records = batch(make_record)
    sparse = [without_nulls(rec) for rec in records]
    full = _rollup_writer.deltas(records)
    assert full["rollup_hourly"] and full["rollup_sessions"] and full["rollup_user_models"]
    assert _rollup_writer.deltas(sparse) == full
    # Records decoded from journal lines: the same deltas again.
    decoded = [decode_line(encode_line(rec).rstrip(b"\n")) for rec in records]
    assert _rollup_writer.deltas(decoded) == full


def test_a_journal_records_values_are_read_without_a_get_each(make_record):
    decoded = [CountingGets(decode_line(encode_line(rec).rstrip(b"\n")))
               for rec in batch(make_record)]
    props = [property_rows(dict(rec)) for rec in decoded]
    CountingGets.gets = 0
    for rec in decoded:
        SQLiteStore._request_row(rec)
    assert CountingGets.gets == 0
    _rollup_writer.deltas(decoded, props)
    # Only the session-name column (rollup_sessions' name_key) is still read by get().
    assert CountingGets.gets <= len(decoded)


def test_rollup_rows_go_in_key_order_only_where_transactions_write_at_once(
        store, store_kind, make_record):
    """PostgreSQL's pipeline runs two transactions at once: their rollup rows go in key
    order, so they lock shared rows in the same order (no deadlock). SQLite holds one
    write lock a transaction: its rows go as the batch first met them (no sort), and the
    counts stored are the same."""
    # Users met in an order that is not theirs sorted.
    records = [make_record(f"r{i}", at=f"2024-03-04T10:00:0{i}.000000Z", user_id=user,
                           model="m", latency_ms=1.0 + i)
               for i, user in enumerate(["u3", "u1", "u2", "u1"])]
    merged: dict[str, list] = {}
    original = store._merge_rollups

    def recording(cur, merges):
        for table, rows, _updates in merges:
            merged[table.name] = [row[:3] for row in rows]
        original(cur, merges)

    store._merge_rollups = recording
    store.insert_records(records)
    users = [user for _org, user, *_ in merged["rollup_users"]]
    if store_kind == "postgres":
        assert store.rollups_in_key_order
        assert users == ["u1", "u2", "u3"]
    else:
        assert not store.rollups_in_key_order
        assert users == ["u3", "u1", "u2"]
    with store.transaction() as cur:
        counts = dict(store.execute(cur, "SELECT user_id, requests FROM rollup_users"
                                         " ORDER BY user_id").fetchall())
    assert counts == {"u1": 2, "u2": 1, "u3": 1}
