"""Self-instruct against a scripted teacher on loopback: parsing, every filter's count, determinism and resuming."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from pixiu.cli import cli
from pixiu.errors import DataError
from pixiu.self_instruct import (
    FILTERS,
    Task,
    encode_prompt,
    parse_tasks,
    read_seed_tasks,
    seeds_language,
    self_instruct,
)
from pixiu.teacher import Teacher, TeacherCache
from scripted_teacher import scripted_teacher, user_text

SEEDS = [
    Task("Give three tips for staying healthy.", "", "Eat well, sleep enough and exercise."),
    Task("Translate the sentence into French.", "Good morning.", "Bonjour."),
]
LONG = " ".join(["word"] * 151)


def block(number: int, instruction: str, given: str = "<noinput>", output: str | None = "An answer.") -> str:
    """One numbered task as the teacher writes it (no output label when `output` is None)."""
    text = f"{number}. Instruction: {instruction}\n{number}. Input:\n{given}\n"
    return text + (f"{number}. Output:\n{output}\n" if output is not None else "")


ONE_PER_FILTER = "\n###\n".join(
    [
        block(3, "Summarise the story of a novel in one paragraph.", output="A summary.")[len("3. Instruction:") :],
        block(4, "Tell a joke"),  # 3 words
        block(5, LONG),
        block(6, "Draw a picture of a cat sitting in the snow."),
        block(7, "请为这张图片写一段简短的描述。"),
        block(8, '"Quote" the most famous line from Hamlet, please.'),
        block(9, "give three tips for staying  healthy."),  # a seed, case and spaces aside
        block(10, "Give three tips for staying healthy in winter."),  # ROUGE-L 0.86 against that seed
        block(11, "List five countries whose capital is on a river.", output=None),
        block(12, "Compare the climates of Norway and Spain briefly.", "Norway is cold.", "Spain is warmer."),
    ]
)
"""A teacher answer continuing the list after two shown tasks: two good tasks, and each filter's catch."""


def teacher_for(url: str, cache: Path) -> Teacher:
    return Teacher(url, "teacher", TeacherCache(cache), max_tokens=512)


def test_every_filter_counts_what_it_dropped(tmp_path: Path) -> None:
    with scripted_teacher(lambda body: ONE_PER_FILTER) as fake:
        result = self_instruct(teacher_for(fake.url, tmp_path / "c.jsonl"), SEEDS, num_instructions=10, max_requests=1)
    assert result.tasks == [
        Task("Summarise the story of a novel in one paragraph.", "", "A summary."),
        Task("Compare the climates of Norway and Spain briefly.", "Norway is cold.", "Spain is warmer."),
    ]
    stats = result.stats()
    assert stats["dropped"] == {
        "unparseable": 1,
        "too_short": 1,
        "too_long": 1,
        "invalid_keyword": 2,
        "starts_with_punctuation": 1,
        "duplicate": 1,
        "similar": 1,
    }
    assert list(stats["dropped"]) == list(FILTERS) and stats["parsed"] == 10 and stats["requests"] == 1
    body = fake.requests[0]
    assert body["temperature"] == 1.0 and user_text(body).endswith("###\n3. Instruction:")


def test_tasks_beyond_the_number_asked_are_counted_unused(tmp_path: Path) -> None:
    with scripted_teacher(lambda body: ONE_PER_FILTER) as fake:
        result = self_instruct(teacher_for(fake.url, tmp_path / "c.jsonl"), SEEDS, num_instructions=1)
    assert len(result.tasks) == 1 and result.unused == 1 and len(fake.requests) == 1


def test_parse_tasks_reads_chinese_labels_and_skips_a_preamble() -> None:
    answer = "好的，下面是新的任务：\n###\n3. 指令：写一首关于秋天的短诗。\n3. 输入：\n<无输入>\n"
    answer += "3. 输出：\n秋风起，落叶黄。\n"
    answer += "###\n4. 指令：没有输出的任务"
    tasks, bad = parse_tasks(answer, 3)
    assert tasks == [Task("写一首关于秋天的短诗。", "", "秋风起，落叶黄。")] and bad == 1
    assert parse_tasks("I would rather not.", 3) == ([], 1) and parse_tasks(" ", 3) == ([], 0)
    cut = block(3, "Name two rivers in China.", output="Yangtze, Yell")
    assert parse_tasks(answer + "###\n" + cut, 3, truncated=True) == (tasks, 2), "the cut last block is unparseable"


