"""`pixiu domain crawl zhihu` end to end, against a local server holding the saved site. Only loopback traffic.

Scrapy's reactor runs once per process, so each crawl runs in a subprocess. The subprocess turns the
polite delays of `pixiu_zhihu.settings` off (they are seconds per request) before crawling.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pixiu.testing.loopback import crawl_in_subprocess

from ._site import serve_site

INCLUDE = "include=content%2Cvoteup_count%2Ccomment_count%2Ccreated_time"

NO_DELAYS = """
import pixiu_zhihu.settings as settings
settings.DOWNLOAD_DELAY = 0
settings.AUTOTHROTTLE_ENABLED = False
"""
CLI = (
    NO_DELAYS
    + """
import sys
from pixiu.cli import main

sys.argv = ["pixiu", *sys.argv[1:]]
main()
"""
)


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with serve_site() as base_url:
        yield base_url


def run_python(code: str, *args: str, home: Path) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter with the zhihu plugin loadable and PIXIU_HOME at `home`."""
    env = {**os.environ, "PIXIU_HOME": str(home), "PIXIU_LOAD_PLUGINS": "zhihu"}
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def crawl(output: Path, args: dict[str, str], job_dir: Path) -> dict:
    """Run `pixiu.crawl.run_crawl` for the zhihu domain and return its summary."""
    return crawl_in_subprocess("pixiu_zhihu", output, args, job_dir)


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_crawl_questions_then_resume(site: str, tmp_path: Path) -> None:
    from pixiu_zhihu.formatter import top_answers

    output = tmp_path / "raw.jsonl"
    args = {"base_url": site, "question_ids": "1001,1002,1003,1004"}
    summary = crawl(output, args, tmp_path / "job")
    assert summary["finish"] == {"zhihu_answers": "finished", "zhihu_hot": "finished"}
    assert summary["scraped"] == 3
    assert summary["dropped"] == {
        "answer too short: fewer than 10 characters": 1,
        "empty answer: no text once images and markup are removed": 1,
        "duplicate answer: already crawled": 1,
    }
    assert sorted(summary["errors"]) == [
        f"zhihu_answers: question 1003: answers HTTP 403 (code 10003): 请求参数异常，请升级客户端后重试。; refused "
        f"(login, signature or rate limit); slow down or pass your own cookies with --arg cookies='…' "
        f"(at {site}/api/v4/questions/1003/answers?{INCLUDE}&limit=20&offset=20)",
        f"zhihu_answers: question 1004: HTTP 404; no such question or it was deleted (at {site}/question/1004)",
    ]
    assert "dropped 1: duplicate answer: already crawled" in summary["text"]

    rows = {row["question_id"]: row for row in read_rows(output)}
    assert sorted(rows) == ["1001", "1002", "1003"]
    first = rows["1001"]
    assert (
        first["title"] == "如何坚持每天早起？"
        and first["detail"] == "试过很多次定闹钟，总是起不来。\n有什么实用的方法吗？"
    )
    assert first["complete"] is True and first["answer_count"] == 8 and first["url"] == f"{site}/question/1001"
    assert [a["answer_id"] for a in first["answers"]] == ["90010001", "90010003", "90010004", "90010006"]
    assert first["answers"][0] == {
        "answer_id": "90010001",
        "author": "晨跑的猫",
        "text": "关键是早睡：晚上十一点前放下手机，早起就不难。\n坚持两周就习惯了。",
        "voteup_count": 120,
        "comment_count": 14,
        "created_time": 1700000100,
    }
    assert top_answers(first, 2)[0].startswith("给早起一个期待")  # 300 votes, on the second page
    assert rows["1002"]["title"] == "有哪些适合新手的家常菜？" and rows["1002"]["detail"] == ""
    assert rows["1003"]["complete"] is False and len(rows["1003"]["answers"]) == 2

    again = crawl(output, args, tmp_path / "job")  # same job folder: questions already crawled are skipped
    assert again["scraped"] == 0 and again["errors"] == []
    assert len(read_rows(output)) == 3  # appended to, never truncated


def test_cli_crawls_the_hot_list_and_follows_answers(site: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    hot = run_python(
        CLI, "domain", "crawl", "zhihu", "--output", str(tmp_path / "hot.jsonl"), "--arg", f"base_url={site}", home=home
    )
    assert "2 items appended" in hot.stdout
    assert [(r["rank"], r["question_id"], r["heat"]) for r in read_rows(tmp_path / "hot.jsonl")] == [
        (1, "1001", "1234 万热度"),
        (2, "1002", "987 万热度"),
    ]
    assert (home / "crawl" / "zhihu").is_dir()  # the resumable job folders

    followed = run_python(
        CLI,
        "domain",
        "crawl",
        "zhihu",
        "--output",
        str(tmp_path / "followed.jsonl"),
        "--arg",
        f"base_url={site}",
        "--arg",
        "hot_url=/billboard",
        "--arg",
        "follow_answers=1",
        home=tmp_path / "home2",
    )
    assert "2 items appended" in followed.stdout and "error" in followed.stdout  # 1003's page 2 is refused
    rows = read_rows(tmp_path / "followed.jsonl")
    assert sorted((r["question_id"], r["complete"], len(r["answers"])) for r in rows) == [
        ("1001", True, 4),
        ("1003", False, 2),
    ]


def test_each_spider_keeps_its_own_job_folder(site: str, tmp_path: Path) -> None:
    crawl(tmp_path / "hot.jsonl", {"base_url": site}, tmp_path / "job")
    assert (tmp_path / "job" / "zhihu_hot" / "spider.state").is_file()
