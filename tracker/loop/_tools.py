"""Function tools: a Python callable, its JSON schema, and running one call into an output.

A tool never takes the loop down: bad JSON arguments, arguments that do not fit the
signature, an unknown tool name, an exception raised by the tool and a result that cannot be
sent as text (circular, nested too deep, a failing ``str()``) all become an error *output* the
model can read ("Error: ..."), so the model can correct itself on the next round.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import inspect
import json
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs

from tracker._errors import UsageError

__all__ = [
    "FunctionTool",
    "Invocation",
    "arun_plans",
    "function_tool",
    "plan_call",
    "run_plans",
    "schema_for",
]

_SCALARS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
}
_ARRAYS = (list, tuple, set, frozenset, Sequence, typing.Sequence)
_OBJECTS = (dict, Mapping, typing.Mapping)


@attrs.frozen
class FunctionTool:
    """A function tool the loop can run: ``func`` plus the spec the model sees.

    ``parameters`` is the JSON schema of the keyword arguments ``func`` is called with; ``func``
    may be a plain or an ``async`` callable.
    """

    name: str
    func: Callable[..., Any]
    description: str
    parameters: Mapping[str, Any]

    @property
    def is_async(self) -> bool:
        """Whether calling ``func`` returns an awaitable to run on an event loop."""
        return inspect.iscoroutinefunction(self.func)

    def spec(self) -> dict[str, Any]:
        """The tool as the Responses API takes it in ``tools=[...]``."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": dict(self.parameters),
            "strict": False,
        }


