"""A delivery's state as the task shows it (the snapshot's `webhook`), and how an attempt
changes it: plain functions of the data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from transcriber.jobs.webhooks.signing import new_message_id
from transcriber.store.task import iso, now_iso


def new_delivery() -> dict[str, Any]:
    """A delivery owed as the task ends, due at once."""
    return {
        "id": new_message_id(),
        "state": "pending",
        "attempts": 0,
        "last_status": None,
        "last_error": None,
        "last_try": None,
        "next_try": now_iso(),
    }


def after_attempt(
    state: dict[str, Any],
    status: int | None,
    error: str | None,
    backoff: tuple[float, ...],
    final: bool = False,
) -> dict[str, Any]:
    """The state once an attempt got `status` (None: no answer) or failed with `error`.

    A 2xx answer delivers it; otherwise the next try is `backoff[attempts - 1]` seconds on,
    and after the last of those (or an error that no retry can mend: `final`) it has failed.
    """
    attempts = int(state["attempts"]) + 1
    now = datetime.now(UTC)
    delivered = status is not None and 200 <= status < 300
    retry = not delivered and not final and attempts <= len(backoff)
    outcome = "delivered" if delivered else "pending" if retry else "failed"
    return state | {
        "state": outcome,
        "attempts": attempts,
        "last_status": status,
        "last_error": None if delivered else error,
        "last_try": iso(now),
        "next_try": iso(now + timedelta(seconds=backoff[attempts - 1])) if retry else None,
    }


def due_at(state: dict[str, Any]) -> float:
    """When the next try is due, as a time.time() value."""
    return datetime.fromisoformat(str(state["next_try"])).timestamp()
