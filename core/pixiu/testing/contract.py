"""`check_domain`: the contract test every domain's own test suite runs, the built-in verticals included."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from pixiu.domain import Domain, Example
from pixiu.errors import PixiuError

if TYPE_CHECKING:
    from pixiu.config import RunConfig

_NAME = re.compile(r"[a-z][a-z0-9_-]*")
"""A domain name: what `pixiu domain train NAME` and the adapter registry accept."""
REWARD_EXAMPLES = 3
"""Examples whose gold and empty answers `check_domain` scores with the domain's reward."""


def check_domain(
    domain: Domain, *, data: Path | None = None, limit: int = 50, min_examples: int = 3
) -> dict[str, float]:
    """Check that `domain` keeps pixiu's contract, the way pixiu itself will use it; call it from a plugin's tests.

    Checked: the fields are well-formed; the default recipe YAML loads (`pixiu.config.load_config`); the
    records of `data` (default: the sample data) format through pixiu's own loader into at least
    `min_examples` examples; the first `limit` of them have a user turn, end with a non-empty assistant
    answer and have JSON-serialisable references; parser and metrics score their gold answers as pixiu's
    evaluation does (finite numbers); the gold answers score higher than empty answers on at least one
    metric; every spider imports; the reward, when set, gives the first `REWARD_EXAMPLES` gold answers finite
    scores no lower than empty answers get.

    Returns:
        The gold answers' scores, for the domain's own assertions (e.g. accuracy 100).

    Raises:
        AssertionError: Listing every problem found, each with how to fix it.
    """
    config, config_problems = _check_config(domain)
    problems = _check_fields(domain) + config_problems + _check_spiders(domain) + _check_preferences(domain, data)
    examples, loading = _load(domain, config, data, limit)
    problems += loading
    if examples and len(examples) < min_examples:
        problems.append(f"only {len(examples)} examples formatted; ship at least {min_examples} sample records")
    scores: dict[str, float] = {}
    if examples:
        example_problems = _check_examples(examples)
        problems += example_problems
        if not example_problems:
            scores, scoring = _check_scores(domain, examples)
            problems += scoring + _check_reward(domain, examples[:REWARD_EXAMPLES])
    if problems:
        raise AssertionError(f"domain {domain.name!r} breaks pixiu's contract:\n- " + "\n- ".join(problems))
    return scores


def _check_fields(domain: Domain) -> list[str]:
    """Problems with the plain fields: names, texts, callables and paths."""
    problems = []
    if not isinstance(domain.name, str) or not _NAME.fullmatch(domain.name):
        problems.append(f"name {domain.name!r} must be lower-case letters, digits, '-' or '_', starting with a letter")
    for field in ("description", "version"):
        value = getattr(domain, field)
        if not isinstance(value, str) or not value.strip() or "\n" in value:
            problems.append(f"{field} must be one non-empty line of text, found {value!r}")
    for field in ("formatter", "parser", "metrics"):
        if not callable(getattr(domain, field)):
            problems.append(f"{field} must be a function, found {type(getattr(domain, field)).__name__}")
    for field in ("default_config", "sample_data"):
        path = getattr(domain, field)
        if path is not None and not Path(path).is_file():
            problems.append(f"{field} {path} is not a file; ship it as package data or set it to None")
    if isinstance(domain.spiders, str):
        problems.append("spiders must be a sequence of 'module:Class' paths, not one string; wrap it in a tuple")
    return problems


def _check_config(domain: Domain) -> tuple[RunConfig, list[str]]:
    """The config of the default recipe YAML (defaults when there is none or it does not load), and its problems."""
    from pixiu.config import RunConfig, load_config

    if domain.default_config is None or not Path(domain.default_config).is_file():
        return RunConfig(), []
    try:
        return load_config([domain.default_config], domain=domain), []
    except PixiuError as exc:
        return RunConfig(), [f"default_config {domain.default_config} does not load: {exc}"]


def _check_spiders(domain: Domain) -> list[str]:
    """Problems importing each spider named in `domain.spiders`."""
    if isinstance(domain.spiders, str):
        return []
    problems = []
    for path in domain.spiders:
        module, _, name = str(path).partition(":")
        try:
            spider = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            problems.append(f"spider {path!r} does not import ({exc}); write it as 'package.module:Class'")
            continue
        if not getattr(spider, "name", None):
            problems.append(f"spider {path!r} has no `name`; scrapy needs one")
    return problems


