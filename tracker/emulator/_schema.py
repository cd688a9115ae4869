"""Request-shape checks for ``POST /v1/responses``, in the service's reporting order.

Order (measured by the reference's PARITY source): missing ``model`` -> chat-style ``messages``
-> missing ``input`` -> unknown top-level key -> ``input`` type and per-item schema -> other
fields. Each check returns a ``Violation`` (rule ``SCHEMA``) with the service's exact text, or
``None``. Sans-IO.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs

from .._rules import RuleOptions, Violation

__all__ = [
    "bad_request",
    "check_id",
    "check_metadata",
    "check_request",
    "not_found",
    "type_name",
]

RESPONSE_KEYS: Final = frozenset(
    [
        "access_programs",
        "background",
        "background_options",
        "context_management",
        "conversation",
        "image",
        "include",
        "input",
        "instructions",
        "max_output_tokens",
        "max_tool_calls",
        "metadata",
        "model",
        "moderation",
        "parallel_tool_calls",
        "previous_response_id",
        "prompt",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "reasoning",
        "safety_identifier",
        "service_tier",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "text",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "truncation",
        "user",
    ]
)

INPUT_TYPES: Final = [
    "additional_tools",
    "agent_message",
    "apply_patch_call",
    "apply_patch_call_output",
    "code_interpreter_call",
    "compaction",
    "compaction_trigger",
    "computer_call",
    "computer_call_output",
    "custom_tool_call",
    "custom_tool_call_output",
    "file_search_call",
    "function_call",
    "function_call_output",
    "image_generation_call",
    "item_reference",
    "local_shell_call",
    "local_shell_call_output",
    "mcp_approval_request",
    "mcp_approval_response",
    "mcp_call",
    "mcp_list_tools",
    "message",
    "multi_agent_call",
    "multi_agent_call_output",
    "program",
    "program_output",
    "reasoning",
    "shell_call",
    "shell_call_output",
    "tool_search_call",
    "tool_search_output",
    "web_search_call",
]

INCLUDABLE: Final = [
    "file_search_call.results",
    "web_search_call.results",
    "web_search_call.action.sources",
    "message.input_image.image_url",
    "computer_call_output.output.image_url",
    "code_interpreter_call.outputs",
    "reasoning.encrypted_content",
    "message.output_text.logprobs",
]

#: Members each checked input item type may carry; other types are not checked member-wise.
_MEMBERS: Final[Mapping[str, frozenset[str]]] = {
    "message": frozenset({"type", "role", "content", "id", "status", "phase"}),
    "function_call": frozenset(
        {"type", "call_id", "name", "arguments", "id", "status", "namespace", "caller", "async"}
    ),
    "function_call_output": frozenset(
        {"type", "call_id", "output", "id", "status", "name", "namespace", "caller"}
    ),
    "reasoning": frozenset({"type", "id", "summary", "content", "encrypted_content", "status"}),
    "item_reference": frozenset({"type", "id"}),
    "custom_tool_call": frozenset({"type", "call_id", "input", "name", "id", "namespace"}),
    "custom_tool_call_output": frozenset({"type", "call_id", "output", "id"}),
    # ``created_by`` is output-only; ``_compaction`` rejects it behind a switch.
    "compaction": frozenset({"type", "id", "encrypted_content", "created_by"}),
    "compaction_trigger": frozenset({"type", "id"}),
}
_REQUIRED: Final[Mapping[str, tuple[str, ...]]] = {
    "function_call": ("call_id", "name", "arguments"),
    "function_call_output": ("output",),
    "reasoning": ("summary",),
    "item_reference": ("id",),
    "custom_tool_call": ("call_id", "name", "input"),
    "custom_tool_call_output": ("call_id", "output"),
    "compaction": ("encrypted_content",),
}
#: Id prefixes the service checks on client-supplied ids [OBS].
ID_PREFIX: Final[Mapping[str, str]] = {"message": "msg", "function_call": "fc", "reasoning": "rs"}
_ROLES: Final = ("assistant", "system", "developer", "user")
_USER_PARTS: Final = ("input_text", "input_image", "input_file", "scoped_content", "input_audio")
_ASSISTANT_PARTS: Final = ("output_text", "refusal")
_ID_CHARS: Final = re.compile(r"[A-Za-z0-9_-]*")
_MAX_ID: Final = 64
_MAX_METADATA_KEYS: Final = 16
_MAX_METADATA_KEY: Final = 64
_MAX_METADATA_VALUE: Final = 512


def bad_request(
    message: str, param: str | None = None, code: str | None = None, *, status: int = 400
) -> Violation:
    """A schema-level violation with the service's envelope fields."""
    return Violation(
        rule="SCHEMA", status=status, message=message, param=param, code=code, index=None
    )


