"""Testing a plugin's web page (`register_web_pages`): `pixiu serve`'s app on a tiny model with random adapters
named after domains, on a loopback port, and headless Chromium through Playwright.

A tiny random model proves the plumbing only (the page asks, the server answers, the page shows it), never the
quality of an answer. In a plugin's `tests/conftest.py`:

    from pixiu.testing.web import browser  # noqa: F401  (a fixture)

and in a test: `with served(tiny_model_dir, {"law": random_adapter(tiny_model_dir, tmp_path / "law")}) as url:`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium package (`apt-get install chromium`); Playwright drives it, and never downloads its own."""
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]


def random_adapter(model_dir: Path, folder: Path, seed: int = 1) -> Path:
    """Save a random, non-zero LoRA adapter of the model in `model_dir` into `folder`, as peft saves a trained one."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(str(folder))
    return folder


@contextmanager
def served(model_dir: Path, adapters: dict[str, Path], **limits: Any) -> Iterator[str]:
    """Serve the model in `model_dir` with `adapters` (name -> folder; each stands for the domain of its name) on a
    free loopback port, answering in at most 16 tokens unless asked; yields the server's URL."""
    from pixiu.generate import stop_token_ids
    from pixiu.models import load_base
    from pixiu.serve.app import build_app
    from pixiu.serve.engine import Engine
    from pixiu.serve.server import background_server
    from pixiu.serve.state import Limits

    model, tokenizer = load_base(str(model_dir))
    engine = Engine(model, stop_token_ids(tokenizer, model), max_batch=8, max_waiting=64)
    for name, folder in adapters.items():
        engine.load_adapter(name, folder, domain=name)
    engine.start()
    settings = {"context": 2048, "max_prompt_tokens": 1024, "max_tokens": 64, "default_max_tokens": 16, **limits}
    app = build_app(engine, tokenizer, base=str(model_dir), limits=Limits(**settings), admin_token=None)
    try:
        with background_server(app) as url:
            yield url
    finally:
        engine.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium through Playwright, once per test module; skips when either is missing."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def policy_blocked(console_text: str) -> bool:
    """Whether a browser console message says the page's Content Security Policy blocked something."""
    return "Content Security Policy" in console_text


def open_page(
    browser: Any,
    url: str,
    *,
    width: int = 900,
    height: int = 700,
    color_scheme: str | None = None,
    permissions: Sequence[str] = (),
    blocked: Callable[[str], bool] = policy_blocked,
) -> Any:
    """A new Playwright page at `url`, in its own browser context of `width` x `height` (and `color_scheme`, with
    `permissions` granted to the page's origin); script errors and the console messages `blocked` picks (content
    policy violations) are collected in `page.errors`."""
    options: dict[str, Any] = {"viewport": {"width": width, "height": height}}
    if color_scheme:
        options["color_scheme"] = color_scheme
    context = browser.new_context(**options)
    if permissions:
        parts = urlsplit(url)
        context.grant_permissions(list(permissions), origin=f"{parts.scheme}://{parts.netloc}")
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []

    def on_console(message: Any) -> None:
        if blocked(message.text):
            errors.append(message.text)

    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", on_console)
    page.goto(url)
    page.errors = errors
    return page


def not_blank(png: bytes) -> bool:
    """Whether a screenshot shows more than a background: many colours, none covering nearly everything."""
    from PIL import Image

    screenshot = Image.open(BytesIO(png)).convert("RGB")
    colours = screenshot.getcolors(maxcolors=1 << 20) or []
    return len(colours) > 20 and max(colours)[0] < 0.97 * screenshot.width * screenshot.height
