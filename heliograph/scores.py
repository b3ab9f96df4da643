"""Scores posted to /v1/request/{id}/score: what a valid post is, and how posts merge.

Bounded, because posts merge into the record: without a bound ten posts of many long
names once made an 8.5 MB record (every read of it, and every list page, pays for that).
"""

from __future__ import annotations

import math
from typing import Any

from heliograph.errors import BadRequest

# Per record, after merging; Helicone's evaluators use a handful.
MAX_SCORES = 50
MAX_NAME_CHARS = 100
# Beyond this an integer is not exact in the float the SQL JSON functions and clients
# read it as.
MAX_ABS_VALUE = 2 ** 53

SHAPE = 'score body must be {"scores": {"name": number}}'


def scores_from_body(body: Any) -> dict[str, int | float | bool]:
    """The scores of a POST body, `{"scores": {...}}` or the bare object; a clear 400
    for anything else."""
    scores = body.get("scores", body) if isinstance(body, dict) else None
    if not isinstance(scores, dict) or not scores:
        raise BadRequest(SHAPE, code="invalid_scores")
    if len(scores) > MAX_SCORES:
        raise BadRequest(f"at most {MAX_SCORES} scores per request, got {len(scores)}",
                         code="invalid_scores")
    for name, value in scores.items():
        if not name.strip() or len(name) > MAX_NAME_CHARS or "\x00" in name:
            raise BadRequest(f"a score name must be 1 to {MAX_NAME_CHARS} characters (no NUL), got "
                             f"{name[:MAX_NAME_CHARS]!r}" + ("…" if len(name) > MAX_NAME_CHARS
                                                             else ""), code="invalid_scores")
        # Numbers or booleans (bool is an int), as Helicone's scores accept.
        if not isinstance(value, (int, float)) or (
                not isinstance(value, bool)
                and not (math.isfinite(value) and abs(value) <= MAX_ABS_VALUE)):
            raise BadRequest(f"score {name!r} must be a finite number or a boolean "
                             f"(|value| ≤ 2^53), got {value!r}"[:300], code="invalid_scores")
    return scores


def merge_scores(existing: Any, new: dict) -> dict:
    """The record's scores after a post (same names replaced); a 400 when the record
    would hold more than MAX_SCORES."""
    merged = {**(existing if isinstance(existing, dict) else {}), **new}
    if len(merged) > MAX_SCORES:
        raise BadRequest(f"a request holds at most {MAX_SCORES} scores; this one has "
                         f"{len(existing)} and the post adds {len(merged) - len(existing)}",
                         code="invalid_scores")
    return merged
