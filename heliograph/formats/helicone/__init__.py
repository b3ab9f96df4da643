"""Helicone's own wire formats: the manual-logging body (log.py)."""
