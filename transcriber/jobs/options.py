"""Task options: parsing from form fields, query strings or JSON, with clear errors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from transcriber.protocol.errors import ApiError
from transcriber.protocol.options import DEFAULT_OPTIONS

_BOOL = {
    "true": True,
    "1": True,
    "yes": True,
    "on": True,
    "false": False,
    "0": False,
    "no": False,
    "off": False,
}
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")
MAX_PROMPT = 2000


def parse_options(raw: Mapping[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """Validated options; values may be strings (forms, query) or JSON types."""
    options = dict(base or DEFAULT_OPTIONS)
    for key, value in raw.items():
        if key not in DEFAULT_OPTIONS:
            raise ApiError(
                "BAD_REQUEST",
                f"Unknown option {key!r}.",
                f"known options: {', '.join(DEFAULT_OPTIONS)}",
            )
        options[key] = _parse_one(key, value)
    bounds = [options[k] for k in ("min_speakers", "max_speakers") if options[k] is not None]
    if len(bounds) == 2 and bounds[0] > bounds[1]:
        raise ApiError("BAD_REQUEST", "min_speakers is larger than max_speakers.")
    return options


def _parse_one(key: str, value: Any) -> Any:
    if value is None or value == "":
        return DEFAULT_OPTIONS[key]
    if key in ("diarize", "word_timestamps"):
        return _bool(key, value)
    if key in ("num_speakers", "min_speakers", "max_speakers"):
        return _speakers(key, value)
    if not isinstance(value, str):
        raise ApiError("BAD_REQUEST", f"Option {key!r} must be text.")
    if key == "language":
        value = value.strip().lower()
        if value == "auto":
            return None
        if not _LANGUAGE.match(value):
            raise ApiError("BAD_REQUEST", f"{value!r} is not a language code such as en or de.")
    elif key == "task" and value not in ("transcribe", "translate"):
        raise ApiError("BAD_REQUEST", "Option 'task' must be transcribe or translate.")
    elif key == "initial_prompt" and len(value) > MAX_PROMPT:
        raise ApiError("BAD_REQUEST", f"initial_prompt is longer than {MAX_PROMPT} characters.")
    elif key == "model" and len(value) > 200:
        raise ApiError("BAD_REQUEST", "The model name is too long.")
    return value


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _BOOL:
        return _BOOL[value.lower()]
    raise ApiError("BAD_REQUEST", f"Option {key!r} must be true or false.")


def _speakers(key: str, value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if isinstance(value, bool) or not 1 <= number <= 32:
        raise ApiError("BAD_REQUEST", f"Option {key!r} must be a whole number from 1 to 32.")
    return number
