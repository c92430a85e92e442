"""create_app(config): a synchronous factory that does no I/O; resources live in cleanup_ctx."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import AsyncIterator

from aiohttp import WSCloseCode, web

from transcriber.config import Config
from transcriber.jobs.access import KeyRing
from transcriber.jobs.engines.engine import make_executor
from transcriber.jobs.hub import Hub
from transcriber.jobs.intake.admission import disk_warning
from transcriber.jobs.profiles.profiles import Profiles
from transcriber.jobs.running.runner import Runner
from transcriber.jobs.tasks import Tasks
from transcriber.jobs.transcripts.revisions import Transcripts
from transcriber.jobs.watch.folder import Watcher
from transcriber.jobs.webhooks.deliveries import Deliveries
from transcriber.store.apikeys import KeyStore
from transcriber.store.db import Store
from transcriber.store.profiles import ProfileStore
from transcriber.store.transcripts import TranscriptStore
from transcriber.web.auth import auth_middleware
from transcriber.web.keys import (
    CONFIG,
    HOST_NAMES,
    HOST_VERDICTS,
    HUB,
    KEYRING,
    PROFILES,
    RUNNER,
    SEGMENT_PAGES,
    SOCKETS,
    STORE,
    TASKS,
    TRANSCRIPTS,
)
from transcriber.web.middleware import error_middleware
from transcriber.web.routes import setup_routes
from transcriber.web.security import host_names

log = logging.getLogger(__name__)


async def store_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    config.files_dir.mkdir(parents=True, exist_ok=True)
    if warning := disk_warning(config):
        log.warning(warning)
    store = await Store.open(config.db_path)
    app[STORE] = store
    app[TASKS] = Tasks(store, app[HUB], config.files_dir, config.max_uploads)
    app[TRANSCRIPTS] = Transcripts(app[TASKS], TranscriptStore(store.db))
    app[KEYRING] = KeyRing(KeyStore(store.db))
    app[PROFILES] = Profiles(ProfileStore(store.db), app[TRANSCRIPTS], config.profiles)
    app[TRANSCRIPTS].on_output = app[PROFILES].on_output
    await app[PROFILES].refresh()
    yield
    await store.close()


async def webhooks_ctx(app: web.Application) -> AsyncIterator[None]:
    # Before the runner: a task that ends as the runner recovers already owes its webhook.
    deliveries = Deliveries(app[TASKS], app[CONFIG])
    await deliveries.start()
    yield
    await deliveries.stop()


async def runner_ctx(app: web.Application) -> AsyncIterator[None]:
    runner = Runner(app[CONFIG], app[TASKS], make_executor(app[CONFIG]))
    runner.on_complete = app[TRANSCRIPTS].index
    app[RUNNER] = runner
    await runner.start()
    yield
    await runner.stop()


async def watch_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    if not config.watch:
        yield
        return
    runner = app[RUNNER]
    watcher = Watcher(
        app[TASKS], app[TRANSCRIPTS], config, runner.enqueue, lambda: runner.queue_length
    )
    await watcher.start()
    yield
    await watcher.stop()


async def close_sockets(app: web.Application) -> None:
    # GOING_AWAY tells clients to reconnect, to this process's successor.
    sockets = app[SOCKETS]
    for ws in list(sockets):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


def create_app(config: Config) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware, auth_middleware],
        client_max_size=64 * 1024,
    )
    app[CONFIG] = config
    app[HOST_NAMES] = host_names(config)
    app[HOST_VERDICTS] = {}
    app[SEGMENT_PAGES] = OrderedDict()
    app[HUB] = Hub()
    sockets: set[web.WebSocketResponse] = set()
    app[SOCKETS] = sockets
    app.cleanup_ctx.append(store_ctx)
    app.cleanup_ctx.append(webhooks_ctx)
    app.cleanup_ctx.append(runner_ctx)
    app.cleanup_ctx.append(watch_ctx)
    app.on_shutdown.append(close_sockets)
    setup_routes(app)
    return app
