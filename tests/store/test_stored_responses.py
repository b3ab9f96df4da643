"""Stored responses (migration 8) on each store: kept per organization, read back whole,
output items found by id, deleted with their items; saving the same id twice keeps the
first."""

from heliograph.store.stored_responses import StoredResponses


def _response(response_id: str, text: str) -> dict:
    return {"id": response_id, "object": "response", "created_at": 1700000000,
            "status": "completed", "output": [
                {"type": "message", "id": f"msg_{response_id}", "role": "assistant",
                 "status": "completed",
                 "content": [{"type": "output_text", "text": text}]},
                {"type": "function_call", "id": f"fc_{response_id}", "call_id": "c",
                 "name": "f", "arguments": "{}"}]}


INPUT = [{"type": "message", "id": "msg_in", "role": "user",
          "content": [{"type": "input_text", "text": "hi \u00e9 \U0001f600"}]}]


def test_kept_per_organization_and_read_back_whole(store):
    responses = StoredResponses(store)
    responses.save("acme", _response("resp_1", "hello"), INPUT)
    got = responses.get("acme", "resp_1")
    assert got is not None and got.response == _response("resp_1", "hello")
    assert got.input_items == INPUT
    assert responses.get("other", "resp_1") is None
    assert responses.get("acme", "resp_2") is None
    responses.save("acme", _response("resp_1", "changed"), [])
    assert responses.get("acme", "resp_1").response["output"][0]["content"][0]["text"] \
        == "hello"


def test_output_items_by_id_and_deleted_with_their_response(store):
    responses = StoredResponses(store)
    responses.save("acme", _response("resp_1", "one"), INPUT)
    responses.save("acme", _response("resp_2", "two"), INPUT)
    found = responses.items("acme", ["msg_resp_1", "fc_resp_2", "msg_nope"])
    assert set(found) == {"msg_resp_1", "fc_resp_2"}
    assert found["msg_resp_1"]["content"][0]["text"] == "one"
    assert responses.items("other", ["msg_resp_1"]) == {}
    assert responses.items("acme", []) == {}
    assert responses.delete("other", "resp_1") is False
    assert responses.delete("acme", "resp_1") is True
    assert responses.delete("acme", "resp_1") is False
    assert responses.get("acme", "resp_1") is None
    assert set(responses.items("acme", ["msg_resp_1", "msg_resp_2"])) == {"msg_resp_2"}
