"""`POST /v1/feedback/pairs`: a vote of the web page's Compare view becomes a row the DPO recipes read."""

import json
from pathlib import Path

import pytest

from pixiu.formats import pair_row
from pixiu.preference import load_preferences
from pixiu.serve.pairs import PAIRS_FILE
from toy_domain import TOY

from .helpers import call

PROMPT = [{"role": "system", "content": "简要回答。"}, {"role": "user", "content": "盗窃罪的构成要件是什么？"}]


def vote(chosen: str, rejected: str) -> dict:
    """A vote body as the page sends it."""
    models = {"chosen": "law", "rejected": "base"}
    return {"prompt": PROMPT, "chosen": chosen, "rejected": rejected, "models": models, "sampling": {"top_p": 0.9}}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty PIXIU_HOME."""
    monkeypatch.setenv("PIXIU_HOME", str(tmp_path))
    return tmp_path


def test_votes_are_appended_as_pairs_the_dpo_recipes_read(app, home: Path) -> None:
    """Two votes make two JSON lines under PIXIU_HOME that pixiu's pair reader loads back unchanged."""
    for chosen, rejected in [("以非法占有为目的，秘密窃取他人财物。", "我不知道。"), ("**秘密窃取**", "hello")]:
        response = call(app, "POST", "/v1/feedback/pairs", json=vote(chosen, rejected))
        assert response.status_code == 200, response.text
        assert response.json() == {"object": "feedback.pair", "file": str(PAIRS_FILE)}
    path = home / PAIRS_FILE
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [row["chosen"] for row in rows] == ["以非法占有为目的，秘密窃取他人财物。", "**秘密窃取**"]
    assert rows[0]["models"] == {"chosen": "law", "rejected": "base"} and rows[0]["time"].endswith("+00:00")
    assert pair_row(rows[1], "messages") == rows[1]  # TRL's prompt/chosen/rejected form, under any data.format
    pairs = load_preferences(path, TOY, data_format="auto").items
    assert [(p.prompt, p.chosen, p.rejected) for p in pairs] == [
        (PROMPT, "以非法占有为目的，秘密窃取他人财物。", "我不知道。"),
        (PROMPT, "**秘密窃取**", "hello"),
    ]


def test_a_vote_that_teaches_nothing_is_refused(app, home: Path) -> None:
    """The same answer twice, an empty answer or a prompt with no question: 400 or 422, and nothing written."""
    same = call(app, "POST", "/v1/feedback/pairs", json=vote("同一个答案", " 同一个答案 "))
    assert same.status_code == 400 and "the same answer" in same.json()["error"]["message"]
    assert call(app, "POST", "/v1/feedback/pairs", json=vote("", "b")).status_code in (400, 422)
    no_question = {**vote("a", "b"), "prompt": [{"role": "system", "content": "x"}]}
    assert call(app, "POST", "/v1/feedback/pairs", json=no_question).status_code == 400
    assert not (home / PAIRS_FILE).exists()
