"""The web chat page at `/`: served as package files, and driven in headless Chromium against a real server."""

from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import httpx
import pytest

from pixiu.serve.server import background_server

from .helpers import ADMIN_TOKEN, MODELS, PROMPTS, call

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; CI installs it (.ci/run)
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


def test_page_and_its_files_are_served(app) -> None:
    """GET / is the page (HTML, UTF-8, same-origin policy); its script and style come from /static."""
    page = call(app, "GET", "/")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<select id="model"' in page.text and 'src="static/chat.js"' in page.text
    script, style = call(app, "GET", "/static/chat.js"), call(app, "GET", "/static/chat.css")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "v1/chat/completions" in script.text and "innerHTML" not in script.text
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    missing = call(app, "GET", "/static/nope.js")
    assert missing.status_code == 404 and "error" in missing.json()
    assert call(app, "GET", "/static/../app.py").status_code == 404


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """Headless Chromium through Playwright, once per module; skips when either is missing."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def url(make_app, engine) -> Iterator[str]:
    """A real server on a loopback port; answers default to 16 tokens, which the page does not override."""
    with background_server(make_app(engine, default_max_tokens=16)) as base_url:
        yield base_url


@pytest.fixture
def page(browser, url: str) -> Iterator:
    """The chat page, open, with its model list loaded."""
    context = browser.new_context(viewport={"width": 900, "height": 700})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(url + "/")
    page.wait_for_selector("#model:not([disabled])")
    yield page
    context.close()


def ask(page, text: str) -> None:
    """Type `text`, press Enter, and wait until the answer has finished (or failed)."""
    page.fill("#input", text)
    page.press("#input", "Enter")
    page.wait_for_selector("#stop", state="hidden")


def api_answer(url: str, model: str, messages: list[dict]) -> str:
    """The server's whole (greedy) answer to `messages`, asked directly through the API."""
    response = httpx.post(f"{url}/v1/chat/completions", json={"model": model, "messages": messages}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]["message"]["content"]


def test_chat_in_the_browser(page, url: str) -> None:
    """Pick an adapter, get its greedy answer streamed in, ask again with the history, see it drawn, clear."""
    sent = []
    page.on(
        "request",
        lambda request: sent.append(request.post_data_json) if request.url.endswith("/v1/chat/completions") else None,
    )
    options = page.eval_on_selector_all("#model option", "options => options.map(o => o.value)")
    assert options == MODELS and page.input_value("#model") == "law"  # opens on the first adapter
    page.select_option("#model", "zhihu")

    ask(page, PROMPTS[0])
    assert page.is_hidden("#error")
    first = [{"role": "user", "content": PROMPTS[0]}]
    assert sent == [{"model": "zhihu", "messages": first, "stream": True}]
    answer = page.text_content(".msg.assistant .text")
    assert answer and answer == api_answer(url, "zhihu", first)
    assert page.text_content(".msg.user .text") == PROMPTS[0]
    assert page.get_attribute(".msg.assistant", "data-state") == "done"
    assert page.eval_on_selector(".msg.assistant .text", "text => text.childNodes.length") > 1  # came in pieces
    assert page.text_content(".msg.assistant .who") == "zhihu"

    ask(page, PROMPTS[2])  # the second turn carries the whole conversation
    history = [*first, {"role": "assistant", "content": answer}, {"role": "user", "content": PROMPTS[2]}]
    assert sent[1] == {"model": "zhihu", "messages": history, "stream": True}
    answers = page.locator(".msg.assistant .text").all_text_contents()
    assert len(answers) == 2 and answers[1] == api_answer(url, "zhihu", history)

    from PIL import Image

    screenshot = Image.open(BytesIO(page.screenshot())).convert("RGB")
    colours = screenshot.getcolors(maxcolors=1 << 20)
    background = max(colours)[0]
    assert len(colours) > 20 and background < 0.97 * screenshot.width * screenshot.height

    page.click("#clear")
    assert page.locator(".msg").count() == 0


def test_errors_are_shown_and_the_question_kept(page, url: str) -> None:
    """A 404 (adapter unloaded meanwhile), a 429 and a network failure are shown; the question is given back."""
    page.select_option("#model", "medical")
    unloaded = httpx.delete(f"{url}/v1/adapters/medical", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert unloaded.status_code == 200
    ask(page, "你好")
    assert "Error 404: the model 'medical' does not exist" in page.text_content("#error")
    assert page.input_value("#input") == "你好" and page.locator(".msg").count() == 0
    page.wait_for_selector("#model option:nth-child(3):last-child", state="attached")  # the list was refreshed
    assert page.input_value("#model") == "law"

    busy = {"error": {"message": "too many requests are waiting", "type": "rate_limit_error", "code": "queue_full"}}
    page.route(
        "**/v1/chat/completions", lambda route: route.fulfill(status=429, headers={"Retry-After": "1"}, json=busy)
    )
    ask(page, "你好")
    assert page.text_content("#error") == ("The server is busy (429): too many requests are waiting. Try again in 1 s.")
    page.unroute("**/v1/chat/completions")

    page.route("**/v1/chat/completions", lambda route: route.abort())
    ask(page, "你好")
    assert page.text_content("#error").startswith("Network error: the server could not be reached")
    assert page.input_value("#input") == "你好" and page.locator(".msg").count() == 0


def test_the_page_offers_no_reward_model(browser, make_app, engine, rm_dir) -> None:
    """A reward model only scores (POST /v1/score), so the page's picker leaves it out."""
    engine.load_adapter("zhihu-rm", rm_dir)
    with background_server(make_app(engine)) as base_url:
        assert "zhihu-rm" in [m["id"] for m in httpx.get(f"{base_url}/v1/models").json()["data"]]
        context = browser.new_context()
        page = context.new_page()
        page.goto(base_url + "/")
        page.wait_for_selector("#model:not([disabled])")
        assert page.eval_on_selector_all("#model option", "options => options.map(o => o.value)") == MODELS
        context.close()
