"""PPO (`train.method: ppo`): the per-token rewards, GAE and clipped losses; a run on the domain's reward that
raises the held-out reward; a run on a reward model that shares the policy's one base and stays frozen; exact
resume after SIGKILL; a reward model on another base, or none, refused before anything loads."""

import dataclasses
import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from pixiu.config import load_config
from pixiu.errors import ConfigError, PixiuError
from pixiu.ppo_loss import generalised_advantages, last_tokens, ppo_loss, token_rewards, whiten
from pixiu.recipes import reward_model as rm_recipe
from pixiu.recipes.ppo import run
from pixiu.registry import list_adapters
from toy_domain import TOY, write_toy_data, write_toy_pairs

CHILD = Path(__file__).with_name("train_child.py")
SMALL = [
    "train.method=ppo",
    "data.max_seq_len=96",
    "train.batch_tokens=4096",
    "data.eval_records=8",
    "eval.max_new_tokens=8",
    "train.lr=3e-2",
    "train.warmup_steps=1",
    "ppo.max_new_tokens=12",
]


def ppo_config(base, *extra):
    return load_config(overrides=[*SMALL, *extra], values={"base": str(base)})


def test_the_score_lands_on_each_rollouts_last_token_beside_the_kl_penalty():
    rows = torch.tensor([0, 0, 0, 1, 1])
    assert last_tokens(rows).tolist() == [False, False, True, False, True]
    kl = torch.tensor([0.5, 0.0, 1.0, 2.0, 0.0])
    rewards = token_rewards(torch.tensor([3.0, -1.0]), kl, rows, kl_coef=0.1)
    assert rewards.tolist() == pytest.approx([-0.05, 0.0, 3.0 - 0.1, -0.2, -1.0])


def test_gae_runs_backwards_within_each_rollout_only():
    rows = torch.tensor([0, 0, 1])
    rewards, values = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([0.5, 0.25, 1.0])
    advantages, returns = generalised_advantages(rewards, values, rows, gamma=0.9, lam=0.5)
    last = 1.0 - 0.25  # the value after a rollout's last token is 0
    first = (0.0 + 0.9 * 0.25 - 0.5) + 0.9 * 0.5 * last
    assert advantages.tolist() == pytest.approx([first, last, 2.0 - 1.0])  # rollout 1 does not see rollout 0
    assert returns.tolist() == pytest.approx((advantages + values).tolist())
    monte_carlo, _ = generalised_advantages(rewards, values, rows, gamma=1.0, lam=1.0)
    assert monte_carlo.tolist() == pytest.approx([1.0 - 0.5, 1.0 - 0.25, 1.0])  # lambda 1: return minus value


def test_whitening_gives_mean_zero_and_unit_spread():
    whitened = whiten(torch.tensor([1.0, 2.0, 3.0, 6.0]))
    assert whitened.mean().item() == pytest.approx(0.0, abs=1e-6) and whitened.std().item() == pytest.approx(1.0)


def test_the_policy_loss_stops_pushing_a_ratio_beyond_the_clip():
    old = torch.zeros(2)
    logprobs = torch.tensor([0.5, 0.05], requires_grad=True)  # ratios e^0.5 (beyond 1.2) and e^0.05 (inside)
    zeros = torch.zeros(2)
    result = ppo_loss(logprobs, old, torch.ones(2), zeros, zeros, zeros, clip=0.2, value_clip=0.2, value_coef=0.1)
    result.loss.backward()
    assert logprobs.grad is not None
    assert logprobs.grad[0].item() == 0.0 and logprobs.grad[1].item() < 0  # only the unclipped token is pushed
    assert result.clip_fraction.item() == 0.5


def test_the_value_loss_takes_the_worse_of_clipped_and_unclipped():
    values = torch.tensor([1.0], requires_grad=True)
    zeros = torch.zeros(1)
    result = ppo_loss(zeros, zeros, zeros, values, zeros, torch.tensor([2.0]), clip=0.2, value_clip=0.2, value_coef=1.0)
    assert result.value_loss.item() == pytest.approx(0.5 * (2.0 - 0.2) ** 2)  # the clipped value, 0.2, is further off
    assert result.policy_loss.item() == 0.0


def test_ppo_on_the_domains_reward_raises_the_held_out_reward_and_registers_domain_ppo(tiny_model_dir, tmp_path):
    data = write_toy_data(tmp_path / "toy.jsonl", 40)
    run_dir = tmp_path / "run"
    config = ppo_config(tiny_model_dir, "ppo.reward=domain", "train.max_steps=30", "train.save_every=10")
    summary = run(TOY, config, data, run_dir)
    log = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 31))
    assert all(0 <= r["reward"] <= 1 and r["value_loss"] >= 0 and 0 <= r["clip_fraction"] <= 1 for r in log)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert summary.metrics == metrics and metrics["records"] == 8 and metrics["train"]["method"] == "ppo"
    # the tiny random model's greedy answers start with no Chinese at all; PPO on the share of it moves them
    assert metrics["adapter"]["reward"] > metrics["base"]["reward"]
    assert {"exact_match", "reward"} <= set(metrics["adapter"])
    entry = list_adapters()[0]
    assert (entry.name, entry.domain) == ("toy-ppo", "toy")


