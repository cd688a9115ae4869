"""The HTTP layer: a stdlib threading server that parses requests and writes ``Reply`` values.

It adds only what belongs to the wire: the bearer-key check (401), reading the body (``_wire``:
framing, size limit 413, malformed or too deep JSON 400), ``x-request-id``, SSE framing, and
injected faults. Every answer, the stdlib's own refusals included, is in the service's JSON
envelope; the body of a refused request is not kept.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl

import attrs

from .._errors import UsageError
from .._items import OUTPUT_TO_CALL
from .._rules import RuleOptions, Violation, window_start
from ._compaction import count_tokens
from ._journal import StateFile
from ._reply import Reply, error_reply
from ._schema import bad_request, invalid_type
from ._script import Script
from ._service import Service
from ._state import State
from ._wire import parse_json, read_body

__all__ = ["Emulator", "Fault", "Received"]

_SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"
_RATE_LIMIT = "Rate limit reached for requests. Please try again in 1s."
_KEY_HINT = "You can find your API key at https://platform.openai.com/account/api-keys."
_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). You can obtain an API key from "
    "https://platform.openai.com/account/api-keys."
)
_LINGER_IDLE = 1.0  # seconds: after refusing a body, how long to wait for more of it
_LINGER_MAX = 5.0


@attrs.frozen
class Fault:
    """A fault to inject into matching requests.

    - ``status``: answer this error status (5xx: ``server_error``, 429: ``rate_limit_exceeded``)
      *instead of* handling the request (nothing is stored);
    - ``delay``: seconds to wait before handling (latency);
    - ``drop``: ``"before"`` closes the connection without handling; ``"after"`` handles the
      request (the response is stored, outputs delivered) and then closes the connection
      without answering, so the client sees a connection error and may retry;
    - ``cut_after``: handle the request, then send only the first ``cut_after`` events of
      its stream and close the connection (a stream cut mid-way after the response was
      accepted; a plain JSON answer is dropped whole, as ``drop="after"``);
    - ``fail``: an error code (``"server_error"``): a ``background: true`` request is
      accepted, then its response ends ``failed`` with that code instead of completing (not
      stored, like any failed response);
    - ``stall``: a ``background: true`` request is accepted, then stays ``queued`` (every
      retrieve answers it unchanged) until it is cancelled: the service hazard of a response
      left queued for good (community thread 1382584 [OBS]);
    - ``should_retry``: value of the ``x-should-retry`` header (``None``: no header, the client
      follows its default policy); ``retry_after``: ``Retry-After`` seconds, if set.
    """

    status: int | None = None
    delay: float = 0.0
    drop: Literal["before", "after"] | None = None
    should_retry: bool | None = None
    retry_after: float | None = None
    message: str | None = None
    cut_after: int | None = None
    fail: str | None = None
    stall: bool = False

    def reply(self) -> Reply:
        """The error reply for a ``status`` fault."""
        status = self.status or 500
        is_rate = status == 429
        headers: dict[str, str] = {}
        if self.should_retry is not None:
            headers["x-should-retry"] = "true" if self.should_retry else "false"
        if self.retry_after is not None:
            headers["retry-after"] = str(self.retry_after)
        body = {
            "error": {
                "message": self.message or (_RATE_LIMIT if is_rate else _SERVER_ERROR),
                "type": "requests" if is_rate else "server_error",
                "param": None,
                "code": "rate_limit_exceeded" if is_rate else None,
            }
        }
        return Reply(status=status, body=body, headers=headers)


@attrs.frozen
class Received:
    """One request the emulator received: method, path, parsed JSON body (or ``None``)."""

    method: str
    path: str
    body: Any
    headers: Mapping[str, str]


@attrs.define
class _Injection:
    fault: Fault
    times: int
    path: str | None
    method: str | None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The stdlib default backlog of 5 drops connects when many clients start at once.
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client hangs up (timeouts, dropped connections); report the rest."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)

    emulator: Emulator


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 60
    # Headers and body go out in separate writes; Nagle plus delayed ACK would add 40 ms to each.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Keep tests quiet: the emulator records requests instead of logging them."""

    def setup(self) -> None:
        """Track the connection so ``stop()`` can close it."""
        super().setup()
        self.server.emulator._track(self.connection, add=True)

    def finish(self) -> None:
        """Untrack the connection."""
        try:
            super().finish()
        finally:
            self.server.emulator._track(self.connection, add=False)

    def version_string(self) -> str:
        """The ``Server`` header: the emulator's name, not the Python version under it."""
        return "tracker-emulator"

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The stdlib's own refusals, in the service's envelope and never as a 5xx.

        A method with no ``do_`` handler is routed like any other request (``Invalid URL``,
        404); a malformed request line or oversized headers is a 400/414/431 envelope.
        """
        if code == HTTPStatus.NOT_IMPLEMENTED and self.command:
            self._dispatch(self.command)
            return
        if self.request_version == "HTTP/0.9":  # garbage request line: still send a status line
            self.request_version = "HTTP/1.0"
        self.close_connection = True
        status = code if 400 <= code < 500 else HTTPStatus.BAD_REQUEST
        text = message or HTTPStatus(code).phrase
        self._write(error_reply(bad_request(f"{text}.", status=status)))

    def do_GET(self) -> None:
        """Dispatch a GET."""
        self._dispatch("GET")

    def do_POST(self) -> None:
        """Dispatch a POST."""
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        """Dispatch a DELETE."""
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        emu = self.server.emulator
        target, _, query = self.path.partition("#")[0].partition("?")
        path = target.rstrip("/")
        raw = read_body(self.headers, self.rfile, emu.max_body_bytes)
        if isinstance(raw, Violation):
            self._refuse(raw)
            return
        headers = dict(self.headers.items())
        denied = emu._auth(self.headers.get("authorization"))
        if denied is not None:
            # The body of a refused request is neither parsed nor kept (issue 11, item 12).
            emu._record(Received(method, path, None, headers))
            self._write(denied)
            return
        has_body = bool(raw)
        body = parse_json(raw) if has_body else None
        del raw
        if isinstance(body, Violation):
            emu._record(Received(method, path, None, headers))
            self._write(error_reply(body))
            return
        emu._record(Received(method, path, body, headers))
        if has_body and not isinstance(body, dict):
            self._write(error_reply(invalid_type("body", "an object", body)))
            return
        self._answer(method, path, dict(parse_qsl(query)), body)

    def _answer(self, method: str, path: str, query: dict[str, str], body: Any) -> None:
        """Apply a pending fault, or let the service answer (and save what it changed)."""
        emu = self.server.emulator
        fault = emu._take_fault(method, path)
        if fault is not None and fault.delay > 0:
            time.sleep(fault.delay)
        if fault is not None and fault.drop == "before":
            self._drop()
            return
        if fault is not None and fault.status is not None:
            self._write(fault.reply())
            return
        reply = self._handle(method, path, query, body)
        if fault is not None and fault.fail is not None and isinstance(reply.body, dict):
            emu.service.background.fail(str(reply.body.get("id")), fault.fail)
        if fault is not None and fault.stall and isinstance(reply.body, dict):
            emu.service.background.stall(str(reply.body.get("id")))
        if fault is not None and fault.cut_after is not None and reply.events is not None:
            self._write(attrs.evolve(reply, events=list(reply.events)[: fault.cut_after]), cut=True)
            self._drop()
            return
        if fault is not None and (fault.drop == "after" or fault.cut_after is not None):
            self._drop()
            return
        self._write(reply)

    def _handle(self, method: str, path: str, query: dict[str, str], body: Any) -> Reply:
        emu = self.server.emulator
        try:
            reply = emu.service.handle(method, path, query, body)
            # A retrieve that moved a run changed it too; an expiry (``_background``) changed
            # the state whatever the answer.
            moved = emu.service.background.take_dirty()
            if moved or (reply.status < 400 and method != "GET"):
                emu._save()
        except Exception as exc:  # a script bug must still answer with the envelope
            reply = Reply(
                status=500,
                body={
                    "error": {
                        "message": f"Emulator error: {exc!r}",
                        "type": "server_error",
                        "param": None,
                        "code": None,
                    }
                },
                headers={"x-should-retry": "false"},
            )
        return reply

    def _refuse(self, violation: Violation) -> None:
        """Answer a body that cannot be read, then close: the rest is not a request."""
        self.close_connection = True
        self._write(error_reply(violation))
        # Closing with unread bytes makes the kernel reset the connection, which can destroy
        # the answer before the client reads it: stop writing, then read and discard what the
        # client still sends, for a bounded time.
        with contextlib.suppress(OSError, ValueError):
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(_LINGER_IDLE)
            deadline = time.monotonic() + _LINGER_MAX
            while time.monotonic() < deadline and self.rfile.read1(1 << 16):
                pass

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _write(self, reply: Reply, *, cut: bool = False) -> None:
        """Write ``reply``; ``cut``: stop after its events, before the stream's end."""
        emu = self.server.emulator
        self.send_response(reply.status)
        self.send_header("x-request-id", emu._request_id())
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.events is None:
            data = json.dumps(reply.body).encode()
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":  # a HEAD answer has headers only
                self.wfile.write(data)
            return
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for event in reply.events:
            name = f"event: {event['type']}\n" if reply.named_events else ""
            self._chunk(f"{name}data: {json.dumps(event)}\n\n".encode())
        if cut:
            return
        if reply.sse_done:
            self._chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


