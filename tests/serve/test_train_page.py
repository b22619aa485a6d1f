"""The training page at `/train`, driven in headless Chromium as a user would: token, upload, a tiny 3-step run
started, watched to the end and linked to its run page; keyboard only; refusals shown in place; dark and phone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pixiu.serve.server import background_server
from pixiu.testing.web import open_page

from .helpers import ADMIN_TOKEN
from .test_train_jobs import TINY, child_sees_toy
from .test_web_page import blocked, not_blank

__all__ = ["child_sees_toy"]  # a fixture shared with the API tests


@pytest.fixture
def url(make_app, engine, child_sees_toy: str) -> Iterator[str]:
    """A real server on a loopback port whose children load the toy domain."""
    with background_server(make_app(engine)) as base_url:
        yield base_url


def open_train_page(browser, url: str, width: int = 1000, scheme: str = "light"):
    """A new context on the training page; script errors and policy violations collected in `page.errors`."""
    return open_page(browser, url + "/train", width=width, height=800, color_scheme=scheme, blocked=blocked)


def test_start_a_tiny_run_from_the_browser_and_watch_it_finish(
    browser, url: str, tiny_model_dir: Path, tmp_path: Path, pixiu_home: Path
) -> None:
    """A wrong token is explained in place; with the right one (typed and sent with the keyboard) the form lists
    the domains and the served base; an uploaded file becomes the data; Start runs 3 steps whose progress and
    output the page shows until it finishes, with a link to the run's page; a reload keeps watching it; a run
    interrupted in a terminal is offered for resuming."""
    from toy_domain import write_toy_data

    interrupted = pixiu_home / "runs" / "toy-20261201-000000"  # as a run interrupted in a terminal leaves it
    (interrupted / "checkpoints" / "step-00000001").mkdir(parents=True)
    (interrupted / "checkpoints" / "step-00000001" / "state.pt").write_bytes(b"")
    (interrupted / "pixiu_run.yaml").write_text("domain: toy\nstatus: training\n")
    page = open_train_page(browser, url)
    page.focus("#token")
    page.keyboard.type("wrong")
    page.keyboard.press("Enter")
    page.wait_for_selector("#error:not([hidden])")
    assert "admin token" in page.text_content("#error") and page.is_disabled("#start")

    page.fill("#token", ADMIN_TOKEN)
    page.press("#token", "Enter")
    page.wait_for_selector("#start:not([disabled])")
    assert page.is_hidden("#error")
    assert page.eval_on_selector_all("#domain option", "o => o.map(x => x.value)") == ["chat", "toy"]
    assert page.input_value("#base") == str(tiny_model_dir)  # the model this server serves
    assert page.input_value("#resume-run") == interrupted.name and page.is_enabled("#resume-chosen")
    page.select_option("#domain", "toy")
    assert page.text_content("#domain-help").startswith("test domain")

    page.set_input_files("#upload", str(write_toy_data(tmp_path / "toy.jsonl", 24)))
    page.wait_for_selector("#data option[value='uploads/toy.jsonl']:checked", state="attached")
    page.fill("#max-steps", "3")
    page.fill("#lora-r", "4")
    page.fill("#more-settings", "\n".join(TINY))
    sent = []
    page.on("request", lambda r: sent.append(r.post_data_json) if r.method == "POST" else None)
    page.focus("#start")
    page.keyboard.press("Enter")
    page.wait_for_selector("#job:not([hidden])")
    assert sent[0] == {
        "domain": "toy",
        "base": str(tiny_model_dir),
        "data": "uploads/toy.jsonl",
        "max_steps": 3,
        "lora_r": 4,
        "settings": TINY,
    }
    page.reload()  # the server owns the run: the page finds it again
    page.wait_for_selector("#start:not([disabled])")
    page.select_option("#domain", "toy")  # a choice made meanwhile survives the form's refresh when the run ends
    page.wait_for_selector("#job[data-status=finished]", timeout=120_000)
    status = page.text_content("#job-status")
    assert status.startswith("finished: step 3 of 3, loss ") and "tokens/s" in status
    assert "registered as 'toy'" in page.text_content("#job-log")
    name = page.evaluate("sessionStorage.getItem('pixiu.train.job')")
    assert (pixiu_home / "runs" / name / "adapter_model.safetensors").is_file()
    assert page.get_attribute("#run-link", "href") == f"runs?run={name}" and page.is_visible("#run-link")
    assert page.is_hidden("#cancel") and page.is_hidden("#resume")
    assert page.input_value("#domain") == "toy"
    assert page.locator("#jobs button[aria-current]").text_content().startswith(name)
    assert not_blank(page.screenshot(full_page=True))
    assert page.errors == []
    page.context.close()

    phone = open_train_page(browser, url, width=380, scheme="dark")  # the token stays in the tab it was given in
    assert phone.input_value("#token") == "" and phone.is_disabled("#start")
    background = phone.evaluate("getComputedStyle(document.documentElement).backgroundColor")
    assert background == "rgb(22, 25, 29)"  # chat.css's dark --bg
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 380 and not_blank(phone.screenshot(full_page=True))
    assert phone.errors == []
    phone.context.close()
