"""Run a toy training in a child process; with --die-at-step N it SIGKILLs itself inside step N's forward pass."""

import argparse
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pixiu.recipes.lora_sft as recipe
from pixiu.config import load_config
from toy_domain import TOY


def main() -> None:
    """Parse arguments and train."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--die-at-step", type=int)
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args()
    if args.die_at_step:
        real_loss, calls = recipe.labelled_loss, [0]

        def dying_loss(model, batch):
            calls[0] += 1
            if calls[0] == args.die_at_step:
                os.kill(os.getpid(), signal.SIGKILL)
            return real_loss(model, batch)

        recipe.labelled_loss = dying_loss
    config = load_config(overrides=args.set, values={"base": args.base})
    recipe.run(TOY, config, Path(args.data), Path(args.run_dir), resume=args.resume)


if __name__ == "__main__":
    main()
