"""The OpenAI-compatible HTTP API over an `Engine`: models, chat and text completions (streamed or not), scoring
with reward models (`POST /v1/score`, a pixiu extension), health, the web chat page at `/` and the votes of its
Compare view (`POST /v1/feedback/pairs`, in `pixiu.serve.pairs`)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import TemplateError
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from pixiu.data import IGNORE_INDEX, render
from pixiu.errors import DataError, PixiuError
from pixiu.preference import tokenize_answer
from pixiu.serve import admin, pairs, plugin_pages, runs_api, train_api
from pixiu.serve.adapters import BASE, UnknownModel, WrongKind, generation_refusal, scoring_refusal
from pixiu.serve.engine import Engine, QueueFull
from pixiu.serve.generation import Generation
from pixiu.serve.http import ApiError, BodyLimit, ServerError, install_error_handlers
from pixiu.serve.metrics import ServeMetrics
from pixiu.serve.protocol import (
    ChatRequest,
    CompletionRequest,
    Health,
    ModelCard,
    ModelList,
    Score,
    ScoreList,
    ScoreRequest,
    ScoreUsage,
)
from pixiu.serve.request import SamplingParams
from pixiu.serve.responses import Reply, stream_events
from pixiu.serve.state import Limits, Server, model_card, server_of, unknown_model

router = APIRouter()
STATIC = Path(__file__).with_name("static")
"""The chat page's files, shipped as package data."""
PAGE_POLICY = "default-src 'self'; frame-ancestors 'none'"
"""The page loads only its own files and talks only to this server, so injected markup could run nothing."""


