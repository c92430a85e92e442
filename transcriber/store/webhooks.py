"""The SQL of webhook deliveries: the message each owed delivery sends, kept across restarts.

Its state (attempts, the last answer, the next try) is the task's `webhook` column, shown in
the snapshot and written with it; a row here is the body of a delivery still pending, with the
id every attempt carries. A row whose task no longer shows its id (delivered, failed, replaced
by a later run's delivery) is left over and removed when found; deleting the task removes it.
"""

from __future__ import annotations

import aiosqlite

from transcriber.store.transaction import transaction

MIGRATION = """
ALTER TABLE tasks ADD COLUMN webhook TEXT;
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL,
    url TEXT NOT NULL,
    body BLOB NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX webhook_deliveries_task ON webhook_deliveries (task_id);
CREATE TRIGGER tasks_webhooks_ad AFTER DELETE ON tasks BEGIN
    DELETE FROM webhook_deliveries WHERE task_id = old.id;
END;
"""


class DeliveryStore:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def add(self, message_id: str, task_id: str, url: str, body: bytes, now: str) -> None:
        """Keep the message of a new delivery (nothing when the task is gone meanwhile)."""
        async with transaction(self._db) as db:
            await db.execute(
                "INSERT OR IGNORE INTO webhook_deliveries (id, task_id, url, body, created_at)"
                " SELECT ?, ?, ?, ?, ? FROM tasks WHERE id = ?",
                (message_id, task_id, url, body, now, task_id),
            )

    async def get(self, message_id: str) -> tuple[str, str, bytes] | None:
        """(task id, url, body) of a pending delivery."""
        async with self._db.execute(
            "SELECT task_id, url, body FROM webhook_deliveries WHERE id = ?", (message_id,)
        ) as cur:
            row = await cur.fetchone()
        return (str(row[0]), str(row[1]), bytes(row[2])) if row else None

    async def remove(self, message_id: str) -> None:
        async with transaction(self._db) as db:
            await db.execute("DELETE FROM webhook_deliveries WHERE id = ?", (message_id,))

    async def pending(self) -> list[tuple[str, str]]:
        """(task id, webhook state JSON) of every task whose delivery is pending, oldest first:
        what a restart takes up again."""
        async with self._db.execute(
            "SELECT id, webhook FROM tasks WHERE webhook IS NOT NULL"
            " AND json_extract(webhook, '$.state') = 'pending' ORDER BY updated_at"
        ) as cur:
            rows = await cur.fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    async def leftovers(self) -> list[str]:
        """Ids of rows whose task no longer owes that delivery."""
        async with self._db.execute(
            "SELECT d.id FROM webhook_deliveries d JOIN tasks t ON t.id = d.task_id"
            " WHERE t.webhook IS NULL OR json_extract(t.webhook, '$.id') != d.id"
            " OR json_extract(t.webhook, '$.state') != 'pending'"
        ) as cur:
            rows = await cur.fetchall()
        return [str(r[0]) for r in rows]
