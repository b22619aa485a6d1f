"""The OpenAI-compatible request bodies pixiu accepts and the response bodies it sends, errors included.

Requests are validated strictly: a field of the wrong JSON type (`"stream": "yes"`, `"max_tokens": true`)
is refused, not coerced, and so is any field pixiu does not implement (`tools`, `response_format` other
than text, ...): a 400 that names it, never a silent 200. Text with lone UTF-16 surrogates is refused too,
as no tokenizer can encode it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_serializer, model_validator
from pydantic_core import PydanticCustomError


def _valid_unicode(text: str) -> str:
    """`text` unchanged, or a validation error when it holds a lone surrogate (e.g. JSON "\\ud800")."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise PydanticCustomError(
            "lone_surrogate",
            "contains a lone UTF-16 surrogate (\\u{code}) at character {at}, which is not "
            "valid Unicode text; send the whole surrogate pair or remove it",
            {"code": f"{ord(text[exc.start]):04x}", "at": exc.start},
        ) from exc
    return text


Text = Annotated[str, AfterValidator(_valid_unicode)]
"""A string that is valid Unicode (no lone surrogates)."""


class _Body(BaseModel):
    """A request body: JSON types are checked strictly and unknown fields are refused."""

    model_config = ConfigDict(strict=True, extra="forbid")


class TextPart(_Body):
    """A text piece of a message whose content is a list of parts."""

    type: Literal["text"]
    text: Text


def _text_content(content: Any) -> Any:
    """Refuse, in plain words, content that is neither a string nor a list of text parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise PydanticCustomError(
            "content_type",
            "give the message text as a string or a list of text parts, not {kind}",
            {"kind": "null" if content is None else type(content).__name__},
        )
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind != "text":
            raise PydanticCustomError(
                "content_part",
                "part {index} is of type {kind}; this server reads text parts only "
                '({"type": "text", "text": "..."}), not images, audio or files',
                {"index": index, "kind": repr(kind)},
            )
    return content


class Message(_Body):
    """One chat message; "developer" is treated as "system"."""

    role: Literal["system", "developer", "user", "assistant"]
    content: Annotated[Text | list[TextPart], BeforeValidator(_text_content)]
    name: Text | None = None
    """Accepted as OpenAI does; the chat template does not show it."""

    def as_dict(self) -> dict[str, str]:
        """The message as pixiu's chat template expects it."""
        content = self.content if isinstance(self.content, str) else "".join(part.text for part in self.content)
        return {"role": "system" if self.role == "developer" else self.role, "content": content}


class StreamOptions(_Body):
    """Extra streaming behaviour."""

    include_usage: bool = False


def _text_format(kind: str) -> str:
    """Refuse every response format but plain text."""
    if kind != "text":
        raise PydanticCustomError(
            "response_format",
            "{kind} is not supported; this server answers in plain "
            "text only (JSON mode and JSON schemas are not implemented), so drop "
            'response_format or give {"type": "text"}',
            {"kind": repr(kind)},
        )
    return kind


class ResponseFormat(_Body):
    """`response_format`: only plain text; JSON mode and JSON schemas are refused."""

    type: Annotated[str, AfterValidator(_text_format)]


def _token_id(key: str) -> str:
    """A `logit_bias` key: a token id written as a string of digits."""
    if not key.isdigit():
        raise PydanticCustomError(
            "token_id", 'logit_bias keys are token ids such as "1234", not {key}', {"key": repr(key)}
        )
    return key


UNSUPPORTED = {
    "tools": "tool calling is not supported",
    "tool_choice": "tool calling is not supported",
    "parallel_tool_calls": "tool calling is not supported",
    "functions": "function calling is not supported",
    "function_call": "function calling is not supported",
    "echo": "echoing the prompt is not supported",
    "suffix": "suffix (insertion) is not supported",
    "best_of": "best_of is not supported",
}
"""Fields of OpenAI's API that pixiu refuses, with why (every other unknown field is refused too)."""

Penalty = Annotated[float, Field(ge=-2.0, le=2.0, allow_inf_nan=False)]
TokenId = Annotated[str, AfterValidator(_token_id)]
Bias = Annotated[float, Field(ge=-100.0, le=100.0, allow_inf_nan=False)]


class _Generation(_Body):
    """Fields shared by chat and text completions."""

    model: Text = Field(min_length=1, max_length=256)
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, allow_inf_nan=False)
    """Defaults to 0 (greedy, reproducible), unlike OpenAI's 1."""
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, allow_inf_nan=False)
    n: Literal[1] = 1
    stop: Text | list[Text] | None = None
    seed: int | None = Field(default=None, ge=0, lt=2**63)
    stream: bool = False
    stream_options: StreamOptions | None = None
    presence_penalty: Penalty = 0.0
    frequency_penalty: Penalty = 0.0
    logit_bias: dict[TokenId, Bias] | None = None
    """Token id (as a string, as OpenAI has it) -> a bias added to that token's logit."""
    response_format: ResponseFormat | None = None
    user: Text | None = Field(default=None, max_length=256)
    """Accepted as OpenAI does; pixiu does not use it."""

    def stop_list(self) -> list[str]:
        """`stop` as a list."""
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def wants_usage_chunk(self) -> bool:
        """Whether a streamed response ends with a usage chunk."""
        return bool(self.stream_options and self.stream_options.include_usage)

    def bias(self) -> dict[int, float]:
        """`logit_bias` with integer token ids."""
        return {int(key): value for key, value in (self.logit_bias or {}).items()}

    def top_logprob_count(self) -> int | None:
        """How many alternatives to report per token, or None when logprobs are not asked for."""
        raise NotImplementedError


