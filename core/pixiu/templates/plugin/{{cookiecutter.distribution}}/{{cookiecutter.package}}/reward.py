"""The `{{ cookiecutter.name }}` domain's reward: the score `pixiu domain train --method grpo` (or ppo with ppo.reward=domain) makes answers earn."""

from __future__ import annotations

from pixiu import Messages

from {{ cookiecutter.package }}.metrics import token_f1
from {{ cookiecutter.package }}.parser import parse_answer


def reward(prompt: Messages, answer: str, reference: str) -> float:
    """Token F1 (in [0, 1]) of the parsed answer against the reference: 1.0 for the gold answer, 0.0 for none.

    pixiu calls it once per sampled answer, with the prompt, the answer (chat tokens stripped) and the reference
    the metrics get. It must return a finite number for any text, never raise: give odd answers the lowest score.
    """
    return token_f1(parse_answer(answer), reference)
