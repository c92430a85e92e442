"""Worker-side pieces, run in this process: throttling at the source, error mapping, resume."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from transcriber.protocol.stages import Stage
from transcriber.worker import process as worker
from transcriber.worker.job import Job, cancel_flag
from transcriber.worker.pipeline.types import Cancelled, PipelineError, ProgressFn, Transcript


@pytest.fixture
def messages(monkeypatch: pytest.MonkeyPatch) -> queue.Queue[tuple[Any, ...]]:
    q: queue.Queue[tuple[Any, ...]] = queue.Queue()
    monkeypatch.setattr(worker, "_queue", q)
    return q


def drain(q: queue.Queue[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    out = []
    while not q.empty():
        out.append(q.get())
    return out


def job(tmp_path: Path, **kw: Any) -> Job:
    values: dict[str, Any] = {
        "task_id": "t",
        "attempt": 1,
        "audio_path": tmp_path / "a.wav",
        "work_dir": tmp_path,
        "stages": ("transcribing",),
        "options": {},
    }
    return Job(**(values | kw))


def test_reporter_throttles_per_percent_and_time(
    tmp_path: Path, messages: queue.Queue[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [100.0]
    monkeypatch.setattr(worker.time, "monotonic", lambda: clock[0])
    reporter = worker.Reporter(job(tmp_path))
    reporter.start_stage("transcribing")
    for step in range(200):  # 0.5 % steps, 0.125 s apart
        clock[0] += 0.125
        reporter(step / 2, f"step {step}")
    sent = drain(messages)
    assert sent[0] == ("progress", "t", 1, "transcribing", 0, "Starting")
    percents = [m[4] for m in sent[1:]]
    assert percents == sorted(set(percents))  # at most one per whole percent
    assert len(sent) - 1 == 50  # at most two a second: 50 in 25 s
    reporter.start_stage("aligning")  # a stage change is never dropped
    assert drain(messages) == [("progress", "t", 1, "aligning", 0, "Starting")]


def test_reporter_raises_cancelled_when_flagged(
    tmp_path: Path, messages: queue.Queue[tuple[Any, ...]]
) -> None:
    reporter = worker.Reporter(job(tmp_path, attempt=2))
    reporter.start_stage("transcribing")
    cancel_flag(tmp_path, 1).touch()  # an older attempt's flag does not stop this one
    reporter(1, "x")
    cancel_flag(tmp_path, 2).touch()
    with pytest.raises(Cancelled):
        reporter(2, "y")


class Exploding:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def run(self, stage: str, previous: Transcript | None, progress: ProgressFn) -> Any:
        raise self.exc


@pytest.mark.parametrize(
    "exc",
    [MemoryError("cannot allocate"), RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")],
)
def test_memory_exhaustion_is_out_of_memory(tmp_path: Path, exc: BaseException) -> None:
    with pytest.raises(PipelineError) as caught:
        worker._run_stage(Stage.TRANSCRIBING, job(tmp_path), Exploding(exc), lambda p, d: None)
    assert caught.value.code == "OUT_OF_MEMORY"
    assert type(exc).__name__ in caught.value.detail


def test_pipeline_error_survives_pickling() -> None:
    import pickle

    error = pickle.loads(pickle.dumps(PipelineError("DECODE_FAILED", "m", "d")))
    assert (error.code, error.message, error.detail) == ("DECODE_FAILED", "m", "d")


def test_finished_stage_is_not_run_again(
    tmp_path: Path, messages: queue.Queue[tuple[Any, ...]]
) -> None:
    transcript = Transcript("en", 1.0, "m", []).to_dict()
    (tmp_path / "transcribing.json").write_text(json.dumps(transcript))
    result = worker.run_job(
        job(tmp_path, pipeline="plumbing", plumbing_stage_seconds=0.0, stages=("transcribing",))
    )
    assert result.done_stages == ["transcribing"] and result.timings == {}
    assert [m[0] for m in drain(messages)] == ["finished"]


def test_phase_note_keeps_percent_and_rate(
    tmp_path: Path, messages: queue.Queue[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [10.0]
    monkeypatch.setattr(worker.time, "monotonic", lambda: clock[0])
    reporter = worker.Reporter(job(tmp_path))
    reporter.start_stage("transcribing", "Loading model tiny.en")
    reporter(-1, "Reading audio")  # too soon after the stage change: dropped
    clock[0] += 0.5
    reporter(-1, "Reading audio")
    clock[0] += 0.5
    reporter(12, "Segment 1 - 0:04 of 0:38")
    assert [m[3:] for m in drain(messages)] == [
        ("transcribing", 0, "Loading model tiny.en"),
        ("transcribing", 0, "Reading audio"),
        ("transcribing", 12, "Segment 1 - 0:04 of 0:38"),
    ]


def test_slow_percent_still_shows_its_detail(
    tmp_path: Path, messages: queue.Queue[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Steps too small to move the whole percent: every 2 s the detail alone goes out."""
    clock = [10.0]
    monkeypatch.setattr(worker.time, "monotonic", lambda: clock[0])
    reporter = worker.Reporter(job(tmp_path))
    reporter.start_stage("diarizing", "Loading speaker models")
    for batch in range(1, 21):  # 0.01 % each, 0.3 s apart
        clock[0] += 0.3
        reporter(batch / 100, f"Segmentation {batch}/10000")
    assert [m[3:] for m in drain(messages)] == [
        ("diarizing", 0, "Loading speaker models"),
        ("diarizing", 0, "Segmentation 7/10000"),
        ("diarizing", 0, "Segmentation 14/10000"),
    ]


def test_a_spawned_worker_shows_its_info_lines() -> None:
    """A fresh process set up by init() logs the worker's INFO lines and others' warnings only."""
    script = (
        "import logging\n"
        "from transcriber.worker import process\n"
        "process.init(None, 1)\n"
        "logging.getLogger('transcriber.worker.threads').info('torch threads 2 -> 1')\n"
        "logging.getLogger('lightning').info('not shown')\n"
        "logging.getLogger('lightning').warning('shown')\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    lines = out.stderr.splitlines()
    assert len(lines) == 2, out.stderr
    assert "INFO transcriber.worker.threads [worker " in lines[0]
    assert lines[0].endswith("torch threads 2 -> 1")
    assert "WARNING lightning" in lines[1] and lines[1].endswith("shown")
