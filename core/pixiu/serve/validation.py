"""Request validation errors in plain words: which field, what is wrong with it, and what to send instead."""

from __future__ import annotations

from typing import Any

from pixiu.serve.protocol import UNSUPPORTED

_BOUNDS = {
    "greater_than": "more than {gt}",
    "greater_than_equal": "at least {ge}",
    "less_than": "less than {lt}",
    "less_than_equal": "at most {le}",
}
_KINDS = {
    "bool_type": "true or false",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "finite_number": "a finite number",
}

_TAGS = {"body", "str", "int", "float", "bool", "list", "dict"}


def describe(error: dict[str, Any]) -> tuple[str, str | None]:
    """`(message, param)` for the first error pydantic reported about a request body."""
    kind = error.get("type", "")
    if kind == "json_invalid":
        return "the request body is not valid JSON", None
    location = [str(part) for part in error.get("loc", ()) if not _is_tag(part)]
    param = ".".join(location) or None
    context = error.get("ctx") or {}
    if kind == "missing":
        problem = "is required"
    elif kind == "extra_forbidden":
        reason = UNSUPPORTED.get(location[-1], "pixiu does not implement this parameter")
        problem = f"{reason}; remove it from the request"
    elif kind in _KINDS:
        problem = f"give {_KINDS[kind]}, not {_shown(error.get('input'))}"
    elif kind in _BOUNDS:
        problem = f"give a number {_BOUNDS[kind].format(**context)}, not {_shown(error.get('input'))}"
    elif kind in ("string_too_short", "too_short"):
        problem = "must not be empty"
    elif kind in ("string_too_long", "too_long"):
        problem = f"is too long (at most {context.get('max_length')})"
    elif kind == "literal_error":
        problem = f"give {context.get('expected')}, not {_shown(error.get('input'))}"
    else:  # our own errors (protocol.py) already speak plainly
        problem = str(error.get("msg"))
    return (f"{param}: {problem}" if param else problem), param


def _is_tag(part: str | int) -> bool:
    """Whether a location part names no field: the body itself, a member of a union, a dict key marker."""
    return isinstance(part, str) and (part in _TAGS or "[" in part)


def _shown(value: Any) -> str:
    """A request value as JSON would write it, cut short."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."
