"""Text search over request and response bodies (the query API's `q`), through a real
index so a word that matches nothing answers in milliseconds whatever the log's size.

SQLite: an FTS5 table, contentless (it stores only the index; rowid = request_bodies.seq),
filled in the writer's transaction. PostgreSQL: a GIN index on a tsvector expression of
request_bodies, kept by the database itself. Both tokenize words the same way (Unicode
letters and digits, case-folded, no stemming), and `q` is matched as a phrase: its words,
in order, next to each other.

Bodies are JSON text, where a newline inside a string is the two characters `\\n`: left
as is, "a\\nb" would be read as the words "a" and "nb". The indexed text is the JSON with
those escapes turned into spaces, by one SQL expression used for indexing and for the
FTS5 'delete' (which must be given exactly the text that was indexed).
"""

from __future__ import annotations

import re

# In SQL (standard_conforming_strings on PostgreSQL) '\n' is a backslash and an n.
_ESCAPES = ("\\n", "\\t", "\\r")


def indexed_text(column: str) -> str:
    """SQL: the body column as the index reads it (NULL stays NULL)."""
    expr = column
    for escape in _ESCAPES:
        expr = f"replace({expr}, '{escape}', ' ')"
    return expr


# What PostgreSQL indexes, capped so one huge body cannot exceed a tsvector's 1 MB limit
# (the first 256 K characters of each body are searchable).
_PG_CAP = 262_144
_PG_REQUEST = indexed_text("coalesce(request_body, '')")
_PG_RESPONSE = indexed_text("coalesce(response_body, '')")
PG_TSVECTOR = (f"to_tsvector('simple', left({_PG_REQUEST}, {_PG_CAP})"
               f" || ' ' || left({_PG_RESPONSE}, {_PG_CAP}))")

SQLITE_FTS_DDL = ("CREATE VIRTUAL TABLE request_search USING fts5("
                  "request_text, response_text, content='', columnsize=0,"
                  " tokenize='unicode61')")
# Rows of request_bodies into the index: the writer's new rows (seq > ?), or all of them.
SQLITE_FTS_FILL = ("INSERT INTO request_search (rowid, request_text, response_text)"
                   f" SELECT seq, {indexed_text('request_body')},"
                   f" {indexed_text('response_body')} FROM request_bodies")
SQLITE_FTS_DELETE = ("INSERT INTO request_search"
                     " (request_search, rowid, request_text, response_text)"
                     f" SELECT 'delete', seq, {indexed_text('request_body')},"
                     f" {indexed_text('response_body')} FROM request_bodies")
PG_SEARCH_INDEX_DDL = f"CREATE INDEX request_bodies_search ON request_bodies USING GIN (({PG_TSVECTOR}))"

# The condition on requests `r` that `q` compiles to, by the dialect's LIKE operator (how
# the filter compiler tells the dialects apart). Not correlated with `r`, so the
# database runs the index lookup once; "?"s: the organization, then the phrase.
_CONDITIONS = {
    "LIKE": ("r.id IN (SELECT b.request_id FROM request_bodies b"
             " WHERE b.organization = ? AND b.seq IN"
             " (SELECT rowid FROM request_search WHERE request_search MATCH ?))"),
    "ILIKE": ("r.id IN (SELECT b.request_id FROM request_bodies b"
              f" WHERE b.organization = ? AND {PG_TSVECTOR}"
              " @@ phraseto_tsquery('simple', ?))"),
}

_WORD = re.compile(r"\w", re.UNICODE)


def search_condition(like_ci: str, organization: str, q: str) -> tuple[str, list]:
    """(SQL condition, params): the organization's records whose bodies hold q's words as
    a phrase. A q without any word (only punctuation) matches nothing."""
    if not _WORD.search(q):
        return "1 = 0", []
    if like_ci == "LIKE":  # FTS5: a double-quoted string is a phrase of its tokens
        q = '"' + q.replace('"', '""') + '"'
    return _CONDITIONS[like_ci], [organization, q]
