"""`pixiu.crawl.run_crawl` end to end: the medical spider against a local server serving saved pages, then the graph.

Scrapy's reactor runs once per process, so each crawl runs in a subprocess. Only loopback traffic. The
site's polite delays are switched off for the loopback server (they are tested as settings, not waited out).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from pixiu.testing.loopback import QuietFileHandler, crawl_in_subprocess, serving
from pixiu_medical.commands import group
from pixiu_medical.kg import facts_by_head, read_kg

from ._data import SITE


class _CountingHandler(QuietFileHandler):
    """Serve files without logging every request to stderr, and count the paths asked for."""

    def log_message(self, format: str, *args: object) -> None:
        self.server.paths.append(self.path)  # type: ignore[attr-defined]


@pytest.fixture
def site() -> Iterator[tuple[str, list[str]]]:
    """Serve the xywy fixtures on 127.0.0.1 at a free port; yield the first list page's URL and the paths served."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_CountingHandler, directory=str(SITE)))
    server.paths = []  # type: ignore[attr-defined]
    with serving(server) as url:
        yield f"{url}/html/neike.html", server.paths  # type: ignore[attr-defined]


def crawl(output: Path, start_url: str, job_dir: Path) -> dict:
    """Run one medical crawl in a fresh interpreter and return its summary."""
    return crawl_in_subprocess("pixiu_medical", output, {"start_url": start_url}, job_dir)


def test_crawl_builds_the_graph_then_resumes(site: tuple[str, list[str]], tmp_path: Path) -> None:
    start_url, served = site
    output = tmp_path / "data" / "medical" / "raw.jsonl"
    summary = crawl(output, start_url, tmp_path / "job")
    assert summary["finish"] == {"xywy_diseases": "finished"}
    refused = "xywy_diseases: 1 requests refused by the site's robots.txt"  # /il_sii/gaishu/999.htm
    assert refused in summary["errors"]  # pixiu.crawl may count it among failed downloads too (an IgnoreRequest)
    assert set(summary["errors"]) <= {refused, "xywy_diseases: 1 downloads failed (network errors, after retries)"}
    assert summary["scraped"] == 3  # 101, 102 and 104; 105 has nothing but a title
    assert summary["dropped"] == {"no facts: neither the overview nor any sub-page gave a fact": 1}
    assert not any("999" in path for path in served)  # robots.txt forbids it
    assert sum("/101.htm" in path for path in served) == 7  # each page once, though listed twice
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert sorted((r["disease_id"], r["name"]) for r in rows) == [("101", "感冒"), ("102", "高血压"), ("104", "感冒")]

    graph = read_kg(tmp_path / "data" / "medical" / "raw.kg.jsonl")  # written by the crawl itself
    facts = facts_by_head(graph)
    assert sorted(facts) == ["感冒", "高血压"]  # in the order the items arrived, which the crawl does not fix
    assert sorted(facts["感冒"]["symptom"]) == sorted(["发热", "鼻塞", "流涕", "咳嗽", "头痛"])  # two ids, merged
    assert sorted(facts["感冒"]["complication"]) == sorted(["鼻窦炎", "中耳炎", "肺炎"])
    both = next(t for t in graph if t["head"] == "感冒" and t["tail"] == "鼻塞")
    assert sorted(s.rsplit("/", 1)[-1] for s in both["sources"]) == ["101.htm", "104.htm"]
    assert facts["高血压"]["cause"] == ["遗传因素", "高盐饮食", "精神紧张"] and "drug" not in facts["高血压"]

    rebuilt = tmp_path / "kg.jsonl"
    built = CliRunner().invoke(group, ["kg", "build", str(output), str(rebuilt)])
    assert built.exit_code == 0, built.output
    assert read_kg(rebuilt) == graph  # the crawl's graph is the graph of its feed
    stats = CliRunner().invoke(group, ["kg", "stats", str(rebuilt), "--json"])
    assert json.loads(stats.output)["entities"] == len(
        {(t["head"], "disease") for t in graph}
        | {(t["tail"], t["tail_type"]) for t in graph if t["tail_type"] != "text"}
    )

    again = crawl(output, start_url, tmp_path / "job")  # same job folder: pages already seen are skipped
    assert again["scraped"] == 0 and again["errors"] == []
    assert len(output.read_text(encoding="utf-8").splitlines()) == 3  # appended to, never truncated
    assert read_kg(tmp_path / "data" / "medical" / "raw.kg.jsonl") == graph  # the graph keeps what it had