def function_tool(
    func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> Any:
    """Wrap a callable as a ``FunctionTool``; also a decorator, bare or with arguments.

    The name defaults to the function's name, the description to its docstring's first
    paragraph and ``parameters`` to a schema derived from its type hints (``schema_for``). Pass
    ``parameters`` explicitly for hints the derivation does not know (it raises ``UsageError``).
    """

    def wrap(f: Callable[..., Any]) -> FunctionTool:
        if isinstance(f, FunctionTool):
            return f
        tool_name = name or getattr(f, "__name__", "")
        if not tool_name or not tool_name.replace("_", "a").replace("-", "a").isalnum():
            raise UsageError(
                f"Tool name {tool_name!r} must be letters, digits, '_' or '-': pass name=..."
            )
        doc = inspect.getdoc(f) or ""
        return FunctionTool(
            name=tool_name,
            func=f,
            description=description if description is not None else doc.split("\n\n")[0],
            parameters=dict(parameters) if parameters is not None else schema_for(f),
        )

    return wrap if func is None else wrap(func)


def schema_for(func: Callable[..., Any]) -> dict[str, Any]:
    """Derive the JSON schema of ``func``'s keyword arguments from its signature and hints.

    Knows ``str``, ``int``, ``float``, ``bool``, ``None``, ``Any``, ``Literal``, ``Enum``,
    unions (``X | None``), lists/tuples/sets/sequences, dicts/mappings and ``Annotated[T,
    "description"]``. Parameters with a default are optional. Raises ``UsageError`` naming the
    parameter for ``*args``, positional-only parameters or an unknown hint.
    """
    func_name = getattr(func, "__qualname__", repr(func))
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception as exc:
        raise UsageError(
            f"Cannot read the type hints of tool {func_name}: {exc}. "
            "Pass parameters=... explicitly."
        ) from exc
    properties: dict[str, Any] = {}
    required: list[str] = []
    for pname, param in inspect.signature(func).parameters.items():
        if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            raise UsageError(
                f"Tool {func_name} parameter {pname!r} is {param.kind.description}: tools are "
                "called with keyword arguments only; make it a normal parameter."
            )
        where = f"tool {func_name} parameter {pname!r}"
        prop = _schema_of(hints.get(pname, Any), where)
        if param.default is param.empty:
            required.append(pname)
        else:
            default = _as_json(param.default)
            if default is not _NO_JSON:
                prop = {**prop, "default": default}
        properties[pname] = prop
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


_NO_JSON = object()


def _as_json(value: Any) -> Any:
    """``value`` as JSON would give it back (a tuple becomes a list), or ``_NO_JSON``."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return _NO_JSON


def _schema_of(hint: Any, where: str) -> dict[str, Any]:
    if hint is Any or hint is inspect.Parameter.empty:
        return {}
    if hint in _SCALARS:
        return dict(_SCALARS[hint])
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    by_origin = _BY_ORIGIN.get(origin) if origin is not None else None
    if by_origin is not None:
        return by_origin(args, where)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {"enum": [m.value for m in hint]}
    if hint in _ARRAYS or origin in _ARRAYS:
        return _array_schema(args, where)
    if hint in _OBJECTS or origin in _OBJECTS:
        value = args[1] if len(args) == 2 else Any
        return {"type": "object", "additionalProperties": _schema_of(value, where) or True}
    raise UsageError(
        f"Cannot derive a JSON schema for {where} (type hint {hint!r}): use str, int, float, "
        "bool, Literal, Enum, list, dict or unions of them, or pass parameters=... explicitly."
    )


def _annotated_schema(args: tuple[Any, ...], where: str) -> dict[str, Any]:
    schema = _schema_of(args[0], where)
    notes = [a for a in args[1:] if isinstance(a, str)]
    return {**schema, "description": " ".join(notes)} if notes else schema


def _literal_schema(args: tuple[Any, ...], where: str) -> dict[str, Any]:
    values = list(args)
    kinds = {type(v) for v in values}
    schema = {"enum": values}
    return {**_SCALARS[kinds.pop()], **schema} if len(kinds) == 1 else schema


def _union_schema(args: tuple[Any, ...], where: str) -> dict[str, Any]:
    return {"anyOf": [_schema_of(a, where) for a in args]}


def _array_schema(args: tuple[Any, ...], where: str) -> dict[str, Any]:
    # list[T], set[T], tuple[T, ...] are homogeneous; a fixed tuple[A, B] is left open.
    homogeneous = len(args) == 1 or (len(args) == 2 and args[1] is Ellipsis)
    items = args[0] if homogeneous else Any
    return {"type": "array", "items": _schema_of(items, where)}


_BY_ORIGIN: dict[Any, Callable[[tuple[Any, ...], str], dict[str, Any]]] = {
    typing.Annotated: _annotated_schema,
    typing.Literal: _literal_schema,
    typing.Union: _union_schema,
    types.UnionType: _union_schema,
}


@attrs.frozen
class Invocation:
    """One tool call, checked and ready to run: ``tool(**arguments)``."""

    tool: FunctionTool
    arguments: Mapping[str, Any]

    def run(self) -> tuple[str, bool]:
        """Call the tool (an async tool on a fresh event loop); return ``(output, is_error)``.

        Raises ``UsageError`` for an async tool called from inside a running event loop.
        """
        self.check_runnable()
        try:
            value = self.tool.func(**self.arguments)
            if inspect.isawaitable(value):
                value = asyncio.run(_wait(value))
        except Exception as exc:
            return self.failure(exc), True
        return _output_of(self.tool.name, value)

    def check_runnable(self) -> None:
        """Raise ``UsageError`` if this is an async tool and this thread runs an event loop."""
        if self.tool.is_async and _loop_running():
            raise UsageError(
                f"Async tool {self.tool.name} was called by run_turn inside a running event "
                "loop: use `await arun_turn(...)` there."
            )

    async def arun(self) -> tuple[str, bool]:
        """Run the tool from async code (awaited, or in a worker thread if it is sync)."""
        try:
            if self.tool.is_async:
                value = await self.tool.func(**self.arguments)
            else:
                value = await asyncio.to_thread(self.tool.func, **self.arguments)
                if inspect.isawaitable(value):
                    value = await value
        except Exception as exc:
            return self.failure(exc), True
        return _output_of(self.tool.name, value)

    def failure(self, exc: BaseException) -> str:
        """The error output the model reads when the tool raised ``exc``."""
        return f"Error: tool {self.tool.name} raised {type(exc).__name__}: {_safe_str(exc)}"


def run_plans(plans: Sequence[Invocation | str], max_workers: int) -> list[tuple[str, bool]]:
    """Run the calls of one response, at most ``max_workers`` at once; outcomes in call order.

    A ``str`` plan is already its (error) output. Two or more invocations run on a thread pool
    (each in a copy of the caller's context variables); a single one runs in this thread.
    Raises ``UsageError``, before running anything, for an async tool when this thread runs
    an event loop.
    """
    invocations = [plan for plan in plans if not isinstance(plan, str)]
    for invocation in invocations:
        invocation.check_runnable()
    if len(invocations) < 2 or max_workers < 2:
        return [(plan, True) if isinstance(plan, str) else plan.run() for plan in plans]
    workers = min(max_workers, len(invocations))
    with ThreadPoolExecutor(workers, thread_name_prefix="tracker-tool") as pool:
        futures = [
            plan if isinstance(plan, str) else pool.submit(contextvars.copy_context().run, plan.run)
            for plan in plans
        ]
        return [(f, True) if isinstance(f, str) else f.result() for f in futures]


async def arun_plans(plans: Sequence[Invocation | str], max_workers: int) -> list[tuple[str, bool]]:
    """The async ``run_plans``: async tools awaited together, sync ones in worker threads.

    At most ``max_workers`` calls run at once; outcomes in call order.
    """
    limit = asyncio.Semaphore(max_workers)

    async def outcome(plan: Invocation | str) -> tuple[str, bool]:
        if isinstance(plan, str):
            return plan, True
        async with limit:
            return await plan.arun()

    return list(await asyncio.gather(*(outcome(plan) for plan in plans)))


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def _wait(value: Any) -> Any:
    return await value


def _output_of(name: str, value: Any) -> tuple[str, bool]:
    """The tool's result as the output text the model reads: ``(output, is_error)``.

    A ``str`` is sent as is, anything else as JSON (objects JSON does not know by ``str()``).
    A result that cannot become text (a circular or too deeply nested value, an object whose
    ``str()`` raises) is an error output naming the problem, like a tool that raised. Lone
    surrogates, which no request body can carry, become U+FFFD, the replacement character.
    """
    try:
        text = (
            str.__str__(value)
            if isinstance(value, str)
            else json.dumps(value, ensure_ascii=False, default=str)
        )
    except Exception as exc:  # RecursionError, circular reference, a failing __str__ ...
        return (
            f"Error: tool {name} returned a {type(value).__name__} that cannot be sent as "
            f"text ({type(exc).__name__}: {_safe_str(exc)}). Return a str or a JSON-compatible "
            "value.",
            True,
        )
    return _utf8(text), False


def _safe_str(exc: BaseException) -> str:
    try:
        return _utf8(str(exc))
    except Exception:
        return f"<{type(exc).__name__} whose str() failed>"


def _utf8(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Pairs of surrogates become the character they encode; lone ones become U+FFFD.
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def plan_call(tools: Mapping[str, FunctionTool], name: str, arguments: str) -> Invocation | str:
    """Check one function call; return its ``Invocation``, or the error output for the model.

    The error output (a ``str`` starting with ``Error:``) names the problem and the fix: an
    unknown tool, arguments that are not a JSON object, or arguments that do not fit the
    tool's signature.
    """
    tool = tools.get(name)
    if tool is None:
        known = ", ".join(sorted(tools)) or "none"
        return f"Error: there is no tool named {name!r} (available: {known})."
    try:
        parsed = json.loads(arguments) if arguments.strip() else {}
    except ValueError as exc:
        return (
            f"Error: the arguments of {name} are not valid JSON ({exc}): {arguments[:200]!r}. "
            "Call it again with a JSON object of its parameters."
        )
    if not isinstance(parsed, dict):
        return (
            f"Error: the arguments of {name} must be a JSON object, got "
            f"{type(parsed).__name__}. Call it again with an object of its parameters."
        )
    try:
        inspect.signature(tool.func).bind(**parsed)
    except TypeError as exc:
        return f"Error: bad arguments for {name}: {exc}. Call it again with its parameters."
    return Invocation(tool=tool, arguments=parsed)
