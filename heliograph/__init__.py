"""Heliograph: a self-hosted AI gateway that logs every LLM call with its cost."""

__version__ = "0.1.0"
