"""The service's history rules, as pure functions: items in, ``Violation`` values out.

Theory of operation. The *context* of a Responses request is the stored items (of the
``previous_response_id`` chain, or of the conversation) followed by the request's ``input``.
The service checks that context in phases, and reports only the first violation it finds:

1. duplicate ids (``D1``);
2. reasoning adjacency (``A1``-``A3``), only for ids whose origin is known (``Provenance``);
3. tool-call pairing by ``call_id`` (``P1`` call without output, ``P2`` output without call,
   ``P3`` a second output for one call, off by default).

Compaction: the latest ``compaction`` item in a context is a boundary. The items before it are
summarised in it on the server, so phases 2 and 3 look only at the window that starts at it: an
output whose call lies before it answers nothing (``P2``), a call before it needs no output
(guide: "you can drop items that came before the most recent compaction item" [DOC]; that the
service pairs only within the window is inferred [INF], switch ``compaction_boundary``).
Duplicate ids are checked over the whole context.

Within a phase the offender that comes first in context order wins. ``check_context`` returns
every violation, phase by phase and in context order within each phase, so its first element is
what the service would answer. Chat Completions (``api="chat"``) has its own rules, which
require each assistant ``tool_calls`` message to be followed directly by its tool messages.

Rule codes (``Violation.rule``), each with the service's exact status, text, ``param``, ``code``:

=========================== ====== ==========================================================
``D1``                      400    ``Duplicate item found with id X. Remove duplicate ...``
``A1``                      400    reasoning item without its required following item
``A2``                      400    function call without its required reasoning item
``A3``                      400    message (or other item) without its required reasoning item
``P1``                      400    ``No tool output found for function call call_X.``
``P2``                      400    ``No tool call found for function call output with ...``
``P3``                      400    a second output for one ``call_id`` (gateway text, [3P])
``M1``                      400    ``The following MCP approval requests do not have an ...``
``P4``                      400    an output whose client call was sent by reference (off, [3P])
``CHAT_ORPHAN_TOOL``        400    tool message not preceded by assistant ``tool_calls``
``CHAT_UNANSWERED``         400    ``tool_calls`` not answered by the following tool messages
``CHAT_UNKNOWN_TOOL_CALL_ID`` 400  tool message whose id is not in the previous ``tool_calls``
``CHAT_EMPTY_TOOL_CALLS``   400    ``tool_calls: []``
=========================== ====== ==========================================================

AG-UI messages are checked by the ``CHAT_`` rules through a Chat view (``tracker._agui``).

Nothing here does I/O or imports ``openai``: items are dicts or SDK models, read through
``tracker._items``.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from typing import Any, Final, Literal, cast

import attrs

from ._formats import resolve_api
from ._items import OUTPUT_TO_CALL, ItemInfo, field, read_item

__all__ = [
    "STREAM_RESUME_SECONDS",
    "CheckedPrefix",
    "Provenance",
    "RuleOptions",
    "Violation",
    "check_appended",
    "check_chat",
    "check_context",
    "check_input_references",
    "validate_history",
    "window_start",
]

#: How old (seconds since the response was created) a stream may be and still be resumed with
#: ``GET /v1/responses/{id}?stream=true&starting_after=N``: the service answers "more than 5
#: minutes old" after that (openai-python#2828 [OBS]; background guide [DOC]).
STREAM_RESUME_SECONDS: Final = 300.0


@attrs.frozen
class Violation:
    """One rule the service would enforce, broken by one item.

    ``rule`` is the short code (see the module docstring), ``status``/``message``/``param``/
    ``code`` exactly what the service answers, ``index`` the offending item's position in the
    list that was checked, ``item_id`` / ``call_id`` the ids concerned (or ``None``).
    """

    rule: str
    status: int
    message: str
    param: str | None
    code: str | None
    index: int | None
    item_id: str | None = None
    call_id: str | None = None

    def envelope(self) -> dict[str, Any]:
        """The service's JSON error body for this violation."""
        return {
            "error": {
                "message": self.message,
                "type": "invalid_request_error",
                "param": self.param,
                "code": self.code,
            }
        }