def test_bundled_seeds_are_mostly_chinese_and_get_belle_s_prompt() -> None:
    seeds = read_seed_tasks()
    assert len(seeds) == 20 and seeds_language(seeds) == "zh" and seeds_language(seeds[12:]) == "en"
    prompt = encode_prompt([Task("写一首诗。", "", "床前明月光。"), SEEDS[1]], "zh")
    assert "1. 输入:\n<无输入>\n" in prompt and "2. 输入:\nGood morning.\n" in prompt and prompt.endswith("3. 指令:")


def test_seed_tasks_may_be_crawled_questions(tmp_path: Path) -> None:
    path = tmp_path / "raw.jsonl"
    path.write_text(json.dumps({"title": "如何学习法律？", "answers": []}, ensure_ascii=False) + "\n{}\n", "utf-8")
    with pytest.raises(DataError, match=rf"{path}:2: a seed task needs text in one of the fields instruction"):
        read_seed_tasks(path)
    path.write_text(json.dumps({"title": "如何学习法律？"}, ensure_ascii=False) + "\n", "utf-8")
    assert read_seed_tasks(path) == [Task("如何学习法律？")]


_WORDS = (
    "river stone garden letter winter market engine forest candle harbor silver orchard bridge lantern meadow "
    "ticket pencil island thunder violin copper desert blanket mirror planet ladder cotton pepper valley saddle "
    "rocket marble feather compass tunnel basket canyon glacier pillow trumpet walnut anchor cabinet dragon "
    "falcon helmet jungle kettle lemon magnet needle oyster parrot quartz ribbon sponge tomato umbrella wagon"
)
WORDS = _WORDS.split()


def varied_tasks(body: dict) -> str:
    """Five fresh tasks, a pure function of the request (so a resumed run sees what an uninterrupted one saw)."""
    rng = random.Random(hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest())
    number = int(user_text(body).rsplit("###\n", 1)[1].split(".")[0])
    blocks = [block(number + i, "Explain " + " ".join(rng.sample(WORDS, 6)) + ".") for i in range(5)]
    return "\n###\n".join(blocks)[len(f"{number}. Instruction:") :]


def run(output: Path, url: str, *extra: str):
    args = ["data", "self-instruct", "--teacher-url", url, "--teacher-model", "t", "--output", str(output)]
    return CliRunner().invoke(cli, [*args, "--num-instructions", "12", "--in-context", "4", "--language", "en", *extra])


def test_a_second_run_asks_nothing_and_an_interrupted_one_resumes(tmp_path: Path) -> None:
    with scripted_teacher(varied_tasks) as fake:
        whole = tmp_path / "whole.jsonl"
        first = run(whole, fake.url)
        assert first.exit_code == 0, first.output
        asked = len(fake.requests)
        assert asked >= 3 and "12 tasks written" in first.output
        again = run(whole, fake.url)
        assert again.exit_code == 0 and len(fake.requests) == asked and "teacher requests made: 0" in again.output

        fake.fail_after = asked + 1  # the second run of another output dies after one answer
        cut = tmp_path / "cut.jsonl"
        failed = run(cut, fake.url)
        assert failed.exit_code != 0 and f"teacher {fake.url}/chat/completions answered HTTP 400" in failed.output
        assert "running the same command again resumes" in failed.output and not cut.exists()
        fake.fail_after = None
        resumed = run(cut, fake.url)
    assert resumed.exit_code == 0 and len(fake.requests) == 2 * asked, "the resumed run asked only what was missing"
    assert cut.read_bytes() == whole.read_bytes()
    rows = [json.loads(line) for line in whole.read_text("utf-8").splitlines()]
    assert len(rows) == 12 and all(set(row) == {"instruction", "input", "output"} for row in rows)
    stats = json.loads((tmp_path / "whole.stats.json").read_text("utf-8"))
    assert stats["kept"] == 12 and stats["requests"] == asked and stats["seed_tasks"] == 20
    shown = user_text(fake.requests[-1])
    assert shown.count(" Instruction: ") == 4 and "Explain " in shown, "a generated task is shown among the seeds"


HUATUO = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "medical" / "huatuo_llama_data.jsonl"


@pytest.mark.skipif(not HUATUO.is_file(), reason="shared/data/medical (Huatuo instructions) is not present")
def test_real_instructions_read_as_chinese_seeds() -> None:
    seeds = read_seed_tasks(HUATUO)
    assert len(seeds) > 1000 and seeds_language(seeds) == "zh" and all(seed.output for seed in seeds[:50])
