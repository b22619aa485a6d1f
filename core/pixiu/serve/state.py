"""What the HTTP routes share: the engine and tokenizer, request limits, and model lookups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from pixiu.methods import adapter_method
from pixiu.serve.adapters import BASE
from pixiu.serve.engine import Engine
from pixiu.serve.http import ApiError
from pixiu.serve.metrics import ServeMetrics
from pixiu.serve.protocol import ModelCard

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class Limits:
    """What one request may ask for."""

    context: int
    """Prompt plus answer tokens, at most (the model's context window)."""
    max_prompt_tokens: int = 4096
    max_tokens: int = 2048
    """The largest `max_tokens` a request may ask for."""
    default_max_tokens: int = 512
    """`max_tokens` when the request gives none (cut to what the context leaves)."""
    max_body_bytes: int = 1 << 20
    max_stop: int = 4
    """Stop strings per request, at most."""


@dataclass(frozen=True)
class Server:
    """Everything the routes need."""

    engine: Engine
    tokenizer: PreTrainedTokenizerBase
    base: str
    """The base model spec, shown as the `root` of the base model in `/v1/models`."""
    limits: Limits
    admin_token: str | None
    started: int
    metrics: ServeMetrics


def server_of(request: Request) -> Server:
    """The app's `Server`."""
    return request.app.state.server


def model_card(server: Server, name: str) -> ModelCard:
    """A model object as OpenAI lists it, plus where it comes from."""
    adapter = server.engine.adapters.loaded().get(name)
    return ModelCard(
        id=name,
        created=server.started,
        root=str(adapter.folder) if adapter else server.base,
        parent=BASE if adapter else None,
        kind="reward_model" if adapter and adapter.reward_model else "chat",
        method=adapter_method(adapter.folder) if adapter else None,
        served=adapter.served if adapter else "base",
    )


def unknown_model(server: Server, name: str) -> ApiError:
    """The 404 for a model that is not loaded (saying so when it was evicted)."""
    return ApiError(404, server.engine.adapters.missing(name), param="model", code="model_not_found")
