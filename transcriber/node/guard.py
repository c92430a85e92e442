"""Who may ask what of the cluster's Dask servers: a node credential makes a node, no more.

Dask lets any peer that passes TLS call any of a server's handlers, and on the scheduler these
include running a function in its process (`run_on_scheduler`, plugins) and, through a client,
submitting work and running functions on every node (`submit`, `Client.run`). The scheduler
lives in the web server's process, so a node's key would be a key to the server. Here every
comm is tagged with the role its peer's certificate names (tls.py): the coordinator may do
anything, any other peer (a node) only what a Dask worker does for itself: register, report
its tasks, read the coordinator's versions. A refused request answers with an error and is
logged; a refused message on a worker's stream ends that stream. A node's own worker serves
the coordinator's scheduler only: another node's connection is closed before it is read.

What this does not cover: a scheduler run outside the server (`serve --scheduler`), and
Dask's messages themselves, which may carry pickles that the receiving process unpickles as
it reads them, before any handler runs (docs/scaling.md, "What a node credential allows").
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

from transcriber.node.tls import peer_role

log = logging.getLogger(__name__)

# The role of the peer whose comm is being served: set per comm, read by the handlers' guard.
# Unset outside a served comm (the server's own calls), which are not guarded.
_PEER: contextvars.ContextVar[tuple[str, str]] = contextvars.ContextVar("transcriber_peer")

# What a node's Dask worker asks of the scheduler: requests, then messages on its stream.
WORKER_REQUESTS = frozenset({"register-worker", "heartbeat_worker", "who_has", "get_metadata"})
WORKER_MESSAGES = frozenset(
    {
        "task-finished",
        "task-erred",
        "release-worker-data",
        "add-keys",
        "long-running",
        "reschedule",
        "keep-alive",
        "log-event",
        "worker-status-change",
        "request-refresh-who-has",
        "steal-response",
    }
)


def guard_scheduler(scheduler: Any) -> None:
    """Nodes may use the scheduler as workers only: each comm is tagged with its peer's role,
    checked in every handler but a worker's own. Before the scheduler listens: it hands its
    handle_comm to the listener."""
    serve = scheduler.handle_comm

    def handle_comm(comm: Any) -> Any:
        # The comm is served in a task started from here: it runs in this context's copy.
        context = contextvars.copy_context()
        context.run(_PEER.set, (peer_role(comm.extra_info), str(comm.peer_address)))
        return context.run(serve, comm)

    scheduler.handle_comm = handle_comm
    for table in (scheduler.handlers, scheduler.stream_handlers):
        for op, handler in list(table.items()):
            if op not in WORKER_REQUESTS | WORKER_MESSAGES:
                table[op] = _checked(op, handler)


def guard_worker(worker: Any) -> None:
    """Only the coordinator (its scheduler) may connect to a node's worker. Before it listens:
    it hands its handle_comm to the listener."""
    serve = worker.handle_comm

    async def handle_comm(comm: Any) -> None:
        if peer_role(comm.extra_info) != "coordinator":
            log.warning("refused a connection from %s (a node) to this node", comm.peer_address)
            comm.abort()
            return
        await serve(comm)

    worker.handle_comm = handle_comm


def _checked(op: str, handler: Callable[..., Any]) -> Callable[..., Any]:
    # Same signature and kind (coroutine or not) as the handler: Dask inspects both to call it.
    if inspect.iscoroutinefunction(handler):

        @functools.wraps(handler)
        async def checked_async(*args: Any, **kwargs: Any) -> Any:
            _check(op)
            return await handler(*args, **kwargs)

        return checked_async

    @functools.wraps(handler)
    def checked(*args: Any, **kwargs: Any) -> Any:
        _check(op)
        return handler(*args, **kwargs)

    return checked


def _check(op: str) -> None:
    peer = _PEER.get(None)
    if peer is None or peer[0] == "coordinator":
        return
    log.warning("refused %r from %s (a %s) on the scheduler", op, peer[1], peer[0])
    raise PermissionError(f"a transcriber {peer[0]} may not call {op!r} on the scheduler")
