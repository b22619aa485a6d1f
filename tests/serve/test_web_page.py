"""The web chat page at `/`: served as package files, and driven in headless Chromium against a real server."""

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pixiu.serve.server import background_server
from pixiu.testing import web
from pixiu.testing.web import not_blank

from .helpers import ADMIN_TOKEN, MODELS, PROMPTS, call


def test_page_and_its_files_are_served(app) -> None:
    """GET / is the page (HTML, UTF-8, same-origin policy); its modules, style and vendored libraries come from
    /static, and no script of pixiu's own assigns HTML."""
    page = call(app, "GET", "/")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<select id="model"' in page.text and 'src="static/chat.js" type="module"' in page.text
    assert "<script>" not in page.text  # the policy forbids inline scripts anyway
    for name in ("chat.js", "api.js", "markdown.js", "store.js", "views.js"):
        script = call(app, "GET", f"/static/{name}")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        assert "innerHTML" not in script.text and "insertAdjacentHTML" not in script.text
    assert "v1/chat/completions" in call(app, "GET", "/static/api.js").text
    for name in ("marked.min.js", "purify.min.js", "marked.LICENSE", "dompurify.LICENSE", "VENDORED.md"):
        assert call(app, "GET", f"/static/vendor/{name}").status_code == 200
    style = call(app, "GET", "/static/chat.css")
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    missing = call(app, "GET", "/static/nope.js")
    assert missing.status_code == 404 and "error" in missing.json()
    assert call(app, "GET", "/static/../app.py").status_code == 404


@pytest.fixture
def url(make_app, engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real server on a loopback port, PIXIU_HOME in a temporary folder (votes land there)."""
    monkeypatch.setenv("PIXIU_HOME", str(tmp_path))
    with background_server(make_app(engine, default_max_tokens=16)) as base_url:
        yield base_url


def blocked(console_text: str) -> bool:
    """Whether a console message says the page's policy blocked something. Chromium also reports an `on…`
    attribute as a blocked "inline event handler" when DOMPurify's inert parser merely reads one in model output,
    before removing it; those are left out (that none survives is checked where the tests inject them)."""
    return web.policy_blocked(console_text) and "inline event handler" not in console_text


def open_page(browser, url: str, width: int = 900, height: int = 700):
    """A new browser context on the chat page, its model list loaded; clipboard allowed; script errors and
    content-security-policy violations collected in `page.errors`."""
    clipboard = ["clipboard-read", "clipboard-write"]
    page = web.open_page(browser, url + "/", width=width, height=height, permissions=clipboard, blocked=blocked)
    page.wait_for_selector("#model:not([disabled])")
    return page


@pytest.fixture
def page(browser, url: str) -> Iterator:
    """The chat page, open, with its model list loaded, answering greedily in at most 8 tokens; no script error."""
    page = open_page(browser, url)
    page.click("#settings summary")
    page.fill("#temperature", "0")
    page.fill("#max-tokens", "8")
    page.press("#max-tokens", "Tab")  # "change" fires when the field loses focus
    yield page
    assert page.errors == []
    page.context.close()


def ask(page, text: str) -> None:
    """Type `text`, press Enter, and wait until the answer has finished (or failed)."""
    page.fill("#input", text)
    page.press("#input", "Enter")
    page.wait_for_selector("#stop", state="hidden")


def chats(page) -> list[dict]:
    """The chats the page keeps in localStorage."""
    return page.evaluate("JSON.parse(localStorage.getItem('pixiu.chats')).chats")


def record_requests(page) -> list[dict]:
    """The bodies of the chat completions the page sends from now on."""
    sent: list[dict] = []
    page.on(
        "request",
        lambda request: sent.append(request.post_data_json) if request.url.endswith("/v1/chat/completions") else None,
    )
    return sent


def api_answer(url: str, model: str, messages: list[dict], max_tokens: int = 8) -> str:
    """The server's whole (greedy) answer to `messages`, asked directly through the API."""
    body = {"model": model, "messages": messages, "max_tokens": max_tokens}
    response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]["message"]["content"]


