"""`pixiu.crawl.run_crawl` with a toy spider on a loopback site: polite settings, dedupe, robots.txt, summary."""

import functools
import json
import os
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from scrapy.exceptions import DropItem

from pixiu.crawl import POLITE_SETTINGS, DedupePipeline
from pixiu.testing.loopback import QuietFileHandler, crawl_in_subprocess, serving

TESTS = Path(__file__).resolve().parents[1]
PAGES = {
    "robots.txt": "User-agent: *\nDisallow: /private/\n",
    "index.html": '<ul><li data-id="1">一</li><li data-id="2">二</li></ul><a class="next" href="page2.html">next</a>',
    "page2.html": (
        '<ul><li data-id="2">二again</li><li>三</li><li>三</li></ul><a class="next" href="private/x.html">x</a>'
    ),
}


@pytest.fixture
def site(tmp_path, monkeypatch):
    root = tmp_path / "site"
    (root / "private").mkdir(parents=True)
    for name, body in PAGES.items():
        (root / name).write_text(body, encoding="utf-8")
    (root / "private" / "x.html").write_text("<li data-id='9'>秘</li>", encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    handler = functools.partial(QuietFileHandler, directory=str(root))
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), handler)) as url:
        yield url + "/index.html"


def test_crawl_dedupes_obeys_robots_txt_and_reports(site, tmp_path):
    output = tmp_path / "raw.jsonl"
    summary = crawl_in_subprocess("toy_crawler", output, {"start_url": site}, tmp_path / "job")
    assert summary["finish"] == {"toy_entries": "finished"} and summary["scraped"] == 3
    assert summary["dropped"] == {"duplicate entry: already crawled": 2}  # id 2 twice, 三 twice
    assert summary["errors"] == ["toy_entries: 1 requests refused by the site's robots.txt"]
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in rows] == ["一", "二", "三"]


def test_polite_settings_are_polite():
    assert POLITE_SETTINGS["ROBOTSTXT_OBEY"] and POLITE_SETTINGS["CONCURRENT_REQUESTS_PER_DOMAIN"] == 1
    assert POLITE_SETTINGS["DOWNLOAD_DELAY"] >= 1 and POLITE_SETTINGS["AUTOTHROTTLE_ENABLED"]
    assert POLITE_SETTINGS["RETRY_TIMES"] >= 1 and "robots.txt" in POLITE_SETTINGS["USER_AGENT"]


def test_dedupe_keeps_its_keys_in_the_spiders_persisted_state():
    class ById(DedupePipeline):
        key_fields = ("id", "text")
        state_key = "seen"

    spider = type("Spider", (), {"state": {}})()
    crawler = type("Crawler", (), {"spider": spider})()
    ById.from_crawler(crawler).process_item({"id": "1"})
    ById.from_crawler(crawler).process_item({"text": "长" * 100})
    assert len(spider.state["seen"]) == 2 and "1" in spider.state["seen"]  # long keys kept as their SHA-1
    with pytest.raises(DropItem, match="duplicate item"):  # a resumed crawl starts from the same state
        ById.from_crawler(crawler).process_item({"id": "1"})
    assert ById().process_item({"other": 1}) == {"other": 1}  # no key: passed on unchanged