@attrs.frozen
class RuleOptions:
    """Switches for rules the reference marks as inferred ([INF]) or third-party ([3P]).

    Defaults follow the reference's advice:

    - ``strict_order`` (on): an output must come *after* its call [INF].
    - ``async_exempt`` (on): a pending call with ``async: true`` needs no output [INF].
    - ``reject_duplicate_outputs`` (off): two outputs for one ``call_id`` give ``P3`` [3P].
    - ``require_reasoning_id`` (off): a reasoning input item without ``id`` is rejected
      (Codex backend says yes, openai-agents' "omit" policy says no).
    - ``conversation_store_false_persists`` (off): with ``store: false`` a conversation turn
      leaves the conversation unchanged [3P]; turn on to append anyway.
    - ``zdr`` (off): a zero-data-retention organisation: every request is ``store: false``
      whatever it asks, and a lookup fails with the ZDR text (``Items are not persisted for
      Zero Data Retention organizations.``; runvendo/vendo PR #1071, langfuse PR #16810 [OBS]).
    - ``lookup_complete_items_store_false`` (off): under ``store: false`` the ids of complete
      items are looked up in storage too.
    - ``compaction_boundary`` (on): the latest ``compaction`` item starts the window that the
      reasoning and pairing rules check [DOC compaction guide + INF].
    - ``reject_compaction_created_by`` (on): a ``compaction`` input item carrying
      ``created_by`` (an output-only field) is ``Unknown parameter: 'input[i].created_by'.``
      [INF from the SDK's input param, which has no such field; openai-agents 0.24 strips it
      before replaying, 3P].
    - ``enforce_min_compact_threshold`` (on): ``compact_threshold`` below 1000 is a 400
      [3P, litellm PR #21058]; turn off to compact tiny contexts in tests.
    - ``replay_before_compaction`` (off): a stateless (``store=False``) request must still
      replay the items before the latest ``compaction`` item. Off, a stateless ``Tracker``
      keeps only the window from that item on: server-side compaction ("you can drop items
      that came before the most recent compaction item" [DOC compaction guide], sure) and a
      ``compaction_trigger``'s output alike; after a standalone ``responses.compact`` the
      returned window (the user messages, then the compaction item) replaces the transcript
      [DOC SDK 3.57 ``CompactedResponse``: "a list of all user messages, followed by a single
      compaction item"; that nothing else is needed is inferred, INF]. Turn on to replay the
      whole history (what a dropped stale ``cmp_`` item summarised then stays readable).
    - ``chain_from_compacted_response`` (off): the id of a ``/responses/compact`` result can
      be a ``previous_response_id`` (continuing from the compacted window); off, it is
      ``previous_response_not_found`` [3P, pydantic-ai: "compaction response ids cannot be
      used as previous_response_id"].
    - ``resume_foreground_streams`` (off): ``GET /v1/responses/{id}?stream=true`` streams a
      response created without ``background: true`` again. The background guide documents
      resuming only for background responses ("Streaming a background response") and every
      public resume (openai-python#2828, pydantic-ai, agent-framework) is of one [DOC + INF];
      off, the emulator refuses with a 400 whose text is [INF].
    - ``chain_from_cancelled_response`` (off): a cancelled background response can be a
      ``previous_response_id`` (its input kept, no output). No public record says either way
      [INF]; off, it is ``previous_response_not_found``. A tracker never chains from one
      (``tracker.loop`` re-sends that request's input instead), so both settings agree with it.
    - ``reject_referenced_client_calls`` (off): a client-executed ``function_call`` sent in the
      input as an ``item_reference`` (or inline with its ``fc_`` id) together with its output
      by ``call_id`` gives ``P4`` (the ``P2`` text). Source: vercel/ai PR #15795 (2026-06-03)
      and PR #11114, one project reporting it twice, "most visibly with parallel tool calls
      across several steps" [3P]; no public error body shows the exact condition. Off by
      default because the record is thin and a tracker never sends that shape anyway (it
      sends only the output of a call the server holds); turn on to test that a client does
      not rely on it.
    """

    strict_order: bool = True
    async_exempt: bool = True
    reject_duplicate_outputs: bool = False
    require_reasoning_id: bool = False
    conversation_store_false_persists: bool = False
    lookup_complete_items_store_false: bool = False
    compaction_boundary: bool = True
    reject_compaction_created_by: bool = True
    enforce_min_compact_threshold: bool = True
    chain_from_compacted_response: bool = False
    zdr: bool = False
    reject_referenced_client_calls: bool = False
    resume_foreground_streams: bool = False
    chain_from_cancelled_response: bool = False
    replay_before_compaction: bool = False


