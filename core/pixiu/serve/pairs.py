"""Preference pairs voted in the web page's Compare view: `POST /v1/feedback/pairs` appends each vote to
PIXIU_HOME/feedback/pairs.jsonl as a TRL row (prompt messages, chosen, rejected), which `--method dpo`, `rm` and
`kto` read as they are; `models`, `sampling` and `time` ride along for the record and are ignored in training."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from pixiu.errors import BadRecord
from pixiu.files import locked
from pixiu.paths import pixiu_home
from pixiu.preference import as_preference
from pixiu.serve.http import ApiError
from pixiu.serve.protocol import Message, Text

PAIRS_FILE = Path("feedback") / "pairs.jsonl"
"""Where votes go, relative to PIXIU_HOME; train on it with `--data $PIXIU_HOME/feedback/pairs.jsonl`."""

router = APIRouter()


class VotedModels(BaseModel):
    """Which model gave which answer."""

    model_config = ConfigDict(strict=True, extra="forbid")
    chosen: Text = Field(min_length=1, max_length=256)
    """The model whose answer won the vote."""
    rejected: Text = Field(min_length=1, max_length=256)
    """The model whose answer lost it."""


class PairVote(BaseModel):
    """`POST /v1/feedback/pairs`: one vote between two answers to the same prompt."""

    model_config = ConfigDict(strict=True, extra="forbid")
    prompt: list[Message] = Field(min_length=1, max_length=256)
    """The messages both models answered (system prompt and user turns)."""
    chosen: Text = Field(min_length=1)
    """The answer voted better."""
    rejected: Text = Field(min_length=1)
    """The answer voted worse."""
    models: VotedModels
    """Who answered what."""
    sampling: dict[str, float] = Field(default_factory=dict, max_length=8)
    """The sampling settings both answers were drawn with (temperature, top_p, max_tokens)."""


class PairSaved(BaseModel):
    """The answer to a vote."""

    object: str = "feedback.pair"
    file: str
    """The file the pair was appended to, relative to PIXIU_HOME."""


def pairs_path() -> Path:
    """The pairs file under the current PIXIU_HOME."""
    return pixiu_home() / PAIRS_FILE


def pair_row(vote: PairVote) -> dict[str, Any]:
    """The vote as the row written: TRL's prompt/chosen/rejected first, then models, sampling and UTC time."""
    return {
        "prompt": [message.as_dict() for message in vote.prompt],
        "chosen": vote.chosen,
        "rejected": vote.rejected,
        "models": vote.models.model_dump(),
        "sampling": vote.sampling,
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def append_pair(row: dict[str, Any], path: Path) -> None:
    """Append one row to `path` as a JSON line, under a lock so concurrent votes (or servers) never interleave."""
    with locked(path.with_name(path.name + ".lock")), path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(row, ensure_ascii=False) + "\n")


@router.post("/v1/feedback/pairs")
async def save_pair(vote: PairVote) -> PairSaved:
    """Append a voted pair; 400 when it could not teach a preference (say, both answers are the same)."""
    if vote.prompt[-1].role != "user":
        raise ApiError(400, "prompt: must end with the user's question both answers reply to", param="prompt")
    row = pair_row(vote)
    try:
        as_preference(row)  # the check `pixiu domain train --method dpo` makes on every row
    except BadRecord as exc:
        raise ApiError(400, f"this vote makes no usable preference pair: {exc}", param="chosen") from exc
    await run_in_threadpool(append_pair, row, pairs_path())
    return PairSaved(file=str(PAIRS_FILE))
