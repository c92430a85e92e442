"""Search latency over many long transcripts, and the size of the FTS5 index.

Fills a fresh database through the server's own store code (Store, TranscriptStore.add: the
same rows and triggers as an edit) with --tasks transcripts of --minutes each: generated text,
one segment per 5 s, words drawn from a Zipf-distributed vocabulary so that some words are in
nearly every transcript and some in a few. Then times jobs.search.search (the whole request
path below HTTP: escaping, the sync check, the FTS5 query, the snippets) for several kinds of
query, --rounds times each, and prints p50/p99 per kind and the index size.

    .venv/bin/python bench/bench_search.py [--tasks 2000] [--minutes 30] [--rounds 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from transcriber.jobs.hub import Hub  # noqa: E402
from transcriber.jobs.tasks import Tasks  # noqa: E402
from transcriber.jobs.transcripts.revisions import Transcripts, segment_rows  # noqa: E402
from transcriber.jobs.transcripts.search import search  # noqa: E402
from transcriber.protocol.stages import Stage  # noqa: E402
from transcriber.store.db import Store  # noqa: E402
from transcriber.store.task import Task, iso  # noqa: E402
from transcriber.store.transcripts import Revision, TranscriptStore  # noqa: E402

SEGMENT_SECONDS = 5.0
WORDS_PER_SEGMENT = 13  # about 155 words a minute


def vocabulary(rng: random.Random, size: int) -> list[str]:
    syllables = ["ka", "lo", "mi", "ne", "ru", "ta", "shi", "po", "ven", "dar", "el", "or", "qu"]
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))))
    return sorted(words, key=lambda w: (len(w), w))


def transcript(rng: random.Random, words: list[str], weights: list[float], minutes: float) -> dict:  # type: ignore[type-arg]
    count = int(minutes * 60 / SEGMENT_SECONDS)
    drawn = rng.choices(words, weights, k=count * WORDS_PER_SEGMENT)
    segments = []
    for i in range(count):
        text = " ".join(drawn[i * WORDS_PER_SEGMENT : (i + 1) * WORDS_PER_SEGMENT])
        start = i * SEGMENT_SECONDS
        segments.append(
            {
                "id": i,
                "start": start,
                "end": start + SEGMENT_SECONDS,
                "text": text.capitalize() + ".",
                "speaker": f"SPEAKER_0{i % 3}",
                "words": [],
            }
        )
    return {"language": "en", "duration": minutes * 60, "model": "generated", "segments": segments}


async def fill(store: Store, transcripts: TranscriptStore, args: argparse.Namespace) -> list[str]:
    rng = random.Random(7)
    words = vocabulary(rng, 20_000)
    weights = [1 / (rank + 1) for rank in range(len(words))]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(args.tasks):
        created = iso(start + timedelta(minutes=n))
        task = Task(
            id=f"{n:016x}",
            filename=f"meeting-{n}.wav",
            stored_name="source.wav",
            stage=Stage.COMPLETE,
            attempt=1,
            seq=5,
            created_at=created,
            updated_at=created,
        )
        await store.save(task)
        data = transcript(rng, words, weights, args.minutes)
        await transcripts.add(Revision(task.id, 0, 1, "model", created, data), segment_rows(data))
    return words


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def sizes(db_path: Path) -> dict[str, int]:
    with sqlite3.connect(db_path) as db:
        rows = db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
    totals = {"fts": 0, "segments": 0, "revisions": 0}
    for name, size in rows:
        key = "fts" if name.startswith("segments_fts") else name.split("_")[0].split(" ")[0]
        if key in totals:
            totals[key] += int(size)
    return totals


async def run(args: argparse.Namespace, folder: Path) -> None:
    store = await Store.open(folder / "db.sqlite3")
    try:
        tstore = TranscriptStore(store.db)
        begin = time.perf_counter()
        words = await fill(store, tstore, args)
        filled = time.perf_counter() - begin
        service = Transcripts(Tasks(store, Hub(), folder / "tasks"), tstore)
        kinds = {
            "most common word": words[0],
            "mid word (rank 300)": words[300],
            "rare word (rank 15000)": words[15000],
            "two words (AND)": f"{words[5]} {words[40]}",
            "phrase of two": f'"{words[0]} {words[1]}"',
            "prefix (3 letters)*": words[200][:3] + "*",
            "no hit": "zzzzqqq",
        }
        print(
            f"load average {os.getloadavg()[0]:.2f}; {args.tasks} transcripts x "
            f"{args.minutes:g} min filled in {filled:.0f} s"
        )
        every: list[float] = []
        print("| query | hits on page 1 | p50 ms | p99 ms |\n| --- | ---: | ---: | ---: |")
        for kind, query in kinds.items():
            times = []
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                result = await search(service, query, 20, 0)
                times.append((time.perf_counter() - t0) * 1000)
            every += times
            print(
                f"| {kind} `{query}` | {len(result.hits)} | "
                f"{statistics.median(times):.1f} | {percentile(times, 0.99):.1f} |"
            )
        print(f"| all kinds | | {statistics.median(every):.1f} | {percentile(every, 0.99):.1f} |")
    finally:
        await store.close()
    size = sizes(folder / "db.sqlite3")
    mib = 1024 * 1024
    print(
        f"FTS5 index {size['fts'] / mib:.0f} MiB, segments table {size['segments'] / mib:.0f} MiB,"
        f" revisions {size['revisions'] / mib:.0f} MiB,"
        f" database file {(folder / 'db.sqlite3').stat().st_size / mib:.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-search-"))
    try:
        asyncio.run(run(args, folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
