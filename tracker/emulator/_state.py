"""The emulator's stored state: responses, conversations, items, and id generation.

Everything here is guarded by ``State.lock`` (taken by the service around each request); the
``snapshot`` helpers copy what tests read so they never see a half-applied request.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import random
import string
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any

import attrs

from .._rules import Provenance, RuleOptions
from ._context import MAX_INDEXES, ContextIndex
from ._tracked import TrackedCounter, TrackedDict

__all__ = ["IdGen", "Run", "State", "StoredConversation", "StoredResponse", "normalize_item"]

_ALNUM = string.ascii_letters + string.digits

#: Prefix of the ids the emulator gives to stored items, by item type.
ITEM_PREFIX: dict[str, str] = {
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fco",
    "reasoning": "rs",
    "custom_tool_call": "ctc",
    "custom_tool_call_output": "ctco",
    "tool_search_call": "tsc",
    "tool_search_output": "tso",
    "compaction": "cmp",
    "mcp_approval_request": "mcpr",
    "mcp_approval_response": "mcpa",
}


class IdGen:
    """Server-style ids with the real prefixes and lengths (seedable for reproducible runs)."""

    def __init__(self, seed: int | None = None) -> None:
        self._random = random.Random(seed)
        self.secret = self._random.randbytes(16)

    @classmethod
    def restored(cls, random_state: tuple[Any, ...], secret: bytes) -> IdGen:
        """A generator that continues from ``random_state()`` with a saved ``secret``."""
        if len(secret) != 16:
            raise ValueError(f"the secret has {len(secret)} bytes, expected 16")
        gen = cls(0)
        gen._random.setstate(random_state)
        gen.secret = secret
        return gen

    def random_state(self) -> tuple[Any, ...]:
        """The random generator's state, to save with the emulator's state."""
        return self._random.getstate()

    def hex(self, n: int) -> str:
        """``n`` random hex digits."""
        return "".join(self._random.choice("0123456789abcdef") for _ in range(n))

    def response_id(self) -> str:
        """``resp_`` + 48 hex."""
        return "resp_" + self.hex(48)

    def conversation_id(self) -> str:
        """``conv_`` + 48 hex."""
        return "conv_" + self.hex(48)

    def item_id(self, item_type: str) -> str:
        """``msg_``/``fc_``/``rs_``/... + 50 hex, by item type."""
        return f"{ITEM_PREFIX.get(item_type, 'item')}_{self.hex(50)}"

    def call_id(self) -> str:
        """``call_`` + 24 alphanumerics, like the model's."""
        return "call_" + "".join(self._random.choice(_ALNUM) for _ in range(24))

    def request_id(self) -> str:
        """``req_`` + 32 hex, for the ``x-request-id`` header."""
        return "req_" + self.hex(32)

    def seal(self, item_id: str) -> str:
        """Opaque ``encrypted_content`` for a reasoning or compaction item this emulator issued."""
        mac = hmac.new(self.secret, item_id.encode(), hashlib.sha256).hexdigest()[:32]
        return f"gAAAAA{item_id}.{mac}"

    def verify(self, item_id: str, sealed: str) -> bool:
        """Whether ``sealed`` is this emulator's ``encrypted_content`` for ``item_id``."""
        return hmac.compare_digest(sealed, self.seal(item_id))

    def unseal(self, sealed: Any) -> str | None:
        """The item id sealed in ``sealed`` if this emulator's current key made it, else None."""
        if not isinstance(sealed, str) or not sealed.startswith("gAAAAA"):
            return None
        item_id = sealed[6:].split(".", 1)[0]
        return item_id if self.verify(item_id, sealed) else None

    def rotate(self) -> None:
        """A new sealing key: everything sealed before no longer verifies (a key rotation)."""
        self.secret = self._random.randbytes(16)


def normalize_item(item: dict[str, Any]) -> dict[str, Any]:
    """The stored form of an input item: ``type`` set, message content as a list of parts."""
    out = copy.deepcopy(item)
    if "type" not in out and "role" in out:
        out = {"type": "message", **out}
    if out.get("type") == "message" and isinstance(out.get("content"), str):
        kind = "output_text" if out.get("role") == "assistant" else "input_text"
        part: dict[str, Any] = {"type": kind, "text": out["content"]}
        if kind == "output_text":
            part["annotations"] = []
        out["content"] = [part]
    return out


@attrs.define
class StoredResponse:
    """One response the emulator answered: its request input and output items (stored form)."""

    id: str
    body: dict[str, Any]
    input_items: list[dict[str, Any]]
    output: list[dict[str, Any]]
    previous_response_id: str | None
    conversation_id: str | None
    store: bool
    #: ``{"reason": ...}`` when the response ended ``incomplete`` (``_incomplete``).
    incomplete_details: dict[str, Any] | None = None


@attrs.define
class StoredConversation:
    """One conversation: its items in order and its metadata."""

    id: str
    created_at: int
    metadata: dict[str, Any]
    items: list[dict[str, Any]] = attrs.field(factory=list)
    busy: bool = False

    def as_object(self) -> dict[str, Any]:
        """The ``conversation`` object the API returns."""
        return {
            "id": self.id,
            "object": "conversation",
            "created_at": self.created_at,
            "metadata": self.metadata,
        }


def _indexes(index: ContextIndex, items: list[dict[str, Any]], options: RuleOptions) -> bool:
    """Whether ``index`` still holds exactly ``items`` (checked by length and last item)."""
    if index.rules.options != options or len(index.items) != len(items):
        return False
    return not items or index.items[-1] is items[-1]


