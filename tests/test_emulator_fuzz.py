"""No client input makes the emulator's service answer a 5xx or raise: random bodies on every
route (Hypothesis, without sockets) get a status below 500."""

from __future__ import annotations

from typing import Any

import pytest
from _examples import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracker.emulator._service import Service

_WORDS = [
    "", "x", "m", "user", "assistant", "tool", "message", "function", "function_call",
    "function_call_output", "reasoning", "item_reference", "input_text", "output_text",
    "resp_x", "conv_x", "call_1", "fc_1", "msg_1", "rs_1", "auto", "gAAAAAx.y",
]  # fmt: skip
_KEYS = [
    "type", "role", "content", "id", "call_id", "name", "arguments", "output", "text",
    "summary", "encrypted_content", "tool_calls", "tool_call_id", "function", "status",
    "model", "input", "messages", "items", "metadata", "tools", "tool_choice", "include",
    "previous_response_id", "conversation", "store", "stream", "truncation",
]  # fmt: skip
_LEAF = (
    st.none() | st.booleans() | st.integers(-2, 2) | st.floats(allow_nan=False)
) | st.sampled_from(_WORDS)
_VALUE = st.recursive(
    _LEAF,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_KEYS), inner),
    max_leaves=12,
)
_ROUTES = [
    ("POST", "/v1/responses"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/conversations"),
    ("POST", "/v1/conversations/{conv}"),
    ("POST", "/v1/conversations/{conv}/items"),
    ("GET", "/v1/conversations/{conv}/items"),
    ("GET", "/v1/responses/{resp}/input_items"),
]
_BASE: dict[str, dict[str, Any]] = {
    "/v1/responses": {"model": "m", "input": []},
    "/v1/chat/completions": {"model": "m", "messages": []},
}


@pytest.fixture(scope="module")
def service() -> tuple[Service, dict[str, str]]:
    """One service holding a conversation and a response for the routes that name them."""
    svc = Service(seed=5)
    conv = svc.handle("POST", "/v1/conversations", {}, {}).body["id"]
    resp = svc.handle("POST", "/v1/responses", {}, {"model": "m", "input": "hi"}).body["id"]
    return svc, {"conv": conv, "resp": resp}


@settings(max_examples=examples(120), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    route=st.sampled_from(_ROUTES),
    fields=st.dictionaries(st.sampled_from(_KEYS), _VALUE, max_size=5),
    based=st.booleans(),
    query=st.dictionaries(
        st.sampled_from(["limit", "after", "before", "order"]),
        st.sampled_from(["", "x", "-1", "1e3", "asc"]),
        max_size=2,
    ),
)
def test_no_body_gets_a_5xx(
    service: tuple[Service, dict[str, str]],
    route: tuple[str, str],
    fields: dict[str, Any],
    based: bool,
    query: dict[str, str],
) -> None:
    """Random bodies and queries on every route: an answer below 500, never an exception."""
    svc, ids = service
    method, template = route
    path = template.format(**ids)
    body = {**_BASE.get(path, {}), **fields} if based else fields
    assert svc.handle(method, path, query, body).status < 500


@pytest.mark.parametrize(
    ("tool_calls", "param"),
    [
        ("x", "messages[0].tool_calls"),
        ([1], "messages[0].tool_calls[0]"),
        ([{"id": "c", "function": "f"}], "messages[0].tool_calls[0].function"),
    ],
)
def test_malformed_chat_tool_calls_are_a_400(tool_calls: Any, param: str) -> None:
    """An assistant message whose tool_calls are not objects is a 400 naming the path (was 500)."""
    body = {"model": "m", "messages": [{"role": "assistant", "tool_calls": tool_calls}]}
    reply = Service().handle("POST", "/v1/chat/completions", {}, body)
    assert (400, param) == (reply.status, reply.body["error"]["param"])
