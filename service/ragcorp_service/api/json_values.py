"""What a JSON value from a client may hold, and how to echo a bad one back safely.

Python's JSON parser accepts things the rest of the service cannot carry: `NaN` and
`Infinity` (and `1e400`, which overflows to infinity), lone UTF-16 surrogates such as
`"\\ud800"` (no UTF-8 encoding exists), NUL characters (PostgreSQL text and jsonb refuse
them), and nesting as deep as the recursion limit. Each is refused with a message
naming it, and error bodies echo inputs only in a form that is itself valid JSON.
"""

from __future__ import annotations

import math
from typing import Any

#: Deeper than any metadata or filter a person writes; bounds the recursion below.
MAX_DEPTH = 32
_ECHO_DEPTH = 4
_ECHO_CHARS = 200


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "strings must not contain NUL (\\u0000) characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "strings must not contain lone surrogates (\\ud800-\\udfff): they have no UTF-8 encoding"
    return None


def value_problem(value: Any, depth: int = 0) -> str | None:
    """Why this parsed JSON value cannot be stored or searched, or None."""
    if depth > MAX_DEPTH:
        return f"values must not be nested more than {MAX_DEPTH} levels deep"
    if isinstance(value, str):
        return _text_problem(value)
    if isinstance(value, float):
        return None if math.isfinite(value) else "numbers must be finite (no NaN, Infinity, or overflow like 1e400)"
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        return "integers must fit in 64 bits"
    if isinstance(value, dict):
        for key, item in value.items():
            problem = value_problem(key, depth + 1) or value_problem(item, depth + 1)
            if problem:
                return problem
    elif isinstance(value, list | tuple):
        for item in value:
            problem = value_problem(item, depth + 1)
            if problem:
                return problem
    return None


def json_safe(value: Any, depth: int = 0) -> Any:
    """A JSON-encodable echo of any input (for error bodies): shortened, never raising."""
    if depth > _ECHO_DEPTH:
        return "..."
    if isinstance(value, bytes):
        value = value.decode("utf-8", "backslashreplace")
    if isinstance(value, str):
        short = value[:_ECHO_CHARS] + ("..." if len(value) > _ECHO_CHARS else "")
        return short.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\u0000")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    if isinstance(value, dict):
        return {str(json_safe(k, depth + 1)): json_safe(v, depth + 1) for k, v in list(value.items())[:20]}
    if isinstance(value, list | tuple):
        return [json_safe(v, depth + 1) for v in list(value)[:20]]
    if value is None or isinstance(value, bool | int | float):
        return value
    return json_safe(str(value), depth)


def clean_errors(errors: list[Any]) -> list[dict[str, Any]]:
    """Pydantic's error list as a client should see it: where, what, and a safe echo of the input."""
    cleaned = []
    for error in errors:
        item: dict[str, Any] = {
            "type": error.get("type"),
            "loc": [json_safe(part) for part in error.get("loc", ())],
            "msg": json_safe(str(error.get("msg", ""))),
        }
        if "input" in error:
            item["input"] = json_safe(error["input"])
        cleaned.append(item)
    return cleaned
