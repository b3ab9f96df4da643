"""The query API (/api/v1/*): JSON over the store, scoped to the caller's organization."""
