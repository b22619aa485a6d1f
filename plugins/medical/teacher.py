"""Fluent answers from a teacher model behind any OpenAI-compatible endpoint, grounded in knowledge-graph facts.

Every answer is cached as it arrives: one JSONL line per answer, keyed by the sha256 of the model name,
the system prompt and the prompt, appended with a single write and synced to disk before the next
request. A crash loses at most the answer being requested, a torn last line is ignored on reading, and a
second run asks nothing that is already cached.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pixiu import PixiuError

from pixiu_medical.kg import RELATIONS, TEXT_TYPE
from pixiu_medical.parser import KEY_POINTS
from pixiu_medical.safety import unsafe_dose

SYSTEM_PROMPT = (
    "你是医学科普助手。只根据给出的事实，用不超过60个汉字流畅地回答问题；不要编造事实，不要给出具体剂量；"
    "涉及用药或治疗时提醒遵医嘱。只输出答案。"
)
MAX_TOKENS = 200
"""Room for 60 Chinese characters on most tokenizers."""
RETRY_STATUSES = (429, 500, 502, 503, 504)
"""Statuses worth retrying: rate limits and an overloaded or restarting server."""
DOSE_ADVICE = "具体用药请遵医嘱。"


def cache_key(model: str, prompt: str) -> str:
    """The cache key of `prompt` sent to `model` (sha256 of model, system prompt and prompt)."""
    return hashlib.sha256(f"{model}\n{SYSTEM_PROMPT}\n{prompt}".encode()).hexdigest()


class AnswerCache:
    """Teacher answers by `cache_key`, read from and appended to one JSONL file."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._answers: dict[str, str] = {}
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a line torn by a crash: that answer is requested again
                    continue
                if isinstance(row, dict) and isinstance(row.get("key"), str) and isinstance(row.get("answer"), str):
                    self._answers[row["key"]] = row["answer"]

    def __len__(self) -> int:
        """Number of answers cached."""
        return len(self._answers)

    def get(self, key: str) -> str | None:
        """The cached answer for `key`, or None."""
        return self._answers.get(key)

    def put(self, key: str, answer: str, model: str) -> None:
        """Append one answer to the file (a single write, then fsync) and remember it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"key": key, "model": model, "answer": answer}, ensure_ascii=False) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        self._answers[key] = answer


class Teacher:
    """A chat model behind an OpenAI-compatible `/chat/completions` endpoint, answering from the cache when it can."""

    def __init__(
        self,
        url: str,
        model: str,
        cache: AnswerCache,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        retries: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ):
        url = url.rstrip("/")
        self.url = url if url.endswith("/chat/completions") else url + "/chat/completions"
        self.model = model
        self.cache = cache
        self.api_key = api_key
        self.timeout = timeout
        self.retries = retries
        self.sleep = sleep
        self.calls = 0  # HTTP requests made, retries included; cache hits make none

    def answer(self, prompt: str) -> str:
        """Return the teacher's answer to `prompt`, from the cache or the endpoint.

        Raises:
            PixiuError: The endpoint cannot be reached or answers with an error, after retries for
                transient failures; the message names the URL and says that running again resumes.
        """
        key = cache_key(self.model, prompt)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        text = self._complete(prompt)
        self.cache.put(key, text, self.model)
        return text

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
        resume = "answers already received are cached, so running the same command again resumes"
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
                        f"--teacher-model; {resume}."
                    ) from exc
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                if attempt == self.retries:
                    msg = f"cannot reach teacher {self.url}: {exc}. Is the server running? {resume}."
                    raise PixiuError(msg) from exc
            except json.JSONDecodeError as exc:
                raise PixiuError(f"teacher {self.url} did not answer JSON; is it OpenAI-compatible?") from exc
            self.sleep(2**attempt)
            attempt += 1


def teacher_prompt(record: dict[str, Any]) -> str:
    """The prompt asking the teacher to answer a record's question from the record's facts only."""
    lines = [f"问题：{record['instruction']}", "已知事实："]
    grouped: dict[tuple[str, str], list[str]] = {}
    for head, relation, tail in record.get("facts", []):
        grouped.setdefault((head, relation), []).append(tail)
    for (head, relation), tails in grouped.items():
        lines.append(f"- {head}的{RELATIONS[relation][1]}：{'、'.join(tails)}")
    return "\n".join(lines)


def with_teacher_answers(records: Iterable[dict[str, Any]], teacher: Teacher) -> list[dict[str, Any]]:
    """Replace each record's template answer by the teacher's, followed by a line listing its facts.

    The key-point line (`要点：A、B。`) keeps the facts in the gold answer, where the parser finds them for
    knowledge recall. An answer that states a dose without advising a doctor gets `DOSE_ADVICE` added.

    Returns:
        The records with `output` replaced and `answer_source` set to "teacher".
    """
    rewritten = []
    for record in records:
        answer = " ".join(teacher.answer(teacher_prompt(record)).split())
        if unsafe_dose(answer):
            answer += DOSE_ADVICE
        terms = list(dict.fromkeys(_stated_terms(record)))
        output = f"{answer}\n{KEY_POINTS}{'、'.join(terms)}。" if terms else answer
        rewritten.append({**record, "output": output, "answer_source": "teacher"})
    return rewritten


def _stated_terms(record: dict[str, Any]) -> list[str]:
    """The fact terms a record's answer states: the diseases of a reverse question, else the non-text tails."""
    facts = record.get("facts", [])
    if record.get("kind") == "reverse":
        return [head for head, _, _ in facts]
    return [tail for _, relation, tail in facts if RELATIONS[relation][2] != TEXT_TYPE]


def _message_text(data: object, url: str) -> str:
    """The first choice's message content of a chat-completion answer."""
    try:
        content = data["choices"][0]["message"]["content"]  # type: ignore[index]
    except (KeyError, IndexError, TypeError) as exc:
        raise PixiuError(f"teacher {url} answered without choices[0].message.content: {str(data)[:200]}") from exc
    if not isinstance(content, str) or not content.strip():
        raise PixiuError(f"teacher {url} answered an empty message; try another --teacher-model")
    return content
