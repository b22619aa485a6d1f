"""CAIL2018-style scores: multi-label charges and relevant articles, and the prison term's log-distance score.

Checked against CAIL2018's official judger (thunlp/CAIL2018 @ 12df034, judger/judger.py: `gen_new_result`,
`get_value`, `gen_score`, `get_score`), which thunlp/CAIL's README (section 2.3) points to:

* tasks 1 and 2 score (micro-F1 + macro-F1) / 2 over multi-label sets; a label with no true positive has
  F1 0. The judger's macro average runs over its whole label list (202 charges, 183 articles) and counts a
  label absent from both sides as F1 1; here it runs over the labels that occur in the references or the
  predictions, so that a small evaluation set is not scored by the hundreds of labels it never mentions.
* task 3 codes death as -2 and life as -1 months; a gold death (life) sentence scores 1 only for a
  predicted death (life) sentence; a gold term in months scores 0 for any negative prediction (death, life,
  or none: the judger's -3), else by v = |log(gold + 1) - log(pred + 1)|: 1 if v <= 0.2, 0.8 if <= 0.4,
  0.6 if <= 0.6, 0.4 if <= 0.8, 0.2 if <= 1.0, else 0.
* the contest's overall score is the sum of the three task scores, out of 300 (thunlp/CAIL @ 3ed3b38,
  README.md 2.3.3 and pic/score_all.png).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from pixiu_law.answer import LawAnswer, Task, from_reference

_TERM_STEPS = ((0.2, 1.0), (0.4, 0.8), (0.6, 0.6), (0.8, 0.4), (1.0, 0.2))
"""(largest log distance, score) of CAIL2018's prison-term score, nearest first."""


def charge_metrics(preds: Sequence[Iterable[Any]], refs: Sequence[Iterable[Any]]) -> dict[str, float]:
    """Score predicted label sets (charges, or article numbers) against reference label sets.

    Macro-F1 averages over every label that appears in the references or the predictions, so a
    label predicted but never true counts with F1 0. All scores are ×100, as CAIL2018 reports them.

    Args:
        preds: One set of labels per example, e.g. from `parse_charges`.
        refs: The gold set of labels per example, in the same order.

    Returns:
        `accuracy` (exact set match), `micro_f1`, `macro_f1` and `cail_score` ((micro + macro) / 2).
        pixiu passes one prediction per reference, at least one.
    """
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.preprocessing import MultiLabelBinarizer

    pred_sets = [frozenset(p) for p in preds]
    ref_sets = [frozenset(r) for r in refs]
    binarizer = MultiLabelBinarizer(classes=sorted(frozenset().union(*pred_sets, *ref_sets)))
    y_pred = binarizer.fit_transform(pred_sets)
    y_true = binarizer.transform(ref_sets)
    if not binarizer.classes_.size:  # nothing predicted and nothing true: every set matches, F1 is 0
        accuracy, micro, macro = 1.0, 0.0, 0.0
    else:
        accuracy = accuracy_score(y_true, y_pred)  # on label indicators: exact set match
        micro = f1_score(y_true, y_pred, average="micro", zero_division=0)
        macro = f1_score(y_true, y_pred, average="macro", zero_division=0)
    return {
        "accuracy": 100 * float(accuracy),
        "micro_f1": 100 * float(micro),
        "macro_f1": 100 * float(macro),
        "cail_score": 50 * float(micro + macro),
    }


def term_score(predicted: int | None, gold: int) -> float:
    """CAIL2018's score of one predicted prison term, in [0, 1] (see the module docstring).

    Args:
        predicted: Months, `DEATH_PENALTY` (-2) or `LIFE_IMPRISONMENT` (-1); None when the answer gave none.
        gold: The case's term, coded the same way.
    """
    if gold < 0:  # death or life: only the same sentence counts
        return 1.0 if predicted == gold else 0.0
    if predicted is None or predicted < 0:
        return 0.0
    distance = abs(math.log(gold + 1) - math.log(predicted + 1))
    return next((score for limit, score in _TERM_STEPS if distance <= limit), 0.0)


def law_metrics(preds: Sequence[LawAnswer], refs: Sequence[Any]) -> dict[str, float]:
    """Score parsed answers (`parse_answer`) on the tasks their references hold, CAIL2018's way, ×100.

    Args:
        preds: One parsed answer per example.
        refs: The formatter's references, in the same order: a charge list (charges only) or a dict of parts.

    Returns:
        For charges: `accuracy`, `micro_f1`, `macro_f1`, `cail_score` (the names a charges-only run has always
        reported); for articles the same four prefixed `articles_`; for the term `term_score`, its mean score;
        with all three, `cail_total`, CAIL2018's overall score (the sum of the three, out of 300). A task is
        scored on the examples whose reference holds it.
    """
    gold = [from_reference(ref) for ref in refs]
    scores: dict[str, float] = {}
    charges = _having(preds, gold, "charges")
    if charges:
        scores |= charge_metrics([p.charges for p, _ in charges], [g.charges for _, g in charges])
    articles = _having(preds, gold, "articles")
    if articles:
        found = charge_metrics([p.articles for p, _ in articles], [g.articles for _, g in articles])
        scores |= {f"articles_{name}": value for name, value in found.items()}
    terms = _having(preds, gold, "term")
    if terms:
        total = sum(term_score(p.term, g.term) for p, g in terms if g.term is not None)
        scores["term_score"] = 100 * total / len(terms)
    if charges and articles and terms:
        scores["cail_total"] = scores["cail_score"] + scores["articles_cail_score"] + scores["term_score"]
    return scores


def _having(
    preds: Sequence[LawAnswer], gold: Sequence[tuple[LawAnswer, tuple[Task, ...]]], task: Task
) -> list[tuple[LawAnswer, LawAnswer]]:
    """The (prediction, gold answer) pairs whose reference holds `task`."""
    return [(pred, answer) for pred, (answer, tasks) in zip(preds, gold, strict=True) if task in tasks]
