"""CAIL2018-style scores for multi-label charge prediction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def charge_metrics(preds: Sequence[Iterable[str]], refs: Sequence[Iterable[str]]) -> dict[str, float]:
    """Score predicted charge sets against reference charge sets.

    Macro-F1 averages over every charge that appears in the references or the predictions, so a
    charge predicted but never true counts with F1 0. All scores are ×100, as CAIL2018 reports them.

    Args:
        preds: One set of charges per example, e.g. from `parse_charges`.
        refs: The gold set of charges per example, in the same order.

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
