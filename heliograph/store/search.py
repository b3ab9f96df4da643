"""Text search over request and response bodies (the query API's `q`), through a real
index so a word that matches nothing answers in milliseconds whatever the log's size.

`q` matches the records whose bodies hold every word of it (in any order; case-folded;
words are runs of Unicode letters and digits, the same on both stores).

Indexing runs behind the writer (index_search, called by the search-index background
job): tokenizing the bodies in the insert's transaction took 80% of a PostgreSQL batch's
time and a quarter of SQLite's. A record is searchable a moment after it is listed.

SQLite: an FTS5 table, contentless (it stores only the index; rowid = request_bodies.seq),
filled in seq order up to a watermark (search_progress.indexed_seq; one writer at a time
holds the database lock, so seqs commit in order and none is skipped). PostgreSQL: a
narrow table request_words (a tsvector per record) under a GIN index, filled from a queue
(search_pending) the writer appends to in its transaction, from words split here:
PostgreSQL's own parser (to_tsvector) managed ~2,000 bodies/s, and updating a tsvector
column of request_bodies rewrote each wide row.

Bodies are JSON text, where a newline inside a string is the two characters `\\n`: left
as is, "a\\nb" would be read as the words "a" and "nb". The indexed text is the JSON with
those escapes turned into spaces (on SQLite by one SQL expression used for indexing and
for the FTS5 'delete', which must be given exactly the text that was indexed).
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


SQLITE_FTS_DDL = ("CREATE VIRTUAL TABLE request_search USING fts5("
                  "request_text, response_text, content='', columnsize=0,"
                  " tokenize='unicode61')")
# Rows of request_bodies into the index (the indexer adds a seq range).
SQLITE_FTS_FILL = ("INSERT INTO request_search (rowid, request_text, response_text)"
                   f" SELECT seq, {indexed_text('request_body')},"
                   f" {indexed_text('response_body')} FROM request_bodies")
SQLITE_FTS_DELETE = ("INSERT INTO request_search"
                     " (request_search, rowid, request_text, response_text)"
                     f" SELECT 'delete', seq, {indexed_text('request_body')},"
                     f" {indexed_text('response_body')} FROM request_bodies")
# The condition on requests `r` that `q` compiles to, by the dialect's LIKE operator (how
# the filter compiler tells the dialects apart). Not correlated with `r`, so the
# database runs the index lookup once; "?"s: the organization, then the words.
_CONDITIONS = {
    "LIKE": ("r.id IN (SELECT b.request_id FROM request_bodies b"
             " WHERE b.organization = ? AND b.seq IN"
             " (SELECT rowid FROM request_search WHERE request_search MATCH ?))"),
    "ILIKE": ("r.id IN (SELECT w.request_id FROM request_words w"
              " WHERE w.organization = ? AND w.words @@ CAST(? AS tsquery))"),
}

# A word: a run of letters and digits (FTS5's unicode61 tokenizer reads the same).
_WORD = re.compile(r"[^\W_]+")
# Longer "words" (base64 blobs, say) are not indexed: PostgreSQL refuses lexemes past
# 2 KB, and nobody searches for one.
MAX_WORD_CHARS = 200
# The first this many characters of each body are indexed (a tsvector holds at most 1 MB).
MAX_INDEXED_CHARS = 262_144


def words(text: str) -> list[str]:
    """The distinct words of a text (JSON escapes of whitespace read as spaces),
    case-folded, in a stable order."""
    for escape in _ESCAPES:
        text = text.replace(escape, " ")
    found = set(_WORD.findall(text.lower()))
    if any(len(w) > MAX_WORD_CHARS for w in found):
        found = {w for w in found if len(w) <= MAX_WORD_CHARS}
    return sorted(found)


def body_words(request_body: str | None, response_body: str | None) -> str:
    """The words a record's bodies are indexed under (PostgreSQL), space-separated."""
    return " ".join(words((request_body or "")[:MAX_INDEXED_CHARS] + " "
                          + (response_body or "")[:MAX_INDEXED_CHARS]))


