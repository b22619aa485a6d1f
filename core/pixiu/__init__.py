"""pixiu: turn a general chat LLM into domain experts with LoRA adapters and pluggable verticals."""

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("pixiu")
"""Marker for plugin hook implementations: decorate functions named after a hook in `pixiu.hookspecs`."""

from pixiu.domain import Domain, ModelSource  # noqa: E402  (after the marker: plugins import both)
from pixiu.errors import BadRecord, ConfigError, PixiuError  # noqa: E402

__all__ = ["hookimpl", "Domain", "ModelSource", "PixiuError", "ConfigError", "BadRecord", "__version__"]
