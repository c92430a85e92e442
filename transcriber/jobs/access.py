"""Keys per person: who a credential names, and which tasks that person may see.

A key is 32 random bytes (secrets.token_urlsafe), so a fast hash is the right one: sha256
cannot be reversed, and there is no short password to guess at any speed. Only digests are
stored: the key's, which programs send as a bearer token, and that of the page's session value
for it (session_value), which the session cookie holds. Revoking the key deletes both, so
the browsers signed in with it are signed out with it.

The server reads the keys again at most KEYS_TTL seconds after it last did (KeyRing), so a key
added or revoked by `transcriber keys` from another process counts within that time.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import re
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from transcriber.store.apikeys import ApiKey, KeyStore
from transcriber.store.task import ADMIN_OWNER, WATCH_OWNER, now_iso
from transcriber.store.transaction import DiskFull

log = logging.getLogger(__name__)

KEY_PREFIX = "tk_"
KEYS_TTL = 2.0
# last_used is written at most this often per key: a write per request would cost more than
# the request.
TOUCH_EVERY = 60.0
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"
# `owner=me` in a task list means the caller, so no key may be called "me" either.
RESERVED_NAMES = frozenset({ADMIN_OWNER, WATCH_OWNER, "me"})


class BadName(ValueError):
    """A key name that breaks the rules, in words for the operator."""


def check_name(name: str) -> str:
    if not re.fullmatch(NAME_PATTERN, name):
        raise BadName(
            f"a key name is 1 to 32 letters, digits, '.', '_' or '-', starting with a letter"
            f" or digit, not {name[:40]!r}"
        )
    if name.lower() in RESERVED_NAMES:
        raise BadName(f"{name!r} is reserved ({', '.join(sorted(RESERVED_NAMES))})")
    return name


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def session_value(secret: str) -> str:
    """What the page's session cookie holds for a token or key: a keyed digest, never the
    secret itself."""
    return hmac.new(secret.encode(), b"transcriber session v1", hashlib.sha256).hexdigest()


def new_key(name: str, admin: bool) -> tuple[str, ApiKey]:
    """A fresh random key and the row that stores only its digests."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(check_name(name), digest(key), digest(session_value(key)), admin, now_iso())
    return key, row


@dataclass(frozen=True)
class Person:
    """Who a request acts as: a key's holder, or the admin (the token, or nobody asked)."""

    name: str
    admin: bool

    def sees(self, visibility: str) -> str | None:
        """The one owner whose tasks this person may see, or None for everyone's."""
        return None if self.admin or visibility == "all" else self.name

    def may_see(self, visibility: str, owner: str) -> bool:
        seen = self.sees(visibility)
        return seen is None or seen == owner


ADMIN = Person(ADMIN_OWNER, True)


def _match(keys: tuple[ApiKey, ...], wanted: str, field: Callable[[ApiKey], str]) -> ApiKey | None:
    """The key whose digest is `wanted`, every one compared in constant time."""
    found = None
    for key in keys:
        if hmac.compare_digest(field(key), wanted):
            found = key
    return found


class KeyRing:
    """The keys as last read from SQLite, read again once KEYS_TTL has passed."""

    def __init__(self, store: KeyStore, ttl: float = KEYS_TTL) -> None:
        self.store = store
        self.ttl = ttl
        self._keys: tuple[ApiKey, ...] = ()
        self._read_at = -math.inf
        self._lock = asyncio.Lock()
        self._touched: dict[str, float] = {}

    @property
    def active(self) -> bool:
        """Whether any key exists (as last read): keys switch authentication on."""
        return bool(self._keys)

    async def fresh(self) -> tuple[ApiKey, ...]:
        if time.monotonic() - self._read_at >= self.ttl:
            async with self._lock:  # one read for all the requests that found it stale
                if time.monotonic() - self._read_at >= self.ttl:
                    self._keys = tuple(await self.store.all())
                    self._read_at = time.monotonic()
        return self._keys

    async def holder(self, key: str) -> Person | None:
        """Who holds this key (a bearer token), or None."""
        return await self._person(_match(await self.fresh(), digest(key), lambda k: k.digest))

    async def session_holder(self, cookie: str) -> Person | None:
        """Whose session cookie this is, or None (a revoked key's, or none at all)."""
        keys = await self.fresh()
        return await self._person(_match(keys, digest(cookie), lambda k: k.session_digest))

    async def _person(self, key: ApiKey | None) -> Person | None:
        if key is None:
            return None
        now = time.monotonic()
        if now - self._touched.get(key.name, -math.inf) >= TOUCH_EVERY:
            self._touched[key.name] = now
            try:
                await self.store.touch(key.name, now_iso())
            except (DiskFull, sqlite3.OperationalError) as exc:  # full or busy: no refusal for it
                log.warning("key %s: last use not recorded: %s", key.name, exc)
        return Person(key.name, key.admin)
