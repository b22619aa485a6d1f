"""Meta-tests on the plugin contract, as datasette does: every hook is documented with its exact
signature in docs/plugins.md, and every hook has a test in test_hooks.py."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from pixiu import hookspecs

from . import test_hooks

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
HOOKS = sorted(name for name, value in vars(hookspecs).items() if hasattr(value, "pixiu_spec"))


def signature_of(hook_name: str) -> str:
    """The hookspec as a `def` line, annotations exactly as written in pixiu/hookspecs.py."""
    signature = inspect.signature(getattr(hookspecs, hook_name))
    parameters = ", ".join(f"{p.name}: {p.annotation}" for p in signature.parameters.values())
    return f"def {hook_name}({parameters}) -> {signature.return_annotation}"


def documented_hooks() -> dict[str, str]:
    """Each `### name` section under `## Hooks` in docs/plugins.md, by name, with its text."""
    hooks_part = DOCS.read_text(encoding="utf-8").split("\n## Hooks\n", 1)[1].split("\n## ", 1)[0]
    sections = re.split(r"^### (\w+)\n", hooks_part, flags=re.MULTILINE)[1:]
    return dict(zip(sections[::2], sections[1::2], strict=True))


def test_the_hooks_are_found() -> None:
    assert HOOKS == [
        "process_response",
        "register_commands",
        "register_domains",
        "register_model_sources",
        "register_web_pages",
    ]


@pytest.mark.parametrize("hook_name", HOOKS)
def test_every_hook_is_documented_with_its_exact_signature(hook_name: str) -> None:
    section = documented_hooks().get(hook_name)
    assert section is not None, f"docs/plugins.md has no '### {hook_name}' section under '## Hooks'"
    assert f"```python\n{signature_of(hook_name)}\n```" in section, f"signature of {hook_name} differs from the docs"


def test_the_docs_document_no_hook_that_does_not_exist() -> None:
    assert sorted(documented_hooks()) == HOOKS


@pytest.mark.parametrize("hook_name", HOOKS)
def test_every_hook_has_a_test(hook_name: str) -> None:
    assert callable(getattr(test_hooks, f"test_hook_{hook_name}", None)), f"test_hooks.py lacks test_hook_{hook_name}"
