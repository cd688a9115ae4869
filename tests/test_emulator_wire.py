"""The emulator as a well-behaved server: every request, however malformed, gets a status and
the service's JSON error envelope over a raw loopback socket; never a dropped connection, a
5xx for client input, a traceback, or a refused body kept in memory."""

from __future__ import annotations

import gc
import http.client
import json
import socket
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracker.emulator import Emulator
from tracker.emulator._wire import json_depth

KEY = "sk-right-key"
LIMIT = 256 * 1024
AUTH = f"Authorization: Bearer {KEY}\r\n".encode()
GOOD = b'{"model": "emu-1", "input": "hi"}'


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    """One emulator with a key and a small body limit for every raw exchange."""
    with Emulator(api_key=KEY, max_body_bytes=LIMIT, seed=7) as emulator:
        yield emulator


def exchange(
    emu: Emulator, data: bytes, *, half_close: bool = False, method: str | None = None
) -> tuple[int, http.client.HTTPResponse, Any]:
    """Send raw bytes, read one HTTP answer: (status, response, parsed JSON body or None)."""
    with socket.create_connection((emu.host, emu.port), timeout=30) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        resp = http.client.HTTPResponse(sock, method=method)
        resp.begin()
        raw = resp.read()
        return resp.status, resp, json.loads(raw) if raw else None


def post(path: str, body: bytes, *headers: str, length: str | None = None) -> bytes:
    """A POST with the right key; ``length`` replaces the true Content-Length."""
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n".encode()
    extra = "".join(h + "\r\n" for h in headers).encode()
    size = f"Content-Length: {len(body) if length is None else length}\r\n".encode()
    return head + AUTH + extra + size + b"\r\n" + body


def chunked(body: bytes, size_line: bytes | None = None) -> bytes:
    """A chunked POST /v1/responses of ``body`` in one chunk (or with a given size line)."""
    head = b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n" + AUTH
    line = size_line if size_line is not None else f"{len(body):x}".encode()
    return head + b"\r\n" + line + b"\r\n" + body + b"\r\n0\r\n\r\n"


def assert_envelope(body: Any) -> dict[str, Any]:
    """The service's error envelope: exactly message, type, param, code."""
    assert ["error"] == list(body)
    error: dict[str, Any] = body["error"]
    assert ["code", "message", "param", "type"] == sorted(error)
    assert "invalid_request_error" == error["type"]
    return error


