"""A request body off the wire: framed, bounded and parsed, or a ``Violation`` to answer.

The framing the client chose (``Content-Length`` or ``Transfer-Encoding: chunked``) is checked
before a byte of the body is read, the size limit holds for both, and JSON nested deeper than
``MAX_DEPTH`` is refused: the rules and the state file copy and serialise bodies recursively,
so a deeper one would fail half-way through a request, after the state had changed. Every
refusal is a 400 or 413 the HTTP layer answers in the service's envelope. Sans-socket: reads
from any binary stream.
"""

from __future__ import annotations

import itertools
import json
import re
from email.message import Message
from io import BufferedIOBase
from typing import Any, Final

from .._rules import Violation
from ._schema import bad_request

__all__ = ["MAX_DEPTH", "parse_json", "read_body"]

#: Deepest JSON body accepted (objects and arrays); real requests nest a few tens of levels.
MAX_DEPTH: Final = 128
_MAX_LINE: Final = 1024  # a chunk-size or trailer line
_MAX_TRAILERS: Final = 64
_HEX: Final = re.compile(rb"[0-9A-Fa-f]{1,16}")
_BAD_JSON: Final = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
    "sent was not valid JSON. If you have trouble figuring out how to fix this, please open an "
    "issue at https://github.com/openai/openai-python/issues)"
)


def _bad_framing(message: str) -> Violation:
    return bad_request(message)


def _too_large(size: int | None, limit: int) -> Violation:
    got = f"{size} bytes" if size is not None else f"more than {limit} bytes"
    return bad_request(
        f"Request body too large: {got}; the limit is {limit} bytes.",
        None,
        "request_too_large",
        status=413,
    )


def _read_chunked(rfile: BufferedIOBase, limit: int) -> bytes | Violation:
    parts: list[bytes] = []
    total = 0
    while True:
        line = rfile.readline(_MAX_LINE + 1)
        size_text = line.split(b";", 1)[0].strip()
        if len(line) > _MAX_LINE or not _HEX.fullmatch(size_text):
            return _bad_framing(f"Invalid chunk size line in a chunked body: {line[:40]!r}.")
        size = int(size_text, 16)
        if size == 0:
            break
        total += size
        if total > limit:
            return _too_large(None, limit)
        data = rfile.read(size)
        if len(data) < size or rfile.read(2) != b"\r\n":
            return _bad_framing("The chunked body ended early or a chunk lacks its CRLF.")
        parts.append(data)
    for _ in range(_MAX_TRAILERS):
        if rfile.readline(_MAX_LINE + 1) in (b"\r\n", b"\n", b""):
            return b"".join(parts)
    return _bad_framing("Too many trailer lines after a chunked body.")


def read_body(headers: Message, rfile: BufferedIOBase, limit: int) -> bytes | Violation:
    """The request body (``b""`` when there is none), or why it cannot be read.

    After a ``Violation`` the stream is at an unknown position: close the connection.
    """
    lengths = [v.strip() for v in headers.get_all("content-length") or []]
    encodings = headers.get_all("transfer-encoding")
    if encodings:
        if lengths:
            return _bad_framing("Send either Content-Length or Transfer-Encoding, not both.")
        if [e.strip().lower() for e in encodings] != ["chunked"]:
            return _bad_framing(f"Unsupported Transfer-Encoding: {', '.join(encodings)!r}.")
        return _read_chunked(rfile, limit)
    if not lengths:
        return b""
    text = lengths[0]
    if len(set(lengths)) > 1 or not (text.isascii() and text.isdigit()):
        shown = ", ".join(lengths)
        return _bad_framing(
            f"Invalid Content-Length header: {shown!r}. Expected one non-negative integer."
        )
    length = int(text)
    if length > limit:
        return _too_large(length, limit)
    data = rfile.read(length) if length else b""
    if len(data) < length:
        return _bad_framing(
            f"The body ended after {len(data)} of the {length} bytes its Content-Length promised."
        )
    return data


_NOT_STRUCTURE: Final = bytes(range(256)).translate(None, b'"[]{}')
_OPEN_CLOSE: Final = bytes.maketrans(b"[]{}", b"\x01\xff\x01\xff")


def json_depth(raw: bytes) -> int:
    """How deeply objects and arrays nest in valid UTF-8 JSON, read from its bytes alone.

    C-speed passes instead of a walk over the parsed value: drop escaped backslashes and
    quotes (JSON escapes pair from the left), keep only quotes and brackets, drop what
    stood between quotes (strings), then the deepest running sum of +1 per opening and -1
    per closing bracket. UTF-8 never puts an ASCII byte inside a multi-byte character.
    """
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    shape = unescaped.translate(None, _NOT_STRUCTURE)
    brackets = b"".join(shape.split(b'"')[::2]).translate(_OPEN_CLOSE)
    return max(itertools.accumulate(memoryview(brackets).cast("b")), default=0)


def _deeper_than(value: Any, limit: int) -> bool:
    level = [value]
    for _ in range(limit):
        level = [
            child
            for node in level
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, (dict, list))
        ]
        if not level:
            return False
    return True


def _too_deep() -> Violation:
    return bad_request(
        f"The JSON body of your request is nested more than {MAX_DEPTH} levels deep."
    )


def parse_json(raw: bytes) -> Any:
    """The parsed body, or a ``Violation`` for malformed or too deeply nested JSON."""
    try:
        value = json.loads(raw)
    except RecursionError:
        return _too_deep()
    except ValueError:
        return bad_request(_BAD_JSON)
    # Depth is at most the number of brackets: most bodies skip the check for one C count.
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH or not isinstance(value, (dict, list)):
        return value
    if json.detect_encoding(raw) == "utf-8":
        deep = json_depth(raw) > MAX_DEPTH
    else:  # UTF-16/32 bodies put bracket bytes inside characters: walk the parsed value
        deep = _deeper_than(value, MAX_DEPTH)
    return _too_deep() if deep else value
