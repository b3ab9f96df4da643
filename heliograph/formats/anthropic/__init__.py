"""The Anthropic Messages API ⇄ OpenAI chat. Modules are named by direction:
`*_from_openai` build Anthropic objects out of OpenAI ones, `*_to_openai` the reverse.
The provider adapter (providers/anthropic.py) uses request_from_openai, answer_to_openai
and stream_to_openai; the Anthropic front (proxy/anthropic_front.py) request_to_openai,
answer_from_openai and stream_from_openai. `tables` and `usage` serve both."""
