"""The medical knowledge graph: crawled disease records -> (disease, relation, tail) triples, merged, stored as JSONL.

One JSON object per line, one fact per object (CMeKG-style; Huatuo/BenTsao generated its instructions from
such facts):

    {"head": "感冒", "head_type": "disease", "relation": "symptom", "tail": "发热", "tail_type": "symptom",
     "sources": ["https://jib.xywy.com/il_sii/gaishu/101.htm"]}

A fact stated on several pages (e.g. a complication on the overview page and on the complications page,
or the same disease crawled under two ids) is stored once, with every page in `sources`.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pixiu import PixiuError

RELATIONS: dict[str, tuple[str, str, str]] = {
    # relation: (field of a crawled disease record, Chinese label, type of the tail)
    "overview": ("overview", "简介", "text"),
    "cause": ("causes", "病因", "cause"),
    "symptom": ("symptoms", "症状", "symptom"),
    "examination": ("examinations", "检查", "examination"),
    "treatment": ("treatments", "治疗", "treatment"),
    "drug": ("drugs", "常用药物", "drug"),
    "complication": ("complications", "并发症", "disease"),
    "department": ("departments", "就诊科室", "department"),
}
"""Every relation of the graph, in the order facts are stored and questions are asked."""

TEXT_TYPE = "text"
"""Tail type of descriptive attributes (the overview): stored as facts, not counted as entities."""

_TRIPLE_KEYS = ("head", "relation", "tail")
_EDGE_PUNCTUATION = "，。、；：,.;:!?！？ \u3000\"'“”‘’"
_SPACES = re.compile(r"\s+")


def normalize_term(text: str) -> str:
    """Canonical spelling of an entity name: NFKC, no whitespace, no edge punctuation, no trailing 等.

    Args:
        text: A name as written on a page, e.g. " 发热、" or "维生素Ｃ".

    Returns:
        The name to store, e.g. "发热" or "维生素C"; "" when nothing is left.
    """
    name = _SPACES.sub("", unicodedata.normalize("NFKC", text or "")).strip(_EDGE_PUNCTUATION)
    return name[:-1] if name.endswith("等") and len(name) > 2 else name


def normalize_text(text: str) -> str:
    """Canonical form of a descriptive text: whitespace runs collapsed, Chinese punctuation kept."""
    return _SPACES.sub(" ", text or "").strip()


def triples_from_disease(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Turn one crawled disease record (see `pixiu_medical.items.DiseaseItem`) into fact triples.

    Args:
        record: A dict with `name` and any of the list fields named in `RELATIONS` (`overview` is text).

    Returns:
        Triples in `RELATIONS` order, each with the record's `url` as source; empty when the record has
        no name or no facts.
    """
    head = normalize_term(str(record.get("name") or ""))
    if not head:
        return []
    sources = [record["url"]] if record.get("url") else []
    triples = []
    for relation, (field, _, tail_type) in RELATIONS.items():
        value = record.get(field)
        values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        for raw in values:
            tail = normalize_text(raw) if tail_type == TEXT_TYPE else normalize_term(str(raw))
            if tail and tail != head:
                triples.append(_triple(head, relation, tail, sources))
    return triples


