"""The Gemini API (generateContent, batchEmbedContents) ⇄ OpenAI chat and embeddings,
for the provider adapter (providers/gemini.py)."""