def search_condition(like_ci: str, organization: str, q: str) -> tuple[str, list]:
    """(SQL condition, params): the organization's records whose bodies hold every word
    of q. A q without any word (only punctuation) matches nothing."""
    found = words(q)
    if not found:
        return "1 = 0", []
    if like_ci == "LIKE":  # FTS5: quoted strings side by side must all match
        query = " ".join(f'"{w}"' for w in found)
    else:  # a tsquery of quoted lexemes (words hold no quote or backslash)
        query = " & ".join(f"'{w}'" for w in found)
    return _CONDITIONS[like_ci], [organization, query]


# A listing (newest first, one page) for a word in many records is faster the other way
# round: read the records newest first and check each one's bodies, stopping at the page's
# end, instead of collecting every match first (seconds for a word in 100,000 records).
# COMMON_MATCHES bounds the count that tells the two cases apart.
COMMON_MATCHES = 2000
_COUNT_MATCHES = {
    "LIKE": "SELECT COUNT(*) FROM (SELECT 1 FROM request_search"
            " WHERE request_search MATCH ? LIMIT ?) AS found",
    "ILIKE": "SELECT COUNT(*) FROM (SELECT 1 FROM request_words"
             " WHERE words @@ CAST(? AS tsquery) LIMIT ?) AS found",
}
_PER_RECORD = {
    "LIKE": ("EXISTS (SELECT 1 FROM request_bodies b, request_search s"
             " WHERE b.organization = r.organization AND b.request_id = r.id"
             " AND s.rowid = b.seq AND request_search MATCH ?)"),
    # OFFSET 0 keeps it a check of each record (as _where's per-record property check):
    # otherwise PostgreSQL joins it, reading every match of the word (2.4 s for a word in
    # 40% of 1M records, where the newest page checks ~130 records).
    "ILIKE": ("EXISTS (SELECT 1 FROM request_words w WHERE w.organization = r.organization"
              " AND w.request_id = r.id AND w.words @@ CAST(? AS tsquery) OFFSET 0)"),
}


def count_matches_sql(like_ci: str, q: str) -> tuple[str, list] | None:
    """(SQL, params) counting up to COMMON_MATCHES records (of any organization) whose
    bodies match q; None when q has no word."""
    condition = search_condition(like_ci, "", q)
    if not condition[1]:
        return None
    return _COUNT_MATCHES[like_ci], [condition[1][1], COMMON_MATCHES]


_MATCHING_IDS = {
    "LIKE": ("SELECT b.request_id FROM request_bodies b WHERE b.organization = ? AND b.seq IN"
             " (SELECT rowid FROM request_search WHERE request_search MATCH ?) LIMIT ?"),
    "ILIKE": ("SELECT w.request_id FROM request_words w WHERE w.organization = ?"
              " AND w.words @@ CAST(? AS tsquery) LIMIT ?"),
}


def count_matches_sql_limit(like_ci: str, fts_query: str, limit: int) -> tuple[str, list]:
    """(SQL, params) counting up to `limit` records whose bodies match an already built
    index query (search_condition's)."""
    return _COUNT_MATCHES[like_ci], [fts_query, limit]


def matching_ids_sql(like_ci: str, organization: str, q: str, limit: int
                     ) -> tuple[str, list] | None:
    """(SQL, params) reading the ids of up to `limit` of the organization's records whose
    bodies match q (for a q in few records: a listing then reads just those, by id);
    None when q has no word."""
    condition = search_condition(like_ci, organization, q)
    if not condition[1]:
        return None
    return _MATCHING_IDS[like_ci], [organization, condition[1][1], limit]


def per_record_condition(like_ci: str, q: str) -> tuple[str, list]:
    """The search as a check of each record `r` (for a common q in a listing)."""
    condition, params = search_condition(like_ci, "", q)
    if not params:
        return condition, params
    return _PER_RECORD[like_ci], [params[1]]