class Emulator:
    """A local OpenAI-compatible server; see the package docstring for usage.

    ``record_requests=False``: keep no log of requests (``requests`` stays empty), for a
    long-running server that must not hold the bodies it was sent.

    ``state_path``: keep the state in this file across restarts (a journal, ``_journal``).
    ``start()`` locks and loads it (raising ``StateError`` naming the path if it is corrupt
    or of an unknown version, ``OSError`` if another emulator holds it; a torn last record
    is ignored and reported in ``state_warning``); every successful POST or DELETE (and every
    retrieve that moves a background run) appends what it changed before answering, and
    ``stop()`` compacts the file to one line. Without ``state_path`` the state lives in memory
    only.

    ``background_polls``: how many retrieves a ``background: true`` response takes to
    complete (it is ``queued`` when created, ``in_progress`` until then; at least 1, else
    ``UsageError``); ``clock``: the
    seconds source for the 5-minute stream-resume limit and the 10-minute life of an unstored
    background response (tests pass a fake one). See
    ``tracker.emulator._background``.

    ``zdr=True`` acts as a zero-data-retention organisation (``RuleOptions.zdr``): every
    response is ``store: false`` whatever the request asks, nothing is stored, and a lookup
    of an unstored item is the 404 with the ZDR text; a background response can be retrieved
    for ``UNSTORED_BACKGROUND_SECONDS`` (10 minutes) by ``clock``, then is gone
    (``RuleOptions.expire_unstored_background``, turned on too).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        script: Script | None = None,
        options: RuleOptions | None = None,
        api_key: str | None = None,
        max_body_bytes: int = 32 * 1024 * 1024,
        model_delay: float = 0.0,
        seed: int | None = None,
        state_path: str | os.PathLike[str] | None = None,
        record_requests: bool = True,
        zdr: bool = False,
        background_polls: int = 2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if zdr:  # a zero-data-retention organisation: nothing is ever stored
            options = attrs.evolve(
                options or RuleOptions(), zdr=True, expire_unstored_background=True
            )
        self.host = host
        self.port = port
        self.api_key = api_key
        self.max_body_bytes = max_body_bytes
        self.service = Service(
            script=script,
            options=options,
            seed=seed,
            model_delay=model_delay,
            background_polls=background_polls,
            clock=clock,
        )
        self._lock = threading.Lock()
        self._requests: list[Received] = []
        self.record_requests = record_requests
        self._faults: list[_Injection] = []
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.state_path = state_path
        self._state_file: StateFile | None = None

    # lifecycle ----------------------------------------------------------------------------

    def start(self) -> Emulator:
        """Bind and serve in a background thread; returns ``self``."""
        if self._server is not None:
            return self
        if self.state_path is not None:
            self._open_state(StateFile(self.state_path))
        try:
            server = _Server((self.host, self.port), _Handler)
        except BaseException:
            self._close_state()
            raise
        server.emulator = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"tracker-emulator-{self.port}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every open connection, and release the port."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        with self._lock:
            open_now = list(self._connections)
        for conn in open_now:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._close_state()

    def _open_state(self, state_file: StateFile) -> None:
        self.service.state = state_file.open(self.service.state)
        self._state_file = state_file
        try:
            self._save()  # creates the file now, so an unwritable path fails at start
        except BaseException:
            self._close_state()
            raise

    def _close_state(self) -> None:
        state_file, self._state_file = self._state_file, None
        if state_file is None:
            return
        try:
            with self.state.lock:
                state_file.compact(self.state)  # a file at rest is one line
        finally:
            state_file.close()

    def _save(self) -> None:
        if self._state_file is not None:
            with self.state.lock:
                self._state_file.write(self.state)

    @property
    def state_warning(self) -> str | None:
        """What loading the state file ignored (a torn last record), or ``None``."""
        return self._state_file.warning if self._state_file is not None else None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://host:port/v1``: pass as ``OpenAI(base_url=...)``."""
        return f"http://{self.host}:{self.port}/v1"

    # inspection -----------------------------------------------------------------------------

    @property
    def state(self) -> State:
        """The live ``State`` (responses, conversations, items); hold ``state.lock`` to read."""
        return self.service.state

    @property
    def requests(self) -> list[Received]:
        """A snapshot of every request received, in arrival order."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str, method: str = "POST") -> list[Any]:
        """The JSON bodies received on ``method path`` (e.g. ``"/v1/responses"``)."""
        return [r.body for r in self.requests if r.path == path and r.method == method]

    def received_outputs(self) -> Counter[str]:
        """call_id -> how many tool outputs with it were accepted (any request, any chain)."""
        with self.state.lock:
            return Counter(self.state.delivered_outputs)

    def issued_calls(self) -> list[str]:
        """Every call_id the scripted model issued, in order."""
        with self.state.lock:
            return list(self.state.issued_calls)

    def context_items(
        self, *, response_id: str | None = None, conversation_id: str | None = None
    ) -> list[dict[str, Any]]:
        """A copy of the stored context of a response chain or a conversation.

        Raises ``KeyError`` for an unknown conversation, ``UsageError`` when neither is given.
        """
        with self.state.lock:
            if conversation_id is not None:
                items = self.state.conversations[conversation_id].items
            elif response_id is not None:
                items = self.state.chain(response_id)
            else:
                raise UsageError(
                    "context_items() needs a chain or a conversation: pass response_id=... "
                    "or conversation_id=...."
                )
            return copy.deepcopy(items)

    def context_outputs(
        self, *, response_id: str | None = None, conversation_id: str | None = None
    ) -> Counter[str]:
        """call_id -> number of outputs in the stored context of a chain or conversation."""
        items = self.context_items(response_id=response_id, conversation_id=conversation_id)
        return Counter(
            item["call_id"]
            for item in items
            if item.get("type") in OUTPUT_TO_CALL and isinstance(item.get("call_id"), str)
        )

    def window_items(
        self, *, response_id: str | None = None, conversation_id: str | None = None
    ) -> list[dict[str, Any]]:
        """The window the service sees of a chain or conversation: its items from the latest
        compaction item on (all of them when it never compacted). Arguments as ``context_items``.
        """
        items = self.context_items(response_id=response_id, conversation_id=conversation_id)
        return items[window_start(items) :]

    def window_tokens(
        self, *, response_id: str | None = None, conversation_id: str | None = None
    ) -> int:
        """``window_items`` counted as compaction counts them (about 4 characters per token)."""
        return count_tokens(
            self.window_items(response_id=response_id, conversation_id=conversation_id)
        )

    def rotate_keys(self) -> None:
        """Rotate the key that seals ``encrypted_content``, as a key rotation on the service does.

        Every reasoning and compaction item issued before no longer verifies: a request that
        replays one is answered 400 ``invalid_encrypted_content``. Items already stored in a
        chain or conversation are not checked again.
        """
        with self.state.lock:
            self.state.ids.rotate()
        self._save()

    # faults ---------------------------------------------------------------------------------

    def inject(
        self,
        fault: Fault,
        *,
        times: int = 1,
        path: str | None = "/v1/responses",
        method: str | None = "POST",
    ) -> None:
        """Apply ``fault`` to the next ``times`` requests matching ``method path`` (None: any)."""
        with self._lock:
            self._faults.append(_Injection(fault, times, path, method))

    def clear_faults(self) -> None:
        """Forget every pending fault."""
        with self._lock:
            self._faults.clear()

    # used by the handler --------------------------------------------------------------------

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for injection in self._faults:
                if injection.path not in (None, path) or injection.method not in (None, method):
                    continue
                injection.times -= 1
                if injection.times <= 0:
                    self._faults.remove(injection)
                return injection.fault
        return None

    def _record(self, received: Received) -> None:
        if not self.record_requests:
            return
        with self._lock:
            self._requests.append(received)

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _request_id(self) -> str:
        with self.state.lock:
            return str(self.state.ids.request_id())

    def _auth(self, header: str | None) -> Reply | None:
        if self.api_key is None:
            return None
        given = header[len("Bearer ") :] if header and header.startswith("Bearer ") else None
        if given == self.api_key:
            return None
        if given is None:
            message, code = _NO_KEY, None
        else:
            masked = given[:3] + "*" * max(0, len(given) - 7) + given[-4:]
            message, code = f"Incorrect API key provided: {masked}. {_KEY_HINT}", "invalid_api_key"
        return error_reply(bad_request(message, None, code, status=401))