def not_found(message: str) -> Violation:
    """A 404 with ``param`` and ``code`` null (unknown response, conversation, item)."""
    return bad_request(message, status=404)


def type_name(value: Any) -> str:
    """The JSON type name the service uses in ``Invalid type`` messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _supported(values: Sequence[str]) -> str:
    quoted = [f"'{v}'" for v in values]
    if len(quoted) == 2:
        return f"{quoted[0]} and {quoted[1]}"
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}"


def invalid_value(value: Any, supported: Sequence[str], param: str) -> Violation:
    """``Invalid value: 'x'. Supported values are: ...``"""
    return bad_request(
        f"Invalid value: '{value}'. Supported values are: {_supported(supported)}.",
        param,
        "invalid_value",
    )


def invalid_type(param: str, expected: str, value: Any) -> Violation:
    """``Invalid type for 'p': expected ..., but got ... instead.``"""
    return bad_request(
        f"Invalid type for '{param}': expected {expected}, but got {type_name(value)} instead.",
        param,
        "invalid_type",
    )


def missing(param: str) -> Violation:
    """``Missing required parameter: 'p'.``"""
    return bad_request(
        f"Missing required parameter: '{param}'.", param, "missing_required_parameter"
    )


def unknown(param: str, suffix: str = "") -> Violation:
    """``Unknown parameter: 'p'.``"""
    return bad_request(f"Unknown parameter: '{param}'.{suffix}", param, "unknown_parameter")


def check_id(value: Any, param: str, prefix: str | None) -> Violation | None:
    """Character set, length and prefix of a client-supplied id."""
    if not isinstance(value, str):
        return invalid_type(param, "a string", value)
    if not _ID_CHARS.fullmatch(value):
        return bad_request(
            f"Invalid '{param}': '{value}'. Expected an ID that contains letters, numbers, "
            "underscores, or dashes, but this value contained additional characters.",
            param,
            "invalid_value",
        )
    if len(value) > _MAX_ID:
        return bad_request(
            f"Invalid '{param}': string too long. Expected a string with maximum length "
            f"{_MAX_ID}, but got a string with length {len(value)} instead.",
            param,
            "string_above_max_length",
        )
    if prefix is not None and not value.startswith(prefix):
        return bad_request(
            f"Invalid '{param}': '{value}'. Expected an ID that begins with '{prefix}'.",
            param,
            "invalid_value",
        )
    return None


def _distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def _did_you_mean(key: str, present: Mapping[str, Any]) -> str:
    near = sorted(
        (d, k) for k in RESPONSE_KEYS if k not in present and (d := _distance(key, k)) <= 2
    )
    names = [f"'{k}'" for _, k in near[:2]]
    return f" Did you mean {' or '.join(names)}?" if names else ""


def _check_content(item: Mapping[str, Any], where: str) -> Violation | None:
    content = item.get("content")
    if content is None:
        return missing(f"{where}.content")
    if isinstance(content, str):
        return None
    if not isinstance(content, list):
        return invalid_type(f"{where}.content", "one of a string or array of content", content)
    allowed = _ASSISTANT_PARTS if item.get("role") == "assistant" else _USER_PARTS
    for j, part in enumerate(content):
        at = f"{where}.content[{j}]"
        if not isinstance(part, Mapping):
            return invalid_type(at, "an object", part)
        if part.get("type") not in allowed:
            return invalid_value(part.get("type"), allowed, at)
        if part["type"] in ("input_text", "output_text") and not isinstance(part.get("text"), str):
            return missing(f"{at}.text")
    return None


def _unknown_member(item: Mapping[str, Any], item_type: str, where: str) -> Violation | None:
    members = _MEMBERS.get(item_type)
    if members is None:
        return None
    for key, value in item.items():
        phase_ok = key != "phase" or item.get("role") == "assistant"
        if (key not in members or not phase_ok) and value is not None:
            return unknown(f"{where}.{key}")
    return None


def _check_message(item: Mapping[str, Any], where: str) -> Violation | None:
    if item.get("role") not in _ROLES:
        if "role" not in item:
            return missing(f"{where}.role")
        return invalid_value(item.get("role"), _ROLES, where)
    return _check_content(item, where)


def check_item(item: Any, i: int, options: RuleOptions) -> Violation | None:
    """Schema of one input item at ``input[i]``."""
    where = f"input[{i}]"
    if not isinstance(item, Mapping):
        return invalid_type(where, "an input item", item)
    item_type = item.get("type", "message" if "role" in item else None)
    if item_type is None:
        return missing(f"{where}.type")
    if item_type not in INPUT_TYPES:
        return invalid_value(item_type, INPUT_TYPES, where)
    if found := _unknown_member(item, item_type, where):
        return found
    if item_type == "message" and (found := _check_message(item, where)):
        return found
    for name in _REQUIRED.get(item_type, ()):
        if item.get(name) is None:
            return missing(f"{where}.{name}")
    if item_type == "reasoning" and item.get("id") is None and options.require_reasoning_id:
        return missing(f"{where}.id")
    if item.get("id") is not None:
        return check_id(item["id"], f"{where}.id", ID_PREFIX.get(item_type))
    return None


def _check_tools(tools: Any) -> Violation | None:
    if not isinstance(tools, list):
        return invalid_type("tools", "an array", tools)
    for i, tool in enumerate(tools):
        if not isinstance(tool, Mapping):
            return invalid_type(f"tools[{i}]", "an object", tool)
        if tool.get("type") in ("function", "custom") and not isinstance(tool.get("name"), str):
            return missing(f"tools[{i}].name")
    return None


def _check_flags(body: Mapping[str, Any]) -> Violation | None:
    for key in ("store", "stream", "parallel_tool_calls", "background"):
        if body.get(key) is not None and not isinstance(body[key], bool):
            return invalid_type(key, "a boolean", body[key])
    if body.get("tools") is not None:
        return _check_tools(body["tools"])
    return None


def _check_choices(body: Mapping[str, Any]) -> Violation | None:
    choice = body.get("tool_choice")
    if isinstance(choice, str) and choice not in ("none", "auto", "required"):
        return invalid_value(choice, ("none", "auto", "required"), "tool_choice")
    if isinstance(choice, Mapping) and choice.get("type") == "function" and "name" not in choice:
        return missing("tool_choice.name")
    truncation = body.get("truncation")
    if truncation is not None and truncation not in ("auto", "disabled"):
        return invalid_value(truncation, ("auto", "disabled"), "truncation")
    include = body.get("include")
    if include is None:
        return None
    if not isinstance(include, list):
        return invalid_type("include", "an array", include)
    for i, value in enumerate(include):
        if value not in INCLUDABLE:
            return invalid_value(value, INCLUDABLE, f"include[{i}]")
    return None


def _check_continuation(body: Mapping[str, Any]) -> Violation | None:
    previous = body.get("previous_response_id")
    if previous is not None and (found := check_id(previous, "previous_response_id", "resp")):
        return found
    conversation = body.get("conversation")
    if conversation is None:
        return None
    conv_id = conversation.get("id") if isinstance(conversation, Mapping) else conversation
    if not isinstance(conv_id, str):
        return invalid_type("conversation", "a string", conversation)
    return check_id(conv_id, "conversation", "conv")


def check_metadata(value: Any, param: str = "metadata") -> Violation | None:
    """``metadata``: at most 16 keys of at most 64 characters, string values of at most 512.

    The limits are the SDK's documented ones [DOC]; the message texts follow the service's
    pattern for other fields [INF]. ``None`` (absent or null) passes.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        return invalid_type(param, "an object", value)
    if len(value) > _MAX_METADATA_KEYS:
        return bad_request(
            f"Invalid '{param}': too many properties. Expected an object with at most "
            f"{_MAX_METADATA_KEYS} properties, but got an object with {len(value)} properties "
            "instead.",
            param,
            "object_above_max_properties",
        )
    for key, item in value.items():
        at = f"{param}.{key}"
        if len(key) > _MAX_METADATA_KEY:
            return _too_long(at, "key", _MAX_METADATA_KEY, len(key))
        if not isinstance(item, str):
            return invalid_type(at, "a string", item)
        if len(item) > _MAX_METADATA_VALUE:
            return _too_long(at, "string", _MAX_METADATA_VALUE, len(item))
    return None


