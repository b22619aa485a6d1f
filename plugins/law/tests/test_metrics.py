"""CAIL-style charge metrics against small hand-computed cases."""

from __future__ import annotations

import pytest

from pixiu_law.metrics import charge_metrics


def test_perfect_predictions() -> None:
    refs = [{"盗窃"}, {"诈骗", "盗窃"}]
    scores = charge_metrics(refs, refs)
    assert scores == {"accuracy": 100.0, "micro_f1": 100.0, "macro_f1": 100.0, "cail_score": 100.0}


def test_hand_computed_case() -> None:
    preds = [{"盗窃"}, {"诈骗"}, set(), {"抢劫"}]
    refs = [{"盗窃"}, {"盗窃", "诈骗"}, {"抢夺"}, {"抢夺"}]
    # 盗窃: tp 1, fn 1 -> F1 2/3.  诈骗: tp 1 -> F1 1.  抢夺: fn 2 -> F1 0.  抢劫: fp 1 -> F1 0.
    # micro: tp 2, fp 1, fn 3 -> P 2/3, R 2/5, F1 = 2*2 / (2*2 + 1 + 3) = 1/2.
    scores = charge_metrics(preds, refs)
    assert scores["accuracy"] == pytest.approx(25.0)
    assert scores["micro_f1"] == pytest.approx(50.0)
    assert scores["macro_f1"] == pytest.approx(100 * (2 / 3 + 1) / 4)
    assert scores["cail_score"] == pytest.approx((scores["micro_f1"] + scores["macro_f1"]) / 2)


def test_accepts_any_iterables_of_names() -> None:
    assert charge_metrics([frozenset({"盗窃"}), ["诈骗"]], [("盗窃",), {"诈骗"}])["accuracy"] == 100.0


def test_all_empty_sets() -> None:
    assert charge_metrics([set()], [set()]) == {
        "accuracy": 100.0,
        "micro_f1": 0.0,
        "macro_f1": 0.0,
        "cail_score": 0.0,
    }
