"""The values the history rules speak in: ``Violation`` (one broken rule, as the service answers
it), ``RuleOptions`` (switches for rules the public record leaves unsure), ``Provenance`` (what
the server knows of the reasoning items it issued), ``STREAM_RESUME_SECONDS`` and
``UNSTORED_BACKGROUND_SECONDS``.

Re-exported by ``tracker._rules``, which documents the rules themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import attrs

__all__ = [
    "DEFAULT_RULES",
    "STREAM_RESUME_SECONDS",
    "UNSTORED_BACKGROUND_SECONDS",
    "Provenance",
    "RuleOptions",
    "Violation",
]

#: How old (seconds since the response was created) a stream may be and still be resumed with
#: ``GET /v1/responses/{id}?stream=true&starting_after=N``: the service answers "more than 5
#: minutes old" after that (openai-python#2828 [OBS]; background guide [DOC]).
STREAM_RESUME_SECONDS: Final = 300.0

#: How long (seconds since it was created) a background response is kept for polling when it is
#: not kept for good: "about 10 minutes" (background guide [DOC]; see
#: ``RuleOptions.expire_unstored_background``).
UNSTORED_BACKGROUND_SECONDS: Final = 600.0


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
      items are looked up in storage too. Reports disagree: not looked up (inspect_ai PR
      #1545, tingly-box doc [OBS/3P]) against a Codex-backend client test and
      open-webui-developer-toolkit #715 (``Item with id 'fc_...' not found`` [OBS]); most such
      reports involve an ``item_reference`` or reasoning without ``encrypted_content``. Not
      sure either way, so off (rules reference section 2). On, a stateless ``Tracker``
      replays every item without its id (a reasoning item keeps it under
      ``require_reasoning_id``, which contradicts this switch for a reasoning model's replay).
    - ``compaction_boundary`` (on): the latest ``compaction`` item starts the window that the
      reasoning and pairing rules check [DOC compaction guide + INF]. A ``Tracker`` given it
      off keeps the calls pending at a compaction item pending (their outputs are sent after
      it) unless its stateless transcript drops what came before the item.
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
      (``observe_response`` refuses it; ``tracker.loop`` re-sends that request's input
      instead), so both settings agree with it.
    - ``reject_referenced_client_calls`` (off): a client-executed call sent in the input as an
      ``item_reference`` (or inline with its item id, ``fc_...``) together with its output by
      ``call_id`` gives ``P4`` (the ``P2`` text). Source: vercel/ai PR #15795 (2026-06-03) and
      PR #11114, one project reporting it twice, "most visibly with parallel tool calls across
      several steps" [3P], for ``function_call``; the other client call types carry an id and
      a ``call_id`` the same way and are treated alike [INF]. No public error body shows the
      exact condition, so the switch is off by default. Over a chain or a conversation a
      tracker never sends that shape (only the output of a call the server holds). A tracker
      given this switch (``Tracker(rules=...)``) never sends it on a whole-history request
      either (a stateless replay, the restart after an edited history): each such call goes
      without its id, and since rules A1-A3 want a reasoning item directly followed by its
      item by id, the reasoning item it was emitted with is left out and the other items
      emitted with it lose their ids (``Prepared.request_input``; the transcript and snapshot
      keep what the server returned). The trade-off: under the switch a reasoning model loses
      the reasoning behind each answered tool round on every stateless request; off, it is
      kept, and the thin-record rule is risked instead.
    - ``expire_unstored_background`` (off; on with ``Emulator(zdr=True)``): a background
      response created without an explicit ``store: true`` is deleted
      ``UNSTORED_BACKGROUND_SECONDS`` after it was created: retrieving it is the 404
      ``Response with id 'resp_X' not found.`` and chaining from it ``previous_response_not_found``.
      Source: OpenAI's background guide as published in its localised editions
      (developers.openai.com/{pt-BR,es-419,ja-JP,de-DE}/api/docs/guides/background) [DOC]: in a
      modified-abuse-monitoring project "background responses are kept after the polling
      period only when ``store=true`` is given explicitly; omitted or false, the response is
      deleted after about 10 minutes", and a ZDR project runs background requests with
      ``store=false``, keeping the data about 10 minutes for polling. The English edition the
      search index holds says only that background mode keeps data "roughly 10 minutes to
      enable polling" and is not ZDR-compatible, without the ``store=true`` exception; no
      live probe or error body is public [no OBS]. Fairly sure of the rule, not of the exact
      time nor of when it starts (creation here, [INF]). On: the rule of a
      modified-abuse-monitoring project (a ZDR one stores nothing anyway: ``zdr``, so there
      even an explicit ``store: true`` expires). A background run still queued or in progress
      at that time is finished first, then deleted; one held by ``Fault(stall=True)`` is kept.
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
    expire_unstored_background: bool = False


#: The default switches, built once (``RuleOptions`` is frozen): read on every turn.
DEFAULT_RULES: Final = RuleOptions()


@attrs.frozen
class Provenance:
    """What the server knows about reasoning items it issued.

    ``following[rs_id]`` is the id of the item emitted right after that reasoning item;
    ``reasoning_for[item_id]`` the reasoning item an output item was emitted with.
    """

    following: Mapping[str, str] = attrs.field(factory=dict)
    reasoning_for: Mapping[str, str] = attrs.field(factory=dict)
