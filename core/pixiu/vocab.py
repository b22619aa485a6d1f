"""Extend a base model's vocabulary with Chinese tokens learned from domain text (Chinese-LLaMA-Alpaca's recipe).

A byte-level BPE trained mostly on English (SmolLM2) spends two or three tokens on most Chinese characters.
`extend_base` learns the characters and multi-character pieces that cost the most tokens on a corpus, adds them
to the tokenizer as added tokens (matched before the byte-level BPE, longest first, so every other text
tokenizes as before), grows the embedding matrix and starts each new row as the mean of the rows of the old
tokens that spelled it. The result is a plain Hugging Face folder that `--base` accepts; its `pixiu_vocab.json`
says what was added, and tells training which embedding rows to train with the adapter.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import torch
from tokenizers import AddedToken, Tokenizer, models, trainers
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from pixiu.errors import BadRecord, DataError, PixiuError
from pixiu.files import atomic_write_json
from pixiu.models import load_base
from pixiu.records import iter_raw_records
from pixiu.similarity import CJK_RANGES

VOCAB_FILE = "pixiu_vocab.json"
"""What `extend_base` added, written into the extended base folder; training reads `new_token_ids` from it."""

_CJK_RUN = re.compile(f"[{CJK_RANGES}]+")
_JSON_SUFFIXES = (".jsonl", ".json")


@dataclass(frozen=True)
class CorpusFile:
    """One corpus file as read: how many texts and characters it gave."""

    path: str
    texts: int
    characters: int


@dataclass(frozen=True)
class Extension:
    """What `extend_base` added and what it saves, as written to `pixiu_vocab.json`."""

    base: str
    corpus: list[CorpusFile]
    field: str | None
    min_count: int
    new_tokens: int
    """The cap asked for (`--new-tokens`)."""
    added_characters: int
    added_pieces: int
    old_vocab_size: int
    new_token_ids: list[int]
    tokens: list[str]
    tokens_per_char_before: float
    tokens_per_char_after: float


def read_corpus(paths: Sequence[Path], field: str | None = None) -> tuple[list[str], list[CorpusFile]]:
    """Read domain text: a `.jsonl`/`.json` file gives its records' string fields (or only `field`, dotted for
    nested keys), any other file its non-empty lines.

    Raises:
        DataError: A missing or unreadable file, a malformed record, a record whose `field` is not text, or a
            corpus with no text at all.
    """
    texts: list[str] = []
    files = []
    for path in map(Path, paths):
        if not path.is_file():
            raise DataError(f"corpus file not found: {path}; pass existing text or JSONL files with --corpus")
        found = list(_json_texts(path, field)) if path.suffix in _JSON_SUFFIXES else _lines(path)
        texts.extend(found)
        files.append(CorpusFile(str(path), len(found), sum(map(len, found))))
    if not any(text.strip() for text in texts):
        where = ", ".join(str(p) for p in paths)
        raise DataError(f"the corpus ({where}) has no text; pass files of domain text with --corpus")
    return texts, files


def _lines(path: Path) -> list[str]:
    """The non-empty lines of a plain text file."""
    try:
        return [line for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def _json_texts(path: Path, field: str | None) -> Iterator[str]:
    """The text of every record of a JSONL or JSON-list file: `field`, or all its strings."""
    for where, _, record in iter_raw_records(path):
        if isinstance(record, BadRecord):
            raise DataError(f"{where}: {record}")
        if field is None:
            yield from _strings(record)
            continue
        value = record
        for key in field.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if not isinstance(value, str):
            raise DataError(
                f"{where}: field {field!r} is {type(value).__name__}, not text; name a text field with --field"
            )
        yield value


def _strings(value: Any) -> Iterator[str]:
    """Every string inside a JSON value, depth first."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def tokens_per_char(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> float:
    """Tokens the tokenizer spends per character of `texts` (no special tokens)."""
    characters = sum(map(len, texts))
    if not characters:
        raise PixiuError("no text to measure tokens per character on")
    ids = tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
    return sum(map(len, ids)) / characters


def learn_tokens(
    tokenizer: PreTrainedTokenizerBase, texts: Iterable[str], *, new_tokens: int, min_count: int
) -> tuple[list[str], list[str]]:
    """Learn the Chinese characters and multi-character pieces worth adding to `tokenizer`.

    Candidates are the CJK characters seen at least `min_count` times that the tokenizer spells with more than
    one token, and the multi-character pieces a BPE trained on the corpus's CJK runs (the `tokenizers` library)
    uses at least `min_count` times. Each is scored by the tokens it saves on the corpus (a character: count x
    (its tokens - 1); a piece: count x (its characters - 1)), and the best `new_tokens` are kept.

    Returns:
        (characters, pieces), each in descending order of tokens saved.
    """
    runs = [run for text in texts for run in _CJK_RUN.findall(text)]
    char_counts = Counter(char for run in runs for char in run)
    vocab = tokenizer.get_vocab()
    chars = [c for c, n in char_counts.items() if n >= min_count and c not in vocab]
    costs = tokenizer(chars, add_special_tokens=False)["input_ids"] if chars else []
    scored = [(char_counts[c] * (len(ids) - 1), c, "char") for c, ids in zip(chars, costs, strict=True) if len(ids) > 1]
    scored += [
        (n * (len(p) - 1), p, "piece")
        for p, n in _piece_counts(runs, len(char_counts) + new_tokens).items()
        if n >= min_count
    ]
    kept = sorted(
        ((saved, text, kind) for saved, text, kind in scored if text not in vocab),
        key=lambda item: (-item[0], item[1]),
    )[:new_tokens]
    return [t for _, t, kind in kept if kind == "char"], [t for _, t, kind in kept if kind == "piece"]


