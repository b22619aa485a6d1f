"""Reference summaries from a teacher model behind any OpenAI-compatible endpoint, cached so that no call is paid twice.

The cache is a JSONL file, one line per finished summary, keyed by a hash of the model name and the prompt.
Each line is appended with one write and synced to disk before the next request, so a crash loses at most
the summary being requested; a torn last line is ignored when the cache is read again.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from pixiu import PixiuError

SYSTEM_PROMPT = (
    "你是知乎问答总结助手。读完问题和高赞回答，用一句不超过30个字的中文概括回答的共同要点。只输出这句话，不要解释。"
)
MAX_TOKENS = 96
"""Enough for 30 Chinese characters on most tokenizers, with room to spare."""
RETRY_STATUSES = (429, 502, 503, 504)
"""Statuses worth retrying: rate limits and an overloaded or restarting server."""


def cache_key(model: str, prompt: str) -> str:
    """The cache key of a prompt sent to `model`: sha256 of both."""
    return hashlib.sha256(f"{model}\n{prompt}".encode()).hexdigest()


class SummaryCache:
    """Teacher summaries by `cache_key`, read from and appended to one JSONL file."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._summaries: dict[str, str] = {}
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a line torn by a crash: its summary is requested again
                    continue
                if isinstance(row, dict) and isinstance(row.get("key"), str) and isinstance(row.get("summary"), str):
                    self._summaries[row["key"]] = row["summary"]

    def __len__(self) -> int:
        """Number of summaries cached."""
        return len(self._summaries)

    def get(self, key: str) -> str | None:
        """The cached summary for `key`, or None."""
        return self._summaries.get(key)

    def put(self, key: str, summary: str, model: str) -> None:
        """Append one summary to the file (a single write, then fsync) and remember it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"key": key, "model": model, "summary": summary}, ensure_ascii=False) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        self._summaries[key] = summary


class Teacher:
    """A chat model behind an OpenAI-compatible `/chat/completions` endpoint, answering from the cache when it can."""

    def __init__(
        self,
        url: str,
        model: str,
        cache: SummaryCache,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        retries: int = 3,
    ):
        url = url.rstrip("/")
        self.url = url if url.endswith("/chat/completions") else url + "/chat/completions"
        self.model = model
        self.cache = cache
        self.api_key = api_key
        self.timeout = timeout
        self.retries = retries
        self.calls = 0  # HTTP requests made, retries included; cache hits make none

    def summarize(self, prompt: str) -> str:
        """Return the teacher's summary of `prompt` (a question and its answers), from the cache or the endpoint.

        Raises:
            PixiuError: The endpoint cannot be reached or answers with an error, after retries for
                transient failures; the message names the URL and the server's answer.
        """
        key = cache_key(self.model, prompt)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        summary = self._complete(prompt)
        self.cache.put(key, summary, self.model)
        return summary

    def _complete(self, prompt: str) -> str:
        """POST one chat completion and return the message text."""
        body = json.dumps({
            "model": self.model,
            "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}],
            "temperature": 0,
            "max_tokens": MAX_TOKENS,
        }).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        attempt = 0
        while True:
            self.calls += 1
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return _message_text(json.loads(response.read().decode("utf-8")), self.url)
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode("utf-8", "replace")[:300]
                if exc.code not in RETRY_STATUSES or attempt == self.retries:
                    raise PixiuError(
                        f"teacher {self.url} answered HTTP {exc.code}: {detail}. Check --teacher-url and "
                        f"--teacher-model; summaries already received are cached, so running again resumes."
                    ) from exc
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                if attempt == self.retries:
                    raise PixiuError(
                        f"cannot reach teacher {self.url}: {exc}. Is the server running? Summaries already "
                        f"received are cached, so running again resumes."
                    ) from exc
            except json.JSONDecodeError as exc:
                raise PixiuError(f"teacher {self.url} did not answer JSON; is it OpenAI-compatible?") from exc
            time.sleep(2**attempt)
            attempt += 1


def _message_text(data: object, url: str) -> str:
    """The first choice's message content of a chat-completion answer."""
    try:
        content = data["choices"][0]["message"]["content"]  # type: ignore[index]
    except (KeyError, IndexError, TypeError) as exc:
        raise PixiuError(f"teacher {url} answered without choices[0].message.content: {str(data)[:200]}") from exc
    return content if isinstance(content, str) else ""
