"""A local OpenAI-compatible server that enforces the real service's history rules.

Start it from Python (port 0 picks a free port; it binds 127.0.0.1 unless told otherwise)::

    from openai import OpenAI
    from tracker.emulator import Emulator

    with Emulator() as emu:
        client = OpenAI(base_url=emu.base_url, api_key="x")
        r = client.responses.create(model="emu-1", input='add({"a": 1, "b": 2})',
                                    tools=[{"type": "function", "name": "add"}])

or from the command line: ``tracker emulator --host 127.0.0.1 --port 8765``.

State lives in memory unless ``Emulator(state_path="emu.json")`` (``--state FILE``) keeps it in
a versioned JSON-lines journal: loaded at start, one record appended after every change,
before the answer, compacted atomically past a bound (``tracker.emulator._journal``).

Endpoints: ``POST /v1/responses`` (plain and SSE), ``GET``/``DELETE /v1/responses/{id}``,
``GET /v1/responses/{id}?stream=true&starting_after=N``, ``POST /v1/responses/{id}/cancel``,
``GET /v1/responses/{id}/input_items``, ``POST /v1/responses/compact``, conversations (create/
get/update/delete, and create/list/get/delete items), ``POST /v1/chat/completions`` (plain and
SSE). Rejections carry the
service's status, envelope and exact text; the rules live in ``tracker._rules`` (the same ones
``tracker.validate_history`` exposes), switches in ``RuleOptions``.

The model is a deterministic script (``tracker.emulator._script``): the latest user message
``weather({"city": "Paris"}) weather({"city": "Rome"}) then add({"a": 1, "b": 2})`` makes it call
two tools in parallel, then one, then answer with a text listing the outputs. Pass your own with
``Emulator(script=fn)``, ``fn(context_items, request_body) -> [output items]``.

Inspecting what it received and stored (thread-safe snapshots), for end-to-end tests:

- ``emu.requests`` -> ``[Received(method, path, body, headers)]``; ``emu.requests_to(path)``
  -> the JSON bodies sent to one endpoint.
- ``emu.issued_calls()`` -> every call_id the model issued, in order.
- ``emu.received_outputs()`` -> ``Counter`` call_id -> number of tool outputs with that call_id
  the emulator *accepted* (in any request that passed validation, or added to a conversation).
- ``emu.context_outputs(response_id=...)`` / ``(conversation_id=...)`` -> the same count over the
  stored context of one chain or conversation. "Every tool output delivered exactly once"::

      assert dict.fromkeys(emu.issued_calls(), 1) == emu.context_outputs(response_id=last.id)

- ``emu.context_items(...)`` -> a copy of those stored items; ``emu.state`` the live state
  (``responses``, ``conversations``, ``items``; hold ``emu.state.lock`` while reading).

Compaction (``tracker.emulator._compaction``): ``context_management=[{"type": "compaction",
"compact_threshold": N}]`` compacts a turn whose window (the context from its latest compaction
item on) holds more than N tokens, counted as four characters of each item's compact JSON (plus
``instructions``) per token; a final ``compaction_trigger`` input item compacts at once;
``responses.compact(...)`` answers a ``CompactedResponse``. ``emu.window_items(...)`` /
``emu.window_tokens(...)`` show the window of a chain or conversation; ``emu.rotate_keys()``
makes every ``encrypted_content`` issued before stale (400 ``invalid_encrypted_content``).

Background responses (``tracker.emulator._background``): ``background: true`` answers
``queued``; each retrieve moves it a step (``in_progress``), and the ``background_polls``-th
(default 2) finds it ``completed``, stored only then. A background stream can be resumed with
``retrieve(id, stream=True, starting_after=N)`` (events after ``N``, no ``response.created``)
until it is 5 minutes old by ``Emulator(clock=...)``; ``responses.cancel(id)`` cancels a
queued or in-progress one.

``max_output_tokens`` (``tracker.emulator._incomplete``): a response whose scripted output
costs more tokens ends ``incomplete`` (``incomplete_details.reason`` ``max_output_tokens``), its
output cut where the budget ends; a stream of it ends with ``response.incomplete``.

Faults (for retry tests): ``emu.inject(Fault(status=500), times=2)``, ``Fault(status=429,
should_retry=True)``, ``Fault(delay=0.5)``, ``Fault(drop="after")`` (stored, then the connection
is closed without an answer), ``Fault(cut_after=N)`` (stored, then the stream is cut after ``N``
events), ``Fault(fail="server_error")`` (a background response ends ``failed``),
``Fault(stall=True)`` (a background response stays ``queued`` until cancelled). Faults apply
to ``POST /v1/responses`` unless ``path``/``method`` say otherwise.
"""

from .._rules import Provenance, RuleOptions, Violation
from ._script import Script, approval_script, default_script
from ._server import Emulator, Fault, Received

__all__ = [
    "Emulator",
    "Fault",
    "Provenance",
    "Received",
    "RuleOptions",
    "Script",
    "Violation",
    "approval_script",
    "default_script",
]
