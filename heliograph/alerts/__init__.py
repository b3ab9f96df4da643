"""Alerts, budgets and per-request webhooks (PRODUCT.md "Alerts, budgets and webhooks").

- model.py      what a rule, a budget, a channel and a webhook are; the API's checks
- repo.py       their tables (migration 7), states, history and the delivery queue —
                what a dashboard page reads: list_rules, states, list_history,
                list_budgets, list_webhooks, list_deliveries (all take the Store)
- windows.py    rolling and calendar windows in the configured time zone
- evaluator.py  crossings, from analytics/alert_values.py's SQL aggregates
- channels.py   webhook (signed), Slack and SMTP sends, and each notice's renderings
- delivery.py   the per-request webhook feed, sends, retries with backoff
- job.py        the background host's one job for evaluation and delivery
- budgets.py    spend counters in the shared state, and the check on the request path
                (Gateway.budgets; its spend(budget) gives a budget's spend and reset)
"""
