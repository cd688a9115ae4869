"""A guard for any framework on the ``openai`` client: check every history before it is sent.

Frameworks that never call ``tracker`` (agent-framework and its AG-UI adapter, CopilotKit
back ends, hand-written streaming loops) still send their requests through an ``openai``
client. ``guard(client)`` returns a copy of that client whose ``responses.create`` /
``chat.completions.create`` (plain, streaming, raw and ``stream()`` helpers) validate the
request's ``input`` / ``messages`` with ``tracker.validate_history`` first and, by policy,
repair it (``tracker.repair_history``), raise ``tracker.HistoryError``, or only report::

    from openai import AsyncOpenAI
    from tracker.guard import guard

    client = guard(AsyncOpenAI(), policy="repair", retry_on_400=True)

``import tracker`` does not import this module; this module imports ``openai``.
"""

from ._client import GuardPolicy, GuardReport, guard

__all__ = ["GuardPolicy", "GuardReport", "guard"]