@attrs.frozen
class Provenance:
    """What the server knows about reasoning items it issued.

    ``following[rs_id]`` is the id of the item emitted right after that reasoning item;
    ``reasoning_for[item_id]`` the reasoning item an output item was emitted with.
    """

    following: Mapping[str, str] = attrs.field(factory=dict)
    reasoning_for: Mapping[str, str] = attrs.field(factory=dict)


def _words(item_type: str) -> str:
    return item_type.replace("_", " ")


def _input_violation(
    rule: str,
    message: str,
    index: int | None,
    item_id: str | None = None,
    call_id: str | None = None,
) -> Violation:
    """A Responses history violation: the service answers 400 with ``param: "input"``."""
    return Violation(
        rule=rule,
        status=400,
        message=message,
        param="input",
        code=None,
        index=index,
        item_id=item_id,
        call_id=call_id,
    )


def duplicate_violation(item_id: str, index: int | None) -> Violation:
    """``D1``: an id that occurs twice in the context."""
    return _input_violation(
        "D1",
        f"Duplicate item found with id {item_id}. "
        "Remove duplicate items from your input and try again.",
        index,
        item_id=item_id,
    )


def _check_duplicates(
    infos: Sequence[ItemInfo], offset: int, known: Container[str] = frozenset()
) -> list[Violation]:
    """``D1``; ``known``: the ids of a checked prefix the items follow."""
    seen: set[str] = set()
    out: list[Violation] = []
    for i, info in enumerate(infos):
        if info.id is None:
            continue
        if info.id in seen or info.id in known:
            out.append(duplicate_violation(info.id, i + offset))
        seen.add(info.id)
    return out


def _check_reasoning(
    infos: Sequence[ItemInfo],
    provenance: Provenance,
    offset: int,
    seen_before: Container[str] = frozenset(),
) -> list[Violation]:
    """``A1``-``A3``; ``seen_before``: the ids in the window of a checked prefix."""
    out: list[Violation] = []
    seen_ids: set[str] = set()
    for i, info in enumerate(infos):
        if info.type == "reasoning" and info.id is not None and info.id in provenance.following:
            want = provenance.following[info.id]
            nxt = infos[i + 1] if i + 1 < len(infos) else None
            if nxt is None or nxt.id != want:
                out.append(
                    _input_violation(
                        "A1",
                        f"Item '{info.id}' of type 'reasoning' was provided without its "
                        "required following item.",
                        i + offset,
                        item_id=info.id,
                    )
                )
        elif info.id is not None and info.id in provenance.reasoning_for:
            rs_id = provenance.reasoning_for[info.id]
            if rs_id not in seen_ids and rs_id not in seen_before:
                out.append(
                    _input_violation(
                        "A2" if info.type == "function_call" else "A3",
                        f"Item '{info.id}' of type '{info.type}' was provided without its "
                        f"required 'reasoning' item: '{rs_id}'.",
                        i + offset,
                        item_id=info.id,
                        call_id=info.call_id,
                    )
                )
        if info.id is not None:
            seen_ids.add(info.id)
    return out


def missing_output_violation(
    call_type: str, call_id: str, index: int | None, item_id: str | None = None
) -> Violation:
    """``P1``: a tool call with no output in the context."""
    return _input_violation(
        "P1",
        f"No tool output found for {_words(call_type)} {call_id}.",
        index,
        item_id=item_id,
        call_id=call_id,
    )