DEEP = b"[" * 100_000 + b"]" * 100_000
NESTED_200 = b'{"model": "emu-1", "input": "hi", "metadata": ' + b"[" * 200 + b"]" * 200 + b"}"
HUGE = b"x" * (3 * LIMIT)
CASES: dict[str, tuple[bytes, int, str]] = {
    "content-length -1": (post("/v1/responses", HUGE, length="-1"), 400, "Content-Length"),
    "content-length abc": (post("/v1/responses", GOOD, length="abc"), 400, "Content-Length"),
    "content-length 1e3": (post("/v1/responses", GOOD, length="1e3"), 400, "Content-Length"),
    "content-length twice": (
        post("/v1/responses", GOOD, "Content-Length: 5"),
        400,
        "Content-Length",
    ),
    "content-length over the limit": (post("/v1/responses", HUGE), 413, "too large"),
    "chunked over the limit": (chunked(HUGE), 413, "too large"),
    "chunked bad size line": (chunked(GOOD, b"zz"), 400, "chunk size"),
    "chunked and content-length": (
        chunked(GOOD).replace(b"\r\n\r\n", b"\r\nContent-Length: 3\r\n\r\n", 1),
        400,
        "not both",
    ),
    "100k-deep json": (post("/v1/responses", DEEP), 400, "nested more than 128 levels"),
    "200-deep json": (post("/v1/responses", NESTED_200), 400, "nested more than 128 levels"),
    "metadata not an object": (
        post("/v1/conversations", b'{"metadata": "x"}'),
        400,
        "Invalid type for 'metadata': expected an object, but got a string instead.",
    ),
    "metadata with 17 keys": (
        post(
            "/v1/conversations", json.dumps({"metadata": {str(i): "v" for i in range(17)}}).encode()
        ),
        400,
        "at most 16 properties",
    ),
    "metadata value not a string": (
        post("/v1/conversations/conv_x", b'{"metadata": {"k": 1}}'),
        400,
        "Invalid type for 'metadata.k'",
    ),
    "unknown method": (b"FOO /v1/responses HTTP/1.1\r\nHost: x\r\n" + AUTH + b"\r\n", 404, "FOO"),
    "put": (post("/v1/responses", GOOD).replace(b"POST", b"PUT", 1), 404, "Invalid URL (PUT"),
    "garbage request line": (b"GARBAGE\r\n\r\n", 400, "Bad request"),
    "unsupported http version": (
        b"GET /v1/responses HTTP/2.0\r\n\r\n",
        400,
        "Invalid HTTP version",
    ),
    "header line too long": (
        b"GET /v1/responses HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n",
        431,
        "Line too long",
    ),
    "chat tool_calls not objects": (
        post(
            "/v1/chat/completions",
            b'{"model": "m", "messages": [{"role": "assistant", "tool_calls": [1]}]}',
        ),
        400,
        "Invalid type for 'messages[0].tool_calls[0]'",
    ),
    "wrong key": (post("/v1/responses", GOOD).replace(KEY.encode(), b"sk-wrong"), 401, "key"),
    "not json": (post("/v1/responses", b"{nope"), 400, "could not parse the JSON body"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_malformed_request_gets_a_status_and_the_envelope(
    emu: Emulator, case: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """Each malformed request: its 4xx status, the JSON envelope, no traceback on stderr."""
    data, status, text = CASES[case]
    got, resp, body = exchange(emu, data)
    assert (status, "application/json") == (got, resp.getheader("content-type"))
    assert text in assert_envelope(body)["message"]
    assert "Traceback" not in capfd.readouterr().err


def test_a_body_shorter_than_its_content_length_is_a_400(emu: Emulator) -> None:
    """A client that stops sending before Content-Length is reached still gets its answer."""
    status, _, body = exchange(emu, post("/v1/responses", GOOD, length="999"), half_close=True)
    assert 400 == status
    assert "ended after 33 of the 999 bytes" in assert_envelope(body)["message"]


def test_head_is_answered_with_headers_only(emu: Emulator) -> None:
    """HEAD is an unknown route: a 404 whose answer carries no body."""
    request = b"HEAD /v1/responses HTTP/1.1\r\nHost: x\r\n" + AUTH + b"\r\n"
    status, resp, body = exchange(emu, request, method="HEAD")
    assert (404, None) == (status, body)
    assert "0" != resp.getheader("content-length")


def test_a_chunked_body_is_read(emu: Emulator) -> None:
    """Transfer-Encoding: chunked within the limit is an ordinary request."""
    status, _, body = exchange(emu, chunked(GOOD))
    assert (200, "You said: hi") == (status, body["output"][0]["content"][0]["text"])


def test_the_server_header_does_not_name_python(emu: Emulator) -> None:
    """The Server header names the emulator, not the Python version under it."""
    _, resp, _ = exchange(emu, post("/v1/responses", GOOD))
    assert "tracker-emulator" == resp.getheader("server")


def test_the_connection_still_serves_after_a_refusal_answered_in_place(emu: Emulator) -> None:
    """A 400 for a bad body (framing intact) keeps the connection usable for the next request."""
    conn = http.client.HTTPConnection(emu.host, emu.port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
        conn.request("POST", "/v1/conversations", body=b'{"metadata": "x"}', headers=headers)
        first = conn.getresponse()
        first.read()
        conn.request("POST", "/v1/responses", body=GOOD, headers=headers)
        second = conn.getresponse()
        assert (400, 200) == (first.status, second.status)
        second.read()
    finally:
        conn.close()


def _settled_growth(emu: Emulator, before: int) -> int:
    """Traced memory grown since ``before``, once the server has finished every connection.

    The client can read an answer before the handler thread returns from the frame that still
    holds that request's body. Once the client closed its connection, wait for the handler to
    end it (``finish`` untracks the connection after ``handle`` returned: no frame of it is
    left), then measure once: a body that is *kept* is still there.
    """
    hang = time.monotonic() + 120  # bounds a hang only: no timing is asserted
    while emu._connections:
        assert time.monotonic() < hang, f"the emulator never ended {emu._connections}"
        time.sleep(0.01)
    gc.collect()
    return tracemalloc.get_traced_memory()[0] - before


def test_a_refused_body_is_not_kept() -> None:
    """Bodies refused for a wrong key are neither parsed nor kept (measured with tracemalloc)."""
    body = json.dumps({"model": "m", "input": "x" * (1 << 20)}).encode()
    headers = {"Authorization": "Bearer sk-wrong", "Content-Type": "application/json"}
    with Emulator(api_key=KEY) as emu:
        conn = http.client.HTTPConnection(emu.host, emu.port, timeout=30)
        tracemalloc.start()
        try:
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(8):
                conn.request("POST", "/v1/responses", body=body, headers=headers)
                answer = conn.getresponse()
                answer.read()
            conn.close()
            kept = _settled_growth(emu, before)
        finally:
            tracemalloc.stop()
            conn.close()
        assert 401 == answer.status
        assert [None] * 8 == [r.body for r in emu.requests]
    assert kept < len(body), f"{kept} bytes kept after 8 refused {len(body)}-byte bodies"


def _reference_depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_reference_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_reference_depth(v) for v in value), default=0)
    return 0


_TEXT = st.text(alphabet='[]{}"\\\n/aé\u225b', max_size=6)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=20,
)


@given(value=_JSON, ascii_only=st.booleans(), indent=st.sampled_from([None, 1]))
def test_json_depth_from_bytes_matches_the_parsed_value(
    value: Any, ascii_only: bool, indent: int | None
) -> None:
    """The byte-level depth equals the depth of the parsed value, brackets in strings ignored."""
    raw = json.dumps(value, ensure_ascii=ascii_only, indent=indent).encode()
    assert _reference_depth(value) == json_depth(raw)


def test_a_deep_utf16_body_is_refused_too(emu: Emulator) -> None:
    """A UTF-16 body (bracket bytes may sit inside characters) is checked on the parsed value."""
    body = '{"model": "emu-1", "input": "hi", "metadata": ' + "[" * 200 + "]" * 200 + "}"
    status, _, answer = exchange(emu, post("/v1/responses", body.encode("utf-16")))
    assert 400 == status
    assert "nested more than 128 levels" in assert_envelope(answer)["message"]


def test_without_a_request_log_a_rejected_body_is_not_kept() -> None:
    """record_requests=False (the command line's setting): bodies the rules reject are not kept."""
    body = json.dumps({"model": "m", "input": [{"type": "bogus", "x": "x" * (1 << 20)}]}).encode()
    with Emulator(record_requests=False) as emu:
        conn = http.client.HTTPConnection(emu.host, emu.port, timeout=30)
        tracemalloc.start()
        try:
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(8):
                conn.request("POST", "/v1/responses", body=body)
                answer = conn.getresponse()
                answer.read()
            conn.close()
            kept = _settled_growth(emu, before)
        finally:
            tracemalloc.stop()
            conn.close()
        assert (400, []) == (answer.status, emu.requests)
    assert kept < len(body), f"{kept} bytes kept after 8 rejected {len(body)}-byte bodies"
