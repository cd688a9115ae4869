"""check_appended: checking only the new items after a checked prefix answers as check_context."""

from __future__ import annotations

from typing import Any

from _examples import examples
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tracker._rules import CheckedPrefix, Provenance, RuleOptions, check_appended, check_context

CALLS = ("call_a", "call_b", "call_c")
IDS = ("rs_1", "rs_2", "msg_1", "msg_2", "fc_1", "fc_2", "cmp_1", "cmp_2")
PROVENANCE = Provenance(
    following={"rs_1": "fc_1", "rs_2": "msg_2"},
    reasoning_for={"fc_1": "rs_1", "fc_2": "rs_1", "msg_1": "rs_2", "msg_2": "rs_2"},
)


def _item(kind: str, ident: str | None, call: str, flag: bool) -> dict[str, Any]:
    item: dict[str, Any] = {"type": kind}
    if ident is not None:
        item["id"] = ident
    if kind == "message":
        item["role"] = "assistant" if flag else "user"
    elif kind in ("function_call", "custom_tool_call"):
        item.update(call_id=call, name="f", **({"async": True} if flag else {}))
    elif kind in ("function_call_output", "custom_tool_call_output"):
        item.update(call_id=call, output="ok")
    elif kind == "mcp_approval_request":
        item["id"] = ident or f"mcpr_{call}"
    elif kind == "mcp_approval_response":
        item.update(approval_request_id=ident or f"mcpr_{call}", approve=flag)
        item.pop("id", None)
    return item


RS, FC, FC2 = (
    _item("reasoning", "rs_1", "", False),
    _item("function_call", "fc_1", "call_a", False),
    _item("message", "fc_2", "", True),
)
OUT_A, OUT_B = (
    _item("function_call_output", None, "call_a", False),
    _item("function_call_output", None, "call_b", False),
)


ITEMS = st.builds(
    _item,
    st.sampled_from(
        [
            "message",
            "reasoning",
            "function_call",
            "function_call_output",
            "custom_tool_call",
            "custom_tool_call_output",
            "compaction",
            "mcp_approval_request",
            "mcp_approval_response",
        ]
    ),
    st.none() | st.sampled_from(IDS),
    st.sampled_from(CALLS),
    st.booleans(),
)
OPTIONS = st.builds(
    RuleOptions,
    strict_order=st.booleans(),
    async_exempt=st.booleans(),
    reject_duplicate_outputs=st.booleans(),
    compaction_boundary=st.booleans(),
)


@example([RS, FC, OUT_A, FC2], [], RuleOptions())  # A2/A3: the reasoning item is held
@example([RS, FC, OUT_A, _item("compaction", "cmp_1", "", False), FC2], [], RuleOptions())
@example([OUT_A, FC, OUT_B], [], RuleOptions(strict_order=False))  # an output before its call
@example([FC, OUT_A, OUT_A], [1], RuleOptions(reject_duplicate_outputs=True))  # P3
@settings(max_examples=examples(50), deadline=None)
@given(st.lists(ITEMS, max_size=14), st.lists(st.integers(0, 14), max_size=3), OPTIONS)
def test_appended_items_are_checked_as_the_whole_context_is(
    items: list[dict[str, Any]], cuts: list[int], options: RuleOptions
) -> None:
    """After a clean prefix (extended in chunks), check_appended gives check_context's list,
    at every split point."""
    whole = check_context(items, options=options, provenance=PROVENANCE)
    for split in range(len(items) + 1):
        prefix = CheckedPrefix(options=options)
        start = 0
        for cut in [*sorted(c for c in cuts if c <= split), split]:
            prefix.extend(items[start:cut], PROVENANCE)
            start = cut
        held = check_context(items[:split], options=options, provenance=PROVENANCE)
        if prefix.clean:
            assert set() == {v.rule for v in held} - {"P1", "M1"}
            assert whole == check_appended(prefix, items[split:], provenance=PROVENANCE)
        elif not cuts:
            assert {v.rule for v in held} - {"P1", "M1"}  # dirty only when a rule is broken
