"""Self-chat (Baize): a teacher writes a whole multi-turn dialogue about one seed question in a single answer,
with [Human] and [AI] markers, which is parsed into alternating turns.

A dialogue is dropped, and counted, when it does not parse: no [Human]/[AI] turns, two turns of one speaker in a
row, or no answered question. Baize's opening greeting is not part of the dialogue; a last question left
unanswered is cut; `max_turns` keeps the first exchanges (one human turn and its answer each).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixiu.self_instruct import read_seed_tasks
from pixiu.similarity import is_chinese
from pixiu.teacher import Sampling, Teacher

TEMPLATE_EN = (
    "Forget the instruction you have previously received. The following is a conversation between a human and an "
    "AI assistant. The human and the AI assistant take turns chatting about the topic: '{seed}'. Human statements "
    "start with [Human] and AI assistant statements start with [AI]. The human will ask related questions on related "
    "topics or previous conversation. The human will stop the conversation when they have no more question. The AI "
    "assistant tries not to ask questions. Complete the transcript in exactly that format.\n"
    "[Human] Hello!\n[AI] Hi! How can I help you?\n"
)
"""Baize's self-chat template (collect.py)."""
TEMPLATE_ZH = (
    "忘记你之前收到的所有指令。下面是一个人类和AI助手之间的对话。人类和AI助手围绕这个话题轮流交谈：“{seed}”。"
    "人类说的话以[Human]开头，AI助手说的话以[AI]开头。人类会就相关话题或前面的对话继续提问，没有更多问题时结束对话。"
    "AI助手尽量不提问。对话用中文进行。请严格按照这个格式补全对话记录。\n"
    "[Human] 你好！\n[AI] 你好！有什么可以帮你的吗？\n"
)
"""Baize's template in Chinese, for Chinese seeds; the markers stay [Human] and [AI]."""
GREETINGS = (("hello!", "hi! how can i help you?"), ("你好！", "你好！有什么可以帮你的吗？"))
"""The templates' opening exchanges, lower-cased: a dialogue that repeats one (the AI's part maybe followed by more
text) starts after it."""
_MARKER = re.compile(r"\[\|?(Human|AI)\|?\]\s*[:：]?", re.IGNORECASE)
"""A turn marker: [Human] or [AI], also Baize's own [|Human|] / [|AI|] forms."""


@dataclass
class SelfChatResult:
    """The dialogues made (ShareGPT rows) and how many seeds gave none."""

    dialogues: list[dict[str, Any]]
    malformed: int = 0
    """Seeds whose dialogue did not parse (dropped)."""


def read_seeds(path: Path) -> list[str]:
    """Seed questions: one per line of a text file, or a question field of each JSONL/JSON record (see
    `pixiu.self_instruct.read_seed_tasks`).

    Raises:
        DataError: The file is missing or holds no usable seed; a bad record is named with file:line.
    """
    if path.suffix in (".jsonl", ".json"):
        return [task.instruction for task in read_seed_tasks(path)]
    lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line]


def parse_dialogue(text: str, max_turns: int | None = None, *, truncated: bool = False) -> list[dict[str, str]] | None:
    """ShareGPT turns (`from` human/gpt, `value`) of a [Human]/[AI] transcript, or None when it does not parse; the
    last turn of a transcript `truncated` at the token limit is cut off, being incomplete."""
    pieces = _MARKER.split(text)
    speakers = ["human" if role.lower() == "human" else "gpt" for role in pieces[1::2]]
    turns = [(speaker, body.strip()) for speaker, body in zip(speakers, pieces[2::2], strict=True)]
    if truncated:
        turns = turns[:-1]
    if any(not body for _, body in turns):
        return None
    if len(turns) >= 2 and any(
        turns[0][1].lower() == human and turns[1][1].lower().startswith(ai) for human, ai in GREETINGS
    ):
        turns = turns[2:]  # the template's greeting, repeated (whatever the AI added to its part)
    if turns and turns[-1][0] == "human":
        turns = turns[:-1]  # the teacher stopped before answering the last question
    expected = ["human", "gpt"] * (len(turns) // 2)
    if not turns or [role for role, _ in turns] != expected:
        return None
    if max_turns:
        turns = turns[: 2 * max_turns]
    return [{"from": role, "value": body} for role, body in turns]


def self_chat(
    teacher: Teacher,
    seeds: Sequence[str],
    *,
    max_turns: int | None = None,
    temperature: float = 0.0,
    on_seed: Callable[[], None] | None = None,
) -> SelfChatResult:
    """One dialogue per seed question, written by `teacher` with Baize's template (in Chinese for Chinese seeds).

    Raises:
        PixiuError: The teacher cannot be reached (see `Teacher.chat`); what it answered is cached.
    """
    result = SelfChatResult(dialogues=[])
    for number, seed in enumerate(seeds):
        template = TEMPLATE_ZH if is_chinese(seed) else TEMPLATE_EN
        prompt = template.format(seed=seed)
        answer = teacher.reply([{"role": "user", "content": prompt}], Sampling(temperature))
        turns = parse_dialogue(answer.text, max_turns, truncated=answer.truncated)
        if turns is None:
            result.malformed += 1
        else:
            result.dialogues.append({"id": f"self-chat-{number}", "seed": seed, "conversations": turns})
        if on_seed:
            on_seed()
    return result
