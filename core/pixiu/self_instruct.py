"""Self-instruct (Alpaca, BELLE): a teacher writes new tasks from a few shown ones, and Alpaca's filters keep the
diverse, doable ones.

Each request shows `in_context` tasks, about a quarter of them generated earlier and the rest seeds, drawn
with a RNG seeded by the request's number, and asks the teacher to continue Alpaca's numbered list of 20
(BELLE's Chinese prompt when the language is Chinese). Every block of the answer is parsed, then dropped by
the first filter it fails: unparseable, too short, too long, an invalid keyword (things a text model cannot
do: images, audio, files, links…), starting with punctuation, a duplicate of a kept or seed instruction, or
ROUGE-L above `similarity` against one. The counts are kept per filter. Given the teacher's cache, the whole
run is deterministic: a second run makes no request and keeps the same tasks.
"""

from __future__ import annotations

import random
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixiu.errors import BadRecord, DataError
from pixiu.records import load_records
from pixiu.similarity import is_chinese, rouge_l, text_units
from pixiu.teacher import Sampling, Teacher

DEFAULT_SEED_TASKS = Path(__file__).parent / "seed_tasks" / "seed_tasks.jsonl"
"""pixiu's own 20 seed tasks (12 Chinese, 8 English), used when no `--seed-tasks` file is given."""
LIST_SIZE = 20
"""Tasks in the numbered list the teacher is asked to complete, the shown ones included (Alpaca's 20)."""
MIN_UNITS, MAX_UNITS = 4, 150
"""Shortest and longest instruction kept, in ROUGE units (words; one per Chinese character): Alpaca drops
instructions of 3 words or fewer, or of more than 150."""
INVALID_KEYWORDS = (
    *("image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps"),
    *("draw", "plot", "go to", "video", "audio", "music", "flowchart", "diagram", "link", "url"),
    *("图片", "图像", "图表", "画", "视频", "音频", "音乐", "流程图", "链接", "网址", "文件", "地图"),
)
"""Alpaca's blacklist (tasks a text-only model cannot do), with BELLE-style Chinese counterparts; whole words
in Latin text, substrings in Chinese."""
INVALID_PREFIXES = ("write a program",)
"""Instruction openings Alpaca drops too (a model answer cannot be checked to run)."""
NO_INPUT = ("<noinput>", "<no input>", "<无输入>", "无输入")
"""What the teacher writes as the input of a task that needs none."""
FILTERS = (
    "unparseable",
    "too_short",
    "too_long",
    "invalid_keyword",
    "starts_with_punctuation",
    "duplicate",
    "similar",
)
"""Why a generated task is dropped, in the order the filters run."""
QUESTION_FIELDS = ("instruction", "question", "title", "prompt", "query")
"""Fields a seed record's task is read from, the first one present winning (crawled questions need no answer)."""

PROMPT_EN = """You are asked to come up with a set of 20 diverse task instructions. These task instructions will be \
given to a GPT model and we will evaluate the GPT model for completing the instructions.

Here are the requirements:
1. Try not to repeat the verb for each instruction to maximize diversity.
2. The language used for the instruction also should be diverse. For example, you should combine questions with \
imperative instructions.
3. The type of instructions should be diverse. The list should include diverse types of tasks like open-ended \
generation, classification, editing, etc.
4. A GPT language model should be able to complete the instruction. For example, do not ask the assistant to create \
any visual or audio output. For another example, do not ask the assistant to wake you up at 5pm or set a reminder \
because it cannot perform any action.
5. The instructions should be in English.
6. The instructions should be 1 to 2 sentences long. Either an imperative sentence or a question is permitted.
7. You should generate an appropriate input to the instruction. The input field should contain a specific example \
provided for the instruction. It should involve realistic data and should not contain simple placeholders. The input \
should provide substantial content to make the instruction challenging but should ideally not exceed 100 words.
8. Not all instructions require input. For example, when an instruction asks about some general information, "what \
is the highest peak in the world", it is not necessary to provide a specific context. In this case, we simply put \
"<noinput>" in the input field.
9. The output should be an appropriate response to the instruction and the input. Make sure the output is less than \
100 words.

List of 20 tasks:
"""
"""Alpaca's self-instruct prompt (stanford_alpaca prompt.txt), its numbering mended."""
PROMPT_ZH = """你被要求提供20个多样化的任务指令。这些任务指令将被提供给一个GPT模型，\
我们会评估GPT模型完成这些指令的能力。

以下是你提供指令需要满足的要求：
1. 尽量不要在每个指令中重复动词，要最大化指令的多样性。
2. 指令的语气也应该多样化。例如，将问句与祈使句结合起来。
3. 指令的类型应该多样化，包括各种类型的任务，例如：头脑风暴、开放式问答、封闭式问答、改写、信息抽取、\
生成、分类、对话、摘要。
4. GPT语言模型应该能够完成这些指令。例如，不要让助手创建任何视觉或音频输出；不要让助手在下午5点叫醒你\
或设置提醒，因为它无法执行任何操作；指令不应该和音频、视频、图片、链接相关。
5. 指令用中文书写，长度为1到2个句子，可以是祈使句或问句。
6. 你应该为指令生成合适的输入。输入字段应包含为指令提供的具体例子，它应该涉及真实的数据，\
不应包含简单的占位符。输入应提供充实的内容，使指令具有挑战性，但最好不超过100字。
7. 并非所有指令都需要输入。例如，当指令询问一些常识信息，比如“世界上最高的山峰是什么”，\
就不需要提供具体的上下文。这种情况下，在输入字段中写“<无输入>”。
8. 输出应该是对指令和输入的恰当回答，不超过100字。

下面是20个任务的列表：
"""
"""BELLE's Chinese self-instruct prompt (BELLE prompt_cn.txt), in the same numbered format."""
LABELS = {"en": ("Instruction", "Input", "Output"), "zh": ("指令", "输入", "输出")}
"""The field labels of a numbered task in each prompt language."""
_LABEL = re.compile(r"\d+\s*[.、]\s*(Instruction|Input|Output|指令|输入|输出)\s*[:：]", re.IGNORECASE)
_FIELD = {"instruction": "instruction", "指令": "instruction", "input": "input", "输入": "input"}
_FIELD.update({"output": "output", "输出": "output"})