@pytest.fixture(scope="module")
def toy_reward_model(tiny_model_dir, tmp_path_factory):
    """A reward model trained on the toy pairs (the colour the question names is preferred)."""
    folder = tmp_path_factory.mktemp("toy-rm")
    pairs = write_toy_pairs(folder / "pairs.jsonl", 60)
    overrides = ["train.method=rm", "data.max_seq_len=64", "train.batch_tokens=1024", "data.eval_records=0"]
    config = load_config(
        overrides=[*overrides, "train.max_steps=20", "train.lr=5e-3"], values={"base": str(tiny_model_dir)}
    )
    return rm_recipe.run(TOY, config, pairs, folder / "run").run_dir, pairs


def test_ppo_on_a_reward_model_shares_one_base_and_leaves_the_reward_model_as_it_was(
    tiny_model_dir, toy_reward_model, tmp_path, monkeypatch
):
    import pixiu.training
    from pixiu.models import load_base
    from pixiu.reward_model import load_reward_model

    rm_dir, pairs = toy_reward_model
    rm_weights = load_file(str(rm_dir / "adapter_model.safetensors"))
    loads = []
    monkeypatch.setattr(pixiu.training, "load_base", lambda *a, **k: loads.append(a) or load_base(*a, **k))
    run_dir = tmp_path / "run"
    config = ppo_config(tiny_model_dir, f"ppo.reward_model={rm_dir}", "train.max_steps=3", "data.eval_records=6")
    summary = run(TOY, config, pairs, run_dir)
    assert len(loads) == 1  # policy, reference and reward model on one base
    reward_model = load_reward_model(rm_dir)  # untouched by the policy's training
    after = load_file(str(rm_dir / "adapter_model.safetensors"))
    assert all(torch.equal(after[k], rm_weights[k]) for k in rm_weights)
    log = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    predictions = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == summary.metrics["records"] == 6
    first = predictions[0]
    assert first["adapter_reward"] == pytest.approx(reward_model.score(first["prompt"], first["adapter"]), abs=1e-4)
    assert set(summary.metrics) >= {"base", "adapter", "chosen"} and summary.metrics["train"]["reward"] == "model"
    assert summary.metrics["chosen"]["reward"] == pytest.approx(
        sum(p["chosen_reward"] for p in predictions) / 6, abs=1e-3
    )
    assert all(isinstance(r["reward"], float) for r in log)
    saved = {p.name for p in run_dir.iterdir()}
    assert "adapter_model.safetensors" in saved and "reward" not in saved  # only the policy is saved
    policy = load_file(str(run_dir / "adapter_model.safetensors"))
    assert set(policy) == set(rm_weights) and not all(torch.equal(policy[k], rm_weights[k]) for k in policy)


def train_in_child(*args):
    return subprocess.run([sys.executable, str(CHILD), *args], capture_output=True, text=True, timeout=300)


def test_a_sigkilled_ppo_run_resumes_exactly(tiny_model_dir, toy_reward_model, tmp_path):
    rm_dir, pairs = toy_reward_model
    common = ["--base", str(tiny_model_dir), "--data", str(pairs)]
    extra = ["train.max_steps=5", "train.save_every=2", "data.eval_records=0", "train.batch_tokens=1024"]
    settings = [f"--set={s}" for s in [*SMALL, *extra, f"ppo.reward_model={rm_dir}", "lora.dropout=0.1"]]
    straight = train_in_child(*common, "--run-dir", str(tmp_path / "straight"), *settings)
    assert straight.returncode == 0, straight.stderr
    broken = tmp_path / "broken"
    killed = train_in_child(*common, "--run-dir", str(broken), "--die-at-step", "4", *settings)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = train_in_child(*common, "--run-dir", str(broken), "--resume", *settings)
    assert resumed.returncode == 0, resumed.stderr
    assert "at step 2" in " ".join(resumed.stderr.split())
    expected_log = [json.loads(line) for line in (tmp_path / "straight" / "train_log.jsonl").read_text().splitlines()]
    resumed_log = [json.loads(line) for line in (broken / "train_log.jsonl").read_text().splitlines()]
    assert [r["reward"] for r in resumed_log] == pytest.approx([r["reward"] for r in expected_log], abs=1e-6)
    assert [r["loss"] for r in resumed_log] == pytest.approx([r["loss"] for r in expected_log], rel=1e-5, abs=1e-7)
    expected = load_file(str(tmp_path / "straight" / "adapter_model.safetensors"))
    actual = load_file(str(broken / "adapter_model.safetensors"))
    for key in expected:
        assert actual[key].allclose(expected[key], atol=1e-6), key
    straight_head = load_file(
        str(next((tmp_path / "straight" / "checkpoints").glob("step-0000005")) / "adapter.safetensors")
    )
    resumed_head = load_file(str(next((broken / "checkpoints").glob("step-0000005")) / "adapter.safetensors"))
    assert resumed_head["value_head.weight"].allclose(straight_head["value_head.weight"], atol=1e-6)


