"""OpenAI chat: the format the pipeline speaks in the middle. `chat` builds its objects
and reads its requests for the translating formats; `usage` converts its usage object
to and from heliograph.costs.Usage."""
