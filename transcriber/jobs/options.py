"""Task options from a request: the Options model's verdict as an ApiError a person can read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from transcriber.jobs.webhooks.targets import target
from transcriber.protocol.errors import ApiError
from transcriber.protocol.options import Options


def parse_options(
    raw: object, allowed_models: Sequence[str] = (), webhook_hosts: Sequence[str] = ()
) -> dict[str, Any]:
    """Validated options with defaults filled in; values may be strings (forms, query) or JSON.

    A client may name only a model the operator allows: a folder or hub name from a client
    would probe the server's disk or start a download. Likewise a callback_url only on a host
    of --webhook-hosts (CALLBACK_NOT_ALLOWED): the server would send requests there.
    """
    if not isinstance(raw, Mapping):
        raise ApiError("BAD_REQUEST", "Options must be a JSON object.", f"got {raw!r:.100}")
    try:
        options = Options.model_validate(dict(raw)).model_dump()
    except ValidationError as exc:
        raise _api_error(exc) from exc
    model = options.get("model")
    if model is not None and model not in allowed_models:
        choices = ", ".join(allowed_models) or "none"
        raise ApiError(
            "BAD_REQUEST",
            f"The model {model!r} is not offered by this server. Choose one of: {choices}.",
            "model: not in the server's --allowed-models",
        )
    if options["callback_url"] is not None:
        target(options["callback_url"], webhook_hosts)
    return options


def _api_error(exc: ValidationError) -> ApiError:
    first = exc.errors()[0]
    if first["type"] == "extra_forbidden":
        key = first["loc"][0]
        known = ", ".join(Options.model_fields)
        return ApiError("BAD_REQUEST", f"Unknown option {key!r}.", f"known options: {known}")
    return ApiError("BAD_REQUEST", first["msg"])
