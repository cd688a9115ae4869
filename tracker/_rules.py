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

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, cast

import attrs

from ._chat_rules import check_chat
from ._formats import resolve_api
from ._items import field, read_item
from ._rule_checks import (
    _check_duplicates,
    _check_pairing,
    _check_reasoning,
    check_input_references,
)
from ._rule_options import (
    DEFAULT_RULES,
    STREAM_RESUME_SECONDS,
    UNSTORED_BACKGROUND_SECONDS,
    Provenance,
    RuleOptions,
    Violation,
)

__all__ = [
    "STREAM_RESUME_SECONDS",
    "UNSTORED_BACKGROUND_SECONDS",
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
    opts = options or DEFAULT_RULES
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
    Raises ``ItemError`` for an item that cannot be read, ``UsageError`` for an unknown ``api``,
    a list that mixes formats or a mapping that is not a ``RunAgentInput`` body (such as a Chat
    request body: pass its ``messages``), ``TypeError`` for an unknown option.
    """
    from ._agui import (  # _agui builds on this module's check_chat
        check_agui,
        is_run_input,
        refuse_other_mapping,
    )

    opts = RuleOptions(**options)
    if is_run_input(items) and api in (None, "agui"):
        return check_agui(cast("Mapping[str, Any]", items)["messages"])
    refuse_other_mapping(items, "validate_history")
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