@dataclass(frozen=True)
class Task:
    """One Alpaca task: an instruction, its optional input, and the answer."""

    instruction: str
    input: str = ""
    output: str = ""
    where: str = field(default="", compare=False)
    """`file:line` of a seed task, for error messages; set by pixiu."""


@dataclass
class SelfInstructResult:
    """The tasks kept and what happened to the rest."""

    tasks: list[Task]
    requests: int = 0
    """Requests the run asked the teacher (cached or not)."""
    parsed: int = 0
    """Task blocks found in the teacher's answers, unparseable ones included."""
    dropped: Counter[str] = field(default_factory=Counter)
    """Tasks dropped per filter (see `FILTERS`)."""
    unused: int = 0
    """Tasks that passed the filters after `num_instructions` were already kept."""

    def stats(self) -> dict[str, Any]:
        """A JSON-ready summary: counts of requests, tasks parsed, kept, unused and dropped per filter."""
        return {
            "requests": self.requests,
            "parsed": self.parsed,
            "kept": len(self.tasks),
            "unused": self.unused,
            "dropped": {name: self.dropped[name] for name in FILTERS},
        }


def read_seed_tasks(path: Path | None = None) -> list[Task]:
    """Seed tasks from a JSONL/JSON file (pixiu's bundled ones when None): Alpaca rows (instruction, input,
    output, or `instances` as in Alpaca's seed_tasks.jsonl), or any record with a question field (see
    `QUESTION_FIELDS`), such as a domain's crawled questions.

    Raises:
        DataError: The file is missing or holds no usable record; a bad one is named with file:line.
    """
    return load_records(path or DEFAULT_SEED_TASKS, lambda record: [seed_task(record)], what="seed tasks").items


def seed_task(record: Any) -> Task:
    """One seed record as a `Task`; `BadRecord` when it has no question field with text."""
    if not isinstance(record, dict):
        raise BadRecord(f"expected a JSON object, found {type(record).__name__}")
    question = next((record[key] for key in QUESTION_FIELDS if isinstance(record.get(key), str)), "")
    if not question.strip():
        raise BadRecord(f"a seed task needs text in one of the fields {', '.join(QUESTION_FIELDS)}")
    instance = record["instances"][0] if record.get("instances") else record
    if not isinstance(instance, dict):
        raise BadRecord("`instances` must be a list of {input, output} objects")
    return Task(question.strip(), _text(instance.get("input")), _text(instance.get("output")))


def _text(value: Any) -> str:
    """A field's text, stripped ("" when it is not text)."""
    return value.strip() if isinstance(value, str) else ""


def seeds_language(seeds: Sequence[Task]) -> str:
    """ "zh" when at least half of the seed instructions are Chinese, else "en"."""
    return "zh" if 2 * sum(is_chinese(t.instruction) for t in seeds) >= len(seeds) else "en"


def encode_prompt(tasks: Sequence[Task], language: str) -> str:
    """The request showing `tasks` as the first items of the numbered list, ending where the next one starts."""
    instruction, input_label, output_label = LABELS[language]
    no_input = NO_INPUT[0] if language == "en" else NO_INPUT[2]
    text = PROMPT_EN if language == "en" else PROMPT_ZH
    for number, task in enumerate(tasks, start=1):
        text += f"###\n{number}. {instruction}: {task.instruction}\n{number}. {input_label}:\n"
        text += f"{task.input or no_input}\n{number}. {output_label}:\n{task.output}\n"
    return text + f"###\n{len(tasks) + 1}. {instruction}:"