def _check_pairing(
    items: Sequence[Any],
    infos: Sequence[ItemInfo],
    options: RuleOptions,
    at: Sequence[int],
    prefix: CheckedPrefix | None = None,
) -> list[Violation]:
    """``P1``-``P3`` and ``M1``; ``at[i]`` is the context index of ``items[i]``."""
    found = [
        *_check_outputs(infos, options, at, prefix),
        *_check_calls(items, infos, options, at, prefix),
    ]
    found.sort(key=lambda v: v.index if v.index is not None else -1)
    return found


def _check_outputs(
    infos: Sequence[ItemInfo],
    options: RuleOptions,
    at: Sequence[int],
    prefix: CheckedPrefix | None = None,
) -> list[Violation]:
    """``P2`` for an output with no call (before it, when order is strict); ``P3`` if on."""
    calls: set[str] = set()  # the calls before the current item, or all of them
    if not options.strict_order:
        calls = {info.call_id for info in infos if info.is_call and info.call_id}
    answered: set[str] = set()
    held_calls: Container[str] = prefix.calls if prefix else frozenset()
    held_answered: Container[str] = prefix.answered if prefix else frozenset()
    found: list[Violation] = []
    for i, info in enumerate(infos):
        cid = info.call_id
        if cid is None:
            continue
        if info.is_call:
            calls.add(cid)
        elif info.is_output:
            if cid not in calls and cid not in held_calls:
                found.append(
                    _input_violation(
                        "P2",
                        f"No tool call found for {_words(info.type)} with call_id {cid}.",
                        at[i],
                        item_id=info.id,
                        call_id=cid,
                    )
                )
            elif (cid in answered or cid in held_answered) and options.reject_duplicate_outputs:
                found.append(
                    _input_violation(
                        "P3",
                        f"Duplicate {info.type} for call_id '{cid}'. Each "
                        f"{OUTPUT_TO_CALL.get(info.type, 'call')} must have exactly one "
                        f"matching {info.type}",
                        at[i],
                        item_id=info.id,
                        call_id=cid,
                    )
                )
            answered.add(cid)
    return found


def _check_calls(
    items: Sequence[Any],
    infos: Sequence[ItemInfo],
    options: RuleOptions,
    at: Sequence[int],
    prefix: CheckedPrefix | None = None,
) -> list[Violation]:
    """``P1`` for a call with no output after it (anywhere, when order is not strict)."""
    earlier = prefix.answered if prefix is not None and not options.strict_order else set()
    last_output_at: dict[str, int] = {}
    for i, info in enumerate(infos):
        if info.is_output and info.call_id is not None:
            last_output_at[info.call_id] = i
    found: list[Violation] = []
    approvals: list[tuple[int, str]] = []  # unanswered MCP approval requests: one message
    for i, info in enumerate(infos):
        if not info.is_call or info.call_id is None:
            continue
        if options.async_exempt and field(items[i], "async") is True:
            continue
        last_output = last_output_at.get(info.call_id)
        answered = last_output is not None and (not options.strict_order or last_output > i)
        if answered or info.call_id in earlier:
            continue
        if info.type == "mcp_approval_request":
            approvals.append((at[i], info.call_id))
        else:
            found.append(missing_output_violation(info.type, info.call_id, at[i], info.id))
    if approvals:
        found.append(missing_approval_violation(approvals))
    return found


def missing_approval_violation(requests: Sequence[tuple[int | None, str]]) -> Violation:
    """``M1``: MCP approval requests with no ``mcp_approval_response`` in the context.

    The text for one request is the service's (openai-agents-js#131 [OBS]); for several the
    ids are joined with ``", "`` in context order [INF: no public body lists two]. The
    violation stands at the first request.
    """
    index, first = requests[0]
    return _input_violation(
        "M1",
        "The following MCP approval requests do not have an approval: "
        + ", ".join(request_id for _, request_id in requests),
        index,
        item_id=first,
        call_id=first,
    )


