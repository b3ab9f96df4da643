"""OpenAI's Responses API: passed through untranslated to providers that serve it (OpenAI,
Azure; `events` reads and renders its stream), translated to and from chat for every
other provider (`request_to_chat`, `answer_from_chat`, `stream_from_chat`,
`compaction`; `items` for conversation items)."""
