"""A Responses-API tool loop that cannot drop a tool output, survives restarts, and reports.

Import it by path (``import tracker.loop``); ``import tracker`` does not import it or openai.

    from tracker.loop import run_turn

    result = run_turn(client, model="gpt-5", input="weather in Paris?", tools=[weather])
    result = run_turn(client, model="gpt-5", input="and Rome?", tools=[weather],
                      tracker=result.tracker)           # continues the chain
    print(result.text, result.items_sent, result.items_not_resent)

``run_turn`` (``openai.OpenAI``) and ``arun_turn`` (``openai.AsyncOpenAI``) drive one user
turn: model call, tool calls, model call ... until the model answers without calling tools.
The parallel tool calls of one response run concurrently (``max_tool_workers`` at most).
Each call sends only the delta the ``Tracker`` decides, continuing with
``previous_response_id`` or in a ``conversation``. With ``session_store=`` + ``session_id=``
the turn claims the session's lease before its first model call, saves progress after each model
call and each batch of tools, and frees the lease with its final save: a chat continues in
another process, two workers never send the same delta (a busy session is waited for, then
``SessionBusyError``), and a worker that crashed mid-turn is taken over when its lease expires
(``tracker/loop/_session.py``). How retries stay exact is explained in
``tracker/loop/_core.py``.

``background=True`` (the API's flag, passed through) polls ``responses.retrieve`` until the
response is terminal and observes it only then; a background stream cut mid-way is resumed
with ``responses.retrieve(id, stream=True, starting_after=N)`` (each delta delivered once, one
response on the server); ``cancel=CancelToken()`` stops the turn and cancels its background
response on the server; ``poll_timeout`` bounds the polling (``PollTimeoutError``;
``tracker/loop/_background.py``).
"""

from ._async import arun_turn
from ._background import CancelToken, StreamCut
from ._results import (
    EncryptedDropped,
    IncompleteStreamError,
    LoopEvent,
    MaxTurnsError,
    PollTimeoutError,
    RequestRecord,
    RequestSent,
    ResponseFailedError,
    ResponseReceived,
    Retrying,
    TextDelta,
    ToolCalled,
    ToolFinished,
    TurnCancelledError,
    TurnResult,
)
from ._retry import RetryPolicy, is_transient
from ._sync import run_turn
from ._tools import FunctionTool, function_tool, schema_for

__all__ = [
    "CancelToken",
    "EncryptedDropped",
    "FunctionTool",
    "IncompleteStreamError",
    "LoopEvent",
    "MaxTurnsError",
    "PollTimeoutError",
    "RequestRecord",
    "RequestSent",
    "ResponseFailedError",
    "ResponseReceived",
    "RetryPolicy",
    "Retrying",
    "StreamCut",
    "TextDelta",
    "ToolCalled",
    "ToolFinished",
    "TurnCancelledError",
    "TurnResult",
    "arun_turn",
    "function_tool",
    "is_transient",
    "run_turn",
    "schema_for",
]