def check_input_references(
    items: Sequence[Any], stored: Mapping[str, Any] | None = None
) -> list[Violation]:
    """``P4``: outputs whose client-executed ``function_call`` is in the same input by id.

    ``items`` is a request's ``input`` as sent (before ``item_reference`` resolution);
    ``stored`` maps item ids to the items the server holds, to read what a reference names.
    A call counts when it is an ``item_reference`` to a ``function_call`` or an inline
    ``function_call`` that carries its ``fc_`` id; its output by ``call_id`` later in the same
    input is then refused with the ``P2`` text (``RuleOptions.reject_referenced_client_calls``,
    [3P]). Provider-executed calls are not concerned.
    """
    by_ref: set[str] = set()
    found: list[Violation] = []
    for i, item in enumerate(items):
        item_type = field(item, "type")
        call = item
        if item_type == "item_reference":
            call = (stored or {}).get(field(item, "id"))
            item_type = field(call, "type") if call is not None else None
            ref = True
        else:
            ref = isinstance(field(item, "id"), str)
        if item_type == "function_call" and ref:
            call_id = field(call, "call_id")
            if isinstance(call_id, str):
                by_ref.add(call_id)
            continue
        info = read_item(item, i)
        if info.is_output and info.call_id in by_ref:
            found.append(
                _input_violation(
                    "P4",
                    f"No tool call found for {_words(info.type)} with call_id {info.call_id}.",
                    i,
                    item_id=info.id,
                    call_id=info.call_id,
                )
            )
    return found


def window_start(items: Sequence[Any]) -> int:
    """Index of the latest ``compaction`` item in ``items`` (0 when there is none).

    The window that starts there is what the service sees after a compaction: the items before
    the boundary are summarised in it. Items are read with ``tracker._items.field``.
    """
    for i in range(len(items) - 1, -1, -1):
        if field(items[i], "type") == "compaction":
            return i
    return 0


def check_context(
    items: Sequence[Any],
    *,
    options: RuleOptions | None = None,
    provenance: Provenance | None = None,
    offset: int = 0,
) -> list[Violation]:
    """Check a resolved Responses context (stored items, then the request input).

    Returns every violation, phase by phase (duplicates, reasoning, pairing) and in context
    order within a phase; the first one is what the service reports. ``offset`` is added to
    each ``index``. With ``compaction_boundary`` (the default) reasoning and pairing are
    checked from the latest ``compaction`` item on (``window_start``). Raises ``ItemError``
    for an item that cannot be read.
    """
    opts = options or RuleOptions()
    infos = [read_item(item, i) for i, item in enumerate(items)]  # each item is read once
    start = 0
    if opts.compaction_boundary:
        start = next((i for i in range(len(infos) - 1, 0, -1) if infos[i].type == "compaction"), 0)
    window, window_infos = items[start:], infos[start:]
    return [
        *_check_duplicates(infos, offset),
        *_check_reasoning(window_infos, provenance or Provenance(), offset + start),
        *_check_pairing(window, window_infos, opts, range(offset + start, offset + len(items))),
    ]


@attrs.define
class CheckedPrefix:
    """What the rules need to know of a context prefix, so that a context that extends it is
    checked in O(its new items) (``check_appended``) instead of O(the whole context).

    Built by ``extend`` from the prefix's items, in order. ``ids``: every item id (``D1``);
    from ``window_start`` (the latest ``compaction`` item, with ``compaction_boundary``) on:
    ``window_ids`` (``A2``/``A3``), ``calls`` and ``answered``, the call ids of the calls and
    of the outputs (``P2``/``P3``), and ``pending``, by call id, the calls with no output after
    them with their context index (``P1``/``M1``). ``clean``: the prefix breaks no rule but
    for calls waiting for their output; a prefix that breaks one (items nobody checked, e.g.
    added to a conversation directly) cannot be checked incrementally: ``check_context`` the
    whole context then. ``options`` are the ones it was built with.
    """

    options: RuleOptions = attrs.field(factory=RuleOptions)
    length: int = 0
    ids: set[str] = attrs.field(factory=set)
    window_start: int = 0
    window_ids: set[str] = attrs.field(factory=set)
    calls: set[str] = attrs.field(factory=set)
    answered: set[str] = attrs.field(factory=set)
    pending: dict[str, list[tuple[int, Any]]] = attrs.field(factory=dict)
    clean: bool = True

    def extend(
        self, items: Sequence[Any], provenance: Provenance | None = None, *, passed: bool = False
    ) -> None:
        """Append ``items``; ``clean`` turns false if they break a rule (pending calls aside).

        ``passed``: the prefix followed by ``items`` just passed ``check_context`` with no
        violation at all, so the result is clean (whatever the prefix alone was). O(len(items)).
        Raises ``ItemError`` for an item that cannot be read (nothing changed).
        """
        check = self.clean and not passed
        found = check_appended(self, items, provenance=provenance) if check else []
        infos = [read_item(item, self.length + i) for i, item in enumerate(items)]
        if passed:
            self.clean = True
        elif any(v.rule not in ("P1", "M1") for v in found):
            self.clean = False
        for i, (item, info) in enumerate(zip(items, infos, strict=True)):
            at = self.length + i
            if info.type == "compaction" and self.options.compaction_boundary:
                self.window_start = at
                for kept in (self.window_ids, self.calls, self.answered, self.pending):
                    kept.clear()
            if info.id is not None:
                self.ids.add(info.id)
                self.window_ids.add(info.id)
            if info.call_id is not None and info.is_call:
                self.calls.add(info.call_id)
                self.pending.setdefault(info.call_id, []).append((at, item))
            elif info.call_id is not None and info.is_output:
                self.answered.add(info.call_id)
                self.pending.pop(info.call_id, None)
        self.length += len(items)


