"""The server with its SQLite writes counted: every sqlite3 connection it opens gets a trace
callback that counts COMMITs, and a thread writes the commits and total_changes of all of them
to a JSON file every COUNTS_EVERY seconds (read by bench_live.py).

    .venv/bin/python bench/sqlite_counted.py COUNTS.json -- [serve options]

A script of its own, not a role of bench_live.py: the server's worker processes are spawned,
and a spawned child imports the parent's main script again; this one imports nothing.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

COUNTS_EVERY = 0.1


def counted(counts: Path) -> None:
    opened: list[tuple[sqlite3.Connection, list[int]]] = []
    real_connect = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = real_connect(*args, **kwargs)
        commits = [0]

        def trace(sql: str) -> None:
            if sql.startswith("COMMIT"):
                commits[0] += 1

        conn.set_trace_callback(trace)
        opened.append((conn, commits))
        return conn

    def dump() -> None:
        while True:
            total = {"commits": 0, "changes": 0}
            for conn, commits in list(opened):
                with suppress(sqlite3.ProgrammingError):  # closed
                    total["changes"] += conn.total_changes
                    total["commits"] += commits[0]
            part = counts.with_suffix(".part")
            part.write_text(json.dumps(total))
            part.replace(counts)
            time.sleep(COUNTS_EVERY)

    sqlite3.connect = connect  # type: ignore[assignment]
    threading.Thread(target=dump, daemon=True).start()


if __name__ == "__main__":
    # This checkout's package, as app.py (in the root) gets it.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    counted(Path(sys.argv[1]))
    from transcriber.cli import main

    main(["serve", *sys.argv[sys.argv.index("--") + 1 :]])
