"""Reading items: dicts and openai SDK models read the same way."""

from __future__ import annotations

import pytest
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage

from tracker import ItemError, ItemInfo, read_item
from tracker._items import FAKE_ID, to_plain


def test_dict_and_sdk_function_call_read_alike() -> None:
    """A function_call dict and its SDK model give the same ItemInfo."""
    model = ResponseFunctionToolCall(
        type="function_call", id="fc_1", call_id="call_1", name="f", arguments="{}"
    )
    plain = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f"}
    expected = ItemInfo("function_call", "fc_1", "call_1", is_call=True, is_output=False)
    assert expected == read_item(model) == read_item(plain)


def test_easy_message_form_is_a_message() -> None:
    """{role, content} without a type is a message with no ids."""
    assert ItemInfo("message", None, None, False, False) == read_item(
        {"role": "user", "content": "x"}
    )


def test_every_output_type_is_an_output() -> None:
    """Each *_output type (and an unknown type with call_id + output) reads as an output."""
    for kind in ("function_call_output", "custom_tool_call_output", "tool_search_output"):
        assert read_item({"type": kind, "call_id": "c"}).is_output
    assert read_item({"type": "future_call_output", "call_id": "c", "output": 1}).is_output


def test_fake_placeholder_id_is_no_id() -> None:
    """openai-agents' placeholder id is not a provider id."""
    assert None is read_item({"type": "message", "id": FAKE_ID, "role": "assistant"}).id


def test_unreadable_item_names_its_index() -> None:
    """A non-item raises ItemError naming the index and what to pass instead."""
    with pytest.raises(ItemError, match="at index 3 is a int") as info:
        read_item(7, 3)
    assert 3 == info.value.index
    with pytest.raises(ItemError, match="no 'type'"):
        read_item({"content": "x"}, 0)


def test_to_plain_dumps_sdk_models_by_alias_without_nones() -> None:
    """SDK models become wire dicts: by alias, no None members; dicts pass through as is."""
    model = ResponseOutputMessage(
        type="message", id="msg_1", role="assistant", status="completed", content=[]
    )
    assert {
        "type": "message",
        "id": "msg_1",
        "role": "assistant",
        "status": "completed",
        "content": [],
    } == to_plain(model)
    d = {"role": "user", "content": "x"}
    assert d is to_plain(d)
