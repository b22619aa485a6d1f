"""pixiu: turn a general chat LLM into domain experts with LoRA adapters and pluggable verticals.

What plugins may import from here is listed in `__all__`; the public modules they may also use are
`pixiu.files`, `pixiu.crawl`, `pixiu.teacher` and `pixiu.testing` (see docs/plugins.md).
"""

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("pixiu")
"""Marker for plugin hook implementations: decorate functions named after a hook in `pixiu.hookspecs`."""

from pixiu.domain import Domain, Example, Messages, ModelSource, Preference, WebPage  # noqa: E402  (after the marker: plugins import both)
from pixiu.errors import BadRecord, ConfigError, DataError, PixiuError  # noqa: E402

__all__ = [
    "BadRecord",
    "ConfigError",
    "DataError",
    "Domain",
    "Example",
    "Messages",
    "ModelSource",
    "PixiuError",
    "Preference",
    "WebPage",
    "__version__",
    "hookimpl",
]