def _too_long(param: str, what: str, limit: int, length: int) -> Violation:
    return bad_request(
        f"Invalid '{param}': {what} too long. Expected a {what} with maximum length {limit}, "
        f"but got a {what} with length {length} instead.",
        param,
        "string_above_max_length",
    )


#: The smallest ``max_output_tokens`` the service accepts (hindsight#58, a raw Azure OpenAI
#: error; Work-Review#41 [OBS]).
MIN_OUTPUT_TOKENS = 16


def _check_max_output_tokens(body: Mapping[str, Any]) -> Violation | None:
    """``max_output_tokens``: an integer (``invalid_type`` [INF: the generic template]) of at
    least ``MIN_OUTPUT_TOKENS`` (``integer_below_min_value`` [OBS])."""
    value = body.get("max_output_tokens")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        return invalid_type("max_output_tokens", "an integer", value)
    if value < MIN_OUTPUT_TOKENS:
        return bad_request(
            "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= "
            f"{MIN_OUTPUT_TOKENS}, but got {value} instead.",
            "max_output_tokens",
            "integer_below_min_value",
        )
    return None


def _check_fields(body: Mapping[str, Any]) -> Violation | None:
    return (
        _check_flags(body)
        or _check_choices(body)
        or _check_continuation(body)
        or check_metadata(body.get("metadata"))
        or _check_max_output_tokens(body)
    )


