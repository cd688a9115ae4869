"""The emulator's context index: a request is checked against the held prefix, and a prefix
that broke a rule is checked whole only until a request passes over it."""

from __future__ import annotations

from tracker._rules import RuleOptions
from tracker.emulator._service import Service


def test_a_conversation_dirtied_by_added_items_is_incremental_again_after_a_passing_turn() -> None:
    """Items added directly (an output before its call) force whole checks; once a turn passes
    the whole context, the index is clean again and the next turn is checked incrementally."""
    service = Service(options=RuleOptions(strict_order=False), seed=1)
    conv = service.handle("POST", "/v1/conversations", {}, {}).body["id"]
    early = {"type": "function_call_output", "call_id": "call_1", "output": "ok"}
    assert (
        200
        == service.handle("POST", f"/v1/conversations/{conv}/items", {}, {"items": [early]}).status
    )
    assert not service.state.indexes[conv].rules.clean  # P2 until the call comes
    call = {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"}
    turn = {
        "model": "emu-1",
        "conversation": conv,
        "input": [call, {"role": "user", "content": "hi"}],
    }
    assert 200 == service.handle("POST", "/v1/responses", {}, turn).status
    assert service.state.indexes[conv].rules.clean
