"""Unit tests of the sans-IO rules (tracker._rules): codes, exact texts, order, switches."""

from __future__ import annotations

import pytest
from _builders import call, tool, user
from _builders import chat_calls as assistant
from _builders import output as out
from _builders import reasoning as rs

from tracker import UsageError, Violation, validate_history
from tracker._rules import Provenance, RuleOptions, check_context


def codes(violations: list[Violation]) -> list[tuple[str, int | None]]:
    return [(v.rule, v.index) for v in violations]


def test_valid_history_has_no_violations() -> None:
    """Parallel calls answered later, with text in between, are valid (no adjacency rule)."""
    items = [
        user(),
        call("c1"),
        call("c2"),
        {"role": "assistant", "content": "x"},
        out("c2"),
        out("c1"),
    ]
    assert [] == validate_history(items)


def test_p1_exact_violation() -> None:
    """A call without output: P1 with the service's text, param 'input', code null."""
    expected = Violation(
        "P1",
        400,
        "No tool output found for function call c1.",
        "input",
        None,
        1,
        item_id="fc_1",
        call_id="c1",
    )
    assert [expected] == validate_history([user(), call("c1", id="fc_1")])


@pytest.mark.parametrize(
    ("call_type", "words"),
    [
        ("custom_tool_call", "custom tool call"),
        ("local_shell_call", "local shell call"),
        ("apply_patch_call", "apply patch call"),
        ("tool_search_call", "tool search call"),
    ],
)
def test_p1b_wording_by_call_type(call_type: str, words: str) -> None:
    """P1 names the call type in words, for every call type."""
    [violation] = validate_history([{"type": call_type, "call_id": "c9"}])
    assert f"No tool output found for {words} c9." == violation.message


def test_p2_exact_violation() -> None:
    """An output without a call: P2 with the service's text."""
    [violation] = validate_history([user(), out("c7")])
    assert ("P2", 1, "c7") == (violation.rule, violation.index, violation.call_id)
    assert "No tool call found for function call output with call_id c7." == violation.message


def test_p2b_custom_tool_wording() -> None:
    """P2 for a custom tool output says 'custom tool call output'."""
    [violation] = validate_history([out("c7", type="custom_tool_call_output")])
    assert "No tool call found for custom tool call output with call_id c7." == violation.message


def test_output_before_call_is_p2_when_strict() -> None:
    """[INF] strict order: an output placed before its call is reported first (P2), then P1."""
    assert [("P2", 0), ("P1", 1)] == codes(validate_history([out("c1"), call("c1")]))


def test_output_before_call_accepted_when_order_not_strict() -> None:
    """strict_order=False pairs an output with a call anywhere in the context."""
    assert [] == validate_history([out("c1"), call("c1")], strict_order=False)


def test_async_call_exempt_from_p1_by_default() -> None:
    """[INF] a pending call with async: true needs no output; the switch turns that off."""
    items = [call("c1", **{"async": True})]
    assert [] == validate_history(items)
    assert ["P1"] == [v.rule for v in validate_history(items, async_exempt=False)]


def test_p3_duplicate_output_off_by_default() -> None:
    """[3P] a second output for one call is accepted unless reject_duplicate_outputs is on."""
    items = [call("c1"), out("c1"), out("c1")]
    assert [] == validate_history(items)
    [violation] = validate_history(items, reject_duplicate_outputs=True)
    assert ("P3", 2) == (violation.rule, violation.index)


def test_d1_reports_second_occurrence() -> None:
    """D1 names the id, unquoted, at the second occurrence's index."""
    [violation] = validate_history([user(id="msg_1"), user(), user(id="msg_1")])
    assert (
        "Duplicate item found with id msg_1. Remove duplicate items from your input and "
        "try again." == violation.message
    )
    assert ("D1", 2, "input", None) == (
        violation.rule,
        violation.index,
        violation.param,
        violation.code,
    )


def test_items_without_ids_are_never_duplicates() -> None:
    """Id-less repeats are not D1 (they only inflate the context)."""
    assert [] == validate_history([user(), user(), call("c1"), out("c1"), call("c1"), out("c1")])


def test_phases_order_duplicates_before_pairing() -> None:
    """check_context reports D1 before P1 even when the P1 item comes first."""
    items = [call("c1"), user(id="msg_1"), user(id="msg_1")]
    assert [("D1", 2), ("P1", 0)] == codes(check_context(items))


def test_pairing_offenders_in_context_order() -> None:
    """Within the pairing phase, the earliest offender comes first."""
    items = [call("c1"), out("c2"), call("c3")]
    assert [("P1", 0), ("P2", 1), ("P1", 2)] == codes(validate_history(items))


PROV = Provenance(
    following={"rs_1": "fc_1", "rs_2": "msg_2"}, reasoning_for={"fc_1": "rs_1", "msg_2": "rs_2"}
)


def test_a1_reasoning_without_following_item() -> None:
    """A1: the reasoning item is not directly followed by the item it was emitted with."""
    [violation] = validate_history([user(), rs("rs_1")], provenance=PROV)
    assert (
        "Item 'rs_1' of type 'reasoning' was provided without its required following "
        "item." == violation.message
    )
    assert ("A1", 1) == (violation.rule, violation.index)


def test_a2_function_call_without_its_reasoning() -> None:
    """A2: a function call with its fc_ id but without its reasoning item."""
    [violation, _p1] = validate_history([user(), call("c1", id="fc_1")], provenance=PROV)
    assert (
        "Item 'fc_1' of type 'function_call' was provided without its required "
        "'reasoning' item: 'rs_1'." == violation.message
    )
    assert "A2" == violation.rule


