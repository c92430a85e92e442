"""What the coordinator and its nodes agree on: names on the scheduler, versions, the token.

Both sides import this module, so a name changed here changes on both. Nothing in it may
carry a secret in the clear: the node token travels only as an HMAC digest.
"""

from __future__ import annotations

import hashlib
import hmac
import platform
from importlib import metadata
from typing import Any

import transcriber

# The log-event topic every job's progress travels on (worker.log_event -> subscribe_topic).
PROGRESS_TOPIC = "transcriber-progress"
# The scheduler metadata key where the coordinator leaves its versions for nodes to compare.
COORDINATOR_KEY = "transcriber-coordinator"
# The key of a node's entry in its registration (Worker startup_information).
NODE_INFO = "transcriber"
# The worker plugin's name (the agent is found under it from inside a task).
PLUGIN_NAME = "transcriber-node"
# The Dask resource a job claims: one per GPU (or per --slots on a CPU box).
RESOURCE = "GPU"


def versions() -> dict[str, str]:
    """The versions that must match across the cluster (pickles cross between them)."""
    return {
        "transcriber": transcriber.__version__,
        "dask": metadata.version("dask"),
        "distributed": metadata.version("distributed"),
        "python": platform.python_version(),
    }


def version_mismatch(ours: dict[str, str], theirs: dict[str, str]) -> str | None:
    """The differences in words ("dask 2026.8.0 here, 2026.9.0 there"), or None."""
    diffs = [
        f"{name} {ours.get(name)} here, {theirs.get(name)} there"
        for name in sorted(set(ours) | set(theirs))
        if ours.get(name) != theirs.get(name)
    ]
    return "; ".join(diffs) or None


def token_digest(token: str | None) -> str:
    """What a node presents for the shared node token: never the token itself."""
    return hmac.new((token or "").encode(), b"transcriber node v1", hashlib.sha256).hexdigest()


def token_ok(expected: str | None, digest: Any) -> bool:
    return isinstance(digest, str) and hmac.compare_digest(token_digest(expected), digest)


def job_key(task_id: str, attempt: int) -> str:
    return f"transcriber-job-{task_id}-{attempt}"
