"""Every web.AppKey of the application, typed."""

from __future__ import annotations

from collections import OrderedDict

from aiohttp import web

from transcriber.config import Config
from transcriber.jobs.access import KeyRing, Person
from transcriber.jobs.hub import Hub
from transcriber.jobs.profiles.profiles import Profiles
from transcriber.jobs.running.runner import Runner
from transcriber.jobs.tasks import Tasks
from transcriber.jobs.transcripts.revisions import Transcripts
from transcriber.store.db import Store

CONFIG = web.AppKey("config", Config)
STORE = web.AppKey("store", Store)
HUB = web.AppKey("hub", Hub)
TASKS = web.AppKey("tasks", Tasks)
RUNNER = web.AppKey("runner", Runner)
TRANSCRIPTS = web.AppKey("transcripts", Transcripts)
KEYRING = web.AppKey("keyring", KeyRing)
# Who a request acts as (web/auth.py); unset on a request to an /api/ path without a good
# credential, which only the open paths (health, session) get to see.
PERSON = web.RequestKey("person", Person)
PROFILES = web.AppKey("profiles", Profiles)
SOCKETS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("sockets")
# The Host names this server answers to without a token (web/security.py), worked out once.
HOST_NAMES: web.AppKey[frozenset[str]] = web.AppKey("host_names")
# Host header values seen, allowed or not: the check costs a dict lookup per request.
HOST_VERDICTS: web.AppKey[dict[str, bool]] = web.AppKey("host_verdicts")
# Encoded pages of GET .../segments by (task, seq, after): web/results.py.
SEGMENT_PAGES: web.AppKey[OrderedDict[tuple[str, int, int], str]] = web.AppKey("segment_pages")