class ChatRequest(_Generation):
    """`POST /v1/chat/completions`."""

    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)

    def token_limit(self) -> int | None:
        """`max_completion_tokens`, or the older `max_tokens`."""
        return self.max_completion_tokens or self.max_tokens

    def top_logprob_count(self) -> int | None:
        """`top_logprobs` (0 by default) when `logprobs` is true."""
        return (self.top_logprobs or 0) if self.logprobs else None


class CompletionRequest(_Generation):
    """`POST /v1/completions`; `prompt` is one string (or a list holding one)."""

    prompt: Text | list[Text]
    logprobs: int | None = Field(default=None, ge=0, le=5)

    def token_limit(self) -> int | None:
        """`max_tokens`."""
        return self.max_tokens

    def prompt_text(self) -> str | None:
        """The single prompt, or None when a list does not hold exactly one string."""
        if isinstance(self.prompt, str):
            return self.prompt
        return self.prompt[0] if len(self.prompt) == 1 else None

    def top_logprob_count(self) -> int | None:
        """`logprobs`: how many alternatives per token (None: no logprobs)."""
        return self.logprobs


MAX_SCORE_ANSWERS = 64
"""Answers one `POST /v1/score` may ask to score, at most."""


class ScoreRequest(_Body):
    """`POST /v1/score` (a pixiu extension): a reward model's score of each answer after one prompt, given as chat
    `messages` or as a user message's text in `prompt`."""

    model: Text = Field(min_length=1, max_length=256)
    messages: list[Message] | None = Field(default=None, min_length=1)
    prompt: Text | None = None
    answers: list[Text] = Field(min_length=1, max_length=MAX_SCORE_ANSWERS)

    @model_validator(mode="after")
    def _one_prompt(self) -> ScoreRequest:
        """Exactly one of `messages` and `prompt`."""
        if (self.messages is None) == (self.prompt is None):
            raise PydanticCustomError(
                "score_prompt", 'give the prompt as "messages" (a chat) or as "prompt" (a text), exactly one of them'
            )
        return self

    def prompt_messages(self) -> list[dict[str, str]]:
        """The prompt as chat messages, a text `prompt` being one user message (as the reward model scores it)."""
        if self.messages is not None:
            return [message.as_dict() for message in self.messages]
        return [{"role": "user", "content": self.prompt or ""}]


class AdapterLoad(_Body):
    """`POST /v1/adapters`: a registry name, or a folder inside PIXIU_HOME served under `name`."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    path: Text | None = Field(default=None, max_length=4096)
    force: bool = False
    """Load it even though it records another base model than the one served."""


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


class TopLogprob(BaseModel):
    """One likely token at a position of a chat answer."""

    token: str
    logprob: float
    bytes: list[int]


class TokenLogprob(TopLogprob):
    """A token of a chat answer, its logprob and the most likely tokens at its position."""

    top_logprobs: list[TopLogprob]


class ChatLogprobs(BaseModel):
    """`choices[0].logprobs` of a chat completion."""

    content: list[TokenLogprob]


class ChatChoice(BaseModel):
    """The one choice of a chat completion."""

    index: int = 0
    message: ChatMessage
    logprobs: ChatLogprobs | None = None
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


class TextLogprobs(BaseModel):
    """`choices[0].logprobs` of a text completion (the legacy layout)."""

    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    text_offset: list[int]


class TextChoice(BaseModel):
    """The one choice of a text completion, whole or streamed."""

    index: int = 0
    text: str
    logprobs: TextLogprobs | None = None
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
    """A model as OpenAI lists it, plus where it comes from (`root`), what it adapts (`parent`) and, a pixiu
    extension, what it does (`kind`): a chat model generates, a reward model scores answers at `POST /v1/score`."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "pixiu"
    root: str
    parent: str | None
    kind: Literal["chat", "reward_model"] = "chat"
    method: str | None = None
    """pixiu extension: the adapter's tuning method (`lora.method`: lora, rslora, pissa, ...); None for the base."""
    served: Literal["base", "per_row", "single"] = "base"
    """pixiu extension: how it is served: as the base model itself, as an adapter applied per batch row in the
    mixed batch (the LoRA family), or through peft one adapter per forward pass, in a batch of its own (dora, ia3,
    adalora, prefix, prompt; see docs/tuning-methods.md)."""


class ModelList(BaseModel):
    """`GET /v1/models`."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


class Score(BaseModel):
    """One answer's score."""

    index: int
    """The answer's position in the request's `answers`."""
    score: float


class ScoreUsage(BaseModel):
    """Tokens a scoring request read."""

    prompt_tokens: int
    """Every token fed to the reward model: the prompt once per answer, plus each answer."""


class ScoreList(BaseModel):
    """`POST /v1/score`: one score per answer, in the request's order."""

    object: Literal["list"] = "list"
    model: str
    data: list[Score]
    usage: ScoreUsage


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


def error_body(
    message: str, *, type: str = "invalid_request_error", param: str | None = None, code: str | None = None
) -> dict:
    """An OpenAI-style error document."""
    return ErrorResponse(error=ErrorDetail(message=message, type=type, param=param, code=code)).model_dump()
