"""Every hook a pixiu plugin can implement. Call hooks with keyword arguments only.

Hooks only ever gain arguments; an implementation may accept a subset of them. `HOOK_API` versions
this contract: a minor release adds hooks or arguments, a major one changes or removes them. A
plugin states the range it works with as `PIXIU_HOOK_API` in the module its entry point names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from pixiu.domain import Domain, ModelSource, WebPage

HOOK_API = "1.3"
"""The version of this hook contract; plugins declare a range such as `PIXIU_HOOK_API = ">=1.3,<2"`."""

hookspec = pluggy.HookspecMarker("pixiu")


@hookspec
def register_domains(register: Callable[[Domain], None]) -> None:
    """Called once when pixiu collects domains; call `register(Domain(...))` for each vertical you provide.

    Two plugins registering the same domain name is an error naming both. Return nothing.
    """


@hookspec
def register_model_sources(register: Callable[[ModelSource], None]) -> None:
    """Called once when a `--base` with a `scheme:` prefix is resolved; call `register(ModelSource(...))`.

    A scheme registered twice is an error. Return nothing.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Called once when the `pixiu` command line is built; add new verbs with `@cli.command()`.

    Do not replace pixiu's own commands. Return nothing.
    """


@hookspec
def register_web_pages(register: Callable[[WebPage], None]) -> None:
    """Called once when `pixiu serve` builds its web app; call `register(WebPage(...))` for each page you provide.

    Each page is served at `/plugins/<name>/` and linked from the chat page's header; its router, if any, under
    `/plugins/<name>/api/`. A name registered again is skipped and reported on its plugin. Added in hook API 1.3.
    Return nothing.
    """


@hookspec
def process_response(domain: str | None, text: str, adapter: str, finish_reason: str) -> str | None:
    """Called by `pixiu serve` once per finished chat answer of an adapter, in a worker thread (it may block).

    Only chat answers (`/v1/chat/completions`) are passed, and the tokens a rewrite adds count in their
    `usage`; raw text completions (`/v1/completions`) continue the caller's own text and are never rewritten.

    `domain` is the domain the adapter was trained for (from the adapter registry, else its folder's
    `pixiu_run.yaml`), whatever name it is served under; None when unknown (an adapter folder not made by
    pixiu). `adapter` is the name it is served under (the request's `model`), `text` the answer.
    `finish_reason` says how the answer ended, as in OpenAI's API: "length" when `max_tokens` cut it,
    "stop" otherwise (behind the vLLM proxy, whatever the upstream says). Added in hook API 1.2;
    implementations that do not take it keep working.
    Return the rewritten text, or None to leave it unchanged; e.g. a medical vertical appends a
    disclaimer when `domain == "medical"`, so `med-v2` trained on medical gets it too. Every
    implementation runs, each one seeing the text as the previous one left it (a chain, not
    first-result-wins; the last registered runs first). Not called for the plain base model. In a
    streamed response, text already sent cannot change: what a rewrite appends is sent as a final
    chunk; other rewrites apply to non-streamed responses only.
    """