def test_a3_message_without_its_reasoning() -> None:
    """A3: an assistant message with its msg_ id but without its reasoning item."""
    msg = {"type": "message", "role": "assistant", "id": "msg_2", "content": "x"}
    [violation] = validate_history([msg], provenance=PROV)
    assert (
        "A3",
        "Item 'msg_2' of type 'message' was provided without its required "
        "'reasoning' item: 'rs_2'.",
    ) == (violation.rule, violation.message)


def test_reasoning_rules_need_provenance() -> None:
    """Without provenance, the adjacency rules do not fire (ids the server cannot trace)."""
    assert [] == validate_history([rs("rs_1"), user()])


def test_reasoning_pair_kept_together_is_valid() -> None:
    """rs_1 followed by fc_1, answered: valid."""
    assert [] == validate_history([rs("rs_1"), call("c1", id="fc_1"), out("c1")], provenance=PROV)


def test_envelope_has_all_four_keys() -> None:
    """A violation's envelope carries message, type, param and code (null when none)."""
    [violation] = validate_history([out("c1")])
    assert {
        "error": {
            "message": violation.message,
            "type": "invalid_request_error",
            "param": "input",
            "code": None,
        }
    } == violation.envelope()


def test_unknown_option_is_a_type_error() -> None:
    """A misspelt switch fails loudly."""
    with pytest.raises(TypeError):
        validate_history([], strict=True)


def test_rule_options_defaults_follow_the_reference() -> None:
    """Defaults: strict order, async exempt, no P3, reasoning id optional."""
    assert (
        RuleOptions(
            strict_order=True,
            async_exempt=True,
            reject_duplicate_outputs=False,
            require_reasoning_id=False,
        )
        == RuleOptions()
    )


# Chat Completions ---------------------------------------------------------------------------


def test_chat_valid() -> None:
    """Each tool_calls message followed by its tool messages is valid."""
    messages = [user(), assistant("a", "b"), tool("b"), tool("a"), assistant("c"), tool("c")]
    assert [] == validate_history(messages, api="chat")


def test_chat_orphan_tool_message() -> None:
    """A tool message not preceded by tool_calls: the service's (misspelt) text."""
    [violation] = validate_history([user(), tool("a")], api="chat")
    assert (
        Violation(
            "CHAT_ORPHAN_TOOL",
            400,
            "Invalid parameter: messages with role 'tool' "
            "must be a response to a preceeding message with 'tool_calls'.",
            "messages.[1].role",
            None,
            1,
            call_id="a",
        )
        == violation
    )


def test_chat_unanswered_tool_calls() -> None:
    """Missing tool messages: every unanswered id, comma-joined, no trailing period."""
    [violation] = validate_history([assistant("a", "b", "c"), tool("b"), user()], api="chat")
    assert (
        "An assistant message with 'tool_calls' must be followed by tool messages "
        "responding to each 'tool_call_id'. The following tool_call_ids did not have response "
        "messages: a, c" == violation.message
    )
    assert ("CHAT_UNANSWERED", "messages.[0].role", 0) == (
        violation.rule,
        violation.param,
        violation.index,
    )


def test_chat_unknown_tool_call_id() -> None:
    """A tool message answering an id the previous tool_calls do not hold."""
    violations = validate_history([assistant("a"), tool("a"), tool("z")], api="chat")
    assert ["CHAT_UNKNOWN_TOOL_CALL_ID"] == [v.rule for v in violations]
    assert (
        "Invalid parameter: 'tool_call_id' of 'z' not found in 'tool_calls' of previous "
        "message." == violations[0].message
    )


def test_chat_results_out_of_order_are_orphans() -> None:
    """Chat enforces adjacency: results after a later message are orphans (unlike Responses)."""
    violations = validate_history([assistant("a"), user(), tool("a")], api="chat")
    assert ["CHAT_UNANSWERED", "CHAT_ORPHAN_TOOL"] == [v.rule for v in violations]


def test_chat_empty_tool_calls() -> None:
    """tool_calls: [] is its own error, with code empty_array."""
    [violation] = validate_history([user(), {"role": "assistant", "tool_calls": []}], api="chat")
    assert ("messages[1].tool_calls", "empty_array") == (violation.param, violation.code)


# The api default: detected from the items --------------------------------------------------


def test_default_api_detects_a_broken_chat_history() -> None:
    """Without api=, Chat messages are checked as Chat (once read as Responses: valid)."""
    messages = [user(), assistant("a"), user()]
    assert ["CHAT_UNANSWERED"] == [v.rule for v in validate_history(messages)]


def test_default_api_reads_plain_messages_and_empty_lists_as_responses() -> None:
    """Nothing format-specific (no tool calls): both formats agree, so it is Responses."""
    assert ([], []) == (validate_history([]), validate_history([user(), user("again")]))
    assert [("D1", 1)] == codes(validate_history([user(id="m1"), user(id="m1")]))


def test_mixed_formats_are_a_usage_error_naming_both() -> None:
    """Chat messages and Responses items in one list: UsageError naming one of each."""
    with pytest.raises(UsageError, match=r"item \[2\] is a Chat .* item \[1\] a Responses") as info:
        validate_history([user(), call("c1"), tool("c1")])
    assert "api='responses', 'chat' or 'agui'" in str(info.value)


def test_explicit_api_overrides_detection() -> None:
    """api='responses' reads a Chat-looking list as Responses items, as before."""
    assert [] == validate_history([user(), assistant("a"), user()], api="responses")


def test_unknown_api_is_a_usage_error() -> None:
    """An unknown api value raises UsageError (a TrackerError), not a bare ValueError."""
    with pytest.raises(UsageError, match="'chatgpt'"):
        validate_history([user()], api="chatgpt")  # type: ignore[arg-type]