def test_a_reward_model_of_another_base_or_none_at_all_is_refused_before_anything_loads(toy_reward_model, tmp_path):
    rm_dir, pairs = toy_reward_model
    with pytest.raises(PixiuError, match=r"was trained on the base .*, not on another-base; .*pass --base"):
        run(TOY, ppo_config("another-base", f"ppo.reward_model={rm_dir}"), pairs, tmp_path / "r1")
    headless = shutil.copytree(rm_dir, tmp_path / "no-head")
    (headless / "reward_head.safetensors").unlink()
    with pytest.raises(PixiuError, match=r"not a reward model: it has no reward_head\.safetensors"):
        run(TOY, ppo_config("another-base", f"ppo.reward_model={headless}"), pairs, tmp_path / "r2")
    with pytest.raises(PixiuError, match=r"no adapter 'toy-rm'.*\n.*pixiu domain train toy --method rm"):
        run(TOY, ppo_config("another-base"), pairs, tmp_path / "r3")  # the default, DOMAIN-rm, is not registered
    assert not any((tmp_path / r).exists() for r in ("r1", "r2", "r3"))


def test_a_raising_domain_reward_stops_the_run_by_plugin_name(tiny_model_dir, tmp_path):
    def broken(prompt, answer, reference):
        raise ValueError("no charges")

    data = write_toy_data(tmp_path / "toy.jsonl", 20)
    config = ppo_config(tiny_model_dir, "ppo.reward=domain", "train.max_steps=3", "data.eval_records=0")
    with pytest.raises(PixiuError, match=r"reward function of domain 'toy' \(plugin toy_domain\) raised ValueError"):
        run(dataclasses.replace(TOY, reward=broken), config, data, tmp_path / "run")


def test_ppo_on_the_domains_reward_needs_one():
    with pytest.raises(PixiuError, match=r"has no reward function"):
        run(dataclasses.replace(TOY, reward=None), ppo_config("x", "ppo.reward=domain"), Path("none"), Path("r"))


def test_an_answer_budget_that_leaves_no_room_for_the_prompt_is_a_config_error():
    with pytest.raises(ConfigError, match=r"ppo\.max_new_tokens \(96\) must be < data\.max_seq_len \(96\)"):
        load_config(overrides=["train.method=ppo", "data.max_seq_len=96", "ppo.max_new_tokens=96"])


def test_the_command_line_chains_rm_into_ppo_and_registers_toy_ppo(tiny_model_dir, tmp_path, toy_plugin):
    from click.testing import CliRunner

    from pixiu.cli import cli

    runner = CliRunner()
    data = write_toy_pairs(tmp_path / "pairs.jsonl", 30)
    common = ["--base", str(tiny_model_dir), "--data", str(data), "--max-steps", "2"]
    sets = ["--set", "data.max_seq_len=64", "--set", "train.batch_tokens=512", "--set", "data.eval_records=6"]
    before = runner.invoke(cli, ["domain", "train", "toy", "--method", "ppo", *common, *sets])
    assert before.exit_code != 0 and "pixiu domain train toy --method rm" in before.output  # no toy-rm yet
    rm = runner.invoke(cli, ["domain", "train", "toy", "--method", "rm", *common, *sets])
    assert rm.exit_code == 0, rm.output
    ppo = [*sets, "--set", "ppo.max_new_tokens=8", "--output", str(tmp_path / "ppo")]
    result = runner.invoke(cli, ["domain", "train", "toy", "--method", "ppo", *common, *ppo])
    assert result.exit_code == 0, result.output
    assert "registered as 'toy-ppo'" in result.output and "6 held-out" in result.output, result.output
    assert "chosen" in result.output  # the reward of the held-out preferred answers, for scale
    help_text = runner.invoke(cli, ["domain", "train", "--help"]).output
    assert "--method ppo" in help_text


def test_a_reward_model_whose_config_holds_domain_settings_loads_without_the_domain(toy_reward_model, tmp_path):
    import yaml

    from pixiu.reward_model import load_reward_model

    rm_dir, _ = toy_reward_model
    folder = shutil.copytree(rm_dir, tmp_path / "zhihu-like-rm")
    record = yaml.safe_load((folder / "pixiu_run.yaml").read_text(encoding="utf-8"))
    record["config"]["plugins"] = {"toy": {"top_answers": 3}}  # as a zhihu run records plugins.zhihu
    (folder / "pixiu_run.yaml").write_text(yaml.safe_dump(record, allow_unicode=True), encoding="utf-8")
    assert load_reward_model(folder).max_len == 64
