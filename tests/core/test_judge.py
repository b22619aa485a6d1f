"""The LLM judge: verdict parsing, both orders, the Wilson interval, and whole judgements against a fake endpoint."""

import json
import math
import re

import pytest
from click.testing import CliRunner

from hand_run import PROMPTS, write_hand_run
from pixiu.cli import cli
from pixiu.judge import Z_95, combine, judge_adapter, parse_verdict, wilson_interval
from pixiu.testing.loopback import ChatRequest, FakeOpenAI, completion, serving

ANSWER = re.compile(r"\[The start of Assistant (A|B)'s answer\]\n(.*?)\n\[The end of", re.DOTALL)


def answers_of(request: ChatRequest) -> dict[str, str]:
    """The two answers in a judge prompt, by position."""
    return dict(ANSWER.findall(request.body["messages"][-1]["content"]))


class Judge(FakeOpenAI):
    """A fake judge whose verdict is `decide(answers by position)`; it counts its requests."""

    def __init__(self, decide):
        super().__init__()
        self.decide, self.requests = decide, 0

    def reply(self, request: ChatRequest) -> tuple[int, dict]:
        self.requests += 1
        return 200, completion(self.decide(answers_of(request)))


def prefers_adapter(answers: dict[str, str]) -> str:
    winner = "A" if answers["A"].startswith("adapter") else "B"
    return f"Assistant {winner} names the colour.\n[[{winner}]]"


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("A is better.\n[[A]]", "A"),
        ("[[B]]", "B"),
        ("Both are equally good. [[C]]", "C"),
        ("[[tie]]", "C"),
        ("First I thought [[A]], but on reflection [[B]]", "B"),
        ("B", "B"),
        ("tie.", "C"),
        ("I cannot decide.", None),
        ("", None),
    ],
)
def test_parse_verdict(reply, verdict):
    assert parse_verdict(reply) == verdict


def test_combine_needs_both_orders_to_agree():
    assert combine("B", "A") == "win" and combine("A", "B") == "loss"
    assert combine("A", "A") == "tie"  # flips with the order: position bias, not preference
    assert combine("B", "C") == "tie" and combine("C", "C") == "tie"
    assert combine(None, "A") == "unparsed" and combine("B", None) == "unparsed"


def test_wilson_interval():
    low, high = wilson_interval(10, 10)
    assert math.isclose(low, 10 / (10 + Z_95**2)) and math.isclose(high, 1.0)
    low, high = wilson_interval(5, 10)
    assert math.isclose(low + high, 1.0) and math.isclose(low, 0.2366, abs_tol=1e-4)  # textbook value
    assert wilson_interval(0, 0) == (0.0, 1.0)


def judge_hand_run(toy_plugin, tmp_path, decide, **options):
    run_dir = tmp_path / "run"
    if not run_dir.exists():  # a second judgement of the same folder reuses it
        write_hand_run(run_dir)
    server = Judge(decide)
    with serving(server):
        section = judge_adapter("toy", adapter=str(run_dir), teacher_url=server.url, teacher_model="judge", **options)
    return run_dir, server, section


def test_a_judge_that_always_prefers_position_a_gives_all_ties(toy_plugin, tmp_path):
    _, server, section = judge_hand_run(toy_plugin, tmp_path, lambda answers: "[[A]]")
    assert server.requests == 2 * PROMPTS
    assert (section["adapter_wins"], section["ties"], section["base_wins"]) == (0, PROMPTS, 0)
    assert section["win_rate"] == 0.5 and section["answers"].endswith("predictions.jsonl")


def test_a_judge_preferring_the_adapter_gives_win_rate_one_and_resumes_from_its_cache(toy_plugin, tmp_path):
    run_dir, server, section = judge_hand_run(toy_plugin, tmp_path, prefers_adapter)
    assert server.requests == 2 * PROMPTS
    assert section["adapter_wins"] == PROMPTS and section["win_rate"] == 1.0
    assert section["ci95"] == [round(PROMPTS / (PROMPTS + Z_95**2), 4), 1.0] and section["interval"] == "wilson"
    rows = [json.loads(line) for line in (run_dir / "judge.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == PROMPTS and rows[0]["base"] == "base 0" and rows[0]["adapter"] == "adapter 0"
    assert rows[0]["base_first"]["verdict"] == "B" and rows[0]["adapter_first"]["verdict"] == "A"
    assert "[[B]]" in rows[0]["base_first"]["reply"] and rows[0]["outcome"] == "win"
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["judge"]["adapter_wins"] == PROMPTS and metrics["adapter"] == {"exact_match": 40.0}
    assert "LLM judge" in (run_dir / "report.html").read_text(encoding="utf-8")

    _, again, section = judge_hand_run(toy_plugin, tmp_path, lambda answers: "[[A]]")  # a different judge now
    assert again.requests == 0 and section["requests"] == 0 and section["win_rate"] == 1.0  # all from the cache


def test_unparseable_verdicts_are_counted_not_judged(toy_plugin, tmp_path):
    def sometimes_rambles(answers):
        return "Hmm, hard to say." if "adapter 0" in answers.values() else prefers_adapter(answers)

    _, _, section = judge_hand_run(toy_plugin, tmp_path, sometimes_rambles, limit=3)
    assert section["prompts"] == 3 and section["unparsed"] == 1 and section["judged"] == 2
    assert section["adapter_wins"] == 2 and section["win_rate"] == 1.0


def test_judge_command_prints_the_tally(toy_plugin, tmp_path):
    run_dir = write_hand_run(tmp_path / "run")
    server = Judge(prefers_adapter)
    with serving(server):
        args = ["domain", "judge", "toy", "--adapter", str(run_dir), "--teacher-url", server.url]
        result = CliRunner().invoke(cli, [*args, "--teacher-model", "judge"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"adapter wins {PROMPTS}, ties 0, base wins 0, unparsed 0" in result.output
    assert "adapter win rate 1.000 (95% Wilson interval" in result.output


def test_answers_are_generated_when_the_run_kept_none(toy_plugin, tiny_model_dir, tmp_path):
    from pixiu.config import load_config
    from pixiu.recipes.lora_sft import run
    from toy_domain import TOY, write_toy_data

    settings = ["data.max_seq_len=64", "train.batch_tokens=256", "data.eval_records=2", "eval.max_new_tokens=2"]
    config = load_config(
        overrides=[*settings, "train.max_steps=1", "eval.general=false"], values={"base": str(tiny_model_dir)}
    )
    run_dir = tmp_path / "run"
    run(TOY, config, write_toy_data(tmp_path / "toy.jsonl", 8), run_dir)
    (run_dir / "predictions.jsonl").unlink()
    run_dir, server, section = judge_hand_run(toy_plugin, tmp_path, lambda answers: "[[C]]", device="cpu")
    rows = [json.loads(line) for line in (run_dir / "judge.jsonl").read_text(encoding="utf-8").splitlines()]
    different = sum(row["base"] != row["adapter"] for row in rows)
    assert section["answers"] == "generated" and section["prompts"] == 2 and section["ties"] == 2
    assert server.requests == 2 * different  # identical answers are a tie without a request


def test_identical_answers_are_a_tie_without_asking(toy_plugin, tmp_path):
    run_dir = write_hand_run(tmp_path / "run")
    rows = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    (run_dir / "predictions.jsonl").write_text(
        "".join(json.dumps({**row, "adapter": row["base"]}) + "\n" for row in rows), encoding="utf-8"
    )
    _, server, section = judge_hand_run(toy_plugin, tmp_path, prefers_adapter)
    assert server.requests == 0 and section["ties"] == PROMPTS and section["win_rate"] == 0.5
