"""OpenAI's Responses API: passed through untranslated (OpenAI, Azure); `events` reads
and renders its stream."""
