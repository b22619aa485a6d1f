"""A teacher model behind any OpenAI-compatible `/chat/completions` endpoint, with a resumable answer cache.

The cache is a JSONL file, one line per finished answer, keyed by the sha256 of the model name, the system
prompt and the prompt (`Teacher.ask`), or of the model name, the whole conversation and the sampling settings,
sample index included (`Teacher.chat`: n distinct samples of one conversation are n keys). Each line is
appended with a single write and synced to disk before the next request, so a crash loses at most the answer
being requested; a torn last line is ignored on reading, and a second run asks nothing that is already cached.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pixiu.domain import Messages
from pixiu.errors import PixiuError

RETRY_STATUSES = (429, 500, 502, 503, 504)
"""Statuses worth retrying: rate limits and an overloaded or restarting server."""
RESUME_HINT = "answers already received are cached, so running the same command again resumes"


def cache_key(model: str, system_prompt: str, prompt: str) -> str:
    """The cache key of `prompt` sent to `model` under `system_prompt` (sha256 of all three)."""
    return hashlib.sha256(f"{model}\n{system_prompt}\n{prompt}".encode()).hexdigest()


def chat_key(model: str, messages: Messages, sampling: Sampling) -> str:
    """The cache key of a whole conversation sent to `model` with `sampling` (sha256 of their JSON)."""
    data = {"model": model, "messages": messages, **dataclasses.asdict(sampling)}
    return hashlib.sha256(json.dumps(data, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Sampling:
    """How a teacher answer is drawn: greedy by default; `sample` numbers distinct draws of one conversation."""

    temperature: float = 0.0
    """Softmax temperature sent to the endpoint; 0 asks for the most likely answer."""
    top_p: float = 1.0
    """Nucleus sampling mass sent to the endpoint; 1 keeps every token."""
    sample: int = 0
    """Which draw this is: the same conversation with another index is another request and another cache line."""


@dataclass(frozen=True)
class Answer:
    """A teacher's answer, and whether the endpoint cut it at the token limit."""

    text: str
    """The assistant message's content."""
    truncated: bool = False
    """True when the endpoint stopped at `max_tokens` (finish_reason "length"): the end is missing."""


class TeacherCache:
    """Teacher answers by `cache_key`, read from and appended to one JSONL file."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._answers: dict[str, str] = {}
        self._truncated: set[str] = set()
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a line torn by a crash: that answer is requested again
                    continue
                if isinstance(row, dict) and isinstance(row.get("key"), str) and isinstance(row.get("answer"), str):
                    self._answers[row["key"]] = row["answer"]
                    if row.get("truncated"):
                        self._truncated.add(row["key"])

    def __len__(self) -> int:
        """Number of answers cached."""
        return len(self._answers)

    def get(self, key: str) -> str | None:
        """The cached answer for `key`, or None."""
        return self._answers.get(key)

    def truncated(self, key: str) -> bool:
        """Whether the answer cached for `key` was cut at the token limit."""
        return key in self._truncated

    def put(self, key: str, answer: str, model: str, *, truncated: bool = False) -> None:
        """Append one answer to the file (a single write, then fsync) and remember it; `truncated` marks an answer
        cut at the token limit."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        row = {"key": key, "model": model, "answer": answer, **({"truncated": True} if truncated else {})}
        line = json.dumps(row, ensure_ascii=False) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        self._answers[key] = answer
        if truncated:
            self._truncated.add(key)


class Teacher:
    """A chat model behind an OpenAI-compatible `/chat/completions` endpoint, answering from the cache when it can."""

    def __init__(
        self,
        url: str,
        model: str,
        cache: TeacherCache,
        *,
        system_prompt: str = "",
        max_tokens: int,
        api_key: str | None = None,
        timeout: float = 120.0,
        retries: int = 3,
        retry_statuses: tuple[int, ...] = RETRY_STATUSES,
        sleep: Callable[[float], None] = time.sleep,
    ):
        url = url.rstrip("/")
        self.url = url if url.endswith("/chat/completions") else url + "/chat/completions"
        self.model = model
        self.cache = cache
        self.system_prompt = system_prompt
        self.max_tokens = max_tokens
        self.api_key = api_key
        self.timeout = timeout
        self.retries = retries
        self.retry_statuses = retry_statuses
        self.sleep = sleep
        self.calls = 0  # HTTP requests made, retries included; cache hits make none

    def ask(self, prompt: str) -> str:
        """Return the teacher's answer to `prompt`, from the cache or the endpoint; a blank answer is not cached.

        Raises:
            PixiuError: The endpoint cannot be reached or answers with an error, after retries for
                transient failures; the message names the URL and says that running again resumes.
        """
        messages = [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": prompt}]
        return self._cached(cache_key(self.model, self.system_prompt, prompt), messages, Sampling()).text

    def chat(self, messages: Messages, sampling: Sampling | None = None) -> str:
        """Return the teacher's next assistant message after `messages` (their own system prompt, if any, included),
        drawn with `sampling` (greedy by default), from the cache or the endpoint; a blank answer is not cached.

        Raises:
            PixiuError: As `ask`.
        """
        return self.reply(messages, sampling).text

    def reply(self, messages: Messages, sampling: Sampling | None = None) -> Answer:
        """As `chat`, also saying whether the answer was cut at `max_tokens` (finish_reason "length").

        Raises:
            PixiuError: As `ask`.
        """
        sampling = sampling or Sampling()
        return self._cached(chat_key(self.model, messages, sampling), messages, sampling)

    def _cached(self, key: str, messages: Messages, sampling: Sampling) -> Answer:
        """The answer cached under `key`, else the endpoint's answer to `messages`, cached when not blank."""
        cached = self.cache.get(key)
        if cached is not None:
            return Answer(cached, self.cache.truncated(key))
        answer = self._complete(messages, sampling)
        if answer.text.strip():
            self.cache.put(key, answer.text, self.model, truncated=answer.truncated)
        return answer

    def _complete(self, messages: Messages, sampling: Sampling) -> Answer:
        """POST one chat completion, retrying transient failures with backoff, and return the answer."""
        fields: dict = {"model": self.model, "messages": messages, "temperature": sampling.temperature}
        if sampling.top_p != 1.0:
            fields["top_p"] = sampling.top_p
        fields["max_tokens"] = self.max_tokens
        body = json.dumps(fields).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        attempt = 0
        while True:
            self.calls += 1
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return _answer(json.loads(response.read().decode("utf-8")), self.url)
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode("utf-8", "replace")[:300]
                if exc.code not in self.retry_statuses or attempt == self.retries:
                    raise PixiuError(
                        f"teacher {self.url} answered HTTP {exc.code}: {detail}. Check --teacher-url and "
                        f"--teacher-model; {RESUME_HINT}."
                    ) from exc
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                if attempt == self.retries:
                    msg = f"cannot reach teacher {self.url}: {exc}. Is the server running? {RESUME_HINT}."
                    raise PixiuError(msg) from exc
            except json.JSONDecodeError as exc:
                raise PixiuError(f"teacher {self.url} did not answer JSON; is it OpenAI-compatible?") from exc
            self.sleep(2**attempt)
            attempt += 1


def _answer(data: object, url: str) -> Answer:
    """The first choice of a chat-completion answer: its message content ("" when it is not a string), and whether
    its finish_reason is "length"."""
    try:
        choice = data["choices"][0]  # type: ignore[index]
        content = choice["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise PixiuError(f"teacher {url} answered without choices[0].message.content: {str(data)[:200]}") from exc
    truncated = isinstance(choice, dict) and choice.get("finish_reason") == "length"
    return Answer(content if isinstance(content, str) else "", truncated)
