"""Alert windows in a time zone, notice signing, and the checks on rule bodies."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import pytest

from heliograph.alerts.channels import alert_notice, sign, verify
from heliograph.alerts.model import Budget, check_rule
from heliograph.alerts.windows import span
from heliograph.errors import BadRequest

PARIS = "Europe/Paris"


def ts(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


def test_calendar_windows_follow_the_configured_time_zone():
    now = ts("2024-03-06T23:30:00+00:00")            # already Thursday 00:30 in Paris
    day = span("day", now, PARIS)
    assert day.start == ts("2024-03-07T00:00:00+01:00")
    assert day.end == ts("2024-03-08T00:00:00+01:00")
    assert span("day", now, "UTC").start == ts("2024-03-06T00:00:00+00:00")
    week = span("week", now, PARIS)                   # ISO weeks start on Monday
    assert week.start == ts("2024-03-04T00:00:00+01:00")
    month = span("month", ts("2024-12-31T12:00:00+00:00"), PARIS)
    assert month.start == ts("2024-12-01T00:00:00+01:00")
    assert month.end == ts("2025-01-01T00:00:00+01:00")
    # The day clocks go forward is 23 hours long.
    dst = span("day", ts("2024-03-31T12:00:00+02:00"), PARIS)
    assert dst.length_s == 23 * 3600
    rolling = span("1h", now)
    assert rolling.rolling and rolling.end == now and rolling.length_s == 3600


def test_signature_is_hmac_sha256_over_timestamp_dot_body():
    body = b'{"state":"firing"}'
    header = sign("whsec_x", body, 1_700_000_000)
    expected = hmac.new(b"whsec_x", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    fresh = sign("whsec_x", body)
    assert verify("whsec_x", body, fresh)
    assert not verify("whsec_y", body, fresh)
    assert not verify("whsec_x", body + b" ", fresh)
    assert not verify("whsec_x", body, header)        # too old: a replay
    assert not verify("whsec_x", body, "garbage")


def test_notices_render_numbers_and_the_dashboard_link():
    event = {"type": "alert.firing", "state": "firing", "value": 51.234, "threshold": 50,
             "group": "alice", "group_by": "user_id", "at": "2024-03-04T10:00:00Z",
             "alert": {"id": "alert_1", "name": "<b>Daily</b>", "metric": "cost",
                       "window": "day"}}
    notice = alert_notice(event, "https://hg.example/")
    assert "$51.23" in notice["slack"]["text"] and "$50.00" in notice["slack"]["text"]
    assert "<https://hg.example/dashboard/alerts|" in notice["slack"]["text"]
    assert "for user_id alice" in notice["email"]["subject"]
    assert "&lt;b&gt;Daily" in notice["email"]["html"]   # escaped
    assert notice["json"]["dashboard_url"] == "https://hg.example/dashboard/alerts"
    assert alert_notice(event, "")["json"]["dashboard_url"] is None
    view = {"property.workflow": "a b", "user_id": "alice", "since": "2024-03-04T00:00Z"}
    linked = alert_notice({**event, "view": view}, "https://hg.example")
    assert linked["json"]["dashboard_url"] == (
        "https://hg.example/dashboard/requests?property.workflow=a+b&user_id=alice"
        "&since=2024-03-04T00%3A00Z")
    assert "view" not in linked["json"]


def test_rule_checks_name_the_field():
    rule = check_rule({"name": "n", "metric": "latency_p95", "threshold": 2000,
                       "filter": {"property.Workflow": "x", "model": "gpt-4o"},
                       "group_by": "property.Team",
                       "channels": [{"type": "webhook", "url": "https://a.example/h"}]}, "o")
    assert rule.window == "1h" and rule.group_by == "property.team"
    assert rule.filter == {"property.workflow": "x", "model": "gpt-4o"}
    assert rule.channels[0]["secret"].startswith("whsec_")
    same = check_rule({"threshold": 10}, "o", rule)
    assert same.channels == rule.channels and same.threshold == 10
    with pytest.raises(BadRequest, match="group_by"):
        check_rule({"name": "n", "metric": "cost", "threshold": 1, "group_by": "day"}, "o")
    with pytest.raises(BadRequest, match="email"):
        check_rule({"name": "n", "metric": "cost", "threshold": 1,
                    "channels": [{"type": "email", "to": ["not-an-address"]}]}, "o")
    with pytest.raises(BadRequest, match="unknown field"):
        check_rule({"name": "n", "metric": "cost", "threshold": 1, "severity": 3}, "o")


def test_budget_scope_matching_is_case_insensitive_on_property_names():
    budget = Budget("b", "o", "n", {"property.workflow": "research-agent"}, 1.0, "day",
                    True, [100.0], [])
    assert budget.matches("k", None, {"workflow": "research-agent"})
    assert not budget.matches("k", None, {"workflow": "chat"})
    assert not budget.matches("k", None, {})
    keyed = Budget("b", "o", "n", {"key_id": "key_1"}, 1.0, "day", True, [], [])
    assert keyed.matches("key_1", None, {}) and not keyed.matches("key_2", None, {})
