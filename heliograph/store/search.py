"""Text search over request and response bodies (the query API's `q`), through a real
index so a word that matches nothing answers in milliseconds whatever the log's size.

Indexing runs behind the writer (index_pending, called by the search-index background
job): tokenizing the bodies in the insert's transaction took 80% of a PostgreSQL batch's
time and a quarter of SQLite's. A record is searchable a moment after it is listed.

SQLite: an FTS5 table, contentless (it stores only the index; rowid = request_bodies.seq),
filled in seq order up to a watermark (search_progress.indexed_seq; one writer at a time
holds the database lock, so seqs commit in order and none is skipped). PostgreSQL: a
tsvector column of request_bodies (NULL until indexed, found through a partial index) under
a GIN index. Both tokenize words the same way (Unicode letters and digits, case-folded, no
stemming), and `q` is matched as a phrase: its words, in order, next to each other.

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
PG_INDEX_PENDING = (f"UPDATE request_bodies SET search = {PG_TSVECTOR}"
                    " WHERE (organization, request_id) IN (SELECT organization, request_id"
                    " FROM request_bodies WHERE search IS NULL LIMIT %s"
                    " FOR UPDATE SKIP LOCKED)")

# The condition on requests `r` that `q` compiles to, by the dialect's LIKE operator (how
# the filter compiler tells the dialects apart). Not correlated with `r`, so the
# database runs the index lookup once; "?"s: the organization, then the phrase.
_CONDITIONS = {
    "LIKE": ("r.id IN (SELECT b.request_id FROM request_bodies b"
             " WHERE b.organization = ? AND b.seq IN"
             " (SELECT rowid FROM request_search WHERE request_search MATCH ?))"),
    "ILIKE": ("r.id IN (SELECT b.request_id FROM request_bodies b"
              " WHERE b.organization = ? AND b.search @@ phraseto_tsquery('simple', ?))"),
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
