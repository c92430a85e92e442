"""Retention (--retention-days): finished tasks nobody touched for that long are deleted.

"Finished" is complete, failed or cancelled; "touched" is the task's `updated_at`, which a
transcript edit, a speaker name or a re-run moves on, so a transcript still being worked on
stays. A deletion is the same as `DELETE /api/tasks/{id}`: the row, its revisions and search
entries, and every file; subscribers get a `deleted` event. Tasks still uploading, waiting or
running are never deleted. Off by default: a server keeps everything until told otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from transcriber.store.db import Store
from transcriber.store.task import iso

log = logging.getLogger(__name__)

# At most this many deletions per sweep, so a first sweep over years of tasks goes in steps
# of a bounded size; a full batch is followed by the next one at once.
BATCH = 200
# A sweep runs at start and then this often, or more often when the retention is shorter
# (a quarter of it), so a task outlives its retention by at most that.
SWEEP_SECONDS = 3600.0


def sweep_interval(days: float) -> float:
    return min(SWEEP_SECONDS, days * 86400 / 4)


async def expire_tasks(
    store: Store,
    expire: Callable[[str, str], Awaitable[bool]],
    days: float,
    now: datetime | None = None,
) -> int:
    """Delete the finished tasks last changed more than `days` ago; return how many were
    picked. `expire(task_id, cutoff)` checks each again right before deleting it: one retried
    or re-run since it was picked stays."""
    cutoff = iso((now or datetime.now(UTC)) - timedelta(days=days))
    ids = await store.finished_before(cutoff, BATCH)
    deleted = 0
    for task_id in ids:
        deleted += await expire(task_id, cutoff)
    if ids:
        log.info("retention: deleted %d finished tasks last changed before %s", deleted, cutoff)
    return deleted
