"""Knowledge graph -> instruction records (Huatuo's `instruction`/`input`/`output`), several phrasings per relation.

Every answer states its facts as a list after a full-width colon ("感冒的常见症状有：发热、咳嗽。"), which is
what `pixiu_medical.parser` reads back as the gold facts for knowledge recall. Answers about drugs or
treatment always end with advice to follow a doctor. Besides the answer, a record keeps the facts it was
made from (`facts`, as [head, relation, tail]) so a teacher model can be grounded in them.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

from pixiu_medical.kg import RELATIONS, facts_by_head

QUESTIONS: dict[str, tuple[str, ...]] = {
    "overview": ("什么是{d}？", "{d}是什么病？", "请简单介绍一下{d}。"),
    "cause": ("{d}是什么原因引起的？", "{d}的病因有哪些？", "为什么会得{d}？", "哪些因素容易导致{d}？"),
    "symptom": ("{d}有哪些症状？", "{d}的常见表现是什么？", "得了{d}会有什么症状？", "{d}患者通常会有哪些不适？"),
    "examination": ("{d}需要做哪些检查？", "怀疑{d}应该查什么？", "诊断{d}常用哪些检查？", "看{d}一般要做什么检查？"),
    "treatment": ("{d}怎么治疗？", "{d}有哪些治疗方法？", "得了{d}该怎么办？", "{d}的治疗方式有哪些？"),
    "drug": ("{d}吃什么药？", "{d}常用哪些药物？", "治疗{d}的药有哪些？", "{d}用什么药比较好？"),
    "complication": (
        "{d}有哪些并发症？",
        "{d}会引起哪些并发症？",
        "{d}不及时治疗会有什么后果？",
        "{d}可能导致哪些疾病？",
    ),
    "department": ("{d}挂什么科？", "得了{d}应该看哪个科？", "{d}去医院挂哪个科室？"),
}
"""Question phrasings per relation; `{d}` is the disease."""

CLAUSES: dict[str, tuple[str, ...]] = {
    "cause": ("常见病因有：{items}", "多由以下因素引起：{items}"),
    "symptom": ("常见症状有：{items}", "常见表现包括：{items}"),
    "examination": ("常做的检查有：{items}", "诊断常用的检查包括：{items}"),
    "treatment": ("治疗方式有：{items}", "常用的治疗方法包括：{items}"),
    "drug": ("常用的药物类别有：{items}", "常用药物包括：{items}"),
    "complication": ("可能的并发症有：{items}", "可能引起的并发症包括：{items}"),
    "department": ("一般就诊科室：{items}", "建议就诊的科室：{items}"),
}
"""Answer clauses per relation, after the disease's name; the facts follow the colon, joined by 、."""

ADVICE: dict[str, str] = {"drug": "具体用药请遵医嘱。", "treatment": "请在医生指导下治疗。"}
"""Closing advice of any answer that names drugs or treatments."""

MULTI_QUESTIONS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("symptom", "examination"), "{d}有哪些症状，需要做什么检查？"),
    (("cause", "treatment"), "{d}是什么原因引起的，怎么治疗？"),
    (("symptom", "department"), "{d}有什么表现，应该看哪个科？"),
    (("symptom", "drug"), "{d}有哪些症状，一般用什么药？"),
    (("examination", "treatment"), "{d}要做哪些检查，怎么治疗？"),
    (("cause", "complication"), "{d}的病因和并发症分别有哪些？"),
    (("symptom", "cause", "treatment"), "请介绍{d}的症状、病因和治疗。"),
)
"""Questions asking for several facts at once, with the relations their answer covers."""

REVERSE_QUESTIONS = (
    "出现{a}和{b}，可能是什么病？",
    "{a}、{b}可能是哪些疾病引起的？",
    "同时有{a}和{b}，可能得了什么病？",
)
REVERSE_ANSWER = "可能的疾病有：{items}。具体需要医生检查后明确诊断。"

MAX_ITEMS = 4
"""Facts listed per relation at most: keeps question plus answer near 80 Chinese characters (~256 tokens)."""
MAX_CHARS = 80
"""Question plus answer is kept to this many characters when dropping list items can achieve it."""
MAX_OVERVIEW_CHARS = 60


