"""``OpenAIServerConversationTracker``: openai-agents' server-conversation tracker, O(1) per check.

Theory of operation. The runner hands the tracker the *whole* run history every turn and asks
which items the server does not hold yet. An item is skipped when any one of these says the
server has it, cheapest first:

1. the very object was delivered or returned by the server in this process (identity, held);
2. its pending-input id was accepted, its provider item id was seen, or it is the output of a
   call the server already answered (string sets);
3. after a resume, its content fingerprint was delivered before (the objects were rebuilt).

Step 1 answers for almost the whole history, so a turn costs one identity lookup per old item
and full work only for the new ones. The SDK's class keeps the same objects in lists and scans
them for every check, which makes a turn O(n) scans of O(n) lists.

Decisions, attribute names and errors match openai-agents' class (see the package docstring
for the supported versions); only the containers differ: ``sent_items`` / ``server_items`` are
``TrackedObjects`` and the prepared-source maps are identity maps.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from agents.exceptions import UserError
from agents.items import InputItem, ItemHelpers, ModelResponse, RunItem, TResponseInputItem
from agents.run_internal.items import (
    ReasoningItemIdPolicy,
    drop_orphan_function_calls,
    normalize_input_items_for_api,
    prepare_model_input_items,
    run_item_to_input_item,
)

from .._identity import IdentityMap, IdentitySet
from ._lazy import FingerprintSet
from ._support import (
    FingerprintCache,
    Source,
    SourceBuckets,
    TrackedObjects,
    anonymous_search_fingerprint,
    attribute_reader,
    is_input_item,
    is_tool_search,
    read_keys,
    tracker_fingerprint,
    untracked_run_items,
)

__all__ = ["OpenAIServerConversationTracker"]

logger = logging.getLogger(__name__)

_CALL_RUN_ITEM_TYPES = frozenset({"tool_call_item", "handoff_call_item"})
_SEARCH_RUN_ITEM_TYPES = frozenset({"tool_search_call_item", "tool_search_output_item"})

_AMBIGUOUS_FILTER = (
    "call_model_input_filter cannot safely associate an item it returned with the pending "
    "RunState input it came from: return the input item objects unchanged (or unchanged "
    "copies), or leave the pending item out."
)


class OpenAIServerConversationTracker:
    """Drop-in for ``agents.run_internal.oai_conversation.OpenAIServerConversationTracker``.

    Same constructor keywords, attributes and methods as the SDK's dataclass; every identity
    check is an O(1) lookup in a container that holds its objects (never a bare ``id()``).
    Install it into the SDK with ``tracker.agents.install()``.
    """

    def __init__(
        self,
        conversation_id: str | None = None,
        previous_response_id: str | None = None,
        auto_previous_response_id: bool = False,
        *,
        sent_items: Iterable[Any] = (),
        server_items: Iterable[Any] = (),
        server_item_ids: Iterable[str] = (),
        server_tool_call_ids: Iterable[str] = (),
        server_output_fingerprints: Iterable[str] = (),
        sent_item_fingerprints: Iterable[str] = (),
        accepted_input_item_ids: Iterable[str] = (),
        restored_anonymous_tool_search_fingerprints: Iterable[str] = (),
        sent_initial_input: bool = False,
        remaining_initial_input: list[TResponseInputItem] | None = None,
        primed_from_state: bool = False,
        reasoning_item_id_policy: ReasoningItemIdPolicy | None = None,
    ) -> None:
        self.conversation_id = conversation_id
        self.previous_response_id = previous_response_id
        self.auto_previous_response_id = auto_previous_response_id
        self.sent_items = TrackedObjects(sent_items)
        self.server_items = TrackedObjects(server_items)
        self.server_item_ids: set[str] = set(server_item_ids)
        self.server_tool_call_ids: set[str] = set(server_tool_call_ids)
        self.server_output_fingerprints: set[str] = set(server_output_fingerprints)
        self.sent_item_fingerprints = FingerprintSet(sent_item_fingerprints)
        self.accepted_input_item_ids: set[str] = set(accepted_input_item_ids)
        self.restored_anonymous_tool_search_fingerprints: set[str] = set(
            restored_anonymous_tool_search_fingerprints
        )
        self.sent_initial_input = sent_initial_input
        self.remaining_initial_input = remaining_initial_input
        self.primed_from_state = primed_from_state
        self.reasoning_item_id_policy = reasoning_item_id_policy
        # This turn's prepared items -> (source object, input id); cleared by prepare_input.
        self.prepared_item_sources: IdentityMap[Source] = IdentityMap()
        self.prepared_item_sources_by_fingerprint = SourceBuckets()
        self.delivered_item_sources: IdentityMap[Source] = IdentityMap()
        self._fingerprint = FingerprintCache()
        logger.debug(
            "Created OpenAIServerConversationTracker for conv_id=%s, prev_resp_id=%s",
            conversation_id,
            previous_response_id,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(conversation_id={self.conversation_id!r}, "
            f"previous_response_id={self.previous_response_id!r}, "
            f"auto_previous_response_id={self.auto_previous_response_id!r}, "
            f"sent_items={len(self.sent_items)}, server_items={len(self.server_items)})"
        )

    # ---- what the server holds -------------------------------------------------------

    def _note_server_keys(self, item: Any) -> None:
        item_id, call_id, has_output = read_keys(item)
        if item_id is not None:
            self.server_item_ids.add(item_id)
        if call_id is not None and has_output:
            self.server_tool_call_ids.add(call_id)

    def _note_restored_content(self, item: Any) -> None:
        if not is_tool_search(item):
            self.sent_item_fingerprints.add_item(item)
            return
        fingerprint = tracker_fingerprint(item)
        if fingerprint:
            self.sent_item_fingerprints.add(fingerprint)
        anonymous = anonymous_search_fingerprint(item)
        if anonymous:
            self.restored_anonymous_tool_search_fingerprints.add(anonymous)

    def hydrate_from_state(
        self,
        *,
        original_input: str | list[TResponseInputItem],
        generated_items: list[RunItem],
        model_responses: list[ModelResponse],
        session_items: list[TResponseInputItem] | None = None,
        unsent_tool_call_ids: set[str] | None = None,
    ) -> None:
        """Seed the tracker from a saved run so a resumed run sends only what is new.

        Restored objects are new objects, so the initial input is remembered by provider id and
        fingerprint only (never by identity); generated items and response outputs are held.
        Outputs whose call id is in ``unsent_tool_call_ids`` stay unsent. Runs once per tracker.
        """
        if self.sent_initial_input:
            return
        unsent = unsent_tool_call_ids or set()
        initial = (
            prepare_model_input_items(original_input)
            if isinstance(original_input, list)
            else original_input
        )
        for item in ItemHelpers.input_to_new_input_list(initial):
            if item is not None:
                self._note_server_keys(item)
                self._note_restored_content(item)
        self.sent_initial_input = True
        self.remaining_initial_input = None

        # A response without an id (non-Responses provider) must not break the chain.
        latest_response_id: str | None = None
        for response in model_responses:
            if response.response_id is not None:
                latest_response_id = response.response_id
            for output in response.output:
                if output is not None:
                    self.server_items.append(output)
                    self._note_server_keys(output)
        if self.conversation_id is None and latest_response_id is not None:
            self.previous_response_id = latest_response_id

        for item in session_items or ():
            self._note_server_keys(item)
            self._note_restored_content(item)

        hydrate_one = self._hydrate_generated
        for run_item in generated_items:
            hydrate_one(run_item, unsent)
        self.primed_from_state = True

    def _hydrate_generated(self, run_item: RunItem, unsent: set[str]) -> None:
        read = attribute_reader(type(run_item))
        raw = read(run_item, "raw_item")
        if raw is None:
            return
        item_id, call_id, has_output = read_keys(raw)
        if call_id is not None and has_output and call_id in unsent:
            return
        kind = read(run_item, "type")
        is_input = is_input_item(run_item)
        is_search = kind in _SEARCH_RUN_ITEM_TYPES
        if not (is_input or is_search or _delivered_before(item_id, call_id, has_output, kind)):
            return
        self.sent_items.append(raw)
        if is_input:
            # Pending input is deduped by occurrence id, not content: equal texts may recur.
            self.accepted_input_item_ids.add(read(run_item, "input_id"))
        else:
            self._note_hydrated_content(raw, is_search)
        if is_tool_search(raw):
            anonymous = anonymous_search_fingerprint(raw)
            if anonymous:
                self.restored_anonymous_tool_search_fingerprints.add(anonymous)
        if item_id is not None:
            self.server_item_ids.add(item_id)
        if call_id is not None and has_output:
            self.server_tool_call_ids.add(call_id)

    def _note_hydrated_content(self, raw: Any, is_search_run_item: bool) -> None:
        """Remember a restored generated item's content (not for pending input)."""
        if not (is_search_run_item or is_tool_search(raw)):
            # The common case, and hydrate's whole cost: encoded only when first needed.
            self.sent_item_fingerprints.add_item(raw)
            return
        fingerprint = tracker_fingerprint(raw)
        if fingerprint:
            self.sent_item_fingerprints.add(fingerprint)
            if is_search_run_item:
                self.server_output_fingerprints.add(fingerprint)

    def track_server_items(self, model_response: ModelResponse | None) -> None:
        """Record a response's output items as held by the server; advance the response chain."""
        if model_response is None:
            return
        returned: set[str] = set()
        for output in model_response.output:
            if output is None:
                continue
            self.server_items.append(output)
            self._note_server_keys(output)
            fingerprint = self._fingerprint(output)
            if fingerprint:
                self.sent_item_fingerprints.add(fingerprint)
                returned.add(fingerprint)
                if is_tool_search(output):
                    self.server_output_fingerprints.add(fingerprint)

        if self.remaining_initial_input and returned:
            remaining = [
                pending
                for pending in self.remaining_initial_input
                if not ((fp := self._fingerprint(pending)) and fp in returned)
            ]
            self.remaining_initial_input = remaining or None

        chaining = self.previous_response_id is not None or self.auto_previous_response_id
        if self.conversation_id is None and chaining and model_response.response_id is not None:
            self.previous_response_id = model_response.response_id

    # ---- deltas ------------------------------------------------------------------------

    def prepare_input(
        self,
        original_input: str | list[TResponseInputItem],
        generated_items: list[RunItem],
    ) -> list[TResponseInputItem]:
        """Return the items to send next: unsent initial input, then new generated items.

        Approval placeholders, items the server holds and calls left without outputs are left
        out. Remembers where each returned item came from, for ``mark_input_as_sent``.
        """
        self.prepared_item_sources.clear()
        self.prepared_item_sources_by_fingerprint.clear()
        self.delivered_item_sources.clear()
        self._fingerprint.clear()

        prepared_initial: list[TResponseInputItem] = []
        if not self.sent_initial_input:
            initial = ItemHelpers.input_to_new_input_list(original_input)
            prepared_initial = normalize_input_items_for_api(initial)
            for prepared, source in zip(prepared_initial, initial, strict=False):
                self._register_source(prepared, source, None)
            kept = [
                item for item in initial if item is not None and not isinstance(item, str | bytes)
            ]
            self.remaining_initial_input = kept or None
            self.sent_initial_input = True
        elif self.remaining_initial_input:
            pending = self.remaining_initial_input
            prepared_initial = normalize_input_items_for_api(pending)
            for prepared, source in zip(prepared_initial, pending, strict=False):
                self._register_source(prepared, source, None)

        converted: list[TResponseInputItem] = []
        converted_sources: IdentityMap[Source] = IdentityMap()
        # The whole old history is answered by one identity lookup per item.
        for run_item, raw in untracked_run_items(
            generated_items, self.sent_items, self.server_items
        ):
            candidate = self._convert_if_new(run_item, raw)
            if candidate is not None:
                converted.append(candidate[0])
                converted_sources.set(candidate[0], candidate[1])

        normalized = normalize_input_items_for_api(converted)
        normalized_sources: IdentityMap[Source] = IdentityMap()
        for normalized_item, converted_item in zip(normalized, converted, strict=False):
            origin = converted_sources.get(converted_item)
            if origin is not None:
                normalized_sources.set(normalized_item, origin)
        kept_generated = drop_orphan_function_calls(normalized)
        for item in kept_generated:
            origin = normalized_sources.get(item)
            if origin is not None:
                self._register_source(item, origin[0], origin[1])
        return prepared_initial + kept_generated

    def _convert_if_new(
        self, run_item: RunItem, raw: Any
    ) -> tuple[TResponseInputItem, Source] | None:
        if run_item.type == "tool_approval_item":
            return None
        input_id = run_item.input_id if isinstance(run_item, InputItem) else None
        if input_id is not None and input_id in self.accepted_input_item_ids:
            return None
        item_id, call_id, has_output = read_keys(raw)
        if item_id is not None and item_id in self.server_item_ids:
            return None
        if call_id is not None and has_output and call_id in self.server_tool_call_ids:
            return None
        converted = run_item_to_input_item(run_item, self.reasoning_item_id_policy)
        if converted is None:
            return None
        fingerprint = self._fingerprint(converted)
        if fingerprint and fingerprint in self.server_output_fingerprints:
            return None
        if self.primed_from_state and self._known_after_resume(
            converted, fingerprint, input_id, anonymous_keys=item_id is None and call_id is None
        ):
            return None
        return converted, (raw, input_id)

    def _known_after_resume(
        self,
        converted: Any,
        fingerprint: str | None,
        input_id: str | None,
        *,
        anonymous_keys: bool,
    ) -> bool:
        """Only after a resume: objects were rebuilt, so content is the remaining key."""
        if input_id is None and fingerprint and fingerprint in self.sent_item_fingerprints:
            return True
        if not anonymous_keys:
            return False
        anonymous = anonymous_search_fingerprint(converted)
        return bool(anonymous) and anonymous in self.restored_anonymous_tool_search_fingerprints

    def _register_source(self, prepared: Any, source: Any, input_id: str | None) -> None:
        if source is None:
            source = prepared
        self.prepared_item_sources.set(prepared, (source, input_id))
        fingerprint = self._fingerprint(prepared)
        if fingerprint:
            self.prepared_item_sources_by_fingerprint.add(fingerprint, source, input_id)

    def _consume_source(self, item: Any) -> Source:
        direct = self.prepared_item_sources.pop(item)
        fingerprint = self._fingerprint(item)
        buckets = self.prepared_item_sources_by_fingerprint
        oldest = buckets.first(fingerprint) if fingerprint else None
        if fingerprint is None or oldest is None:
            return direct if direct is not None else (item, None)
        chosen = direct if direct is not None else oldest
        buckets.remove(fingerprint, chosen)
        return chosen

    def _delivery_source(self, item: Any) -> Source:
        """Map an item the runner sent (possibly rebuilt by a filter) to its original source."""
        known = self.delivered_item_sources.get(item)
        if known is not None:
            return known
        source = self._consume_source(item)
        self.delivered_item_sources.set(item, source)
        return source

    def mark_input_as_sent(self, items: Sequence[TResponseInputItem]) -> None:
        """Record ``items`` (as sent to the model) as delivered, so they are not sent again."""
        if not items:
            return
        delivered = IdentitySet()
        delivered_content: set[str] = set()
        for item in items:
            if item is None:
                continue
            source, input_id = self._delivery_source(item)
            if source in delivered:
                continue
            delivered.add(source)
            self.sent_items.append(source)
            fingerprint = self._fingerprint(source)
            if fingerprint:
                delivered_content.add(fingerprint)
                if input_id is None:
                    self.sent_item_fingerprints.add(fingerprint)

        if not self.remaining_initial_input:
            return
        remaining = [
            pending
            for pending in self.remaining_initial_input
            if pending not in delivered
            and not ((fp := self._fingerprint(pending)) and fp in delivered_content)
        ]
        self.remaining_initial_input = remaining or None

    def mark_input_as_accepted(self, items: Sequence[TResponseInputItem]) -> set[str]:
        """Record the pending-input ids among ``items`` (a request that succeeded); return them."""
        accepted: set[str] = set()
        for item in items:
            if item is not None:
                input_id = self._delivery_source(item)[1]
                if input_id is not None:
                    accepted.add(input_id)
        self.accepted_input_item_ids.update(accepted)
        return accepted

    def rewind_input(self, items: Sequence[TResponseInputItem]) -> None:
        """Forget that ``items`` were sent (the request failed): the next turn sends them first."""
        if not items:
            return
        rewound: list[TResponseInputItem] = []
        for item in items:
            if item is None:
                continue
            source, input_id = self._delivery_source(item)
            rewound.append(source)
            self.sent_items.discard(source)
            fingerprint = self._fingerprint(source)
            if input_id is None and fingerprint:
                self.sent_item_fingerprints.discard(fingerprint)
        if rewound:
            logger.debug("Queued %d items to resend after conversation retry", len(rewound))
            self.remaining_initial_input = rewound + (self.remaining_initial_input or [])

    def validate_pending_input_filter(self, items: Sequence[TResponseInputItem]) -> None:
        """Raise ``agents.UserError`` when a filter's output cannot be traced to pending input.

        Nothing changes either way: the check runs on a copy of this turn's source records.
        """
        pending_ids = {
            input_id
            for _source, input_id in (entry for _obj, entry in self.prepared_item_sources.items())
            if input_id is not None
        }
        if not pending_ids:
            return
        buckets = self.prepared_item_sources_by_fingerprint.clone()
        fingerprints = [self._fingerprint(item) for item in items]
        returned_counts = Counter(fp for fp in fingerprints if fp)
        matched: set[str] = set()
        unmatched_item = False
        for item, fingerprint in zip(items, fingerprints, strict=True):
            source = self.prepared_item_sources.get(item)
            if source is not None:
                if fingerprint is not None:
                    buckets.remove(fingerprint, source)
            elif fingerprint is not None and buckets.count(fingerprint):
                source = _take_filtered_source(buckets, fingerprint, returned_counts[fingerprint])
            else:
                unmatched_item = True
            if source is not None and source[1] is not None:
                matched.add(source[1])
        if unmatched_item and pending_ids - matched:
            raise UserError(_AMBIGUOUS_FILTER)


def _delivered_before(
    item_id: str | None, call_id: str | None, has_output: bool, kind: Any
) -> bool:
    """Whether a restored generated item (neither input nor search) had reached the server."""
    if item_id is not None:
        return True
    return call_id is not None and (has_output or kind in _CALL_RUN_ITEM_TYPES)


def _take_filtered_source(buckets: SourceBuckets, fingerprint: str, returned: int) -> Source | None:
    """Match an item a filter rebuilt to the oldest source with its content; raise if ambiguous.

    Ambiguous: the content came both from pending input and from elsewhere, and the filter
    returned fewer copies than there were sources, so which one it kept cannot be told.
    """
    ids = buckets.input_ids(fingerprint)
    if None in ids and len(ids) > 1 and returned < buckets.count(fingerprint):
        raise UserError(_AMBIGUOUS_FILTER)
    source = buckets.first(fingerprint)
    if source is not None:
        buckets.remove(fingerprint, source)
    return source
