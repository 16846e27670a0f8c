"""The OpenAI-compatible LLM backend over the real wire protocol: the official client against the local
test double (tests/openai_double.py) on 127.0.0.1, with streaming, retries, timeouts and error translation."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from tests.openai_double import OpenAIDouble, Reply

from cairn.errors import ConfigError, GenerationError
from cairn.generate.llm import ChatMessage, ChatModel, OpenAICompatibleLLM

MESSAGES: list[ChatMessage] = [
    {"role": "system", "content": 'If unsure, reply exactly: "No idea."'},
    {
        "role": "user",
        "content": '<passage id="1" source="a">\nSick leave is 15 days per year.\n</passage>\n\n'
        "Question: How many days of sick leave per year?",
    },
]
ANSWER = "Sick leave is 15 days per year [1]."


@pytest.fixture
def double() -> Iterator[OpenAIDouble]:
    with OpenAIDouble(api_key="sk-test") as server:
        yield server


def _llm(double: OpenAIDouble, *, key: str | None = "sk-test", timeout_s: float = 5.0, retries: int = 2) -> ChatModel:
    return OpenAICompatibleLLM(
        base_url=double.url, model=double.model, api_key=key, timeout_s=timeout_s, max_retries=retries
    )


def test_streaming_reassembles_the_server_sent_events(double: OpenAIDouble) -> None:
    """A streamed reply arrives in several pieces that join to the whole answer; the request asked to stream."""
    llm = _llm(double)
    assert isinstance(llm, ChatModel)
    pieces = list(llm.stream(MESSAGES, max_tokens=64))
    assert len(pieces) > 3
    assert "".join(pieces) == ANSWER
    assert double.requests[-1]["stream"] is True
    assert double.requests[-1]["max_tokens"] == 64


def test_a_whole_completion_and_the_key_as_bearer(double: OpenAIDouble) -> None:
    """Non-streamed completion returns the text; the configured key is what authorises it."""
    assert _llm(double).complete(MESSAGES, max_tokens=64) == ANSWER
    with pytest.raises(ConfigError, match="CAIRN_LLM_API_KEY"):
        _llm(double, key="sk-wrong").complete(MESSAGES, max_tokens=64)


def test_server_errors_and_rate_limits_are_retried(double: OpenAIDouble) -> None:
    """A 503 and a 429 before success cost two retries and no error."""
    double.script.extend([Reply(status=503, retry_after_ms=10), Reply(status=429, retry_after_ms=10)])
    assert _llm(double, retries=2).complete(MESSAGES, max_tokens=64) == ANSWER
    assert len(double.requests) == 3


def test_retries_run_out_with_a_clear_error(double: OpenAIDouble) -> None:
    """After max_retries more failures, the error says what the server answered."""
    double.script.extend([Reply(status=500, retry_after_ms=10)] * 3)
    with pytest.raises(GenerationError, match="answered 500") as caught:
        _llm(double, retries=2).complete(MESSAGES, max_tokens=64)
    assert caught.value.endpoint == double.url
    assert len(double.requests) == 3


def test_a_slow_server_times_out_after_its_retries(double: OpenAIDouble) -> None:
    """Each attempt is cut at the timeout and retried once; then the error names CAIRN_LLM_TIMEOUT_S."""
    double.script.extend([Reply(delay_s=1.5), Reply(delay_s=1.5)])
    started = time.monotonic()
    with pytest.raises(GenerationError, match="CAIRN_LLM_TIMEOUT_S"):
        _llm(double, timeout_s=0.3, retries=1).complete(MESSAGES, max_tokens=64)
    assert time.monotonic() - started < 2.5  # two 0.3 s attempts and a backoff, not two 1.5 s waits
    assert len(double.requests) == 2


def test_a_failed_stream_raises_before_any_text(double: OpenAIDouble) -> None:
    """Streaming sends (and retries) the request up front: a refusing server fails the call, not the iteration."""
    double.script.append(Reply(status=500))
    with pytest.raises(GenerationError):
        _llm(double, retries=0).stream(MESSAGES, max_tokens=64)


def test_an_unknown_model_and_an_unreachable_server_are_told_apart(double: OpenAIDouble) -> None:
    """A 404 for the model points at CAIRN_LLM_MODEL; a closed port says the server cannot be reached."""
    wrong_model = OpenAICompatibleLLM(base_url=double.url, model="nope", api_key="sk-test", timeout_s=5, max_retries=0)
    with pytest.raises(ConfigError, match="CAIRN_LLM_MODEL"):
        wrong_model.complete(MESSAGES, max_tokens=8)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    gone = OpenAICompatibleLLM(
        base_url=f"http://127.0.0.1:{closed}/v1", model="m", api_key=None, timeout_s=2, max_retries=0
    )
    with pytest.raises(GenerationError, match="cannot reach"):
        gone.complete(MESSAGES, max_tokens=8)