def generate_instructions(
    triples: Iterable[dict[str, Any]],
    *,
    seed: int = 0,
    phrasings: int = 2,
    multi_fact: int = 2,
    reverse: int = 1,
) -> list[dict[str, Any]]:
    """Generate instruction records from a knowledge graph, the same ones for the same graph and seed.

    Args:
        triples: The graph, as read by `pixiu_medical.kg.read_kg`.
        seed: Seed of the choice of phrasings and facts.
        phrasings: Distinct questions per disease and relation (at most the phrasings there are).
        multi_fact: Questions per disease that ask for two or three relations at once.
        reverse: Questions per disease that give two of its symptoms and ask which diseases fit.

    Returns:
        Records with `instruction`, `input` (""), `output`, `entity`, `kind` ("single", "multi" or
        "reverse") and `facts` ([head, relation, tail] lists the answer states).
    """
    rng = random.Random(seed)
    graph = facts_by_head(triples)
    records: list[dict[str, Any]] = []
    for disease, facts in graph.items():
        for relation in (r for r in RELATIONS if facts.get(r)):
            for question in rng.sample(QUESTIONS[relation], min(phrasings, len(QUESTIONS[relation]))):
                records.append(_single(disease, relation, facts[relation], question.format(d=disease), rng))
        multi = [(rels, q) for rels, q in MULTI_QUESTIONS if all(facts.get(r) for r in rels)]
        for relations, question in rng.sample(multi, min(multi_fact, len(multi))):
            records.append(_multi(disease, {r: facts[r] for r in relations}, question.format(d=disease), rng))
        for _ in range(reverse):
            record = _reverse(disease, facts.get("symptom", []), graph, rng)
            if record:
                records.append(record)
    return _first_of_each_question(records)


def _single(disease: str, relation: str, tails: list[str], question: str, rng: random.Random) -> dict[str, Any]:
    """A question about one relation of one disease."""
    if relation == "overview":
        answer = _shorten(tails[0], MAX_OVERVIEW_CHARS)
        return _record(question, answer, disease, "single", [[disease, relation, tails[0]]])
    clauses = {relation: rng.choice(CLAUSES[relation])}
    kept = tails[:MAX_ITEMS]
    while len(kept) > 1 and len(question) + len(_compose(disease, clauses, {relation: kept})) > MAX_CHARS:
        kept = kept[:-1]
    answer = _compose(disease, clauses, {relation: kept})
    return _record(question, answer, disease, "single", [[disease, relation, t] for t in kept])


def _multi(disease: str, facts: dict[str, list[str]], question: str, rng: random.Random) -> dict[str, Any]:
    """A question about two or three relations of one disease; each lists fewer facts to stay short."""
    clauses = {relation: rng.choice(CLAUSES[relation]) for relation in facts}
    chosen = {relation: tails[: max(1, MAX_ITEMS - len(facts))] for relation, tails in facts.items()}
    while len(question) + len(_compose(disease, clauses, chosen)) > MAX_CHARS and max(map(len, chosen.values())) > 1:
        longest = max(chosen, key=lambda relation: len(chosen[relation]))
        chosen[longest] = chosen[longest][:-1]
    answer = _compose(disease, clauses, chosen)
    return _record(question, answer, disease, "multi", [[disease, r, t] for r, tails in chosen.items() for t in tails])


def _compose(disease: str, clauses: dict[str, str], tails: dict[str, list[str]]) -> str:
    """The answer: the disease, one clause per relation listing its facts, then any advice."""
    body = "；".join(clauses[relation].format(items="、".join(tails[relation])) for relation in clauses)
    return f"{disease}{body}。" + "".join(ADVICE[relation] for relation in clauses if relation in ADVICE)


def _reverse(
    disease: str, symptoms: list[str], graph: dict[str, dict[str, list[str]]], rng: random.Random
) -> dict[str, Any] | None:
    """A question giving two symptoms of `disease` and asking which diseases have both."""
    if len(symptoms) < 2:
        return None
    a, b = rng.sample(symptoms[:MAX_ITEMS], 2)
    matches = [name for name, facts in graph.items() if {a, b} <= set(facts.get("symptom", []))][:MAX_ITEMS]
    question = rng.choice(REVERSE_QUESTIONS).format(a=a, b=b)
    answer = REVERSE_ANSWER.format(items="、".join(matches))
    facts = [[name, "symptom", s] for name in matches for s in (a, b)]
    return _record(question, answer, disease, "reverse", facts)


def _first_of_each_question(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop records whose question was asked before (two diseases can share a reverse question)."""
    seen: set[str] = set()
    unique = []
    for record in records:
        if record["instruction"] not in seen:
            seen.add(record["instruction"])
            unique.append(record)
    return unique


def _shorten(text: str, limit: int) -> str:
    """Cut a description at the last sentence end within `limit` characters (or hard, with …)."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    cut = max(head.rfind(mark) for mark in "。；！？")
    return head[: cut + 1] if cut > 0 else head[: limit - 1] + "…"


def _record(question: str, answer: str, entity: str, kind: str, facts: list[list[str]]) -> dict[str, Any]:
    """One instruction record in Huatuo's layout plus its provenance."""
    return {"instruction": question, "input": "", "output": answer, "entity": entity, "kind": kind, "facts": facts}
