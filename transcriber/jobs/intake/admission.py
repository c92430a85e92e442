"""Admission: whether the server takes a new task now (--max-queue, --max-uploads,
--min-free-disk).

Checked before a task is made and before any byte is stored, by every route that makes or
requeues one.
"""

from __future__ import annotations

import shutil

from transcriber.config import Config
from transcriber.jobs.tasks import RETRY_AFTER_SECONDS, check_uploads
from transcriber.protocol.errors import ApiError


def admit(config: Config, waiting: int, uploading: int) -> None:
    """Raise QUEUE_FULL or TOO_MANY_UPLOADS (429, with Retry-After) or DISK_FULL (507); return
    when there is room."""
    check_queue(config, waiting)
    check_uploads(config.max_uploads, uploading)
    check_disk(config)


def check_queue(config: Config, waiting: int) -> None:
    if waiting >= config.max_queue:
        error = ApiError(
            "QUEUE_FULL", detail=f"{waiting} tasks are waiting; the limit is {config.max_queue}"
        )
        error.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        raise error


def _free_if_short(config: Config) -> int | None:
    """The bytes free in the data folder when under --min-free-disk; None when there is room."""
    free = shutil.disk_usage(config.data_dir).free
    return free if free < config.min_free_disk else None


def check_disk(config: Config) -> None:
    free = _free_if_short(config)
    if free is not None:
        raise ApiError(
            "DISK_FULL",
            detail=f"{free} bytes free in the data folder; {config.min_free_disk} must stay free",
        )


def disk_warning(config: Config) -> str | None:
    """What to tell the operator at start when every upload would be refused for disk space."""
    free = _free_if_short(config)
    if free is None:
        return None
    return (
        f"the data folder has {free / 2**20:.0f} MiB free, less than --min-free-disk "
        f"({config.min_free_disk / 2**20:.0f} MiB): new tasks get 507 DISK_FULL until space "
        "is freed or the setting is lowered"
    )
