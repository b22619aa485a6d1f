"""Run a toy training in a child process; with --die-at-step N it SIGKILLs itself inside step N's forward pass."""

import argparse
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pixiu.recipes.dpo as dpo_recipe
import pixiu.recipes.grpo as grpo_recipe
import pixiu.recipes.kto as kto_recipe
import pixiu.recipes.lora_sft as sft_recipe
import pixiu.recipes.ppo as ppo_recipe
import pixiu.recipes.reward_model as rm_recipe
from pixiu.config import load_config
from toy_domain import TOY


def main() -> None:
    """Parse arguments and train with the recipe of the config's train.method."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--die-at-step", type=int)
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args()
    config = load_config(overrides=args.set, values={"base": args.base})
    # the function each recipe calls once per step for the trained model (dpo also calls it for the reference)
    recipe, forward = {
        "sft": (sft_recipe, "labelled_loss"),
        "dpo": (dpo_recipe, "answer_logprobs"),
        "grpo": (grpo_recipe, "token_logprobs"),
        "rm": (rm_recipe, "score_rows"),
        "ppo": (ppo_recipe, "labelled_outputs"),
        "kto": (kto_recipe, "answer_logprobs"),
    }[config.train.method]
    with_reference = (config.train.method == "dpo" and config.dpo.loss not in ("simpo", "rrhf")) or config.grpo.beta > 0
    calls_per_step = 2 if config.train.method != "sft" and with_reference else 1
    if config.train.method == "ppo":  # the rollout's and the reference's log-probs, then each update
        calls_per_step = 2 + config.ppo.epochs
    if config.train.method == "kto":  # policy and reference on the batch, then on its mismatched answers
        calls_per_step = 4
    if args.die_at_step:
        real_forward, calls = getattr(recipe, forward), [0]

        def dying_forward(*forward_args):
            calls[0] += 1
            if calls[0] == calls_per_step * (args.die_at_step - 1) + 1:
                os.kill(os.getpid(), signal.SIGKILL)
            return real_forward(*forward_args)

        setattr(recipe, forward, dying_forward)
    recipe.run(TOY, config, Path(args.data), Path(args.run_dir), resume=args.resume)


if __name__ == "__main__":
    main()
