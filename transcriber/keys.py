"""Every web.AppKey of the application, typed."""

from __future__ import annotations

from aiohttp import web

from .config import Config
from .hub import Hub
from .runner import Runner
from .store import Store
from .tasks import Tasks

CONFIG = web.AppKey("config", Config)
STORE = web.AppKey("store", Store)
HUB = web.AppKey("hub", Hub)
TASKS = web.AppKey("tasks", Tasks)
RUNNER = web.AppKey("runner", Runner)
SOCKETS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("sockets")
