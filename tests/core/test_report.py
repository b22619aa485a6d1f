"""The before/after report: built from a hand-written run folder, escaped, self-contained, and rebuilt by command."""

import base64
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from hand_run import write_hand_run
from pixiu.cli import cli
from pixiu.report import write_report

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package, as tests/serve/test_web_page.py uses it
HOSTILE = '<script>alert("x")</script> & 红'
"""A gold answer that must show as text, never as markup."""


def charts(html: str) -> list[bytes]:
    """The decoded inline PNGs of a report."""
    return [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)]


def test_report_of_a_hand_written_run(tmp_path):
    run_dir = write_hand_run(tmp_path / "run", gold_of_first=HOSTILE)
    html = write_report(run_dir).read_text(encoding="utf-8")
    assert "<h1>toy · sft · run</h1>" in html and "tiny-base" in html
    assert "5.0 s over 10 logged steps" in html and "1,000" in html and "0.5 GiB (peak_rss)" in html
    assert re.search(r"<th>exact_match</th><td[^>]*>0\.000</td><td[^>]*>40\.000</td>", html)
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; 红" in html and "<script" not in html
    assert "盒子0是什么颜色？" in html and "adapter 4" in html
    assert "forgetting probe was not run" in html and "LLM judge" not in html
    images = charts(html)
    assert len(images) == 2 and all(png.startswith(b"\x89PNG\r\n\x1a\n") for png in images)  # loss, scores
    links = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', html)
    assert links and all(link.startswith("data:image/png;base64,") for link in links)
    assert "http://" not in html and "https://" not in html and "@import" not in html


def test_report_shows_the_forgetting_probe(tmp_path):
    import json

    run_dir = write_hand_run(tmp_path / "run")
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    probe = {"nll_per_token": 2.5, "rouge_l": 30.0, "contains_answer": 25.0}
    metrics["general"] = {"records": 40, "data": "bundled", "seconds": 1.0, "base": probe, "adapter": probe}
    (run_dir / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    html = write_report(run_dir).read_text(encoding="utf-8")
    assert "40 questions from pixiu&#39;s bundled general set" in html
    assert re.search(r"<th>nll_per_token</th><td[^>]*>2\.500</td><td[^>]*>2\.500</td>", html)
    assert len(charts(html)) == 2  # the loss curve; one chart of every score


def test_report_command_rebuilds_it_from_any_run_folder(tmp_path):
    run_dir = write_hand_run(tmp_path / "run")
    (run_dir / "adapter_config.json").unlink()  # a run that saved no adapter still has a report
    result = CliRunner().invoke(cli, ["adapters", "report", str(run_dir)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (
        result.output.strip() == str(run_dir / "report.html") and "exact_match" in (run_dir / "report.html").read_text()
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(cli, ["adapters", "report", str(empty)])
    assert result.exit_code != 0 and "neither pixiu_run.yaml nor metrics.json" in result.output


def test_report_renders_in_chromium(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    from io import BytesIO

    from PIL import Image

    report = write_report(write_hand_run(tmp_path / "run", gold_of_first=HOSTILE))
    requested = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"])
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        page.on("request", lambda request: requested.append(request.url))
        page.goto(report.as_uri())
        loaded = page.evaluate("[...document.images].every(img => img.complete && img.naturalWidth > 0)")
        dialogs = page.evaluate("typeof window.alert")  # the escaped script never ran: nothing replaced alert
        shot = Image.open(BytesIO(page.screenshot(full_page=True))).convert("L")
        browser.close()
    assert loaded and dialogs == "function"
    assert all(url.startswith(("file:", "data:")) for url in requested)
    low, high = shot.getextrema()
    assert high - low > 100  # text and charts on the page, not a blank one
