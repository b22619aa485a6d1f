"""The law vertical's page of the web app (`register_web_pages`): a case form, facts in, charges out.

The page asks the server's own `/v1/chat/completions` (model "law" by default) with the prompt training uses, built
here by the formatter, and has the answer read by the domain's own parser, so the charges it highlights are the ones
`pixiu domain eval law` would score.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from pixiu import WebPage
from pixiu_law.formatter import prompt_messages
from pixiu_law.parser import parse_answer

STATIC = Path(__file__).resolve().parent / "static"
"""The page's files, shipped as package data."""
MAX_FACT_CHARS = 20_000
"""A longer text is refused: the formatter cuts facts far shorter anyway."""

router = APIRouter()


class CaseFacts(BaseModel):
    """`POST api/prompt`: the facts of a case."""

    model_config = ConfigDict(extra="forbid")
    fact: str = Field(min_length=1, max_length=MAX_FACT_CHARS)
    """The case facts (案情), as a judgment states them."""


class ModelText(BaseModel):
    """`POST api/parse`: an answer of the model."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(max_length=MAX_FACT_CHARS)
    """The answer text."""


class ParsedAnswer(BaseModel):
    """What the law parser reads in an answer."""

    charges: list[str]
    """Canonical charge names, sorted."""
    articles: list[int]
    """Articles of the Criminal Law, ascending."""
    term: int | None
    """Months of imprisonment (or the parser's codes for death and life), None when not given."""


@router.post("/prompt")
def case_prompt(body: CaseFacts) -> list[dict[str, str]]:
    """The chat messages asking for the charges of the case, exactly as a charges-only run trains on them."""
    return prompt_messages(body.fact, ["charges"])


@router.post("/parse")
def parse(body: ModelText) -> ParsedAnswer:
    """The charges, articles and term `body.text` gives, read by the law domain's parser."""
    answer = parse_answer(body.text)
    return ParsedAnswer(charges=sorted(answer.charges), articles=sorted(answer.articles), term=answer.term)


PAGE = WebPage(name="law", title="案情 → 罪名", static=STATIC, router=router, lang="zh")
"""The case form, at /plugins/law/."""