@attrs.define
class Run:
    """A background (or resumable streamed) response: its lifecycle, for ``_background``.

    ``turn`` is the validated request (``_responses.Turn``) and ``output`` what the script
    decided; ``response`` is the Response object once it finished or was cancelled.
    ``started`` is the emulator clock's reading when it was created (the resume limit).
    """

    id: str
    turn: Any
    output: list[dict[str, Any]]
    started: float
    created_at: int
    background: bool
    polls_left: int
    status: str = "queued"
    response: dict[str, Any] | None = None
    fail_code: str | None = None
    #: ``Fault(stall=True)``: stays queued until cancelled.
    stalled: bool = False
    #: A run loaded from a state file: its request as JSON (``_persist.run_record``), from
    #: which ``_background`` rebuilds ``turn`` when it needs it.
    request: dict[str, Any] | None = None


@attrs.define
class State:
    """All of the emulator's state. Hold ``lock`` to read or change it."""

    ids: IdGen
    lock: threading.RLock = attrs.field(factory=threading.RLock)
    # The dicts record which keys change, for the state journal (``_tracked``, ``_journal``).
    responses: dict[str, StoredResponse] = attrs.field(factory=TrackedDict)
    conversations: dict[str, StoredConversation] = attrs.field(factory=TrackedDict)
    items: dict[str, dict[str, Any]] = attrs.field(factory=TrackedDict)
    following: dict[str, str] = attrs.field(factory=TrackedDict)
    reasoning_for: dict[str, str] = attrs.field(factory=TrackedDict)
    delivered_outputs: Counter[str] = attrs.field(factory=TrackedCounter)
    issued_calls: list[str] = attrs.field(factory=list)
    #: What each compaction item summarises, for the script: ``cmp_`` id -> items.
    compaction_memory: dict[str, list[dict[str, Any]]] = attrs.field(factory=TrackedDict)
    #: ``POST /v1/responses/compact`` results: id -> the compacted window (its output).
    compacted: dict[str, list[dict[str, Any]]] = attrs.field(factory=TrackedDict)
    #: Background and resumable streamed responses by id (saved in the state file too).
    runs: dict[str, Run] = attrs.field(factory=TrackedDict)
    #: Chain tail (response id) or conversation id -> its context index (``_context``); a
    #: cache rebuilt on demand, never saved.
    indexes: dict[str, ContextIndex] = attrs.field(factory=dict)

    def provenance(self) -> Provenance:
        """Reasoning provenance of every item this emulator issued."""
        return Provenance(following=self.following, reasoning_for=self.reasoning_for)

    def chain(self, response_id: str) -> list[dict[str, Any]]:
        """Inputs then outputs of every stored response from the root of the chain to this one.

        A chain rooted at a compacted window (``chain_from_compacted_response``) starts with it.
        """
        links: list[StoredResponse] = []
        seen: set[str] = set()
        current: str | None = response_id
        # A cycle cannot come from the API (a response only names an older one), but a
        # hand-edited state file could hold one: stop rather than loop forever.
        while current is not None and current in self.responses and current not in seen:
            seen.add(current)
            links.append(self.responses[current])
            current = self.responses[current].previous_response_id
        items: list[dict[str, Any]] = list(self.compacted.get(current or "", []))
        for link in reversed(links):
            items.extend(link.input_items)
            items.extend(link.output)
        return items

    def chain_index(self, response_id: str, options: RuleOptions) -> ContextIndex:
        """The context index of the chain ending at ``response_id`` (built if need be: O(n))."""
        index = self.indexes.get(response_id)
        if index is None or index.rules.options != options:
            index = ContextIndex.build(self.chain(response_id), options, self.provenance())
            self.keep_index(response_id, index)
        return index

    def conversation_index(self, conv: StoredConversation, options: RuleOptions) -> ContextIndex:
        """The context index of a conversation's items (built if need be: O(n))."""
        index = self.indexes.get(conv.id)
        if index is None or not _indexes(index, conv.items, options):
            index = ContextIndex.build(conv.items, options, self.provenance())
            self.keep_index(conv.id, index)
        return index

    def keep_index(self, key: str, index: ContextIndex) -> None:
        """Keep ``index`` for ``key`` (a response or conversation id), dropping the oldest
        index beyond ``MAX_INDEXES``."""
        self.indexes.pop(key, None)
        self.indexes[key] = index
        while len(self.indexes) > MAX_INDEXES:
            del self.indexes[next(iter(self.indexes))]

    def advance_index(
        self,
        old: str | None,
        new: str,
        index: ContextIndex,
        length: int,
        items: list[Any],
        *,
        passed: Sequence[Any] = (),
    ) -> None:
        """Move ``index`` from ``old`` to ``new`` extended by ``passed`` (items that passed the
        rules with it: a request's input), then ``items``, if it still holds ``length`` items
        and belongs to ``old`` (else ``new`` builds its own when asked)."""
        if old is not None and self.indexes.get(old) is not index:
            return
        if len(index.items) != length:
            return
        if old is not None:
            del self.indexes[old]
        if passed:
            index.extend(passed, self.provenance(), passed=True)
        index.extend(items, self.provenance())
        self.keep_index(new, index)

    def remember_output(self, output: list[dict[str, Any]]) -> None:
        """Record reasoning provenance and issued call ids for a new output."""
        current_rs: str | None = None
        for i, item in enumerate(output):
            if item.get("type") == "reasoning":
                current_rs = item["id"]
                if i + 1 < len(output):
                    self.following[item["id"]] = output[i + 1]["id"]
            elif current_rs is not None:
                self.reasoning_for[item["id"]] = current_rs
            if item.get("type") == "function_call":
                self.issued_calls.append(item["call_id"])

    def index_items(self, items: list[dict[str, Any]]) -> None:
        """Make stored items resolvable by id (``item_reference`` and id-only reasoning)."""
        for item in items:
            if isinstance(item.get("id"), str):
                self.items[item["id"]] = item
