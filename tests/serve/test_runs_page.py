"""The runs pages at /runs in headless Chromium against a real server, on fabricated run folders: the list, a
run's page with its chart and predictions, the comparison, a live training's curve, and a 404 in place."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from pixiu.files import locked
from pixiu.paths import runs_dir
from pixiu.serve import runs_api
from pixiu.serve.server import background_server
from pixiu.testing.web import open_page
from run_folders import append_log, fake_run

from .test_web_page import blocked, not_blank


@pytest.fixture
def url(make_app, engine, pixiu_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real server on a loopback port over the test's PIXIU_HOME, its live stream polling quickly."""
    monkeypatch.setattr(runs_api, "POLL_SECONDS", 0.05)
    with background_server(make_app(engine)) as base_url:
        yield base_url


@pytest.fixture
def open_runs(browser) -> Iterator:
    """`open_runs(url)`: a new page on `url`, collecting script errors and policy violations in `page.errors`;
    none may remain at the end."""
    pages = []

    def open_(url: str, width: int = 1000, height: int = 800):
        page = open_page(browser, url, width=width, height=height, blocked=blocked)
        pages.append(page)
        return page

    yield open_
    for page in pages:
        assert page.errors == []
        page.context.close()


def curve_points(page, canvas: str) -> list[int]:
    """How many points each line of a chart holds, read from Chart.js."""
    return page.evaluate(f"Chart.getChart(document.getElementById('{canvas}')).data.datasets.map(d => d.data.length)")


def test_list_and_a_runs_page_with_its_chart_and_predictions(url: str, open_runs) -> None:
    fake_run(runs_dir() / "law-1", steps=6, predictions=13)
    fake_run(runs_dir() / "law-2", status="training", checkpoint=True)
    page = open_runs(url + "/runs")
    page.wait_for_selector("#runs tbody tr")
    rows = page.eval_on_selector_all("#runs tbody tr", "rows => rows.map(r => [r.dataset.id, r.dataset.status])")
    assert sorted(rows) == [["law-1", "finished"], ["law-2", "interrupted"]]
    assert "exact_match 0.00 → 0.50" in page.text_content("#runs tr[data-id=law-1]")
    page.fill("#filter", "interrupted")
    assert page.locator("#runs tbody tr").count() == 1
    assert not_blank(page.screenshot())

    page.fill("#filter", "")
    page.focus("#runs tr[data-id=law-1] a")
    page.keyboard.press("Enter")  # the keyboard opens a run
    page.wait_for_selector("#run-view:not([hidden])")
    assert page.text_content("#run-title") == "law-1" and page.text_content("#run-status") == "finished"
    assert curve_points(page, "run-chart") == [6]
    assert "loss 2.500 at step 1 to 0.000 at step 6" in page.get_attribute("#run-chart", "aria-label")
    chart = page.locator("#run-view .chart").screenshot()
    assert not_blank(chart)
    assert page.text_content("#page-note") == "1–10 of 13"
    page.click("#next")
    page.wait_for_selector("#page-note:has-text('11–13 of 13')")
    cells = page.eval_on_selector_all("#predictions tbody tr >> nth=0 >> td", "cells => cells.map(c => c.textContent)")
    assert cells == ["q10", "a10", "b10", "x10"] and page.is_disabled("#next")
    tick_colour = "Chart.getChart(document.getElementById('run-chart')).options.scales.x.ticks.color"
    light = page.evaluate(tick_colour)
    page.emulate_media(color_scheme="dark")
    for _ in range(50):  # the media change reaches the page's listener a moment later
        if page.evaluate(tick_colour) != light:
            break
        page.wait_for_timeout(100)
    assert page.evaluate(tick_colour) != light  # the chart follows dark mode
    assert not_blank(page.screenshot()) and page.locator("#run-view .chart").screenshot() != chart
    page.set_viewport_size({"width": 390, "height": 780})  # a phone
    assert not_blank(page.screenshot())


def test_compare_puts_curves_scores_and_differing_settings_together(url: str, open_runs) -> None:
    fake_run(runs_dir() / "a", lr=1e-3, steps=4)
    fake_run(runs_dir() / "b", lr=2e-4, steps=3, scores={"adapter": {"exact_match": 0.75}})
    fake_run(runs_dir() / "c")
    page = open_runs(url + "/runs")
    page.wait_for_selector("#runs tbody tr")
    assert page.is_disabled("#compare")
    for run in ("a", "b"):
        page.focus(f"#runs tr[data-id={run}] input[type=checkbox]")
        page.keyboard.press("Space")
    page.click("#compare")
    page.wait_for_selector("#compare-view:not([hidden])")
    assert curve_points(page, "compare-chart") == [4, 3]
    assert page.eval_on_selector_all("#compare-config tbody td", "cells => cells.map(c => c.textContent)") == [
        "0.001",
        "0.0002",
    ]
    assert page.text_content("#compare-config tbody th") == "train.lr"
    assert "0.7500" in page.text_content("#compare-scores")
    assert not_blank(page.locator("#compare-view .chart").screenshot())
    for control in page.query_selector_all("input, button, select"):  # every control is labelled
        assert control.evaluate("c => c.labels?.length > 0 || !!c.getAttribute('aria-label') || !!c.textContent")


def test_a_training_runs_curve_grows_live_and_stops(url: str, open_runs) -> None:
    """A run another process trains (only its files are shared, as with a terminal run) streams its new steps into
    the page; when its lock is released, the page says how it ended."""
    folder = fake_run(runs_dir() / "live", status="training", steps=2, checkpoint=True)
    with locked(folder / ".pixiu.lock", blocking=False):
        page = open_runs(url + "/runs?run=live")
        page.wait_for_selector("#run-live:has-text('step 2')")
        assert page.text_content("#run-status") == "training" and curve_points(page, "run-chart") == [2]
        append_log(folder, 3, 1.2)
        append_log(folder, 4, 0.9)
        page.wait_for_selector("#run-live:has-text('step 4 of 10, loss 0.9000')")
        assert curve_points(page, "run-chart") == [4]
    page.wait_for_selector("#run-live:has-text('stopped: interrupted')")
    assert page.text_content("#run-status") == "interrupted"


def test_an_unknown_run_is_explained_in_place(url: str, open_runs) -> None:
    page = open_runs(url + "/runs?run=law-gone")
    page.wait_for_selector("#error:not([hidden])")
    assert page.text_content("#error").startswith("Error 404: no run 'law-gone' under ")
    page = open_runs(url + "/runs?run=..%2Fadapters.json")  # a path is no run name: nothing is read
    page.wait_for_selector("#error:not([hidden])")
    assert page.text_content("#error") == "Error 404: Not Found" and page.is_hidden("#run-view")
