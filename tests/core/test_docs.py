"""docs/plugins.md keeps up with the code: its recipe-key table is generated from pixiu.config, and its
table of `Domain` fields says which are optional.

Regenerate the recipe-key table with `python3 tests/core/test_docs.py` after changing pixiu/config.py.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from pixiu.config import RunConfig
from pixiu.domain import Domain

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
BEGIN = "<!-- recipe keys: generated from pixiu/config.py by `python3 tests/core/test_docs.py`; do not edit -->"
END = "<!-- end of recipe keys -->"
_BOUNDS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<=", "min_length": "at least"}


def recipe_table() -> str:
    """The markdown table of every recipe key: dotted key, type and bounds, default, the field's docstring."""
    lines = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for key, info in _fields(RunConfig):
        meaning = " ".join((info.description or "").split())
        lines.append(f"| `{key}` | {_cell(_type_text(info))} | {_cell(_default_text(info))} | {_cell(meaning)} |")
    return "\n".join(lines)


def _fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, FieldInfo]]:
    """Every leaf field of `model` as (dotted key, field), sections expanded in declaration order."""
    for name, info in model.model_fields.items():
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            yield from _fields(info.annotation, f"{prefix}{name}.")
        elif name == "plugins":
            yield f"{prefix}plugins.NAME.*", info
        else:
            yield prefix + name, info


def _type_text(info: FieldInfo) -> str:
    """The field's type as users write it in YAML, with its bounds (`int > 0`)."""
    annotation, nullable = info.annotation, False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in typing.get_args(annotation):
        (annotation,), nullable = [a for a in typing.get_args(annotation) if a is not type(None)], True
    bounds = [f"{_BOUNDS[attr]} {getattr(m, attr)}" for m in info.metadata for attr in _BOUNDS if hasattr(m, attr)]
    text = " ".join([_annotation_text(annotation), ", ".join(bounds)]).strip()
    return f"{text}, or null" if nullable else text


def _annotation_text(annotation: Any) -> str:
    """`int`, `list[str]`, `"error" | "skip"` for an annotation (Annotated wrappers dropped)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _annotation_text(args[0])
    if origin is typing.Literal:
        return " | ".join(f'"{a}"' for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_annotation_text(a) for a in args)
    if origin is not None:
        return f"{origin.__name__}[{', '.join(_annotation_text(a) for a in args)}]"
    return "None" if annotation is type(None) else annotation.__name__


def _default_text(info: FieldInfo) -> str:
    """The default value as YAML-ish text."""
    value = info.default_factory() if info.default is PydanticUndefined else info.default
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return "{}" if value == {} else str(value)


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return text.replace("|", "\\|")


def documented_table() -> str:
    """The table between the generated-table markers in docs/plugins.md."""
    text = DOCS.read_text(encoding="utf-8")
    assert BEGIN in text and END in text, f"docs/plugins.md lacks the markers {BEGIN!r} ... {END!r}"
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


def test_the_docs_list_every_recipe_key_as_the_code_defines_it() -> None:
    documented = documented_table()
    for key, _ in _fields(RunConfig):
        assert f"| `{key}` |" in documented, f"docs/plugins.md does not list recipe key {key}"
    assert documented == recipe_table(), "the recipe-key table is stale: run `python3 tests/core/test_docs.py`"


def test_the_docs_say_which_domain_fields_are_optional() -> None:
    section = DOCS.read_text(encoding="utf-8").split("The fields of `pixiu.Domain`:", 1)[1].split("\n\n", 2)[1]
    rows = {m[1]: m[2] for m in re.finditer(r"^\| `(\w+)` \| [^\n]*? \| (required|optional[^|]*) \|", section, re.M)}
    for field in dataclasses.fields(Domain):
        has_default = field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING
        assert field.name in rows, f"docs/plugins.md's Domain table lacks field {field.name}"
        said = rows[field.name]
        assert said.startswith("optional") == has_default, f"Domain.{field.name}: the docs say {said!r}"


if __name__ == "__main__":
    text = DOCS.read_text(encoding="utf-8")
    before, rest = text.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    DOCS.write_text(f"{before}{BEGIN}\n{recipe_table()}\n{END}{after}", encoding="utf-8")
