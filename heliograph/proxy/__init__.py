"""The request path: auth → headers → route → provider → log."""
