"""Loopback test services on 127.0.0.1: fixture sites, a fake OpenAI-compatible endpoint, and crawls run against them.

Scrapy's reactor runs once per process, so every crawl runs in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[str]:
    """Run `server` in a background thread; yield its base URL ("http://127.0.0.1:PORT"); shut it down after."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


class QuietFileHandler(SimpleHTTPRequestHandler):
    """Serve files without logging every request to stderr."""

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class ChatRequest:
    """One request the fake OpenAI endpoint received."""

    path: str
    authorization: str | None
    body: dict


class FakeOpenAI(ThreadingHTTPServer):
    """An OpenAI-compatible endpoint on a free loopback port; a subclass's `reply` decides every answer."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ChatHandler)

    @property
    def url(self) -> str:
        """The base URL a client is given ("http://127.0.0.1:PORT/v1")."""
        return f"http://127.0.0.1:{self.server_port}/v1"

    def reply(self, request: ChatRequest) -> tuple[int, dict]:
        """(HTTP status, JSON body) for `request`."""
        raise NotImplementedError


def completion(content: str, **fields: object) -> dict:
    """A chat-completions response body whose one choice says `content`."""
    return {**fields, "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}


class _ChatHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        server: FakeOpenAI = self.server  # type: ignore[assignment]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        status, payload = server.reply(ChatRequest(self.path, self.headers.get("Authorization"), body))
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


_CRAWL = """
import importlib, json, sys
from pathlib import Path
from pixiu.crawl import run_crawl

package, output, spider_args, job_dir = sys.argv[1:]
try:
    settings = importlib.import_module(package + ".settings")
except ModuleNotFoundError:
    pass
else:  # a loopback fixture server needs no politeness: the delays are tested as settings, not waited out
    settings.DOWNLOAD_DELAY = 0
    settings.AUTOTHROTTLE_ENABLED = False
domains = []
importlib.import_module(package + ".plugin").register_domains(register=domains.append)
summary = run_crawl(domains[0], Path(output), json.loads(spider_args), job_dir=Path(job_dir))
print(json.dumps({"scraped": summary.items_scraped, "dropped": summary.items_dropped, "errors": summary.errors,
                  "finish": summary.finish_reasons, "text": summary.describe()}, ensure_ascii=False))
"""


def crawl_in_subprocess(package: str, output: Path, spider_args: dict[str, str], job_dir: Path) -> dict:
    """Crawl with the first domain of plugin package `package` in a fresh interpreter; return its summary.

    PIXIU_HOME is a `home` folder beside `job_dir`.
    """
    env = {**os.environ, "PIXIU_HOME": str(job_dir.parent / "home")}
    command = [sys.executable, "-c", _CRAWL, package, str(output), json.dumps(spider_args), str(job_dir)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
