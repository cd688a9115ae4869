"""Faults on demand, safety checks and the command line of the emulator."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import openai
import pytest
from openai import OpenAI

from tracker.emulator import Emulator, Fault


def test_5xx_is_retried_by_the_client(emulator: Emulator) -> None:
    """Two injected 500s, then success: the client's retries get through, 3 requests seen."""
    emulator.inject(Fault(status=500, should_retry=True, retry_after=0.01), times=2)
    with OpenAI(base_url=emulator.base_url, api_key="k", max_retries=2) as c:
        assert "You said: hi" == c.responses.create(model="emu-1", input="hi").output_text
    assert 3 == len(emulator.requests_to("/v1/responses"))
    assert 1 == len(emulator.state.responses)


def test_429_with_should_retry_false(emulator: Emulator) -> None:
    """429 with x-should-retry: false is raised at once as RateLimitError."""
    emulator.inject(Fault(status=429, should_retry=False))
    with (
        OpenAI(base_url=emulator.base_url, api_key="k", max_retries=2) as c,
        pytest.raises(openai.RateLimitError) as info,
    ):
        c.responses.create(model="emu-1", input="hi")
    assert ("rate_limit_exceeded", "false") == (
        info.value.code,
        info.value.response.headers["x-should-retry"],
    )
    assert 1 == len(emulator.requests_to("/v1/responses"))


def test_500_envelope(client: OpenAI, emulator: Emulator) -> None:
    """An injected 500 carries the service's server_error envelope; nothing is stored."""
    emulator.inject(Fault(status=500))
    with pytest.raises(openai.InternalServerError) as info:
        client.responses.create(model="emu-1", input="hi")
    assert {
        "message": "The server had an error while processing your request. Sorry about that!",
        "type": "server_error",
        "param": None,
        "code": None,
    } == info.value.body
    assert {} == emulator.state.responses


def test_drop_after_store(client: OpenAI, emulator: Emulator) -> None:
    """The response is stored, the client sees a connection error; a retry stores another."""
    emulator.inject(Fault(drop="after"))
    with pytest.raises(openai.APIConnectionError):
        client.responses.create(model="emu-1", input="hi")
    assert 1 == len(emulator.state.responses)
    client.responses.create(model="emu-1", input="hi")
    assert 2 == len(emulator.state.responses)


def test_drop_after_store_in_a_conversation_delivers_twice(
    client: OpenAI, emulator: Emulator
) -> None:
    """A blind retry after a dropped answer appends the same tool output twice."""
    tools: Any = [{"type": "function", "name": "f"}]
    conv = client.conversations.create()
    r1 = client.responses.create(model="emu-1", input="f()", tools=tools, conversation=conv.id)
    out = [{"type": "function_call_output", "call_id": r1.output[0].call_id, "output": "x"}]
    emulator.inject(Fault(drop="after"))
    with pytest.raises(openai.APIConnectionError):
        client.responses.create(model="emu-1", input=out, tools=tools, conversation=conv.id)
    client.responses.create(model="emu-1", input=out, tools=tools, conversation=conv.id)
    assert {r1.output[0].call_id: 2} == emulator.context_outputs(conversation_id=conv.id)


def test_drop_before_stores_nothing(client: OpenAI, emulator: Emulator) -> None:
    """A connection dropped before handling leaves no trace but the received request."""
    emulator.inject(Fault(drop="before"))
    with pytest.raises(openai.APIConnectionError):
        client.responses.create(model="emu-1", input="hi")
    assert ({}, 1) == (emulator.state.responses, len(emulator.requests_to("/v1/responses")))


def test_latency_beyond_client_timeout(emulator: Emulator) -> None:
    """Injected latency longer than the client's timeout surfaces as APITimeoutError."""
    emulator.inject(Fault(delay=0.5))
    with (
        OpenAI(base_url=emulator.base_url, api_key="k", max_retries=0, timeout=0.1) as c,
        pytest.raises(openai.APITimeoutError),
    ):
        c.responses.create(model="emu-1", input="hi")


def test_fault_matches_path_and_method(client: OpenAI, emulator: Emulator) -> None:
    """A fault aimed at conversations leaves responses alone, and is used up after `times`."""
    emulator.inject(Fault(status=503), path="/v1/conversations", times=1)
    assert "completed" == client.responses.create(model="emu-1", input="hi").status
    with pytest.raises(openai.InternalServerError):
        client.conversations.create()
    assert client.conversations.create().id.startswith("conv_")


