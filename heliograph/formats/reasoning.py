"""Reasoning, as each API asks for it, mapped through one table:

  OpenAI `reasoning_effort`   none | minimal | low | medium | high
  Anthropic `thinking`        {"type": "enabled", "budget_tokens": N} or {"type": "disabled"}
  Gemini `thinkingConfig`     {"thinkingBudget": N} (2.5; 0 turns thinking off) or
                              {"thinkingLevel": "low" | "high"} (Gemini 3)

An effort becomes the budget below; a budget becomes the effort whose budget is the
nearest one at or above it. Anthropic's smallest budget is 1024 tokens and it must stay
under max_tokens, which (as OpenAI's max_completion_tokens) counts the thinking too.
"""

from __future__ import annotations

EFFORT_BUDGETS: dict[str, int] = {"minimal": 1024, "low": 2048, "medium": 8192,
                                  "high": 24576}
ANTHROPIC_MIN_BUDGET = 1024
# Gemini 3 takes a level, not a budget.
GEMINI_LEVELS = {"minimal": "low", "low": "low", "medium": "high", "high": "high"}


def budget_of(effort: str) -> int:
    return EFFORT_BUDGETS[effort]


def effort_of(budget: int) -> str:
    """The effort for a thinking budget (what OpenAI's reasoning models take)."""
    for effort in ("low", "medium", "high"):
        if budget <= EFFORT_BUDGETS[effort]:
            return effort
    return "high"


def gemini_thinking(effort: str, model: str) -> dict:
    if model.startswith("gemini-3"):
        return {"thinkingLevel": GEMINI_LEVELS.get(effort, "low")}
    if effort == "none":
        return {"thinkingBudget": 0}
    return {"thinkingBudget": budget_of(effort), "includeThoughts": True}
