"""CAIL-style charge, article and prison-term metrics against small hand-computed cases."""

from __future__ import annotations

import pytest

from pixiu_law.answer import DEATH_PENALTY, LIFE_IMPRISONMENT, LawAnswer
from pixiu_law.metrics import charge_metrics, law_metrics, term_score


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


@pytest.mark.parametrize(
    ("predicted", "gold", "score"),
    [
        (8, 8, 1.0),
        (9, 8, 1.0),  # |log 10 - log 9| = 0.105
        (10, 8, 0.8),  # 0.201, just past 0.2
        (0, 0, 1.0),
        (1, 0, 0.4),  # log 2 = 0.693
        (6, 12, 0.4),  # |log 7 - log 13| = 0.619
        (7, 12, 0.6),  # |log 8 - log 13| = 0.486
        (17, 12, 0.8),  # |log 18 - log 13| = 0.325
        (4, 12, 0.2),  # |log 5 - log 13| = 0.956
        (36, 12, 0.0),  # |log 37 - log 13| = 1.046
        (24, 12, 0.4),  # |log 25 - log 13| = 0.654
        (None, 8, 0.0),  # nothing parsed: CAIL's -3
        (DEATH_PENALTY, 8, 0.0),
        (LIFE_IMPRISONMENT, 240, 0.0),
        (DEATH_PENALTY, DEATH_PENALTY, 1.0),
        (LIFE_IMPRISONMENT, LIFE_IMPRISONMENT, 1.0),
        (LIFE_IMPRISONMENT, DEATH_PENALTY, 0.0),
        (180, LIFE_IMPRISONMENT, 0.0),
        (None, DEATH_PENALTY, 0.0),
    ],
)
def test_term_score(predicted: int | None, gold: int, score: float) -> None:
    assert term_score(predicted, gold) == score


def test_law_metrics_on_a_charge_list_reference_are_the_charge_metrics() -> None:
    preds = [LawAnswer(charges=frozenset({"盗窃"}), articles=frozenset({264}), term=8), LawAnswer()]
    refs = [["盗窃"], ["诈骗"]]
    assert law_metrics(preds, refs) == charge_metrics([{"盗窃"}, set()], [{"盗窃"}, {"诈骗"}])


def test_law_metrics_hand_computed_on_all_three_tasks() -> None:
    preds = [
        LawAnswer(charges=frozenset({"盗窃"}), articles=frozenset({264}), term=10),
        LawAnswer(charges=frozenset({"抢劫"}), articles=frozenset({263, 264}), term=LIFE_IMPRISONMENT),
        LawAnswer(charges=frozenset({"故意杀人"}), articles=frozenset(), term=None),
    ]
    refs = [
        {"charges": ["盗窃"], "articles": [264, 266], "term": 8},
        {"charges": ["抢劫"], "articles": [263], "term": LIFE_IMPRISONMENT},
        {"charges": ["故意杀人"], "articles": [232], "term": DEATH_PENALTY},
    ]
    scores = law_metrics(preds, refs)
    assert scores["accuracy"] == scores["cail_score"] == 100.0
    # articles: 264 tp 1 fp 1 -> F1 2/3; 266 fn 1 -> 0; 263 tp 1 -> 1; 232 fn 1 -> 0.
    # micro: tp 2, fp 1, fn 2 -> 2*2 / (2*2 + 1 + 2) = 4/7.
    assert scores["articles_accuracy"] == 0.0
    assert scores["articles_micro_f1"] == pytest.approx(100 * 4 / 7)
    assert scores["articles_macro_f1"] == pytest.approx(100 * (2 / 3 + 1) / 4)
    assert scores["articles_cail_score"] == pytest.approx((100 * 4 / 7 + 100 * (2 / 3 + 1) / 4) / 2)
    # term: 10 vs 8 -> 0.8; life vs life -> 1; nothing vs death -> 0.
    assert scores["term_score"] == pytest.approx(100 * 1.8 / 3)
    assert scores["cail_total"] == pytest.approx(100 + scores["articles_cail_score"] + 60)


def test_law_metrics_score_only_the_tasks_of_the_references() -> None:
    scores = law_metrics([LawAnswer(term=12)], [{"term": 12}])
    assert scores == {"term_score": 100.0}  # no cail_total without all three tasks
    assert set(law_metrics([LawAnswer()], [{"articles": [264]}])) == {
        "articles_accuracy",
        "articles_micro_f1",
        "articles_macro_f1",
        "articles_cail_score",
    }