def parse_tasks(answer: str, next_number: int, *, truncated: bool = False) -> tuple[list[Task], int]:
    """The tasks of a teacher's answer continuing the list at `next_number`, and how many blocks were unparseable.

    A block is parseable when it holds a numbered instruction, input and output in that order with an
    instruction and an output (Alpaca's seven-part split); an answer with text but no block counts as one
    unparseable block. The last block of an answer `truncated` at the token limit is unparseable too (Alpaca drops
    it): its output may be cut short.
    """
    blocks = answer.split("###")
    first = _LABEL.search(blocks[0])
    if first and _FIELD[first.group(1).lower()] != "instruction":  # the answer went on from "N. Instruction:"
        blocks[0] = f"{next_number}. Instruction: " + blocks[0]
    elif not first:  # text before the first "###" with no task in it: the teacher's preamble
        blocks = blocks[1:]
    blocks = [block for block in blocks if block.strip()]
    tasks, bad = [], 0
    if truncated and blocks:
        blocks, bad = blocks[:-1], 1
    for block in blocks:
        parts = _LABEL.split(block)
        fields = [_FIELD[label.lower()] for label in parts[1::2]]
        if fields != ["instruction", "input", "output"] or not parts[2].strip() or not parts[6].strip():
            bad += 1
            continue
        given = parts[4].strip()
        tasks.append(Task(parts[2].strip(), "" if given.lower() in NO_INPUT else given, parts[6].strip()))
    if not tasks and not bad and answer.strip():
        bad = 1  # an answer holding no task at all is one unparseable block
    return tasks, bad


def rule_filter(instruction: str) -> str | None:
    """The first rule-based filter `instruction` fails (too short, too long, invalid keyword, starting with
    punctuation), or None."""
    units = len(text_units(instruction))
    if units < MIN_UNITS:
        return "too_short"
    if units > MAX_UNITS:
        return "too_long"
    lowered = instruction.lower()
    for keyword in INVALID_KEYWORDS:
        if (keyword in lowered) if is_chinese(keyword) else re.search(rf"\b{keyword}\b", lowered):
            return "invalid_keyword"
    if lowered.startswith(INVALID_PREFIXES):
        return "invalid_keyword"
    first = instruction[0]
    if first in string.punctuation or unicodedata.category(first).startswith("P"):
        return "starts_with_punctuation"
    return None


def self_instruct(
    teacher: Teacher,
    seeds: Sequence[Task],
    *,
    num_instructions: int,
    in_context: int = 3,
    language: str | None = None,
    seed: int = 0,
    temperature: float = 1.0,
    top_p: float = 1.0,
    similarity: float = 0.7,
    max_requests: int | None = None,
    on_kept: Callable[[int], None] | None = None,
) -> SelfInstructResult:
    """Ask `teacher` for new tasks until `num_instructions` pass the filters, or `max_requests` (default:
    `num_instructions`, at least 10) were asked; `on_kept(n)` reports n more tasks kept.

    Raises:
        PixiuError: The teacher cannot be reached (see `Teacher.chat`); what it answered is cached.
    """
    if not seeds:
        raise DataError("no seed tasks; give a --seed-tasks file with at least one task")
    language = language or seeds_language(seeds)
    pool = [t for t in seeds if is_chinese(t.instruction) == (language == "zh")] or list(seeds)
    max_requests = max_requests or max(10, num_instructions)
    result = SelfInstructResult(tasks=[])
    known = [t.instruction for t in seeds]
    seen = {_normalised(i) for i in known}
    while len(result.tasks) < num_instructions and result.requests < max_requests:
        shown = _in_context(pool, result.tasks, in_context, random.Random(f"{seed}:{result.requests}"))
        sampling = Sampling(temperature=temperature, top_p=top_p, sample=result.requests)
        answer = teacher.reply([{"role": "user", "content": encode_prompt(shown, language)}], sampling)
        result.requests += 1
        tasks, bad = parse_tasks(answer.text, len(shown) + 1, truncated=answer.truncated)
        result.parsed += len(tasks) + bad
        result.dropped["unparseable"] += bad
        kept_before = len(result.tasks)
        for task in tasks:
            reason = rule_filter(task.instruction)
            if reason is None and _normalised(task.instruction) in seen:
                reason = "duplicate"
            if reason is None and any(rouge_l(task.instruction, other) > similarity for other in known):
                reason = "similar"
            if reason:
                result.dropped[reason] += 1
            elif len(result.tasks) == num_instructions:
                result.unused += 1
            else:
                result.tasks.append(task)
                known.append(task.instruction)
                seen.add(_normalised(task.instruction))
        if on_kept:
            on_kept(len(result.tasks) - kept_before)
    return result


def _in_context(seeds: Sequence[Task], generated: Sequence[Task], count: int, rng: random.Random) -> list[Task]:
    """`count` tasks to show: about a quarter generated ones (self-instruct's 2 of 8), the rest seeds."""
    machine = min(len(generated), (count + 1) // 4)
    shown = rng.sample(list(generated), machine) + rng.sample(list(seeds), min(len(seeds), count - machine))
    rng.shuffle(shown)
    return shown


def _normalised(instruction: str) -> str:
    """An instruction compared for exact duplicates: lower-cased, whitespace collapsed."""
    return " ".join(instruction.lower().split())


def task_rows(tasks: Sequence[Task]) -> list[dict[str, str]]:
    """Tasks as Alpaca JSONL rows (instruction, input, output)."""
    return [{"instruction": t.instruction, "input": t.input, "output": t.output} for t in tasks]
