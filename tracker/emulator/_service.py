"""Routing and the non-``create`` endpoints: responses (get, delete, input items) and
conversations (create, get, update, delete; create, list, get, delete items).

``Service.handle(method, path, query, body)`` is the whole server behaviour without sockets;
the HTTP layer only parses bytes and writes the ``Reply``.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from .._items import OUTPUT_TO_CALL
from .._rules import CheckedPrefix, RuleOptions, check_appended
from ._background import NOT_RESUMABLE, Background
from ._chat import create_chat_completion
from ._compact import compact_response
from ._reply import Reply, error_reply, page
from ._responses import create_response, response_object
from ._schema import bad_request, check_items_list, check_metadata, not_found
from ._script import Script, default_script
from ._state import IdGen, State, StoredConversation, normalize_item

__all__ = ["Service"]

Handler = Callable[[re.Match[str], Mapping[str, str], Any], Reply]


class Service:
    """The emulator's behaviour: state, rules and script behind ``handle``."""

    def __init__(
        self,
        *,
        script: Script | None = None,
        options: RuleOptions | None = None,
        seed: int | None = None,
        model_delay: float = 0.0,
        background_polls: int = 2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = State(ids=IdGen(seed))
        self.script: Script = script or default_script
        self.options = options or RuleOptions()
        self.model_delay = model_delay
        self.background = Background(
            lambda: self.state, self.options, polls=background_polls, clock=clock
        )
        r = re.compile
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("POST", r(r"/v1/responses"), self._create_response),
            ("POST", r(r"/v1/responses/compact"), self._compact),
            ("GET", r(r"/v1/responses/(?P<id>[^/]+)"), self._get_response),
            ("DELETE", r(r"/v1/responses/(?P<id>[^/]+)"), self._delete_response),
            ("GET", r(r"/v1/responses/(?P<id>[^/]+)/input_items"), self._input_items),
            ("POST", r(r"/v1/responses/(?P<id>[^/]+)/cancel"), self._cancel),
            ("POST", r(r"/v1/chat/completions"), self._chat),
            ("POST", r(r"/v1/conversations"), self._create_conversation),
            ("GET", r(r"/v1/conversations/(?P<id>[^/]+)"), self._get_conversation),
            ("POST", r(r"/v1/conversations/(?P<id>[^/]+)"), self._update_conversation),
            ("DELETE", r(r"/v1/conversations/(?P<id>[^/]+)"), self._delete_conversation),
            ("POST", r(r"/v1/conversations/(?P<id>[^/]+)/items"), self._add_items),
            ("GET", r(r"/v1/conversations/(?P<id>[^/]+)/items"), self._list_items),
            ("GET", r(r"/v1/conversations/(?P<id>[^/]+)/items/(?P<item>[^/]+)"), self._get_item),
            (
                "DELETE",
                r(r"/v1/conversations/(?P<id>[^/]+)/items/(?P<item>[^/]+)"),
                self._delete_item,
            ),
        ]

    def handle(self, method: str, path: str, query: Mapping[str, str], body: Any) -> Reply:
        """Answer one request; ``body`` is the parsed JSON (or ``None``)."""
        self.background.expire()  # background responses past their time are gone first
        for route_method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match is not None and route_method == method:
                return handler(match, query, body)
        return error_reply(not_found(f"Invalid URL ({method} {path})"))

    # responses ------------------------------------------------------------------------------

    def _create_response(self, _m: re.Match[str], _q: Mapping[str, str], body: Any) -> Reply:
        return create_response(
            self.state,
            body,
            script=self.script,
            options=self.options,
            model_delay=self.model_delay,
            background=self.background,
        )

    def _compact(self, _m: re.Match[str], _q: Mapping[str, str], body: Any) -> Reply:
        return compact_response(self.state, body, self.options)

    def _chat(self, _m: re.Match[str], _q: Mapping[str, str], body: Any) -> Reply:
        return create_chat_completion(self.state, body, script=self.script, options=self.options)

    def _stored(self, response_id: str) -> Any:
        stored = self.state.responses.get(response_id)
        if stored is None:
            return error_reply(not_found(f"Response with id '{response_id}' not found."))
        return stored

    def _get_response(self, m: re.Match[str], query: Mapping[str, str], _b: Any) -> Reply:
        run = self.background.retrieve(m["id"], query)
        if run is not None:
            return run
        with self.state.lock:
            stored = self._stored(m["id"])
            if isinstance(stored, Reply):
                return stored
            if query.get("stream") == "true":
                return error_reply(bad_request(NOT_RESUMABLE, "stream", None))
            return Reply(
                body=response_object(
                    stored.id,
                    stored.body,
                    copy.deepcopy(stored.output),
                    None,
                    created_at=int(time.time()),
                    incomplete_details=stored.incomplete_details,
                )
            )

    def _cancel(self, m: re.Match[str], _q: Mapping[str, str], _b: Any) -> Reply:
        return self.background.cancel(m["id"])

    def _delete_response(self, m: re.Match[str], _q: Mapping[str, str], _b: Any) -> Reply:
        with self.state.lock:
            stored = self._stored(m["id"])
            if isinstance(stored, Reply):
                return stored
            del self.state.responses[m["id"]]
            self.state.runs.pop(m["id"], None)
            self.state.indexes.clear()  # a chain through it now ends there: rebuild them
        return Reply(body={"id": m["id"], "object": "response", "deleted": True})

    def _input_items(self, m: re.Match[str], query: Mapping[str, str], _b: Any) -> Reply:
        with self.state.lock:
            stored = self._stored(m["id"])
            if isinstance(stored, Reply):
                return stored
            return Reply(body=page(copy.deepcopy(stored.input_items), query))

    # conversations --------------------------------------------------------------------------

    def _conversation(self, conv_id: str) -> StoredConversation | Reply:
        conv = self.state.conversations.get(conv_id)
        if conv is None:
            return error_reply(not_found(f"Conversation with id '{conv_id}' not found."))
        return conv

    def _new_items(
        self, conv: StoredConversation | None, items: Any, param: str
    ) -> list[dict[str, Any]] | Reply:
        found = check_items_list(items, param, self.options)
        if found is not None:
            return error_reply(found)
        normalized = [normalize_item(item) for item in items]
        held = self.state.conversation_index(conv, self.options).rules if conv else None
        dups = [v for v in check_appended(held or CheckedPrefix(), normalized) if v.rule == "D1"]
        if dups:
            return error_reply(dups[0])
        stored = []
        for item in normalized:
            item.setdefault("id", self.state.ids.item_id(item.get("type", "message")))
            if item.get("type") != "reasoning":
                item.setdefault("status", "completed")
            if item.get("type") in OUTPUT_TO_CALL and isinstance(item.get("call_id"), str):
                self.state.delivered_outputs[item["call_id"]] += 1
            stored.append(item)
        self.state.index_items(stored)
        return stored

    def _create_conversation(self, _m: re.Match[str], _q: Mapping[str, str], body: Any) -> Reply:
        body = body if body is not None else {}
        if not isinstance(body, Mapping):
            return error_reply(bad_request("Invalid body: expected an object.", None, None))
        for key in body:
            if key not in ("items", "metadata"):
                return error_reply(
                    bad_request(f"Unknown parameter: '{key}'.", key, "unknown_parameter")
                )
        found = check_metadata(body.get("metadata"))
        if found is not None:
            return error_reply(found)
        with self.state.lock:
            items = self._new_items(None, body.get("items") or [], "items")
            if isinstance(items, Reply):
                return items
            conv = StoredConversation(
                id=self.state.ids.conversation_id(),
                created_at=int(time.time()),
                metadata=dict(body.get("metadata") or {}),
                items=items,
            )
            self.state.conversations[conv.id] = conv
            return Reply(body=conv.as_object())

    def _get_conversation(self, m: re.Match[str], _q: Mapping[str, str], _b: Any) -> Reply:
        with self.state.lock:
            conv = self._conversation(m["id"])
            return conv if isinstance(conv, Reply) else Reply(body=conv.as_object())

    def _update_conversation(self, m: re.Match[str], _q: Mapping[str, str], body: Any) -> Reply:
        metadata = body.get("metadata") if isinstance(body, Mapping) else None
        found = check_metadata(metadata)
        if found is not None:
            return error_reply(found)
        with self.state.lock:
            conv = self._conversation(m["id"])
            if isinstance(conv, Reply):
                return conv
            if metadata is not None:
                conv.metadata = dict(metadata)
            return Reply(body=conv.as_object())

    def _delete_conversation(self, m: re.Match[str], _q: Mapping[str, str], _b: Any) -> Reply:
        with self.state.lock:
            conv = self._conversation(m["id"])
            if isinstance(conv, Reply):
                return conv
            del self.state.conversations[conv.id]
            self.state.indexes.pop(conv.id, None)
        return Reply(body={"id": conv.id, "object": "conversation.deleted", "deleted": True})

    def _add_items(self, m: re.Match[str], _q: Mapping[str, str], body: Any) -> Reply:
        with self.state.lock:
            conv = self._conversation(m["id"])
            if isinstance(conv, Reply):
                return conv
            items = self._new_items(conv, (body or {}).get("items"), "items")
            if isinstance(items, Reply):
                return items
            held = len(conv.items)
            conv.items.extend(items)
            index = self.state.indexes.get(conv.id)
            if index is not None:  # unchecked items: the index notes whether they break a rule
                self.state.advance_index(conv.id, conv.id, index, held, items)
            return Reply(body=page(copy.deepcopy(items), {"limit": "100"}, default_order="asc"))

    def _list_items(self, m: re.Match[str], query: Mapping[str, str], _b: Any) -> Reply:
        with self.state.lock:
            conv = self._conversation(m["id"])
            if isinstance(conv, Reply):
                return conv
            listed = page(conv.items, query)  # copy only the page, not the conversation
            return Reply(body={**listed, "data": copy.deepcopy(listed["data"])})

    def _find_item(self, m: re.Match[str]) -> tuple[StoredConversation, int] | Reply:
        conv = self._conversation(m["id"])
        if isinstance(conv, Reply):
            return conv
        for i, item in enumerate(conv.items):
            if item.get("id") == m["item"]:
                return conv, i
        return error_reply(not_found(f"Item with id '{m['item']}' not found in conversation."))

    def _get_item(self, m: re.Match[str], _q: Mapping[str, str], _b: Any) -> Reply:
        with self.state.lock:
            found = self._find_item(m)
            if isinstance(found, Reply):
                return found
            conv, i = found
            return Reply(body=copy.deepcopy(conv.items[i]))

    def _delete_item(self, m: re.Match[str], _q: Mapping[str, str], _b: Any) -> Reply:
        with self.state.lock:
            found = self._find_item(m)
            if isinstance(found, Reply):
                return found
            conv, i = found
            del conv.items[i]
            self.state.indexes.pop(conv.id, None)
            return Reply(body=conv.as_object())
