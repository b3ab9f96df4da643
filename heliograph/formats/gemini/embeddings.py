"""OpenAI embeddings requests as Gemini batchEmbedContents requests, and the answer as
OpenAI's embedding list."""

from __future__ import annotations

import base64
import struct
from typing import Any

from heliograph.errors import BadRequest


def texts_of(body: dict) -> list[str]:
    raw = body.get("input")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not texts or \
            not all(isinstance(t, str) for t in texts):
        raise BadRequest("Gemini embeddings take text: 'input' must be a string or an "
                         "array of strings", code="invalid_input")
    return texts


def to_gemini(body: dict, texts: list[str]) -> dict[str, Any]:
    model = body["model"]
    extra = {"outputDimensionality": body["dimensions"]} if body.get("dimensions") else {}
    return {"requests": [{"model": f"models/{model.removeprefix('models/')}",
                          "content": {"parts": [{"text": t}]}, **extra} for t in texts]}


def estimate_tokens(text: str) -> int:
    """Gemini's embedding API reports no usage; about four characters a token."""
    return max(1, (len(text) + 3) // 4)


def _vector(item: Any) -> list[float] | None:
    values = item.get("values") if isinstance(item, dict) else None
    if not isinstance(values, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return None
    return [float(v) for v in values]


def embeddings(response: dict, texts: list[str], model: str, base64_out: bool
               ) -> dict[str, Any] | None:
    """None when an embedding is of the wrong shape. Unlike a chat answer, it cannot be
    read in part: a vector with a value left out or zeroed is silently wrong, and one
    dropped shifts the rest onto the wrong inputs; the adapter says it is malformed."""
    listed = response.get("embeddings", [])
    vectors: list[list[float]] = []
    for item in listed if isinstance(listed, list) else [None]:
        vector = _vector(item)
        if vector is None:
            return None
        vectors.append(vector)
    data = []
    for index, values in enumerate(vectors):
        embedding: Any = values
        if base64_out:
            embedding = base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = sum(estimate_tokens(t) for t in texts)
    return {"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