def sse(pieces: list[str]) -> str:
    """A streamed chat completion of `pieces`, as server-sent events."""
    chunks = [{"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]} for piece in pieces]
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"


def test_chat_regenerate_edit_and_history(page, url: str) -> None:
    """Controls and the system prompt are sent; answers match the API's; regenerate and edit-and-resend resend
    the right history; the chat survives a reload and exports as JSON; copy copies; screenshots are not blank."""
    sent = record_requests(page)
    options = page.eval_on_selector_all("#model option", "options => options.map(o => o.value)")
    assert options == MODELS and page.input_value("#model") == "law"  # opens on the first adapter
    page.select_option("#model", "zhihu")
    page.fill("#system", "简要回答。")

    ask(page, PROMPTS[0])
    assert page.is_hidden("#error")
    first = [{"role": "system", "content": "简要回答。"}, {"role": "user", "content": PROMPTS[0]}]
    sampling = {"temperature": 0, "top_p": 0.95, "max_tokens": 8}
    assert sent == [{"model": "zhihu", "messages": first, **sampling, "stream": True}]
    answer = chats(page)[0]["messages"][1]
    assert answer["content"] == api_answer(url, "zhihu", first) and answer["state"] == "done"
    assert answer["finish"] == "length"  # max_tokens 8 cut it (the API default here is 16)
    assert page.get_attribute(".msg.assistant", "data-finish") == "length"
    assert page.text_content(".msg.user .text") == PROMPTS[0] and page.get_attribute(".msg.user .text", "lang") == "zh"
    assert page.text_content(".msg.assistant .who") == "zhihu"

    ask(page, PROMPTS[2])  # the second turn carries the whole conversation
    history = [*first, {"role": "assistant", "content": answer["content"]}, {"role": "user", "content": PROMPTS[2]}]
    assert sent[1]["messages"] == history
    second = chats(page)[0]["messages"][3]["content"]
    assert second == api_answer(url, "zhihu", history)

    page.click(".msg.assistant >> nth=1 >> text=Regenerate")
    page.wait_for_selector("#stop", state="hidden")
    assert len(sent) == 3 and sent[2]["messages"] == history
    assert [m["role"] for m in chats(page)[0]["messages"]] == ["user", "assistant"] * 2
    assert page.locator("text=Regenerate").count() == 1  # only on the last answer

    page.click(".msg.user >> nth=0 >> text=Edit")
    assert page.input_value("#input") == PROMPTS[0] and page.is_visible("#editing")
    ask(page, PROMPTS[4])
    assert sent[3]["messages"] == [first[0], {"role": "user", "content": PROMPTS[4]}]
    kept = chats(page)[0]["messages"]
    assert kept[0]["content"] == PROMPTS[4] and len(kept) == 2 and page.is_hidden("#editing")

    page.click(".msg.assistant .actions >> text=Copy")
    assert page.evaluate("navigator.clipboard.readText()") == kept[1]["content"]
    assert not_blank(page.screenshot())

    page.reload()
    page.wait_for_selector("#model:not([disabled])")
    assert page.locator(".msg").count() == 2 and page.input_value("#model") == "zhihu"
    assert page.input_value("#system") == "简要回答。" and page.input_value("#max-tokens") == "8"
    with page.expect_download() as download:
        page.click("#export")
    exported = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert [m["content"] for m in exported[0]["messages"]] == [m["content"] for m in kept]

    page.set_viewport_size({"width": 390, "height": 780})  # a phone
    assert not_blank(page.screenshot())
    page.emulate_media(color_scheme="dark")
    assert not_blank(page.screenshot())
    page.click("#clear")
    assert page.locator(".msg").count() == 0 and chats(page)[0]["messages"] == []


def test_markdown_is_rendered_and_injected_html_stays_inert(page) -> None:
    """An answer's Markdown (heading, code block, link) is drawn; its scripts, handlers and javascript: links
    are stripped, and a question's HTML is shown as text."""
    markdown = (
        "# Title\n\nSome **bold** text.\n\n```python\nprint(1)\n```\n\n"
        '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>[link](javascript:window.pwned=3)'
    )
    stream = sse([markdown[i : i + 7] for i in range(0, len(markdown), 7)])  # streamed in small pieces
    page.route(
        "**/v1/chat/completions",
        lambda route: route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body=stream),
    )
    ask(page, '<b>hi</b><img src=x onerror="window.pwned=4">')
    answer = page.locator(".msg.assistant .text")
    assert answer.locator("h1").text_content() == "Title" and answer.locator("strong").text_content() == "bold"
    assert answer.locator("pre code").text_content() == "print(1)\n"
    assert answer.locator(".code > button").text_content() == "Copy code"
    assert answer.locator("script").count() == 0 and answer.locator("img[onerror]").count() == 0
    assert (answer.locator("a").get_attribute("href") or "").startswith("javascript") is False
    assert page.text_content(".msg.user .text") == '<b>hi</b><img src=x onerror="window.pwned=4">'
    assert page.locator(".msg.user b").count() == 0
    page.click("a >> text=link")
    assert page.evaluate("window.pwned") is None


def test_waiting_stop_and_labels(page) -> None:
    """Until the first piece arrives the answer says it is waiting (with the server's queue); Stop before any
    piece gives the question back; every control has a label, and Tab reaches the composer's buttons."""
    held: list = []
    page.route("**/v1/chat/completions", lambda route: held.append(route))
    page.fill("#input", "hello")
    page.press("#input", "Enter")
    page.wait_for_selector(".msg.assistant[data-state=waiting] .waiting:has-text('queued')")  # polled /health
    assert page.text_content(".waiting").startswith("Waiting for the server… (0 queued")
    held[0].fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body=sse(["Hi ", "there"]))
    page.wait_for_selector("#stop", state="hidden")
    assert page.inner_text(".msg.assistant .text") == "Hi there" and page.locator(".waiting").count() == 0

    page.fill("#input", "again")
    page.press("#input", "Enter")
    page.wait_for_selector(".msg.assistant >> nth=1 >> .waiting")
    page.click("#stop")
    page.wait_for_selector("#stop", state="hidden")
    assert page.locator(".msg").count() == 2 and page.input_value("#input") == "again" and page.is_hidden("#error")

    unlabelled = page.evaluate(
        """[...document.querySelectorAll("input, select, textarea, button")]
        .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute("aria-label") && !e.textContent.trim())
        .map((e) => e.id || e.outerHTML)"""
    )
    assert unlabelled == []
    page.focus("#input")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "send"


