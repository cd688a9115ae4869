"""Check and repair the history inside one request's keyword arguments: pure, no I/O.

Theory of operation. A Chat Completions request carries its whole history (``messages``), so
it is checked and repaired as it stands. A Responses request carries its whole context only
when it has no continuation: with ``previous_response_id`` or ``conversation`` (or an
``item_reference``), ``input`` is a delta, and an output whose call is not in it may answer a
call the server holds. Such an output is never an orphan here: the check stands a stub call in
front of the input for it (so the pairing rules see the call), then takes the stubs out again.
What the guard cannot see (a server-held call left without its output, an output the server
has no call for) only the service can say: ``fix_rejected`` reads its 400 and repairs that.

Nothing here copies a valid request: ``check`` reads the items once and hands back the very
keyword arguments it was given.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Final, Literal

import attrs

from .._identity import IdentitySet
from .._items import OUTPUT_TO_CALL, read_item
from .._repair import repair_history
from .._repair_actions import RepairAction, RepairPolicy
from .._rules import Violation, validate_history

__all__ = ["Api", "Checked", "check", "fix_rejected", "history_key", "rejected_ids"]

Api = Literal["responses", "chat"]

_P1: Final = re.compile(r"No tool output found for ([a-z ]+?) (\S+)\.")
_P2: Final = re.compile(r"No tool call found for [a-z_ ]+? with call_id (\S+)\.")
# Chat Completions' pairing texts (see tracker._rules.check_chat).
_CHAT_PAIRING: Final = (
    "must be followed by tool messages responding to each 'tool_call_id'",
    "must be a response to a preceeding message with 'tool_calls'",
    "not found in 'tool_calls' of previous message",
)


@attrs.frozen
class Checked:
    """What ``check`` found in one request, and the request to send instead (if any).

    ``kwargs`` is the request to send: the very mapping given when nothing changed.
    """

    violations: tuple[Violation, ...]
    actions: tuple[RepairAction, ...]
    kwargs: Mapping[str, Any]


def history_key(api: Api) -> str:
    """The request field that holds the history: ``input`` or ``messages``."""
    return "input" if api == "responses" else "messages"


def _is_delta(kwargs: Mapping[str, Any], items: Sequence[Any]) -> bool:
    # openai's ``omit`` / ``NOT_GIVEN`` sentinels are falsy, like ``None``.
    if kwargs.get("previous_response_id") or kwargs.get("conversation"):
        return True
    return any(read_item(item, i).type == "item_reference" for i, item in enumerate(items))


def _stubs(items: Sequence[Any], unknown: Collection[str]) -> list[dict[str, Any]]:
    """One stub call per call_id whose outputs answer a call that is not in ``items``."""
    infos = [read_item(item, i) for i, item in enumerate(items)]
    own = {info.call_id for info in infos if info.is_call}
    held: dict[str, str] = {}
    for info in infos:
        cid = info.call_id
        if info.is_output and cid is not None and cid not in own and cid not in unknown:
            held.setdefault(cid, OUTPUT_TO_CALL.get(info.type, "function_call"))
    return [
        {"type": kind, "call_id": cid, "name": "", "arguments": ""} for cid, kind in held.items()
    ]


def _shift(violation: Violation, by: int) -> Violation:
    if violation.index is None or by == 0:
        return violation
    return attrs.evolve(violation, index=violation.index - by)


def _held_placeholders(
    missing: Mapping[str, str],
) -> tuple[list[Any], list[RepairAction]]:
    """Placeholder outputs for server-held calls (call_id -> call type) the service says have
    none; a call type with no placeholder form (a computer call, ...) gets none."""
    outputs: list[Any] = []
    actions: list[RepairAction] = []
    for cid, kind in missing.items():
        stub = {"type": kind, "call_id": cid, "name": "", "arguments": ""}
        repaired, _ = repair_history([stub], api="responses", policy="placeholder")
        if len(repaired) < 2:
            continue
        outputs.extend(repaired[1:])
        actions.append(
            RepairAction(
                "add_placeholder",
                None,
                call_id=cid,
                detail="the server holds the call and the request had no output for it",
            )
        )
    return outputs, actions


def check(
    api: Api,
    kwargs: Mapping[str, Any],
    *,
    repair: RepairPolicy | None = None,
    missing: Mapping[str, str] | None = None,
    unknown: Collection[str] = (),
) -> Checked:
    """Check the history in ``kwargs``; with ``repair`` set, also repair it.

    ``missing`` maps call_ids the service says have no output (held by the server, so
    answered with a placeholder at the start of ``input``) to their call type; ``unknown`` are
    call_ids the service says it has no call for (their outputs count as orphans). A request
    without a history list (a string ``input``, none at all) passes untouched. Raises
    ``ItemError`` for an unreadable item.
    """
    listed = _history_list(api, kwargs)
    if listed is None:
        return Checked((), (), kwargs)
    items, kwargs = listed
    stubs: list[dict[str, Any]] = []
    if api == "responses" and _is_delta(kwargs, items):
        stubs = _stubs(items, unknown)
    context = [*stubs, *items] if stubs else items
    found = validate_history(context, api=api)
    violations = tuple(_shift(v, len(stubs)) for v in found)
    if (not violations and not missing) or repair is None:
        return Checked(violations, (), kwargs)
    fixed, actions = _without_stubs(*repair_history(context, api=api, policy=repair), stubs)
    extra, held_actions = _held_placeholders(missing or {})
    if not actions and not extra:
        return Checked(violations, (), kwargs)
    key = history_key(api)
    return Checked(violations, (*held_actions, *actions), {**kwargs, key: [*extra, *fixed]})


def _history_list(
    api: Api, kwargs: Mapping[str, Any]
) -> tuple[Sequence[Any], Mapping[str, Any]] | None:
    """The request's history as a list (and the kwargs that send that list), or ``None``."""
    key = history_key(api)
    raw = kwargs.get(key)
    if isinstance(raw, (list, tuple)):
        return raw, kwargs
    if raw is None or isinstance(raw, (str, bytes, Mapping)) or not hasattr(raw, "__iter__"):
        return None
    items = list(raw)  # a one-shot iterable: it is read here, so send the list
    return items, {**kwargs, key: items}