def _piece_counts(runs: list[str], vocab_size: int) -> Counter[str]:
    """How often a BPE trained on `runs` (each CJK run one word) uses each of its multi-character tokens."""
    if not runs:
        return Counter()
    bpe = Tokenizer(models.BPE())
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False)
    bpe.train_from_iterator(runs, trainer=trainer)
    return Counter(token for encoding in bpe.encode_batch(runs) for token in encoding.tokens if len(token) > 1)


def mean_initialise(model: PreTrainedModel, rows: dict[int, list[int]]) -> None:
    """Set each new embedding row (and output-head row, when the head is not tied) to the mean of the old rows that
    spelled its text: `rows` maps a new token id to the old ids."""
    matrices = [_weight(model.get_input_embeddings())]
    head = model.get_output_embeddings()
    if head is not None and _weight(head) is not matrices[0]:
        matrices.append(_weight(head))
    with torch.no_grad():
        for weight in matrices:
            for new_id, old_ids in rows.items():
                weight[new_id] = weight[old_ids].mean(dim=0)


def _weight(module: torch.nn.Module) -> torch.Tensor:
    """The weight matrix of an embedding or output head."""
    return cast(torch.Tensor, module.weight)


def extend_base(
    base: str,
    corpus: Sequence[Path],
    output: Path,
    *,
    new_tokens: int = 2000,
    min_count: int = 5,
    field: str | None = None,
) -> Extension:
    """Write `base` with Chinese tokens learned from `corpus` added, as a new base folder at `output`.

    Args:
        base: Anything `--base` accepts (see `pixiu.models.resolve_base`).
        corpus: Domain text files (see `read_corpus`).
        output: The new folder; it must not exist yet.
        new_tokens: At most this many tokens are added.
        min_count: A character or piece must occur this often in the corpus to be added.
        field: For JSONL corpora, the (dotted) field to read instead of every string field.

    Returns:
        What was added, as also written to `output/pixiu_vocab.json`.

    Raises:
        PixiuError: `output` exists, or the corpus holds no Chinese worth adding (a `DataError` when it is empty).
    """
    output = Path(output)
    if output.exists():
        raise PixiuError(f"{output} already exists; pass a new --output folder, or remove it first")
    texts, files = read_corpus(corpus, field)
    model, tokenizer = load_base(base)
    chars, pieces = learn_tokens(tokenizer, texts, new_tokens=new_tokens, min_count=min_count)
    if not chars and not pieces:
        msg = (
            f"no new tokens found: no Chinese character or piece occurs {min_count}+ times in the corpus and costs "
            f"the base more than one token. Pass more Chinese text with --corpus, or lower --min-count."
        )
        raise PixiuError(msg)
    before = tokens_per_char(tokenizer, texts)
    spelled = {text: tokenizer(text, add_special_tokens=False)["input_ids"] for text in chars + pieces}
    old_size = len(tokenizer)
    tokenizer.add_tokens([AddedToken(text, normalized=False) for text in chars + pieces])
    rows = max(len(tokenizer), _weight(model.get_input_embeddings()).shape[0])  # a padded vocabulary keeps its rows
    model.resize_token_embeddings(rows, mean_resizing=False)
    vocab = tokenizer.get_vocab()
    new_ids = [vocab[text] for text in chars + pieces]
    mean_initialise(model, {new_id: spelled[text] for new_id, text in zip(new_ids, chars + pieces, strict=True)})
    extension = Extension(
        base=base,
        corpus=files,
        field=field,
        min_count=min_count,
        new_tokens=new_tokens,
        added_characters=len(chars),
        added_pieces=len(pieces),
        old_vocab_size=old_size,
        new_token_ids=list(new_ids),
        tokens=chars + pieces,
        tokens_per_char_before=round(before, 4),
        tokens_per_char_after=round(tokens_per_char(tokenizer, texts), 4),
    )
    _save(model, tokenizer, extension, output)
    return extension


def _save(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, extension: Extension, output: Path) -> None:
    """Write the folder beside `output` and move it into place once complete."""
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}-", dir=output.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        atomic_write_json(staging / VOCAB_FILE, asdict(extension))
        os.replace(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def new_token_ids(folder: str | Path) -> list[int]:
    """The embedding rows `extend_base` added to the base model in `folder`; empty for any other base."""
    path = Path(folder) / VOCAB_FILE
    if not path.is_file():
        return []
    try:
        return [int(i) for i in json.loads(path.read_text(encoding="utf-8"))["new_token_ids"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise PixiuError(f"{path} is not a vocabulary record of `pixiu models extend-vocab` ({exc})") from exc
