"""`pixiu.crawl.run_crawl` end to end: the law spider against a local server serving saved pages.

Scrapy's reactor runs once per process, so each crawl runs in a subprocess. Only loopback traffic.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "law" / "fixtures"

CRAWL = """
import json, sys
from pathlib import Path
from pixiu_law import plugin
from pixiu.crawl import run_crawl

domains = []
plugin.register_domains(register=domains.append)
summary = run_crawl(domains[0], Path(sys.argv[1]), {"start_url": sys.argv[2]}, job_dir=Path(sys.argv[3]))
print(json.dumps({"scraped": summary.items_scraped, "dropped": summary.items_dropped, "errors": summary.errors,
                  "finish": summary.finish_reasons, "text": summary.describe()}, ensure_ascii=False))
"""


class _QuietHandler(SimpleHTTPRequestHandler):
    """Serve files without logging every request to stderr."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass


@pytest.fixture
def site() -> Iterator[str]:
    """Serve the law fixtures on 127.0.0.1 at a free port; yield the first list page's URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(FIXTURES)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/spp/jczdal/index.shtml"
    finally:
        server.shutdown()
        server.server_close()


def crawl(output: Path, start_url: str, job_dir: Path) -> dict:
    """Run one crawl in a fresh interpreter and return its summary."""
    env = {**os.environ, "PIXIU_HOME": str(job_dir.parent / "home")}
    result = subprocess.run(
        [sys.executable, "-c", CRAWL, str(output), start_url, str(job_dir)],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


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
        assert format_record(row)[-1]["content"] == "罪名：" + "；".join(row["meta"]["accusation"])

    again = crawl(output, site, tmp_path / "job")  # same job folder: pages already seen are skipped
    assert again["scraped"] == 0 and again["errors"] == []
    assert len(output.read_text(encoding="utf-8").splitlines()) == 3  # appended to, never truncated