def _check_preferences(domain: Domain, data: Path | None) -> list[str]:
    """Problems making preference pairs of `data` (or the sample data) with the domain's preference formatter."""
    from pixiu.preference import load_preferences

    path = data or domain.sample_data
    if domain.preference_formatter is None or path is None or not Path(path).is_file():
        return []
    if not callable(domain.preference_formatter):
        return [f"preference_formatter must be a function, found {type(domain.preference_formatter).__name__}"]
    try:
        load_preferences(Path(path), domain)
    except PixiuError as exc:
        return [f"the sample data does not make preference pairs: {exc}"]
    return []


def _load(domain: Domain, config: RunConfig, data: Path | None, limit: int) -> tuple[list[Example], list[str]]:
    """The first `limit` examples of `data` (or the sample data) through pixiu's loader, or why there are none."""
    from pixiu.config import formatter_for
    from pixiu.records import load_examples

    path = data or domain.sample_data
    if path is None:
        return [], ["no sample_data to check; ship sample records or pass data= to check_domain"]
    if not callable(domain.formatter) or not Path(path).is_file():
        return [], []
    try:
        return load_examples(Path(path), formatter_for(domain, config)).items[:limit], []
    except PixiuError as exc:
        return [], [f"the sample data does not format: {exc}"]


def _check_examples(examples: list[Example]) -> list[str]:
    """Problems with the formatted examples: roles, contents, a prompt before the answer, JSON references."""
    problems = []
    for example in examples:
        roles = [m.get("role") for m in example.messages]
        if any(role not in ("system", "user", "assistant") for role in roles):
            problems.append(f"{example.where}: message roles must be system, user or assistant, found {roles}")
        elif "user" not in roles[:-1]:
            problems.append(f"{example.where}: the messages need a user turn before the answer, found {roles}")
        if not all(isinstance(m.get("content"), str) for m in example.messages):
            problems.append(f"{example.where}: every message's content must be a string")
        elif not example.messages[-1]["content"].strip():
            problems.append(f"{example.where}: the gold answer is empty")
        try:
            json.dumps(example.reference, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            problems.append(f"{example.where}: Example.reference must be JSON-serialisable (lists, not sets): {exc}")
    return problems[:5]


def _check_scores(domain: Domain, examples: list[Example]) -> tuple[dict[str, float], list[str]]:
    """The gold answers' scores, and problems scoring them (or empty answers) as pixiu's evaluation does."""
    from pixiu.evaluation import score_answers

    golds = [e.messages[-1]["content"] for e in examples]
    try:
        perfect = score_answers(domain, golds, examples)
        empty = score_answers(domain, [""] * len(examples), examples)
    except PixiuError as exc:
        return {}, [str(exc)]
    except Exception as exc:
        return {}, [f"parser or metrics fail on the gold answers: {type(exc).__name__}: {exc}"]
    if not perfect:
        return {}, ["metrics returned no score; return at least one {name: number}"]
    if not any(perfect[name] > empty.get(name, float("-inf")) for name in perfect):
        problem = (
            f"the gold answers score no higher than empty answers ({perfect} vs {empty}); do parser "
            "and metrics compare predictions with the references?"
        )
        return perfect, [problem]
    return perfect, []


def _check_reward(domain: Domain, examples: list[Example]) -> list[str]:
    """Problems scoring gold and empty answers with the domain's reward, called as `--method grpo` calls it."""
    from pixiu.evaluation import is_score, reference_of

    if domain.reward is None:
        return []
    if not callable(domain.reward):
        return [f"reward must be a function or None, found {type(domain.reward).__name__}"]
    problems = []
    for example in examples:
        prompt, gold = example.messages[:-1], example.messages[-1]["content"]
        try:
            reference = reference_of(domain, example)
            perfect, empty = domain.reward(prompt, gold, reference), domain.reward(prompt, "", reference)
        except Exception as exc:
            problems.append(
                f"{example.where}: reward fails: {type(exc).__name__}: {exc}; it must never raise on model "
                "text: give odd answers (empty, garbage) the lowest score instead"
            )
            continue
        if not (is_score(perfect) and is_score(empty)):
            problems.append(
                f"{example.where}: reward must return a finite number (not a bool, NaN or infinity), got "
                f"{perfect!r} for the gold answer and {empty!r} for an empty one"
            )
        elif perfect < empty:
            problems.append(
                f"{example.where}: reward scores the gold answer ({perfect}) below an empty answer ({empty}); "
                "higher must be better: does it compare the answer with the reference?"
            )
    return problems
