"""Logged bodies of each wire format as the dashboard's conversation, and its session
cookies: pure functions, no server."""

from __future__ import annotations

import time

from heliograph.dashboard.conversation import conversation
from heliograph.dashboard.secret import resolve_secret
from heliograph.dashboard.session import SessionCodec


def kinds(messages):
    return [(m["role"], [p["kind"] for p in m["parts"]]) for m in messages]


def test_openai_chat_with_tools_and_images():
    request = {"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "lookup", "arguments": '{"q": "cat"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "a cat"}]}
    response = {"choices": [{"message": {"role": "assistant", "content": "A cat."}}]}
    messages = conversation(request, response)
    assert kinds(messages) == [("system", ["text"]), ("user", ["text", "image", "image_link"]),
                               ("assistant", ["tool_call"]), ("tool", ["tool_result"]),
                               ("assistant", ["text"])]
    assert messages[1]["parts"][1]["src"].startswith("data:image/png;base64,")
    # A remote image is named, never loaded (the dashboard requests nothing off-origin).
    assert messages[1]["parts"][2]["text"] == "https://example.com/cat.png"
    assert '"q": "cat"' in messages[2]["parts"][0]["text"]
    assert messages[-1].get("answer") is True and not messages[0].get("answer")


def test_anthropic_messages():
    request = {"system": [{"type": "text", "text": "You are terse."}], "messages": [
        {"role": "user", "content": [{"type": "image", "source": {
            "type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
            {"type": "text", "text": "Describe."}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "tu_1", "name": "zoom",
                                           "input": {"level": 2}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu_1",
                                      "content": [{"type": "text", "text": "zoomed"}]}]}]}
    response = {"type": "message", "content": [{"type": "text", "text": "A dog."}]}
    messages = conversation(request, response)
    assert kinds(messages) == [("system", ["text"]), ("user", ["image", "text"]),
                               ("assistant", ["tool_call"]), ("user", ["tool_result"]),
                               ("assistant", ["text"])]
    assert messages[1]["parts"][0]["src"] == "data:image/jpeg;base64,/9j/4AAQ"
    assert messages[3]["parts"][0]["text"] == "zoomed"


def test_responses_api_and_embeddings_and_nothing():
    messages = conversation({"instructions": "Be kind.", "input": "Hi"}, {"output": [
        {"type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": "Hello!"}]},
        {"type": "function_call", "name": "f", "call_id": "c1", "arguments": "{}"}]})
    assert kinds(messages) == [("system", ["text"]), ("user", ["text"]),
                               ("assistant", ["text"]), ("assistant", ["tool_call"])]
    embedded = conversation({"input": ["a", "b"]},
                            {"object": "list", "data": [{"embedding": [0.1]}] * 2})
    assert embedded[-1]["parts"][0]["text"] == "2 embedding(s)"
    assert conversation(None, None) == []
    assert conversation("not json", ["odd"]) == []


def test_a_huge_part_is_cut_with_a_note():
    from heliograph.dashboard.conversation import MAX_PART_CHARS

    messages = conversation({"messages": [{"role": "user", "content": "x" * (MAX_PART_CHARS + 5)}]},
                            None)
    text = messages[0]["parts"][0]["text"]
    assert text.startswith("x" * MAX_PART_CHARS) and text.endswith("[5 more characters: "
                                                                   "download the record]")


def test_an_svg_or_script_url_is_never_an_image():
    request = {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/svg+xml;base64,PHN2Zz4="}},
        {"type": "image_url", "image_url": {"url": "javascript:alert(1)"}}]}]}
    assert kinds(conversation(request, None)) == [("user", ["image_link", "image_link"])]


def test_session_cookies_are_signed_and_expire(tmp_path):
    secret = resolve_secret("", tmp_path / "journal")
    assert secret == resolve_secret("", tmp_path / "journal")  # every worker reads the same
    assert (tmp_path / "heliograph-dashboard.secret").stat().st_mode & 0o077 == 0
    codec = SessionCodec(secret, session_hours=1)
    cookie = codec.issue("key_1", "acme")
    session = codec.read(cookie)
    assert session is not None and (session.key_id, session.organization) == ("key_1", "acme")
    assert codec.read(cookie[:-2] + "xx") is None
    assert SessionCodec("another secret", 1).read(cookie) is None
    assert codec.read("") is None and codec.read("garbage") is None
    expired = SessionCodec(secret, session_hours=1)
    expired.max_age_s = -1  # any age is too old
    time.sleep(0.01)
    assert expired.read(cookie) is None
    cookie_value, token = codec.login_token()
    assert codec.login_token_matches(cookie_value, token)
    assert not codec.login_token_matches(cookie_value, token + "x")
    assert not codec.login_token_matches(None, token)


def test_the_dashboard_is_mounted_unless_disabled(tmp_path):
    import pytest

    from heliograph.app import App, Gateway
    from heliograph.config import load_settings
    from heliograph.errors import NotFound

    for enabled in (True, False):
        settings = load_settings(None, environ={}, journal_dir=str(tmp_path / "journal"),
                                 database_url=f"sqlite:///{tmp_path / 'h.db'}",
                                 dashboard_enabled=enabled)
        gw = Gateway.build(settings)
        try:
            table = App(gw).table
            if enabled:
                assert table.resolve("GET", "/dashboard/requests").mount is not None
            else:
                with pytest.raises(NotFound):
                    table.resolve("GET", "/dashboard/requests")
        finally:
            gw.analytics.close()
            gw.store.close()


def test_bodies_of_the_wrong_shape_show_what_can_be_read():
    """A provider's answer (or a logged request) of the wrong shape: a choice or an
    output item that is a string, a tool call that is no object, an image source that
    is a string. What is of no use is left out; the page still opens."""
    request = {"messages": [{"role": "assistant", "content": "hi",
                             "tool_calls": ["x", {"function": "no object"}]}]}
    response = {"choices": ["no choice", {"message": {"content": [
        {"type": "image", "source": "no object"}]}}], "output": "none"}
    messages = conversation(request, response)
    assert kinds(messages) == [("assistant", ["text", "tool_call"]),
                               ("assistant", ["image_link"])]