def test_switching_model_never_carries_history(page) -> None:
    """Each chat is bound to its model: switching starts a chat of the other model, switching back selects the
    first one again, and no request mixes their histories."""
    sent = record_requests(page)
    ask(page, PROMPTS[3])
    page.select_option("#model", "medical")
    assert page.locator(".msg").count() == 0
    ask(page, PROMPTS[5])
    assert sent[1] == {**sent[1], "model": "medical", "messages": [{"role": "user", "content": PROMPTS[5]}]}
    assert [(c["model"], len(c["messages"])) for c in chats(page)] == [("medical", 2), ("law", 2)]
    page.click("#chats li:nth-child(2) .open")  # the law chat, from the list
    assert page.input_value("#model") == "law" and page.text_content(".msg.user .text") == PROMPTS[3]
    page.click("#chats li:nth-child(1) .delete")
    assert [c["model"] for c in chats(page)] == ["law"]


def test_errors_are_shown_in_place(page, url: str) -> None:
    """A 404 (adapter unloaded meanwhile) keeps the chat and picker on that model; a 429 offers Retry; a network
    failure is explained; each time the question is given back."""
    page.select_option("#model", "medical")
    unloaded = httpx.delete(f"{url}/v1/adapters/medical", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert unloaded.status_code == 200
    ask(page, "你好")
    error = page.text_content("#error-text")
    assert error.startswith("Error 404: the model 'medical' does not exist") and "stays with medical" in error
    assert page.input_value("#input") == "你好" and page.locator(".msg").count() == 0
    page.wait_for_selector("#model option:text('medical (unavailable)')", state="attached")  # refreshed, kept
    assert page.input_value("#model") == "medical" and chats(page)[0]["model"] == "medical"
    page.select_option("#model", "law")

    busy = {"error": {"message": "too many requests are waiting", "type": "rate_limit_error", "code": "queue_full"}}
    page.route(
        "**/v1/chat/completions", lambda route: route.fulfill(status=429, headers={"Retry-After": "1"}, json=busy)
    )
    ask(page, "你好")
    busy_text = "The server is busy (429): too many requests are waiting. Try again in 1 s."
    assert page.text_content("#error-text") == busy_text
    page.unroute("**/v1/chat/completions")
    page.click("#retry")
    page.wait_for_selector(".msg.assistant[data-state=done]")
    assert page.is_hidden("#error") and page.input_value("#input") == ""

    page.route("**/v1/chat/completions", lambda route: route.abort())
    ask(page, "再见")
    assert page.text_content("#error-text").startswith("Network error: the server could not be reached")
    assert page.input_value("#input") == "再见" and page.locator(".msg").count() == 2
    before = chats(page)[0]["messages"]
    page.click("text=Regenerate")  # fails too: the answer there was stays
    page.wait_for_selector("#stop", state="hidden")
    assert page.is_visible("#error") and chats(page)[0]["messages"] == before


def test_compare_streams_side_by_side_and_a_vote_writes_a_pair(page, url: str, tmp_path: Path) -> None:
    """Compare asks two adapters together; voting A writes a pair that pixiu's DPO reader loads."""
    from pixiu.preference import load_preferences
    from pixiu.serve.pairs import PAIRS_FILE
    from toy_domain import TOY

    sent = record_requests(page)
    page.check("#compare-mode")
    checked = page.eval_on_selector_all("#compare-choices input:checked", "boxes => boxes.map(b => b.value)")
    assert checked == ["base", "law"]  # the base and the picked adapter, unless changed
    page.uncheck("#compare-choices input[value=base]")  # the tiny base only answers blank lines
    page.check("#compare-choices input[value=zhihu]")
    ask(page, PROMPTS[1])
    assert sorted(body["model"] for body in sent) == ["law", "zhihu"]
    prompt = [{"role": "user", "content": PROMPTS[1]}]
    assert all(body["messages"] == prompt for body in sent)
    columns = page.locator(".columns .msg")
    assert columns.count() == 2 and columns.nth(1).locator(".who").text_content() == "B · zhihu"
    turn = chats(page)[0]["turns"][0]
    answers = {model: turn["answers"][model]["content"] for model in ("law", "zhihu")}
    assert answers == {model: api_answer(url, model, prompt) for model in answers}
    page.click("text=A is better")
    page.wait_for_selector(".vote:has-text('saved to')")
    pairs = load_preferences(tmp_path / PAIRS_FILE, TOY, data_format="auto").items
    assert [(p.prompt, p.chosen, p.rejected) for p in pairs] == [(prompt, answers["law"], answers["zhihu"])]
    assert page.locator(".vote button").count() == 0  # one vote per question

    ask(page, PROMPTS[5])
    page.click(".turn >> nth=1 >> text=Tie")
    assert page.text_content(".turn >> nth=1 >> .vote").startswith("Tie: a tie teaches no preference")
    assert len((tmp_path / PAIRS_FILE).read_text(encoding="utf-8").splitlines()) == 1


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