def build_app(engine: Engine, tokenizer, *, base: str, limits: Limits, admin_token: str | None) -> FastAPI:
    """The FastAPI app; the caller starts and stops `engine`. Admin routes are off when `admin_token` is None."""
    app = FastAPI(title="pixiu", summary="One base model, many domain adapters, OpenAI-compatible.")
    app.state.server = Server(engine, tokenizer, base, limits, admin_token, int(time.time()), ServeMetrics(engine))
    install_error_handlers(app)
    app.add_middleware(BodyLimit, limit=limits.max_body_bytes, exempt=(train_api.UPLOAD_PATH,))
    app.add_middleware(ServerError)  # added last, so outermost: it catches what BodyLimit and the routes raise
    app.include_router(router)
    app.include_router(admin.router)
    app.include_router(pairs.router)
    app.include_router(runs_api.router)
    train_api.install(app)
    plugin_pages.mount_pages(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


# ---- the web chat page ----------------------------------------------------------------------------


@router.get("/", include_in_schema=False)
async def chat_page() -> FileResponse:
    """The web chat page: plain HTML and JS that pick a model from /v1/models and stream chat completions."""
    return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": PAGE_POLICY})


# ---- models, health, metrics ----------------------------------------------------------------------


@router.get("/v1/models")
async def list_models(request: Request) -> ModelList:
    """The base and every loaded adapter, OpenAI-style."""
    server = server_of(request)
    return ModelList(data=[model_card(server, name) for name in [BASE, *server.engine.adapters.loaded()]])


@router.get("/v1/models/{name}")
async def get_model(name: str, request: Request) -> ModelCard:
    """One model, or 404."""
    server = server_of(request)
    if name != BASE and name not in server.engine.adapters.loaded():
        raise unknown_model(server, name)
    return model_card(server, name)


@router.get("/health", response_model=Health)
async def health(request: Request) -> JSONResponse:
    """Liveness (503 once the engine has stopped) plus what is loaded and queued."""
    server = server_of(request)
    stats = server.engine.stats()
    running = server.engine.running
    body = Health(
        status="ok" if running else "stopped",
        base=server.base,
        adapters=sorted(server.engine.adapters.loaded()),
        waiting=stats["waiting"],
        active=stats["active"],
    )
    return JSONResponse(body.model_dump(), status_code=200 if running else 503)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text: requests, tokens, queue depth, adapters, time-to-first-token and latency histograms."""
    return Response(server_of(request).metrics.text(), media_type=CONTENT_TYPE_LATEST)


# ---- completions ----------------------------------------------------------------------------------


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatRequest, request: Request):
    """Answer a conversation, rendered with the base model's chat template."""
    server = server_of(request)
    try:  # rendering and tokenising a long body takes a while: in a worker thread, not on the event loop
        prompt_ids = await run_in_threadpool(_chat_prompt_ids, server.tokenizer, body)
    except TemplateError as exc:  # e.g. a template that insists on alternating user/assistant turns
        raise ApiError(400, f"messages: the model's chat template refuses them: {exc}", param="messages") from exc
    return await _complete(request, body, prompt_ids, chat=True)


def _chat_prompt_ids(tokenizer, body: ChatRequest) -> list[int]:
    """The prompt token ids of a conversation, rendered with the model's chat template."""
    prompt = render(tokenizer, [m.as_dict() for m in body.messages], add_generation_prompt=True)
    return tokenizer(prompt, add_special_tokens=False)["input_ids"]


@router.post("/v1/completions")
async def completions(body: CompletionRequest, request: Request):
    """Continue a plain text prompt."""
    server = server_of(request)
    prompt = body.prompt_text()
    if prompt is None:
        raise ApiError(400, "prompt: give one string (batches of prompts are not supported)", param="prompt")
    encoded = await run_in_threadpool(server.tokenizer, prompt)  # off the event loop
    prompt_ids: list[int] = encoded["input_ids"]
    return await _complete(request, body, prompt_ids, chat=False)


async def _complete(request: Request, body: ChatRequest | CompletionRequest, prompt_ids: list[int], *, chat: bool):
    """Check limits, start generating, and answer as one JSON document or as server-sent events."""
    server = server_of(request)
    adapter = server.engine.adapters.loaded().get(body.model)
    if body.model != BASE and adapter is None:
        raise unknown_model(server, body.model)
    if adapter is not None and adapter.reward_model:
        raise ApiError(400, generation_refusal(body.model), param="model")
    sampling = _sampling(server, body, len(prompt_ids))
    stop = body.stop_list()
    if len(stop) > server.limits.max_stop or any(len(s) > 256 for s in stop):
        raise ApiError(400, f"stop: at most {server.limits.max_stop} strings of up to 256 characters", param="stop")
    try:
        generation = Generation(
            server.engine,
            server.tokenizer,
            body.model,
            prompt_ids,
            sampling,
            stop,
            on_finish=server.metrics.observe,
            chat=chat,
        )
    except UnknownModel as exc:
        raise unknown_model(server, body.model) from exc
    except WrongKind as exc:  # replaced by a reward model of that name since the check above
        raise ApiError(400, str(exc), param="model") from exc
    except QueueFull as exc:
        raise ApiError(429, str(exc), type="rate_limit_error", code="queue_full", headers={"Retry-After": "1"}) from exc
    reply = Reply(body.model, chat)
    if body.stream:
        events = stream_events(generation, reply, body.wants_usage_chunk())
        return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
    text = await _collect_unless_disconnected(request, generation)
    if text is None:
        return Response(status_code=499)  # nginx's "client closed request"; nobody reads it
    if generation.finish_reason == "cancelled":
        raise ApiError(503, "the server is shutting down; retry on another instance", type="server_error")
    if generation.finish_reason == "error":
        raise ApiError(500, "generation failed; see the server log", type="server_error")
    answer = reply.whole(text, generation, server.tokenizer, logprobs=sampling.logprobs is not None)
    return JSONResponse(answer.model_dump())


# ---- scoring ----------------------------------------------------------------------------------


@router.post("/v1/score")
async def score(body: ScoreRequest, request: Request) -> ScoreList:
    """Score each answer after the prompt with a reward model, exactly as `pixiu.reward_model.load_reward_model`
    would: the same chat template and the same cut to the `max_seq_len` it was trained with."""
    server = server_of(request)
    adapter = server.engine.adapters.loaded().get(body.model)
    if body.model != BASE and adapter is None:
        raise unknown_model(server, body.model)
    if adapter is None or adapter.reward_max_len is None:
        raise ApiError(400, scoring_refusal(body.model), param="model")
    rows = await run_in_threadpool(_score_rows, server.tokenizer, body, adapter.reward_max_len)  # off the loop
    try:
        scores = await run_in_threadpool(server.engine.score, body.model, rows)
    except UnknownModel as exc:  # unloaded or evicted meanwhile
        raise unknown_model(server, body.model) from exc
    except WrongKind as exc:  # replaced by a chat adapter of that name meanwhile
        raise ApiError(400, str(exc), param="model") from exc
    except PixiuError as exc:  # the engine stopped
        raise ApiError(503, f"{exc}; retry on another instance", type="server_error") from exc
    return ScoreList(
        model=body.model,
        data=[Score(index=i, score=value) for i, value in enumerate(scores)],
        usage=ScoreUsage(prompt_tokens=sum(len(ids) for ids, _ in rows)),
    )


def _score_rows(tokenizer, body: ScoreRequest, max_len: int) -> list[tuple[list[int], int]]:
    """Each answer after the prompt as the reward model reads it: (token ids, the position of its last answer
    token, whose hidden state the head reads), tokenised as `pixiu.preference.tokenize_answer` does in training."""
    messages = body.prompt_messages()
    rows = []
    for answer in body.answers:
        try:
            example = tokenize_answer(tokenizer, messages, answer, max_len)
        except TemplateError as exc:
            param = "messages" if body.messages is not None else "prompt"
            raise ApiError(400, f"{param}: the model's chat template refuses them: {exc}", param=param) from exc
        except DataError as exc:  # the prompt alone fills the reward model's max_seq_len
            message = f"the prompt is too long for {body.model}: {exc}"
            raise ApiError(400, message, param="messages", code="context_length_exceeded") from exc
        labelled = [i for i, label in enumerate(example.labels) if label != IGNORE_INDEX]
        rows.append((example.input_ids, labelled[-1] if labelled else len(example.input_ids) - 1))
    return rows


def _sampling(server: Server, body: ChatRequest | CompletionRequest, prompt_tokens: int) -> SamplingParams:
    """The request's sampling parameters, or a 400 naming the one this server cannot honour."""
    vocab = server.engine.vocab_size
    outside = [token for token in body.bias() if token >= vocab]
    if outside:
        message = f"logit_bias: token id {outside[0]} is outside the vocabulary (ids 0 to {vocab - 1})"
        raise ApiError(400, message, param="logit_bias")
    top = body.top_logprob_count()
    if isinstance(body, ChatRequest) and body.top_logprobs is not None and not body.logprobs:
        raise ApiError(400, 'top_logprobs: needs "logprobs": true as well', param="top_logprobs")
    if top is not None and body.stream:
        raise ApiError(400, 'logprobs: not available when streaming; drop "stream" or "logprobs"', param="logprobs")
    return SamplingParams(
        max_tokens=_max_tokens(server.limits, body, prompt_tokens + _virtual_tokens(server, body.model)),
        temperature=body.temperature,
        top_p=body.top_p,
        seed=body.seed,
        presence_penalty=body.presence_penalty,
        frequency_penalty=body.frequency_penalty,
        logit_bias=body.bias(),
        logprobs=top,
    )


def _virtual_tokens(server: Server, model: str) -> int:
    """The context a prefix- or prompt-tuned adapter `model` takes before the prompt (0 for any other model)."""
    adapter = server.engine.adapters.loaded().get(model)
    return adapter.single.virtual_tokens if adapter is not None and adapter.single is not None else 0


def _max_tokens(limits: Limits, body: ChatRequest | CompletionRequest, prompt_tokens: int) -> int:
    """The request's answer budget, or a 400 saying which limit it breaks (`prompt_tokens` with the adapter's
    virtual tokens)."""
    if prompt_tokens == 0:
        raise ApiError(400, "the prompt is empty", param="prompt")
    if prompt_tokens > limits.max_prompt_tokens:
        message = f"the prompt has {prompt_tokens} tokens; this server accepts at most {limits.max_prompt_tokens}"
        raise ApiError(400, message, param="messages", code="context_length_exceeded")
    requested = body.token_limit()
    if requested is not None and requested > limits.max_tokens:
        raise ApiError(400, f"max_tokens is {requested}; at most {limits.max_tokens} is allowed", param="max_tokens")
    room = limits.context - prompt_tokens
    if room < 1 or (requested is not None and requested > room):
        message = (
            f"the prompt ({prompt_tokens} tokens) plus max_tokens ({requested}) exceeds the model's "
            f"context of {limits.context} tokens; shorten the prompt or lower max_tokens"
        )
        raise ApiError(400, message, param="max_tokens", code="context_length_exceeded")
    return requested if requested is not None else min(limits.default_max_tokens, room)


async def _collect_unless_disconnected(request: Request, generation: Generation) -> str | None:
    """The whole answer, or None when the client disconnected first (generation is then cancelled)."""
    collect = asyncio.ensure_future(generation.collect())
    disconnect = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({collect, disconnect}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        disconnect.cancel()
        if not collect.done():
            collect.cancel()  # runs the generation's cleanup, which cancels the engine request
    # a task cancelled just now is not done yet: it ends on its next turn of the loop
    return collect.result() if collect.done() and not collect.cancelled() else None


async def _disconnected(request: Request) -> None:
    """Return when the client closes the connection."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