def test_bearer_key_check() -> None:
    """With api_key set, a wrong key is a 401 invalid_api_key; the right one passes."""
    with Emulator(api_key="sk-right-key") as emu:
        with (
            OpenAI(base_url=emu.base_url, api_key="sk-wrong-key", max_retries=0) as bad,
            pytest.raises(openai.AuthenticationError) as info,
        ):
            bad.responses.create(model="emu-1", input="hi")
        assert ("invalid_api_key", 401) == (info.value.code, info.value.status_code)
        assert "sk-wrong-key" not in info.value.body["message"]  # type: ignore[index]
        with OpenAI(base_url=emu.base_url, api_key="sk-right-key", max_retries=0) as good:
            assert "completed" == good.responses.create(model="emu-1", input="hi").status


def test_body_size_limit() -> None:
    """A body over the limit is a 413 with the envelope."""
    with (
        Emulator(max_body_bytes=1000) as emu,
        OpenAI(base_url=emu.base_url, api_key="k", max_retries=0) as c,
    ):
        with pytest.raises(openai.APIStatusError) as info:
            c.responses.create(model="emu-1", input="x" * 2000)
        assert (413, "request_too_large") == (info.value.status_code, info.value.code)


def raw_post(emu: Emulator, path: str, data: bytes) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(emu.host, emu.port, timeout=30)  # bounds a hang
    try:
        conn.request("POST", path, body=data, headers={"content-type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


@pytest.mark.parametrize("data", [b"{not json", b"\xff\xfe", b'{"model": "m", "input": '])
def test_malformed_json_gets_the_envelope(emulator: Emulator, data: bytes) -> None:
    """Malformed JSON is a 400 invalid_request_error envelope, never a stack trace."""
    status, body = raw_post(emulator, "/v1/responses", data)
    assert 400 == status
    assert ["code", "message", "param", "type"] == sorted(body["error"])
    assert body["error"]["message"].startswith("We could not parse the JSON body")


@pytest.mark.parametrize("data", [b"[]", b"42", b'"x"', b"null"])
def test_non_object_bodies_get_the_envelope(emulator: Emulator, data: bytes) -> None:
    """A JSON body that is not an object is a 400 envelope on every POST route."""
    for path in ("/v1/responses", "/v1/chat/completions", "/v1/conversations"):
        status, body = raw_post(emulator, path, data)
        assert (400, "invalid_request_error") == (status, body["error"]["type"]), path


def test_unknown_route(client: OpenAI) -> None:
    """An unknown route is a 404 'Invalid URL' envelope."""
    with pytest.raises(openai.NotFoundError) as info:
        client.get("/nope", cast_to=object)
    assert "Invalid URL (GET /v1/nope)" == info.value.body["message"]  # type: ignore[index]


def test_custom_script() -> None:
    """A test's own script decides the output; the emulator assigns ids."""

    def script(context: Sequence[Mapping[str, Any]], request: Mapping[str, Any]) -> list[Any]:
        return [f"{len(context)} items for {request['model']}"]

    with (
        Emulator(script=script) as emu,
        OpenAI(base_url=emu.base_url, api_key="k", max_retries=0) as c,
    ):
        r = c.responses.create(model="m1", input=[{"role": "user", "content": "a"}] * 3)
        assert ("3 items for m1", True) == (r.output_text, r.output[0].id.startswith("msg_"))


def test_script_error_is_a_500_envelope() -> None:
    """A failing script answers 500 server_error (x-should-retry: false), not a traceback."""

    def script(context: Sequence[Mapping[str, Any]], request: Mapping[str, Any]) -> list[Any]:
        raise RuntimeError("boom")

    with (
        Emulator(script=script) as emu,
        OpenAI(base_url=emu.base_url, api_key="k", max_retries=2) as c,
    ):
        with pytest.raises(openai.InternalServerError) as info:
            c.responses.create(model="m1", input="x")
        assert "server_error" == info.value.body["type"]  # type: ignore[index]
        assert 1 == len(emu.requests_to("/v1/responses"))


@pytest.mark.slow
def test_cli_serves_with_faults_and_as_zdr() -> None:
    """`tracker emulator --port 0 --fault 500 --zdr` prints its URL, serves the fault, then works
    as a zero-data-retention organisation (nothing stored, the ZDR 404 text)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracker", "emulator", "--port", "0", "--fault", "500", "--zdr"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.rsplit(" ", 1)[-1].strip()
        assert url.startswith("http://127.0.0.1:")
        with OpenAI(base_url=url, api_key="k", max_retries=0) as c:
            with pytest.raises(openai.InternalServerError):
                c.responses.create(model="emu-1", input="hi")
            answer = c.responses.create(model="emu-1", input="hi")
            assert ("You said: hi", False) == (answer.output_text, answer.store)
            ref = {"type": "item_reference", "id": answer.output[0].id}
            with pytest.raises(openai.NotFoundError) as info:
                c.responses.create(model="emu-1", input=[ref])
            assert info.value.body["message"].endswith(  # type: ignore[index]
                "Items are not persisted for Zero Data Retention organizations."
            )
    finally:
        proc.terminate()
        assert 0 == proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
