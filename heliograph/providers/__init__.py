"""Upstream providers: one adapter per wire format, the rest is data (catalog.py)."""
