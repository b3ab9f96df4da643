"""`heliograph demo`: realistic history written through the store's own insert path
(history.py, from the catalog and body templates in templates.py), and a live trickle of
real requests through a running gateway (live.py)."""
