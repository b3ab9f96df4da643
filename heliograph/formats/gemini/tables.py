"""Gemini's vocabulary next to OpenAI's: finish reasons and error statuses."""

from __future__ import annotations

# Gemini finishReason → OpenAI finish_reason (what is missing here counts as "stop").
FINISH_REASONS = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter",
                  "RECITATION": "content_filter", "BLOCKLIST": "content_filter",
                  "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter",
                  "IMAGE_SAFETY": "content_filter", "IMAGE_PROHIBITED_CONTENT": "content_filter"}
# Gemini error status (google.rpc code name) → OpenAI error type.
ERROR_TYPES = {"INVALID_ARGUMENT": "invalid_request_error",
               "FAILED_PRECONDITION": "invalid_request_error",
               "OUT_OF_RANGE": "invalid_request_error", "NOT_FOUND": "invalid_request_error",
               "UNAUTHENTICATED": "authentication_error",
               "PERMISSION_DENIED": "permission_error",
               "RESOURCE_EXHAUSTED": "rate_limit_error"}