def check_request(body: Any, options: RuleOptions) -> Violation | None:
    """The first schema violation of a ``POST /v1/responses`` body, or ``None``."""
    if not isinstance(body, Mapping):
        return invalid_type("body", "an object", body)
    if body.get("model") is None:
        return missing("model")
    if "messages" in body:
        return bad_request(
            "Unsupported parameter: 'messages'. In the Responses API, this parameter has moved "
            "to 'input'. Try again with the new parameter. See the API documentation for more "
            "information: https://platform.openai.com/docs/api-reference/responses/create.",
            None,
            "unsupported_parameter",
        )
    if "input" not in body:
        return missing("input")
    for key in body:
        if key not in RESPONSE_KEYS:
            return unknown(key, _did_you_mean(key, body))
    items = body["input"]
    if not isinstance(items, (str, list)):
        return invalid_type("input", "one of a string or array of input items", items)
    if isinstance(items, list):
        for i, item in enumerate(items):
            if found := check_item(item, i, options):
                return found
    return _check_fields(body)


def check_items_list(items: Any, param: str, options: RuleOptions) -> Violation | None:
    """Schema of a conversation ``items`` list (at most 20 items)."""
    if not isinstance(items, list):
        return invalid_type(param, "an array", items)
    if len(items) > 20:
        return bad_request(
            f"Invalid '{param}': array too long. Expected an array with maximum length 20, "
            f"but got an array with length {len(items)} instead.",
            param,
            "array_above_max_length",
        )
    for i, item in enumerate(items):
        found = check_item(item, i, options)
        if found is not None:
            return attrs_replace_param(found, "input", param)
    return None


def attrs_replace_param(found: Violation, old: str, new: str) -> Violation:
    """The same violation with ``old`` renamed ``new`` in its param and message."""
    param = found.param.replace(old, new, 1) if found.param else found.param
    return attrs.evolve(found, param=param, message=found.message.replace(f"'{old}", f"'{new}"))
