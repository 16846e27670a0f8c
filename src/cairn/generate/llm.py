"""LLM backends: one `ChatModel` seam, spoken over the OpenAI-compatible chat completions protocol.

vLLM, Ollama, the llama.cpp server, TGI and OpenAI itself all serve ``POST /v1/chat/completions``
with server-sent events for streaming, so one client (the official ``openai`` package) reaches
them all; only the base URL, the model name and the key differ. Timeouts and retries are the
client's: connection errors, 408, 409, 429 and 5xx answers are retried with exponential backoff
(honouring ``Retry-After``), ``llm_max_retries`` times, each attempt limited to ``llm_timeout_s``.
A stream that breaks after it started is not retried: part of the answer has already been shown.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypedDict, cast, runtime_checkable

from cairn.errors import ConfigError, GenerationError

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

__all__ = ["ChatMessage", "ChatModel", "OpenAICompatibleLLM"]


class ChatMessage(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


@runtime_checkable
class ChatModel(Protocol):
    """A chat model: messages in, text out, whole or as it is generated."""

    @property
    def model_name(self) -> str: ...

    def complete(self, messages: Sequence[ChatMessage], *, max_tokens: int) -> str:
        """The whole reply."""

    def stream(self, messages: Sequence[ChatMessage], *, max_tokens: int) -> Iterator[str]:
        """The reply in pieces. The request is sent (and retried) before this returns, so a
        refused or unreachable endpoint raises here, not half-way through the answer."""


class OpenAICompatibleLLM:
    """Any endpoint that speaks OpenAI's chat completions protocol."""

    def __init__(self, *, base_url: str, model: str, api_key: str | None, timeout_s: float, max_retries: int) -> None:
        from openai import OpenAI

        self._base_url = base_url.rstrip("/")
        self._model = model
        # Local servers (vLLM, Ollama, llama.cpp, TGI) ignore the key, but the client insists on one.
        self._client = OpenAI(
            base_url=self._base_url, api_key=api_key or "unused", timeout=timeout_s, max_retries=max_retries
        )

    @property
    def model_name(self) -> str:
        return self._model

    def complete(self, messages: Sequence[ChatMessage], *, max_tokens: int) -> str:
        with self._errors():
            response = self._client.chat.completions.create(
                model=self._model, messages=_params(messages), max_tokens=max_tokens, temperature=0.0, stream=False
            )
        if not response.choices:
            raise GenerationError(f"the LLM at {self._base_url} returned no choices", endpoint=self._base_url)
        return response.choices[0].message.content or ""

    def stream(self, messages: Sequence[ChatMessage], *, max_tokens: int) -> Iterator[str]:
        with self._errors():
            chunks = self._client.chat.completions.create(
                model=self._model, messages=_params(messages), max_tokens=max_tokens, temperature=0.0, stream=True
            )
        return self._pieces(chunks)

    def _pieces(self, chunks: Any) -> Iterator[str]:
        try:
            with self._errors():
                for chunk in chunks:
                    for choice in chunk.choices:
                        if choice.delta.content:
                            yield choice.delta.content
        finally:
            chunks.close()

    def _errors(self) -> _TranslatedErrors:
        return _TranslatedErrors(self._base_url, self._model)


class _TranslatedErrors:
    """Turns the client's exceptions into cairn's, saying what to check."""

    def __init__(self, base_url: str, model: str) -> None:
        self._url = base_url
        self._model = model

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        import openai

        if exc is None or not isinstance(exc, openai.OpenAIError):
            return
        url, model = self._url, self._model
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            raise ConfigError(f"the LLM at {url} refused the key ({exc.status_code}); check CAIRN_LLM_API_KEY") from exc
        if isinstance(exc, openai.NotFoundError):
            raise ConfigError(
                f"the LLM at {url} does not serve model {model!r} or the chat completions route (404); "
                "check CAIRN_LLM_MODEL and that CAIRN_LLM_BASE_URL ends in /v1"
            ) from exc
        if isinstance(exc, openai.APITimeoutError):
            raise GenerationError(
                f"the LLM at {url} did not answer in time, after retries; raise CAIRN_LLM_TIMEOUT_S or check "
                "the server",
                endpoint=url,
            ) from exc
        if isinstance(exc, openai.APIConnectionError):
            raise GenerationError(
                f"cannot reach the LLM at {url} ({exc}); is the server running? (CAIRN_LLM_BASE_URL)", endpoint=url
            ) from exc
        if isinstance(exc, openai.APIStatusError):
            raise GenerationError(
                f"the LLM at {url} answered {exc.status_code}: {_short(exc.message)}", endpoint=url
            ) from exc
        raise GenerationError(f"the LLM at {url} failed: {_short(str(exc))}", endpoint=url) from exc


def _params(messages: Sequence[ChatMessage]) -> list[ChatCompletionMessageParam]:
    # Our three roles are a subset of the protocol's message shapes.
    return cast("list[ChatCompletionMessageParam]", [dict(m) for m in messages])


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