def _without_stubs(
    fixed: list[Any], actions: tuple[RepairAction, ...], stubs: Sequence[dict[str, Any]]
) -> tuple[list[Any], tuple[RepairAction, ...]]:
    """Take the stand-in calls back out of a repaired context; shift action indexes back."""
    if not stubs:
        return fixed, actions
    held = IdentitySet()
    for stub in stubs:
        held.add(stub)
    kept = [item for item in fixed if item not in held]
    shifted = tuple(
        attrs.evolve(a, index=a.index - len(stubs)) if a.index is not None else a for a in actions
    )
    return kept, shifted


def rejected_ids(api: Api, message: str) -> tuple[dict[str, str], list[str]] | None:
    """Read a pairing 400's text: ``(missing, unknown)``, or ``None`` if it is not one.

    ``missing`` maps each call_id with no output to its call type (``function_call``, ...);
    ``unknown`` lists call_ids with no call. Chat Completions texts name no held calls (the
    whole history is in the request), so they give nothing.
    """
    if api == "chat":
        return ({}, []) if any(text in message for text in _CHAT_PAIRING) else None
    missing = {cid: words.replace(" ", "_") for words, cid in _P1.findall(message)}
    unknown = _P2.findall(message)
    if not missing and not unknown:
        return None
    return missing, unknown


def fix_rejected(
    api: Api, kwargs: Mapping[str, Any], message: str, repair: RepairPolicy
) -> Checked | None:
    """The request repaired after the service rejected it with ``message``; ``None`` if that
    is not a pairing error or the repair would change nothing (so a retry cannot help)."""
    ids = rejected_ids(api, message)
    if ids is None:
        return None
    missing, unknown = ids
    raw = kwargs.get(history_key(api))
    present: set[str] = set()
    if isinstance(raw, (list, tuple)):
        infos = [read_item(item, i) for i, item in enumerate(raw)] if api == "responses" else []
        present = {info.call_id for info in infos if info.is_call and info.call_id}
    held_missing = {cid: kind for cid, kind in missing.items() if cid not in present}
    checked = check(api, kwargs, repair=repair, missing=held_missing, unknown=set(unknown))
    return checked if checked.actions else None