def check_appended(
    prefix: CheckedPrefix, items: Sequence[Any], *, provenance: Provenance | None = None
) -> list[Violation]:
    """``check_context`` of the prefix's context followed by ``items``, in O(len(items)).

    The prefix must be ``clean`` (its items already passed); violations are indexed in the
    whole context and come in ``check_context``'s order, so the first is the service's answer.
    """
    opts, base = prefix.options, prefix.length
    infos = [read_item(item, base + i) for i, item in enumerate(items)]
    start = None
    if opts.compaction_boundary:
        start = next(
            (i for i in range(len(infos) - 1, -1, -1) if infos[i].type == "compaction"), None
        )
    if start is not None and base + start > 0:  # a new window: the prefix only has ids
        window, window_infos = items[start:], infos[start:]
        at: Sequence[int] = range(base + start, base + len(items))
        return [
            *_check_duplicates(infos, base, prefix.ids),
            *_check_reasoning(window_infos, provenance or Provenance(), base + start),
            *_check_pairing(window, window_infos, opts, at),
        ]
    waiting = sorted(
        (entry for cid, calls in prefix.pending.items() for entry in calls)
        if opts.strict_order
        else (e for cid, c in prefix.pending.items() if cid not in prefix.answered for e in c),
        key=lambda entry: entry[0],
    )
    window = [item for _, item in waiting] + list(items)
    window_infos = [read_item(item, at) for at, item in waiting] + infos
    return [
        *_check_duplicates(infos, base, prefix.ids),
        *_check_reasoning(infos, provenance or Provenance(), base, prefix.window_ids),
        *_check_pairing(
            window,
            window_infos,
            opts,
            [at for at, _ in waiting] + [*range(base, base + len(items))],
            prefix,
        ),
    ]


# Chat Completions ---------------------------------------------------------------------------


def _chat_tool_call_ids(message: Any) -> list[str]:
    calls = field(message, "tool_calls") or []
    ids: list[str] = []
    for call in calls:
        call_id = field(call, "id")
        if isinstance(call_id, str):
            ids.append(call_id)
    return ids


