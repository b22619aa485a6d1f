"""`pixiu domain crawl law` as pixiu runs it: the law spider against a local server serving saved pages.

Scrapy's reactor runs once per process, so each crawl runs in a subprocess. Only loopback traffic.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from pixiu.testing.loopback import QuietFileHandler, crawl_in_subprocess, serving

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def site() -> Iterator[str]:
    """Serve the law fixtures on 127.0.0.1 at a free port; yield the first list page's URL."""
    handler = functools.partial(QuietFileHandler, directory=str(FIXTURES))
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), handler)) as url:
        yield url + "/spp/jczdal/index.shtml"


def crawl(output: Path, start_url: str, job_dir: Path) -> dict:
    """Run one law crawl in a fresh interpreter and return its summary."""
    return crawl_in_subprocess("pixiu_law", output, {"start_url": start_url}, job_dir)


def test_crawl_law_fixtures_then_resume(site: str, tmp_path: Path) -> None:
    from pixiu_law.formatter import format_record

    output = tmp_path / "data" / "law" / "raw.jsonl"
    summary = crawl(output, site, tmp_path / "job")
    assert summary["errors"] == [] and summary["finish"] == {"spp_guiding_cases": "finished"}
    assert summary["scraped"] == 3
    assert summary["dropped"] == {
        "missing facts: the case has no 【基本案情】 section": 1,
        "no charge: neither the title nor the keywords name a known charge": 1,
        "duplicate case: already crawled": 1,
    }
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert sorted((r["case_number"], tuple(r["meta"]["accusation"])) for r in rows) == [
        ("检例第901号", ("诈骗",)),
        ("检例第902号", ("危险驾驶",)),
        ("检例第903号", ("盗窃", "诈骗")),
    ]
    assert all(r["url"].startswith(site.rsplit("/", 1)[0]) and r["title"] and r["fact"] for r in rows)
    for row in rows:
        assert format_record(row).messages[-1]["content"] == "罪名：" + "；".join(row["meta"]["accusation"])

    again = crawl(output, site, tmp_path / "job")  # same job folder: pages already seen are skipped
    assert again["scraped"] == 0 and again["errors"] == []
    assert len(output.read_text(encoding="utf-8").splitlines()) == 3  # appended to, never truncated
