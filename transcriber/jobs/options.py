"""Task options from a request: the Options model's verdict as an ApiError a person can read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from transcriber.protocol.errors import ApiError
from transcriber.protocol.options import Options


def parse_options(raw: object) -> dict[str, Any]:
    """Validated options with defaults filled in; values may be strings (forms, query) or JSON."""
    if not isinstance(raw, Mapping):
        raise ApiError("BAD_REQUEST", "Options must be a JSON object.", f"got {raw!r:.100}")
    try:
        return Options.model_validate(dict(raw)).model_dump()
    except ValidationError as exc:
        raise _api_error(exc) from exc


def _api_error(exc: ValidationError) -> ApiError:
    first = exc.errors()[0]
    if first["type"] == "extra_forbidden":
        key = first["loc"][0]
        known = ", ".join(Options.model_fields)
        return ApiError("BAD_REQUEST", f"Unknown option {key!r}.", f"known options: {known}")
    return ApiError("BAD_REQUEST", first["msg"])
