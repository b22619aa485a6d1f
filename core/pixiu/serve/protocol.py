"""The OpenAI-compatible request bodies pixiu accepts and the response bodies it sends, errors included."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_serializer


class TextPart(BaseModel):
    """A text piece of a message whose content is a list of parts."""

    type: Literal["text"]
    text: str


class Message(BaseModel):
    """One chat message; "developer" is treated as "system"."""

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]

    def as_dict(self) -> dict[str, str]:
        """The message as pixiu's chat template expects it."""
        content = self.content if isinstance(self.content, str) else "".join(part.text for part in self.content)
        return {"role": "system" if self.role == "developer" else self.role, "content": content}


class StreamOptions(BaseModel):
    """Extra streaming behaviour."""

    include_usage: bool = False


class _Generation(BaseModel):
    """Fields shared by chat and text completions; fields pixiu does not use are ignored."""

    model: str = Field(min_length=1, max_length=256)
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    """Defaults to 0 (greedy, reproducible), unlike OpenAI's 1."""
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    n: Literal[1] = 1
    stop: str | list[str] | None = None
    seed: int | None = Field(default=None, ge=0, lt=2**63)
    stream: bool = False
    stream_options: StreamOptions | None = None

    def stop_list(self) -> list[str]:
        """`stop` as a list."""
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def wants_usage_chunk(self) -> bool:
        """Whether a streamed response ends with a usage chunk."""
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatRequest(_Generation):
    """`POST /v1/chat/completions`."""

    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)

    def token_limit(self) -> int | None:
        """`max_completion_tokens`, or the older `max_tokens`."""
        return self.max_completion_tokens or self.max_tokens


class CompletionRequest(_Generation):
    """`POST /v1/completions`; `prompt` is one string (or a list holding one)."""

    prompt: str | list[str]

    def token_limit(self) -> int | None:
        """`max_tokens`."""
        return self.max_tokens

    def prompt_text(self) -> str | None:
        """The single prompt, or None when a list does not hold exactly one string."""
        if isinstance(self.prompt, str):
            return self.prompt
        return self.prompt[0] if len(self.prompt) == 1 else None


class AdapterLoad(BaseModel):
    """`POST /v1/adapters`: a registry name, or a folder inside PIXIU_HOME served under `name`."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    path: str | None = Field(default=None, max_length=4096)


# ---- responses ------------------------------------------------------------------------------------


class Usage(BaseModel):
    """OpenAI's token counts."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatMessage(BaseModel):
    """The answer of a non-streamed chat completion."""

    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    """The one choice of a chat completion."""

    index: int = 0
    message: ChatMessage
    finish_reason: str | None


class ChatCompletion(BaseModel):
    """The body of a non-streamed `POST /v1/chat/completions`."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class Delta(BaseModel):
    """New text of a streamed chat answer; fields left unset are left out, as OpenAI does."""

    role: Literal["assistant"] | None = None
    content: str | None = None

    @model_serializer(mode="wrap")
    def _without_unset(self, handler) -> dict:
        """Leave out fields that are None: the last chunk's delta is `{}`."""
        return {key: value for key, value in handler(self).items() if value is not None}


class ChunkChoice(BaseModel):
    """The one choice of a streamed chat chunk."""

    index: int = 0
    delta: Delta
    finish_reason: str | None = None


class ChatCompletionChunk(BaseModel):
    """One server-sent event of a streamed chat completion; the optional last one carries only `usage`."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class TextChoice(BaseModel):
    """The one choice of a text completion, whole or streamed."""

    index: int = 0
    text: str
    logprobs: None = None
    finish_reason: str | None = None


class Completion(BaseModel):
    """The body of `POST /v1/completions`, and of each of its server-sent events when streamed."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[TextChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    """A model as OpenAI lists it, plus where it comes from (`root`) and what it adapts (`parent`)."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "pixiu"
    root: str
    parent: str | None


class ModelList(BaseModel):
    """`GET /v1/models`."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


class Health(BaseModel):
    """`GET /health`."""

    status: Literal["ok", "stopped"]
    base: str
    adapters: list[str]
    waiting: int
    active: int


class AdapterLoaded(ModelCard):
    """`POST /v1/adapters`: the loaded adapter's card, its rank and how long loading took."""

    rank: int
    load_ms: float


class AdapterDeleted(BaseModel):
    """`DELETE /v1/adapters/{name}`."""

    id: str
    object: Literal["model"] = "model"
    deleted: bool = True


class ErrorDetail(BaseModel):
    """What went wrong, OpenAI-style."""

    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


def error_body(message: str, *, type: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict:
    """An OpenAI-style error document."""
    return ErrorResponse(error=ErrorDetail(message=message, type=type, param=param, code=code)).model_dump()
