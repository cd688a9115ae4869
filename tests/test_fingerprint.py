"""Content fingerprints: canonical, stable, and blind to what the service rewrites."""

from __future__ import annotations

from openai.types.responses import ResponseFunctionToolCall

from tracker import fingerprint


def test_key_order_does_not_matter() -> None:
    """Two dicts with the same members in another order share a fingerprint."""
    a = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
    b = {"content": [{"text": "hi", "type": "input_text"}], "role": "user", "type": "message"}
    assert fingerprint(a) == fingerprint(b)


def test_dict_and_sdk_model_agree() -> None:
    """An SDK model and the hand-written dict of the same item share a fingerprint."""
    model = ResponseFunctionToolCall(
        type="function_call", id="fc_1", call_id="c", name="f", arguments="{}", status="completed"
    )
    plain = {"type": "function_call", "id": "fc_1", "call_id": "c", "name": "f", "arguments": "{}"}
    assert fingerprint(model) == fingerprint(plain)


def test_easy_and_explicit_message_forms_agree() -> None:
    """{role, content} and {type: message, role, content} are the same content."""
    assert fingerprint({"role": "user", "content": "x"}) == fingerprint(
        {"type": "message", "role": "user", "content": "x"}
    )


def test_content_differences_change_the_key() -> None:
    """Different text, or a different id, gives a different fingerprint."""
    base = {"type": "message", "role": "user", "content": "yes", "id": "msg_1"}
    assert fingerprint(base) != fingerprint({**base, "content": "no"})
    assert fingerprint(base) != fingerprint({**base, "id": "msg_2"})


def test_ignore_ids_matches_rebuilt_items() -> None:
    """With ignore_ids, an item rebuilt without its id matches the original."""
    original = {"type": "message", "role": "assistant", "content": "ok", "id": "msg_9"}
    rebuilt = {"type": "message", "role": "assistant", "content": "ok"}
    assert fingerprint(original, ignore_ids=True) == fingerprint(rebuilt)
