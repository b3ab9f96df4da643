"""Migration 18, SQLite only: every rollup table WITHOUT ROWID.

A rollup row is small (≤ 66 numbers and a few short strings) and always found by its key
(the writer's upserts, the readers' ranges by organization and bucket), so the key itself
can be the table. As a rowid table each upsert went through two B-trees (the key's
automatic index, then the row by its rowid); a new key was inserted into both. The
writer upserts ~1 rollup row a record, most of them of users and sessions spread over
the whole table, each dirtying pages of its own (bench/README.md, session 9).

The tables are rebuilt from their own CREATE statement (whatever columns migrations
added since), their rows copied in key order and their indexes made again. PostgreSQL
has no rowid: nothing to do there.
"""

from __future__ import annotations

import re


def rollups_without_rowid(store, cur) -> None:
    if store.dialect.name != "sqlite":
        return
    tables = store.execute(cur, "SELECT name, sql FROM sqlite_master WHERE type = 'table'"
                                " AND name LIKE 'rollup%' ORDER BY name").fetchall()
    for name, sql in tables:
        if (re.search(r"\)\s*WITHOUT\s+ROWID\s*$", sql, re.IGNORECASE)
                or "PRIMARY KEY" not in sql.upper()):   # done, or no key to be the table
            continue
        indexes = [row[0] for row in store.execute(
            cur, "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?"
                 " AND sql IS NOT NULL", (name,)).fetchall()]
        # The CREATE statement under a new name: `CREATE TABLE name (` or, after a
        # rename, `CREATE TABLE "name" (`.
        head = re.match(r"\s*CREATE\s+TABLE\s+(\"[^\"]+\"|\w+)\s*\(", sql, re.IGNORECASE)
        if head is None:
            raise RuntimeError(f"cannot read the definition of {name}: {sql[:80]!r}")
        rebuilt = f'CREATE TABLE "{name}_v18" (' + sql[head.end():].rstrip() + " WITHOUT ROWID"
        store.execute(cur, rebuilt)
        store.execute(cur, f'INSERT INTO "{name}_v18" SELECT * FROM "{name}"')
        store.execute(cur, f'DROP TABLE "{name}"')
        store.execute(cur, f'ALTER TABLE "{name}_v18" RENAME TO "{name}"')
        for index in indexes:
            store.execute(cur, index)
