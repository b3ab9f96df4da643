"""Which queries run on the quick analytics threads and which on the scan lane."""

from heliograph.analytics._lanes import is_quick
from heliograph.analytics.filters import RequestFilter


def metrics(): ...
def users(): ...
def users_page(): ...
def cost_by_user(): ...
def sessions(): ...
def list_requests(): ...
def requests_page(): ...


def test_rollup_answers_and_indexed_reads_are_quick():
    month = RequestFilter(since="2024-05-01T00:00:00.000000Z")
    assert is_quick(metrics, ("org", month, "user_id"), True)
    assert is_quick(metrics, ("org", RequestFilter(model="m"), "hour"), True)
    assert is_quick(users, ("org", RequestFilter()), True)
    # Any window: whole days and hours from the user rollups.
    assert is_quick(users_page, ("org", month, "cost_usd", None, 50, None), True)
    assert is_quick(cost_by_user, ("org", month, 10), True)
    assert is_quick(sessions, ("org", RequestFilter(), 50, None), True)
    assert is_quick(list_requests, ("org", RequestFilter(q="word"), 50), True)


def test_scans_of_raw_rows_take_the_other_lane():
    assert not is_quick(metrics, ("org", RequestFilter(q="word"), "model"), True)
    assert not is_quick(metrics, ("org", RequestFilter(), "session_id"), True)
    assert not is_quick(users_page, ("org", RequestFilter(model="m"), "requests"), True)
    assert not is_quick(sessions, ("org", RequestFilter(model="m"), 50, None), True)
    assert not is_quick(requests_page, ("org", RequestFilter()), True)   # not known
    assert not is_quick(metrics, ("org", RequestFilter(), "model"), False)  # rollups off
