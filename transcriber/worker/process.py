"""Child-process side of a job: init, model cache, run the stages of one task, report progress.

Imports nothing from aiohttp or aiosqlite: it must load cleanly in a fresh spawn child.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import threading
import time
from typing import Any

from transcriber.protocol.stages import Stage
from transcriber.worker.interrupt import CancelWatch
from transcriber.worker.job import STAGES, Job, JobResult, cancel_flag, stage_output, write_json
from transcriber.worker.pipeline.types import (
    Cancelled,
    PipelineError,
    ProgressFn,
    Resume,
    Segment,
    Transcript,
)
from transcriber.worker.threads import ThreadGovernor

log = logging.getLogger(__name__)

# A stage that calls back but has nothing new to show still says so this often: the
# coordinator's watchdog takes silence for a hang (--stall-timeout).
ALIVE_EVERY = 30.0
DETAIL_EVERY = 2.0
# The live text goes out at most this often (a piece's end goes at once).
LIVE_EVERY = 0.5
# How often a node's job process looks whether the Dask worker that started it is still there.
PARENT_POLL = 0.5
# A spawned worker starts with no logging set up, so its INFO lines (models loading, thread
# counts) were lost; ours are shown, other libraries' only from WARNING up.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [worker %(process)d] %(message)s"

_queue: Any = None
_governor: ThreadGovernor | None = None


def init(queue: Any, threads: int, parent: int | None = None) -> None:
    """Executor initializer: the parent handles Ctrl-C; progress goes through `queue`; with
    `parent`, the process ends itself once that process is gone.

    `threads` is this worker's share of the cores: torch and CTranslate2 read OMP_NUM_THREADS
    when they load, and oversubscribed cores made diarization 4-6 times slower here. An
    OMP_NUM_THREADS already set wins. While stages run, torch's count then follows how busy
    other programs keep the cores (threads.py).
    """
    global _queue, _governor
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT)
        logging.getLogger("transcriber").setLevel(logging.INFO)
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    try:
        share = int(os.environ["OMP_NUM_THREADS"])
    except ValueError:
        share = threads
    _governor = ThreadGovernor(share)
    _queue = queue
    if parent is not None:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _watch_parent(parent: int) -> None:
    # os._exit works from any thread, even while the main thread sits in a long C call.
    while os.getppid() == parent:
        time.sleep(PARENT_POLL)
    os._exit(1)


def send(message: tuple[Any, ...]) -> None:
    if _queue is not None:
        _queue.put(message)


class LiveSender:
    """Sends the transcribing stage's text as it is decoded: new segments at most twice a
    second, and a piece's last ones at once with the word that the piece is done (the server
    stores them; a resumed run starts after the last piece done)."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self._pending: list[dict[str, Any]] = []
        self._piece = 0
        self._sent = 0.0

    def segment(self, piece: int, segment: Segment) -> None:
        if piece != self._piece:
            self._flush(False, None)
        self._piece = piece
        self._pending.append(
            {
                "index": segment.id,
                "start": segment.start,
                "end": segment.end,
                "text": segment.text,
                "words": [
                    {"word": w.word, "start": w.start, "end": w.end, "probability": w.probability}
                    for w in segment.words
                ],
            }
        )
        if time.monotonic() - self._sent >= LIVE_EVERY:
            self._flush(False, None)

    def piece_done(self, piece: int, language: str | None) -> None:
        self._piece = piece
        self._flush(True, language)

    def _flush(self, done: bool, language: str | None) -> None:
        if not self._pending and not done:
            return
        job = self.job
        send(("segments", job.task_id, job.attempt, self._piece, self._pending, done, language))
        self._pending = []
        self._sent = time.monotonic()


