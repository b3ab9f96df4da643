"""The per-request webhook feed, filled in the writer's transaction (SQLStore._after_insert):
one row per newly stored record of an organization that has a per-request webhook. The
alerts job consumes it (heliograph/alerts/delivery.py); being written with the
records, it survives any kill, and a journal replay (not newly stored) adds nothing.
"""

from __future__ import annotations


def feed_webhooks(store, cur, records: list[dict]) -> None:
    if not records:
        return
    # A small table, read once per batch: organizations without webhooks cost one query.
    wanted = {row[0] for row in store.execute(
        cur, "SELECT DISTINCT organization FROM request_webhooks").fetchall()}
    if not wanted:
        return
    rows = [(rec.get("organization") or "", rec["id"]) for rec in records
            if (rec.get("organization") or "") in wanted]
    if rows:
        store.executemany(cur, "INSERT INTO webhook_feed (organization, request_id)"
                               " VALUES (?, ?) ON CONFLICT (organization, request_id)"
                               " DO NOTHING", rows)
