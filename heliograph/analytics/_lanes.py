"""Which analytics queries are quick: answered from rollups or by an indexed read with a
LIMIT. The rest (a filter no rollup keeps, over a long window) scan raw rows and run on a
lane of their own, so a dashboard's rollup queries never queue behind a scan."""

from __future__ import annotations

from typing import Any

from heliograph.analytics import _aggregate, _metrics
from heliograph.analytics._grouped import MAIN, active_fields
from heliograph.analytics.filters import RequestFilter

# Indexed reads of one record, one page, one session or one user's rollup row.
_INDEXED = frozenset({"get_request", "list_requests", "session", "user"})


def is_quick(query: Any, args: tuple, use_rollups: bool) -> bool:
    name = getattr(query, "__name__", "")
    if name in _INDEXED:
        return True
    flt = next((a for a in args if isinstance(a, RequestFilter)), None)
    if flt is None or not use_rollups:
        return False
    fields = active_fields(flt)
    window = bool(flt.since or flt.until)
    if name == "metrics" and len(args) >= 3:
        try:
            kind, detail = _aggregate.parse_group_by(args[2])
        except (ValueError, TypeError):
            return True   # refused at once
        return _metrics.choose(kind, detail, flt)[0].family is not None
    if name == "overview":
        return fields <= set(MAIN.filters)
    if name in ("users", "users_page", "cost_by_user", "user_models"):
        # Any window: whole days and hours from the user rollups, under an hour of raw
        # rows at either edge.
        return fields <= {"user_id"}
    if name == "sessions":
        return not fields and not window
    if name == "properties":
        return not fields
    if name == "cache_entries":   # the entry rollups take these (cache_entries.py)
        return fields <= {"model", "cache"}
    return False