class Reporter:
    """Throttles at the source: one update per whole percent, at most 2 per second.

    Stage changes are always sent. Checks the cancel flag on every call.
    """

    def __init__(self, job: Job, min_interval: float = 0.5) -> None:
        self.job = job
        self.min_interval = min_interval
        self.stage = ""
        self._last_pct = -1
        self._last_time = 0.0
        self._last_sent = 0.0
        self._last_detail = ""

    def start_stage(self, stage: str, detail: str = "Starting") -> None:
        self.stage = stage
        self._last_pct = 0
        self._last_time = time.monotonic()
        self._emit(0, detail)

    def __call__(self, stage_progress: float, detail: str) -> None:
        if cancel_flag(self.job.work_dir, self.job.attempt).exists():
            raise Cancelled(self.stage)
        if _governor is not None:
            _governor.update()
        now = time.monotonic()
        if stage_progress < 0:
            # A phase note ("Loading model"): keeps the percent, obeys the rate limit.
            if now - self._last_time >= self.min_interval:
                self._last_time = now
                self._emit(self._last_pct, detail)
            return
        pct = max(0, min(100, int(stage_progress)))
        if pct <= self._last_pct or now - self._last_time < self.min_interval:
            if now - self._last_sent >= DETAIL_EVERY and detail != self._last_detail:
                # A slow percent ("Segmentation 5/119" still at 0%): the detail alone shows
                # that the stage moves, every DETAIL_EVERY seconds at most.
                self._last_time = now
                self._emit(self._last_pct, detail)
            elif now - self._last_sent >= ALIVE_EVERY:
                self._last_sent = now
                send(("alive", self.job.task_id, self.job.attempt))
            return
        self._last_pct, self._last_time = pct, now
        self._emit(pct, detail)

    def _emit(self, pct: int, detail: str) -> None:
        self._last_sent = time.monotonic()
        self._last_detail = detail
        send(("progress", self.job.task_id, self.job.attempt, self.stage, pct, detail))


def run_job(job: Job) -> JobResult:
    """Run the stages of `job` not finished yet; each stage's output is saved as it ends."""
    result = JobResult()
    try:
        with CancelWatch(cancel_flag(job.work_dir, job.attempt)):
            _run_stages(job, result)
        final = _final(job)
        result.language = final.get("language")
        result.segments = len(final.get("segments", []))
        return result
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise PipelineError("DISK_FULL", "", f"{type(exc).__name__}: {exc}") from exc
        raise
    finally:
        send(("finished", job.task_id, job.attempt))


def _run_stages(job: Job, result: JobResult) -> None:
    ctx = _context(job)
    for stage in map(Stage, job.stages):
        out = stage_output(job.work_dir, stage.value)
        if out.exists():
            # Finished by an earlier attempt: resume after it.
            result.done_stages.append(stage.value)
            continue
        reporter = Reporter(job)
        reporter.start_stage(stage.value, ctx.starting(stage))
        begin = time.monotonic()
        output = _run_stage(stage, job, ctx, reporter)
        write_json(out, output)
        seconds = result.timings[stage.value] = round(time.monotonic() - begin, 3)
        result.done_stages.append(stage.value)
        language = output.get("language")
        send(("stage_done", job.task_id, job.attempt, stage.value, seconds, language))


def _final(job: Job) -> dict[str, Any]:
    last = job.stages[-1] if job.stages else STAGES[0]
    data: dict[str, Any] = json.loads(stage_output(job.work_dir, last).read_text())
    return data


def _context(job: Job) -> Any:
    resume = Resume.from_dict(job.resume) if job.resume else None
    live = LiveSender(job) if job.live_text else None
    if job.pipeline == "plumbing":
        from transcriber.worker.pipeline import plumbing

        speakers = int(job.options.get("num_speakers") or 1)
        return plumbing.Context(
            job.audio_path,
            job.plumbing_stage_seconds,
            job.plumbing_hang,
            speakers,
            live=live,
            resume=resume,
        )
    from transcriber.worker.pipeline.stages import Context

    return Context(
        job.audio_path,
        job.options,
        job.model,
        job.device,
        job.models_dir,
        job.diarization,
        job.hf_token,
        aligner=job.aligner,
        align_model=job.align_model,
        hotwords=job.hotwords,
        max_audio_seconds=job.max_audio_seconds,
        max_models=job.max_models,
        live=live,
        resume=resume,
    )


def _run_stage(stage: Stage, job: Job, ctx: Any, progress: ProgressFn) -> dict[str, Any]:
    previous = _previous_output(job, stage)
    try:
        output: dict[str, Any] = ctx.run(stage, previous, progress)
    except (PipelineError, Cancelled):
        raise
    except MemoryError as exc:
        raise PipelineError("OUT_OF_MEMORY", "", f"MemoryError: {exc}") from exc
    except Exception as exc:
        if "out of memory" in str(exc).lower():
            raise PipelineError("OUT_OF_MEMORY", "", f"{type(exc).__name__}: {exc}") from exc
        raise
    return output


def _previous_output(job: Job, stage: Stage) -> Transcript | None:
    index = STAGES.index(stage.value)
    for earlier in reversed(STAGES[:index]):
        path = stage_output(job.work_dir, earlier)
        if path.exists():
            return Transcript.from_dict(json.loads(path.read_text()))
    return None
