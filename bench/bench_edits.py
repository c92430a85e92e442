"""The cost of one transcript edit against the transcript's length, and against the method of
storing a full copy per edit that it replaces.

For a --long (3 hours) and a --short (10 minutes) transcript, each in a fresh database written
through the server's own store code: one segment per 4 s (2,700 for 3 hours), 8 to 16 words
each with word timings, three speakers, words drawn from an English vocabulary by a Zipf law.
Then --edits edits through Transcripts.change, the path of a PATCH below aiohttp (read the
latest revision, apply the edit, save it, update the task): 70% text corrections, 20% speaker
moves, 10% speaker renames, in a fixed random order. The baseline runs the same edits the way
they were saved before, re-implemented here: the edit applied to a deep copy of the whole
transcript, the whole transcript stored as the revision, and every segments row (with its
search index entries) deleted and inserted again: TranscriptStore.add, which revision 0 and
re-diarization still use.

Prints, per method, length and kind of edit: the p50 per edit of the wall time and of the
process's CPU time (SQLite's thread included; steadier on a shared machine), and of the CPU
time reading the latest revision and saving the new one; bytes of revision data stored per
edit, growth of the database's used pages per edit, and SQLite's total_changes per edit (rows
written, FTS5's own included). Then the CPU time to read a revision of each transcript from
a full copy alone and with FULL_EVERY - 1 deltas.

Then the whole HTTP edit: the server's app (create_app, every middleware, the plumbing
pipeline's idle workers) in this process behind aiohttp's test client, on a database seeded
with the same transcript; --http-edits PATCHes of the same mix (the first --http-edits of the
plan), each timed from the request to the answer's last byte (read, not parsed). Three ways:
the whole new revision as answer (no Prefer), `Prefer: return=minimal`, and return=minimal
with the server's kept latest revision turned off (each edit reads the last full copy back,
as before it was kept). The first edit of each run reads the full copy in any case and is
shown apart; the p50s are over the others.

    .venv/bin/python bench/bench_edits.py [--long 180] [--short 10] [--edits 200]
        [--http-edits 40] [--only-http]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import logging
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from transcriber.config import Config  # noqa: E402
from transcriber.jobs.hub import Hub  # noqa: E402
from transcriber.jobs.tasks import Tasks  # noqa: E402
from transcriber.jobs.transcripts.edits import edit_segment, rename  # noqa: E402
from transcriber.jobs.transcripts.revisions import Edit, Transcripts, segment_rows  # noqa: E402
from transcriber.protocol.stages import Stage  # noqa: E402
from transcriber.store.db import Store  # noqa: E402
from transcriber.store.task import Task, now_iso  # noqa: E402
from transcriber.store.transcripts import FULL_EVERY, Revision, TranscriptStore  # noqa: E402
from transcriber.web.keys import TRANSCRIPTS  # noqa: E402
from transcriber.web.server import create_app  # noqa: E402

SEGMENT_SECONDS = 4.0
SPEAKERS = ("SPEAKER_00", "SPEAKER_01", "SPEAKER_02")
_WORDS = """the of and to a in that is it was for on are as with he they at be this have
from or one had by word but not what all were we when your can said there use an each which
she do how their if will up other about out many then them these so some her would make like
him into time has look two more write go see number no way could people my than first water
been call who oil its now find long down day did get come made may part budget meeting
quarter review customer product team report plan project cost revenue sales market design
research question answer problem idea point number schedule deadline contract proposal
release feature support service account invoice policy hiring training office remote travel
"""
VOCABULARY = _WORDS.split()


def transcript(rng: random.Random, minutes: float) -> dict[str, Any]:
    weights = [1 / (rank + 1) for rank in range(len(VOCABULARY))]
    segments = []
    for i in range(int(minutes * 60 / SEGMENT_SECONDS)):
        start, speaker = i * SEGMENT_SECONDS, SPEAKERS[(i // 3) % len(SPEAKERS)]
        drawn = rng.choices(VOCABULARY, weights, k=rng.randint(8, 16))
        step = SEGMENT_SECONDS / len(drawn)
        words = [
            {
                "word": word,
                "start": round(start + k * step, 3),
                "end": round(start + (k + 1) * step, 3),
                "probability": round(rng.uniform(0.5, 1.0), 4),
                "speaker": speaker,
            }
            for k, word in enumerate(drawn)
        ]
        text = " ".join(drawn).capitalize() + "."
        segments.append(
            {"id": i, "start": start, "end": start + SEGMENT_SECONDS, "text": text}
            | {"words": words, "speaker": speaker}
        )
    turns = [{"start": s["start"], "end": s["end"], "speaker": s["speaker"]} for s in segments]
    duration = minutes * 60
    return {"language": "en", "duration": duration, "model": "generated", "segments": segments} | {
        "turns": turns
    }


def requests(rng: random.Random, count: int, segments: int) -> list[tuple[str, str, Any]]:
    """The same mix for every run: text corrections, speaker moves, renames, as (kind, the
    PATCH's path below /api/tasks/{id}/, its body)."""
    plan: list[tuple[str, str, Any]] = []
    for n in range(count):
        roll, index = rng.random(), rng.randrange(segments)
        if roll < 0.7:
            text = " ".join(rng.choices(VOCABULARY, k=rng.randint(8, 16))).capitalize() + "."
            plan.append(("text", f"segments/{index}", {"text": text}))
        elif roll < 0.9:
            plan.append(("speaker", f"segments/{index}", {"speaker": rng.choice(SPEAKERS)}))
        else:
            plan.append(("rename", "speakers", {rng.choice(SPEAKERS): f"Person {n}"}))
    return plan


def edits(rng: random.Random, count: int, segments: int) -> list[tuple[str, Edit]]:
    """The mix of requests() as the functions Transcripts.change applies."""
    plan: list[tuple[str, Edit]] = []
    for kind, path, body in requests(rng, count, segments):
        if path == "speakers":
            plan.append((kind, partial(rename, body=body)))
        else:
            index = int(path.split("/")[1])
            plan.append((kind, partial(edit_segment, index=index, body=body)))
    return plan


class Timed:
    """Wraps a store method and adds up the CPU seconds spent in it."""

    def __init__(self, method: Callable[..., Awaitable[Any]]) -> None:
        self.method, self.seconds = method, 0.0

    async def __call__(self, *args: Any) -> Any:
        begin = time.process_time()
        try:
            return await self.method(*args)
        finally:
            self.seconds += time.process_time() - begin


async def full_copy_change(transcripts: Transcripts, task_id: str, edit: Edit) -> None:
    """An edit saved as before: a deep copy edited, the whole transcript and every row saved."""
    latest = await transcripts.store.latest(task_id)
    assert latest is not None
    data = edit(copy.deepcopy(latest.data))
    new = Revision(task_id, latest.revision + 1, latest.attempt, "edit", now_iso(), data)
    await transcripts.store.add(new, segment_rows(data))
    await transcripts.tasks.update(task_id, detail=f"Revision {new.revision} saved")


async def used_bytes(store: Store) -> int:
    db = store.db
    await db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    values = []
    for pragma in ("page_count", "freelist_count", "page_size"):
        async with db.execute(f"PRAGMA {pragma}") as cur:
            row = await cur.fetchone()
        values.append(int(row[0]) if row else 0)
    return (values[0] - values[1]) * values[2]


async def revision_bytes(store: Store) -> int:
    async with store.db.execute("SELECT SUM(length(data)) FROM revisions") as cur:
        row = await cur.fetchone()
    return int(row[0]) if row and row[0] else 0


async def open_task(
    folder: Path, data: dict[str, Any], name: str = "db.sqlite3"
) -> tuple[Store, Transcripts]:
    store = await Store.open(folder / name)
    transcripts = Transcripts(Tasks(store, Hub(), folder / "tasks"), TranscriptStore(store.db))
    await store.save(Task("t", "t.wav", "source.wav", stage=Stage.COMPLETE, attempt=1, seq=5))
    await transcripts.store.add(Revision("t", 0, 1, "model", now_iso(), data), segment_rows(data))
    return store, transcripts


async def run(folder: Path, method: str, minutes: float, count: int) -> dict[str, Any]:
    data = transcript(random.Random(7), minutes)
    store, transcripts = await open_task(folder, data)
    segments = len(data["segments"])
    name = "add" if method == "full copy" else "add_edit"
    saving, reading = Timed(getattr(transcripts.store, name)), Timed(transcripts.store.latest)
    setattr(transcripts.store, name, saving)
    transcripts.store.latest = reading  # type: ignore[method-assign,assignment]
    per_kind: dict[str, list[tuple[float, ...]]] = defaultdict(list)
    first: tuple[float, ...] = ()
    used, stored, changes = await used_bytes(store), await revision_bytes(store), 0
    try:
        for number, (kind, edit) in enumerate(edits(random.Random(11), count, segments), 1):
            if method == "deltas" and number % FULL_EVERY == 0:
                kind = f"every {FULL_EVERY}th, stored whole"  # no re-diarization here
            before, read, saved = store.db.total_changes, reading.seconds, saving.seconds
            begin, cpu = time.perf_counter(), time.process_time()
            if method == "full copy":
                await full_copy_change(transcripts, "t", edit)
            else:
                await transcripts.change("t", None, edit)
            took, used_cpu = time.perf_counter() - begin, time.process_time() - cpu
            sample = (took, used_cpu, reading.seconds - read, saving.seconds - saved)
            per_kind[kind].append(sample)
            first = first or sample
            changes += store.db.total_changes - before
        used = await used_bytes(store) - used
        stored = await revision_bytes(store) - stored
        reads = await read_times(transcripts.store, count) if method == "deltas" else {}
    finally:
        await store.close()
    return {"segments": segments, "per_kind": per_kind, "used": used, "stored": stored} | {
        "changes": changes,
        "reads": reads,
        "first": first,
    }


async def read_times(store: TranscriptStore, count: int) -> dict[str, float]:
    """CPU time reading the last full copy alone, and the revision before it (FULL_EVERY - 1
    deltas after the full copy before), alternately so both see the same load."""
    full = count - count % FULL_EVERY
    samples: dict[str, list[float]] = defaultdict(list)
    for _ in range(20):
        for name, number in (("full copy alone", full), (f"{FULL_EVERY - 1} deltas", full - 1)):
            begin = time.process_time()
            await store.get("t", number)
            samples[name].append(time.process_time() - begin)
    return {name: statistics.median(times) for name, times in samples.items()}


HTTP_WAYS = ("whole revision", "return=minimal", "return=minimal, nothing kept")


async def http_run(folder: Path, way: str, minutes: float, count: int) -> dict[str, Any]:
    """`count` PATCHes through the app; the samples (wall ms, CPU ms, answer bytes, kind)."""
    data = transcript(random.Random(7), minutes)
    config = Config(data_dir=folder / "data", pipeline="plumbing", min_free_disk=0, workers=1)
    config.files_dir.mkdir(parents=True)
    store, _ = await open_task(config.data_dir, data, config.db_path.name)
    await store.close()
    app = create_app(config)
    client = TestClient(TestServer(app))
    await client.start_server()
    headers = {} if way == "whole revision" else {"Prefer": "return=minimal"}
    samples = []
    try:
        if way.endswith("nothing kept"):
            kept = app[TRANSCRIPTS]
            kept._keep = lambda revision, deletions: None  # type: ignore[method-assign]
        for kind, path, body in requests(random.Random(11), count, len(data["segments"])):
            begin, cpu = time.perf_counter(), time.process_time()
            resp = await client.patch(f"/api/tasks/t/{path}", json=body, headers=headers)
            answer = await resp.read()
            took, used_cpu = time.perf_counter() - begin, time.process_time() - cpu
            assert resp.status == 200, answer[:300]
            samples.append((took * 1000, used_cpu * 1000, len(answer), kind))
    finally:
        await client.close()
    return {"segments": len(data["segments"]), "samples": samples}


def http_report(way: str, minutes: float, result: dict[str, Any]) -> float:
    """Print one run's row; return its p50 CPU ms."""
    first, rest = result["samples"][0], result["samples"][1:]
    wall, cpu, size = (float(statistics.median(s[k] for s in rest)) for k in range(3))
    worst = max(s[0] for s in rest)
    print(
        f"| {way} | {minutes:g} min ({result['segments']} segments) | {len(rest)} |"
        f" {wall:.1f} | {cpu:.1f} | {worst:.0f} | {size / 1024:,.1f} | {first[0]:.0f} |"
    )
    return cpu


async def http_main(args: argparse.Namespace, folder: Path) -> None:
    print(f"load average {os.getloadavg()[0]:.2f}; {args.http_edits} HTTP edits per run")
    print(
        "| answer | transcript | edits after the first | p50 wall ms | p50 CPU ms | max wall ms"
        " | p50 answer KiB | first edit wall ms |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    cpu: dict[tuple[str, float], float] = {}
    for way in HTTP_WAYS:
        for minutes in (args.short, args.long):
            run_dir = folder / f"http-{HTTP_WAYS.index(way)}-{minutes}"
            run_dir.mkdir()
            result = await http_run(run_dir, way, minutes, args.http_edits)
            cpu[way, minutes] = http_report(way, minutes, result)
    for way in HTTP_WAYS:
        ratio = cpu[way, args.long] / cpu[way, args.short]
        print(f"{way}, {args.long:g} min / {args.short:g} min: p50 CPU per HTTP edit {ratio:.2f}")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


def report(method: str, minutes: float, result: dict[str, Any], count: int) -> list[float]:
    """Print one run's rows; return its p50s (ms) over all kinds: wall, CPU, reading, saving."""
    every = [t for samples in result["per_kind"].values() for t in samples]
    for kind, samples in [*sorted(result["per_kind"].items()), ("all", every)]:
        wall, cpu, read, saving = (
            statistics.median(s[k] for s in samples) * 1000 for k in range(4)
        )
        print(
            f"| {method} | {minutes:g} min ({result['segments']} segments) | {kind}"
            f" ({len(samples)}) | {wall:.1f} | {cpu:.1f} | {read:.1f} | {saving:.1f} |"
        )
    print(
        f"|   per edit: revision data {result['stored'] / count / 1024:.1f} KiB,"
        f" used pages +{result['used'] / count / 1024:.1f} KiB,"
        f" total_changes {result['changes'] / count:.0f} | | | | | | |"
    )
    return [statistics.median(s[k] for s in every) * 1000 for k in range(4)]


async def main_async(args: argparse.Namespace, folder: Path) -> None:
    print(f"load average {os.getloadavg()[0]:.2f}; {args.edits} edits per run")
    print(
        "| method | transcript | edits | p50 wall ms per edit | p50 CPU ms per edit"
        " | of it reading | of it saving |"
    )
    print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
    p50: dict[tuple[str, float], list[float]] = {}
    reads: dict[float, dict[str, float]] = {}
    firsts: dict[float, tuple[float, ...]] = {}
    for method in ("deltas", "full copy"):
        for minutes in (args.short, args.long):
            run_dir = folder / f"{method}-{minutes}".replace(" ", "-")
            run_dir.mkdir()
            result = await run(run_dir, method, minutes, args.edits)
            p50[method, minutes] = report(method, minutes, result, args.edits)
            if result["reads"]:
                reads[minutes] = result["reads"]
            if method == "deltas":
                firsts[minutes] = result["first"]
    for method in ("deltas", "full copy"):
        long, short = p50[method, args.long], p50[method, args.short]
        # The deltas' edits read the latest revision from memory (Transcripts keeps it).
        read = f"{long[2] / short[2]:.2f}" if short[2] else "0 (in memory)"
        print(
            f"{method}, {args.long:g} min / {args.short:g} min: p50 CPU per edit"
            f" {long[1] / short[1]:.2f}, reading {read}, saving {long[3] / short[3]:.2f}"
        )
    for minutes, sample in firsts.items():
        print(
            f"deltas, {minutes:g} min, the first edit (reads the full copy): wall"
            f" {sample[0] * 1000:.1f} ms, CPU {sample[1] * 1000:.1f} ms, of it reading"
            f" {sample[2] * 1000:.1f} ms"
        )
    old, new = p50["full copy", args.long], p50["deltas", args.long]
    print(
        f"{args.long:g} min, full copy / deltas: p50 CPU per edit {old[1] / new[1]:.1f},"
        f" saving {old[3] / new[3]:.1f}"
    )
    for minutes, times in reads.items():
        for name, seconds in times.items():
            print(f"read a revision of {minutes:g} min, {name}: {seconds * 1000:.1f} ms CPU")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--long", type=float, default=180.0, help="minutes")
    parser.add_argument("--short", type=float, default=10.0, help="minutes")
    parser.add_argument("--edits", type=int, default=200)
    parser.add_argument("--http-edits", type=int, default=40, help="PATCHes per HTTP run")
    parser.add_argument("--only-http", action="store_true", help="only the HTTP runs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    folder = Path(tempfile.mkdtemp(prefix="bench-edits-"))
    try:
        if not args.only_http:
            asyncio.run(main_async(args, folder))
        asyncio.run(http_main(args, folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
