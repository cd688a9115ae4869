"""What ``tracker demo`` prints: one line per step when piped, a live view on a terminal.

On a terminal a request's line shows "waiting" until its response arrives and is then
rewritten in place, and streamed answer text appears as it comes; piped output is plain,
stable lines (tests read them).

With server-side compaction (``tracker demo --compact-threshold N``) a response whose output
holds a ``compaction`` item gets a line saying so, with the context the server summarised
(that response's ``usage.input_tokens``), and the next response a line with the context the
server rendered after it: the compacted window plus that request's new items.
"""

from __future__ import annotations

from typing import Any, TextIO

from tracker._items import field
from tracker.loop import (
    LoopEvent,
    RequestSent,
    ResponseReceived,
    Retrying,
    TextDelta,
    ToolCalled,
    ToolFinished,
    TurnResult,
)

__all__ = ["View"]


def _short(value: str | None, keep: int = 12) -> str:
    if not value:
        return "-"
    return value if len(value) <= keep * 2 + 1 else f"{value[: keep + 5]}…{value[-4:]}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class View:
    """Render loop events and turn summaries to ``out``; ``live`` for a terminal."""

    def __init__(self, out: TextIO, *, live: bool) -> None:
        self.out = out
        self.live = live
        self._pending_line = False
        self._streaming = False
        self._last_request = ""
        self.calls: dict[str, str] = {}
        #: (tokens before, tokens after or None) of each compaction seen, in order.
        self.compactions: list[tuple[int, int | None]] = []
        #: The largest context (``usage.input_tokens``) of a response.
        self.peak_tokens = 0

    def _style(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.live else text

    def line(self, text: str = "") -> None:
        """Print a finished line (ending any in-place line or streamed text first)."""
        if self._pending_line:
            self.out.write("\r\x1b[K")
            self._pending_line = False
        if self._streaming:
            self.out.write("\n")
            self._streaming = False
        self.out.write(text + "\n")
        self.out.flush()

    def _transient(self, text: str) -> None:
        self.out.write(("\r\x1b[K" if self._pending_line else "") + text)
        self.out.flush()
        self._pending_line = True

    def _request_text(self, e: RequestSent) -> str:
        where = (
            f"conversation {_short(e.conversation_id)}"
            if e.conversation_id
            else f"previous_response_id {_short(e.previous_response_id)}"
        )
        retry = f" (retry {e.attempt})" if e.attempt else ""
        return (
            f"  request {e.index + 1}{retry}: sent {_plural(e.sent, 'item')}, "
            f"{e.skipped} already on the server, {self._style(where, '2')}"
        )

    def event(self, event: LoopEvent) -> None:
        """Show one loop event."""
        if isinstance(event, RequestSent):
            text = self._request_text(event)
            self._last_request = text
            if self.live:
                self._transient(text + self._style("  … waiting", "2"))
            else:
                self.line(text)
        elif isinstance(event, ResponseReceived):
            self._received(event)
        elif isinstance(event, ToolCalled):
            self.calls[event.call_id] = f"{event.name}({event.arguments})"
        elif isinstance(event, ToolFinished):
            mark = self._style("error", "31") if event.is_error else "->"
            self.line(f"    tool {self.calls.pop(event.call_id, event.name)} {mark} {event.output}")
        elif isinstance(event, Retrying):
            self.line(
                self._style(
                    f"  ! {type(event.error).__name__}: {event.error}; retrying in "
                    f"{event.delay:.2f}s (tracker rewound)",
                    "33",
                )
            )
        elif isinstance(event, TextDelta) and self.live:
            if not self._streaming:
                self.line(self._last_request + self._style("  -> streaming", "2"))
                self.out.write("  answer: ")
                self._streaming = True
            self.out.write(event.text)
            self.out.flush()

    def _received(self, event: ResponseReceived) -> None:
        record = event.record
        if self.live and self._pending_line and not self._streaming:
            got = "recovered" if record.recovered else _short(record.response_id)
            self.line(self._request_text(_as_sent(record)) + self._style(f"  -> {got}", "2"))
        elif record.recovered:
            self.line("  (response recovered from the conversation: nothing re-sent)")
        self._context(event.response)

    def _context(self, response: Any) -> None:
        """Note the context size; say when the server compacted it and what it came to."""
        tokens = field(field(response, "usage"), "input_tokens")
        if not isinstance(tokens, int):
            return
        self.peak_tokens = max(self.peak_tokens, tokens)
        if self.compactions and self.compactions[-1][1] is None:
            before = self.compactions[-1][0]
            self.compactions[-1] = (before, tokens)
            self.line(
                f"  context after the compaction: {tokens:,} tokens "
                f"(was {before:,}; the compacted window plus this request's items)"
            )
        found = [
            field(item, "id")
            for item in field(response, "output") or ()
            if field(item, "type") == "compaction"
        ]
        if found:
            self.compactions.append((tokens, None))
            self.line(
                self._style(
                    f"  compacted on the server ({_short(found[-1])}): "
                    f"the context it summarised held {tokens:,} tokens",
                    "36",
                )
            )

    def answer(self, result: TurnResult) -> None:
        """Show the turn's final answer (already streamed on a terminal)."""
        if self._streaming:
            self.out.write("\n")
            self.out.flush()
            self._streaming = False
        elif result.text:
            self.line(f"  answer: {self._style(result.text, '1')}")
        else:
            self.line("  answer: (none)")


def _as_sent(record: Any) -> RequestSent:
    return RequestSent(
        index=record.index,
        attempt=record.attempts - 1,
        sent=record.sent,
        skipped=record.skipped,
        previous_response_id=record.previous_response_id,
        conversation_id=record.conversation_id,
    )