def merge_triples(triples: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Deduplicate facts by (head, relation, tail), joining their sources.

    The result is grouped by head in order of first appearance, relations in `RELATIONS` order, tails in
    order of first appearance, so merging the same input always gives the same file.

    Raises:
        PixiuError: A triple names a relation pixiu_medical does not know.
    """
    merged: dict[tuple[str, str, str], dict[str, Any]] = {}
    for triple in triples:
        relation = triple.get("relation")
        if relation not in RELATIONS:
            raise PixiuError(f"unknown relation {relation!r} in {triple}; known relations: {', '.join(RELATIONS)}")
        key = (triple["head"], relation, triple["tail"])
        if key not in merged:
            merged[key] = _triple(*key, [])
        sources = merged[key]["sources"]
        sources.extend(s for s in triple.get("sources", []) if s not in sources)
    heads = {head: i for i, head in enumerate(dict.fromkeys(key[0] for key in merged))}
    order = {relation: i for i, relation in enumerate(RELATIONS)}
    ranked = sorted(enumerate(merged.items()), key=lambda item: (heads[item[1][0][0]], order[item[1][0][1]], item[0]))
    return [triple for _, (_, triple) in ranked]


def read_kg(path: Path) -> list[dict[str, Any]]:
    """Read a graph written by `write_jsonl` (or `pixiu medical kg build`).

    Raises:
        PixiuError: The file is missing, or a line is not a triple; the message names the line.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"knowledge graph not found: {path}. Build one with `pixiu medical kg build RAW.jsonl {path}`."
        raise PixiuError(msg)
    triples = []
    for where, line in _lines(path):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            msg = f"{where}: not valid JSON ({exc.msg}); rebuild the graph with `pixiu medical kg build`"
            raise PixiuError(msg) from exc
        if not isinstance(row, dict) or not all(isinstance(row.get(k), str) and row[k] for k in _TRIPLE_KEYS):
            raise PixiuError(f"{where}: not a knowledge-graph triple (needs string `head`, `relation`, `tail`)")
        triples.append(row)
    return triples


def build_kg(raw_paths: Iterable[Path]) -> tuple[list[dict[str, Any]], int]:
    """Build a merged graph from crawled JSONL files (records of `DiseaseItem`).

    Returns:
        The merged triples, and how many lines gave no fact: no name, nothing but a name, or not JSON (the
        last line of a feed torn by a killed crawl).

    Raises:
        PixiuError: A file is missing.
    """
    triples: list[dict[str, Any]] = []
    unusable = 0
    for path in raw_paths:
        if not Path(path).is_file():
            msg = f"crawled file not found: {path}. Crawl with `pixiu domain crawl medical --output {path}`."
            raise PixiuError(msg)
        for _, line in _lines(Path(path)):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            found = triples_from_disease(record) if isinstance(record, dict) else []
            unusable += not found
            triples.extend(found)
    return merge_triples(triples), unusable


def kg_stats(triples: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Count entities (distinct name and type; text attributes excluded) and facts per relation.

    Returns:
        `{"entities": N, "entity_types": {type: n}, "relations": M, "relation_counts": {relation: m},
        "diseases_with_facts": D}`, types and relations sorted by name.
    """
    entities: set[tuple[str, str]] = set()
    heads: set[str] = set()
    relations: Counter[str] = Counter()
    for triple in triples:
        relations[triple["relation"]] += 1
        heads.add(triple["head"])
        entities.add((triple["head"], triple.get("head_type", "disease")))
        tail_type = triple.get("tail_type", RELATIONS[triple["relation"]][2])
        if tail_type != TEXT_TYPE:
            entities.add((triple["tail"], tail_type))
    types = Counter(kind for _, kind in entities)
    return {
        "entities": len(entities),
        "entity_types": dict(sorted(types.items())),
        "relations": sum(relations.values()),
        "relation_counts": dict(sorted(relations.items())),
        "diseases_with_facts": len(heads),
    }


def facts_by_head(triples: Iterable[dict[str, Any]]) -> dict[str, dict[str, list[str]]]:
    """Group facts as `{disease: {relation: [tails in stored order]}}`, diseases in stored order."""
    grouped: dict[str, dict[str, list[str]]] = {}
    for triple in triples:
        grouped.setdefault(triple["head"], {}).setdefault(triple["relation"], []).append(triple["tail"])
    return grouped


def _triple(head: str, relation: str, tail: str, sources: list[str]) -> dict[str, Any]:
    """One fact in the stored layout."""
    return {
        "head": head,
        "head_type": "disease",
        "relation": relation,
        "tail": tail,
        "tail_type": RELATIONS[relation][2],
        "sources": list(sources),
    }


def _lines(path: Path) -> Iterator[tuple[str, str]]:
    """Yield `(file:line, text)` for each non-blank line of a UTF-8 file."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield f"{path}:{number}", line
