"""The filter vocabulary shared by the query API's filters (heliograph/analytics/filters.py)
and budgets/alerts (heliograph/alerts/model.py). Kept out of heliograph.analytics because
budget enforcement runs on the proxy path, and importing anything inside that package
loads the whole read side (~100 modules' worth of query code) into every worker."""

from __future__ import annotations

# Filters compared for equality with the column of the same name.
EQUALITY_KEYS = ("model", "provider", "status", "user_id", "session_id", "cache",
                 "cache_entry")
PROPERTY_PREFIX = "property."
MAX_PROPERTY_FILTERS = 20
MAX_VALUE_CHARS = 4096