def check_chat(messages: Sequence[Any], options: RuleOptions | None = None) -> list[Violation]:
    """Check Chat Completions ``messages`` against the tool-message rules.

    Each assistant message with ``tool_calls`` must be followed directly by one tool message
    per ``tool_call_id``; a tool message must answer the assistant message right before its
    run of tool messages. Violations come in message order.
    """
    del options  # no chat rule is switchable yet; the parameter keeps one signature for both
    out: list[Violation] = []
    open_ids: list[str] | None = None  # ids of the assistant message the current run answers
    open_index = 0
    answered: set[str] = set()

    def close_run() -> None:
        nonlocal open_ids
        if open_ids is not None:
            missing = [c for c in open_ids if c not in answered]
            if missing:
                out.append(
                    Violation(
                        rule="CHAT_UNANSWERED",
                        status=400,
                        message=(
                            "An assistant message with 'tool_calls' must be followed by tool "
                            "messages responding to each 'tool_call_id'. The following "
                            f"tool_call_ids did not have response messages: {', '.join(missing)}"
                        ),
                        param=f"messages.[{open_index}].role",
                        code=None,
                        index=open_index,
                        call_id=missing[0],
                    )
                )
        open_ids = None

    for i, message in enumerate(messages):
        role = field(message, "role")
        if role == "tool":
            tool_call_id = field(message, "tool_call_id")
            if open_ids is None:
                out.append(
                    Violation(
                        rule="CHAT_ORPHAN_TOOL",
                        status=400,
                        message=(
                            "Invalid parameter: messages with role 'tool' must be a response "
                            "to a preceeding message with 'tool_calls'."
                        ),
                        param=f"messages.[{i}].role",
                        code=None,
                        index=i,
                        call_id=tool_call_id if isinstance(tool_call_id, str) else None,
                    )
                )
            elif tool_call_id not in open_ids:
                out.append(
                    Violation(
                        rule="CHAT_UNKNOWN_TOOL_CALL_ID",
                        status=400,
                        message=(
                            f"Invalid parameter: 'tool_call_id' of '{tool_call_id}' not found "
                            "in 'tool_calls' of previous message."
                        ),
                        param=f"messages.[{i}].tool_call_id",
                        code=None,
                        index=i,
                        call_id=tool_call_id if isinstance(tool_call_id, str) else None,
                    )
                )
            elif isinstance(tool_call_id, str):
                answered.add(tool_call_id)
            continue
        close_run()
        tool_calls = field(message, "tool_calls")
        if role == "assistant" and tool_calls is not None:
            if isinstance(tool_calls, list) and not tool_calls:
                out.append(
                    Violation(
                        rule="CHAT_EMPTY_TOOL_CALLS",
                        status=400,
                        message=(
                            f"Invalid 'messages[{i}].tool_calls': empty array. Expected an array "
                            "with minimum length 1, but got an empty array instead."
                        ),
                        param=f"messages[{i}].tool_calls",
                        code="empty_array",
                        index=i,
                    )
                )
                continue
            open_ids = _chat_tool_call_ids(message)
            open_index = i
            answered = set()
    close_run()
    return out


def validate_history(
    items: Iterable[Any] | Mapping[str, Any],
    *,
    api: Literal["responses", "chat", "agui"] | None = None,
    provenance: Provenance | None = None,
    **options: bool,
) -> list[Violation]:
    """Return every rule the service would enforce that ``items`` break (empty: valid).

    ``api="responses"``: ``items`` is a whole Responses context (input items, dicts or SDK
    models); the first violation is the one the service reports. ``api="chat"``: ``items`` is a
    Chat Completions ``messages`` list. ``api="agui"``: AG-UI messages (``toolCalls`` /
    ``toolCallId``), or an AG-UI ``RunAgentInput`` body (its ``messages`` are checked; given
    such a body, ``api`` may be left out); violations name ``messages[i]``. ``None`` (the
    default): the format is detected from the items (``tracker._formats.detect_api``; a list
    with nothing format-specific in it is read as Responses). ``options`` are ``RuleOptions``
    switches, e.g. ``strict_order=False``; ``provenance`` enables the reasoning-adjacency rules.
    Raises ``ItemError`` for an item that cannot be read, ``UsageError`` for an unknown ``api``
    or a list that mixes formats, ``TypeError`` for an unknown option.
    """
    from ._agui import check_agui, is_run_input  # _agui builds on this module's check_chat

    opts = RuleOptions(**options)
    if is_run_input(items) and api in (None, "agui"):
        return check_agui(cast("Mapping[str, Any]", items)["messages"])
    seq = list(items)
    fmt = resolve_api(seq, api)
    if fmt == "agui":
        return check_agui(seq)
    if fmt == "chat":
        return check_chat(seq, opts)
    found = check_context(seq, options=opts, provenance=provenance)
    if opts.reject_referenced_client_calls:
        found.extend(check_input_references(seq))
    return found
