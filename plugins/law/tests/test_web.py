"""The law vertical's case form (`register_web_pages`): registered, served, and driven in headless Chromium.

The tiny random adapter proves the plumbing (prompt, answer, parse, highlight), not the quality of any answer."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from pixiu.plugins import get_web_pages
from pixiu.testing.web import browser, not_blank, open_page, random_adapter, served  # noqa: F401  (browser: a fixture)
from pixiu_law.formatter import SYSTEM_PROMPT

FACT = "被告人张某于2018年3月在某超市窃取手机一部，价值3000元。"


@pytest.fixture
def url(law_entry_point, tiny_model_dir: Path, tmp_path: Path):
    """The server with a random adapter served as "law", the law plugin loaded from its entry point."""
    with served(tiny_model_dir, {"law": random_adapter(tiny_model_dir, tmp_path / "law")}) as url:
        yield url


def test_the_case_form_is_registered_and_served(url: str) -> None:
    assert get_web_pages()["law"].title == "案情 → 罪名"
    listed = httpx.get(f"{url}/v1/pages").json()["data"]
    assert {"name": "law", "title": "案情 → 罪名", "url": "plugins/law/", "lang": "zh"} in listed
    page = httpx.get(f"{url}/plugins/law/")
    assert (
        page.status_code == 200
        and 'lang="zh"' in page.text
        and "default-src 'self'" in page.headers["content-security-policy"]
    )
    assert httpx.get(f"{url}/plugins/law/static/case.js").status_code == 200
    prompt = httpx.post(f"{url}/plugins/law/api/prompt", json={"fact": FACT}).json()
    assert prompt[0] == {"role": "system", "content": SYSTEM_PROMPT} and FACT in prompt[1]["content"]
    parsed = httpx.post(f"{url}/plugins/law/api/parse", json={"text": "罪名：盗窃；诈骗"}).json()
    assert parsed == {"charges": ["盗窃", "诈骗"], "articles": [], "term": None}
    assert httpx.post(f"{url}/plugins/law/api/prompt", json={"fact": ""}).status_code == 400


def test_the_case_form_answers_and_highlights_the_parsed_charges(browser, url: str) -> None:  # noqa: F811
    page = open_page(browser, f"{url}/plugins/law/")
    page.wait_for_selector("#model:not([disabled])")
    assert page.input_value("#model") == "law"
    page.fill("#fact", FACT)
    page.click("#submit")
    page.wait_for_selector("#result:not([hidden])")
    assert page.text_content("#answer") != ""  # whatever the random adapter says, it arrived through the page
    # a known answer, to check what the page does with the charges the parser reads
    answer = {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "罪名：盗窃\n理由：秘密窃取。"},
                "finish_reason": "stop",
            }
        ]
    }
    page.route("**/v1/chat/completions", lambda route: route.fulfill(json=answer))
    page.click("#submit")
    page.wait_for_selector("#answer:has-text('秘密窃取')")
    assert page.inner_text("#answer mark") == "盗窃" and page.inner_text("#charges") == "盗窃"
    assert not_blank(page.screenshot())
    gone = {"error": {"message": "model 'law' is not loaded", "type": "invalid_request_error"}}
    page.unroute("**/v1/chat/completions")
    page.route("**/v1/chat/completions", lambda route: route.fulfill(status=404, json=gone))
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])")
    assert (
        page.text_content("#error")
        == "Error 404: model 'law' is not loaded. Load law on the server, or pick another model."
    )
    assert page.is_enabled("#submit") and page.input_value("#fact") == FACT  # the facts stay, to send again
    assert page.errors == []
    page.context.close()
