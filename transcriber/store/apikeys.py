"""The SQL of keys per person: one row a key, holding only digests of it (jobs/access.py).

`transcriber keys` writes these rows from its own process while the server runs; the server
reads the whole table again every few seconds (jobs/access.py KeyRing), so it sees a new or
revoked key without a restart. A revoked key's row is deleted.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import aiosqlite

from transcriber.store.transaction import transaction

# Names compare without case, so "Alice" and "alice" cannot both hold a key. Tasks made before
# keys existed were made with the token (or by anyone, on a server without one): the admin's.
MIGRATION = """
CREATE TABLE api_keys (
    name TEXT PRIMARY KEY COLLATE NOCASE,
    digest TEXT NOT NULL UNIQUE,
    session_digest TEXT NOT NULL UNIQUE,
    admin INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    last_used TEXT
);
ALTER TABLE tasks ADD COLUMN owner TEXT NOT NULL DEFAULT 'admin';
CREATE INDEX tasks_owner ON tasks (owner, created_at);
"""


class DuplicateName(Exception):
    """A key of that name exists already."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    # sha256 of the key (what a program sends) and of the page's session value for it.
    digest: str
    session_digest: str
    admin: bool
    created_at: str
    last_used: str | None = None


class KeyStore:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def all(self) -> list[ApiKey]:
        async with self._db.execute(
            "SELECT name, digest, session_digest, admin, created_at, last_used FROM api_keys"
            " ORDER BY created_at, name"
        ) as cur:
            rows = await cur.fetchall()
        return [ApiKey(r[0], r[1], r[2], bool(r[3]), r[4], r[5]) for r in rows]

    async def add(self, key: ApiKey) -> None:
        try:
            async with transaction(self._db) as db:
                await db.execute(
                    "INSERT INTO api_keys (name, digest, session_digest, admin, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (key.name, key.digest, key.session_digest, int(key.admin), key.created_at),
                )
        except sqlite3.IntegrityError as exc:
            raise DuplicateName(key.name) from exc

    async def revoke(self, name: str) -> bool:
        """Delete the key of that name; False when there was none."""
        async with transaction(self._db) as db:
            cur = await db.execute("DELETE FROM api_keys WHERE name = ?", (name,))
        return cur.rowcount > 0

    async def touch(self, name: str, when: str) -> None:
        async with transaction(self._db) as db:
            await db.execute("UPDATE api_keys SET last_used = ? WHERE name = ?", (when, name))
