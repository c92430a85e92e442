"""The Job a worker is handed: built from the task and the server's settings."""

from __future__ import annotations

from typing import Any

from transcriber.config import Config
from transcriber.jobs.tasks import Tasks
from transcriber.protocol.stages import Stage, pipeline_stages
from transcriber.store.task import Task
from transcriber.worker.job import Job


async def resume_point(tasks: Tasks, task_id: str) -> dict[str, Any] | None:
    """Where a run of the transcribing stage that was cut stopped: the stored segments of the
    pieces it finished, and the language it found; None when it starts afresh."""
    task = await tasks.get(task_id)
    if task is None or Stage.TRANSCRIBING.value in task.done_stages or not task.pieces_done:
        return None
    kept = await tasks.live.pieces(task_id, task.pieces_done)
    return {"segments": kept, "pieces": task.pieces_done, "language": task.language}


def live_start(resume: dict[str, Any] | None) -> dict[str, Any]:
    """The task's text counters as a run of the transcribing stage starts."""
    if resume is None:
        return {"segments_count": 0, "pieces_done": 0}
    return {"segments_count": len(resume["segments"]), "pieces_done": resume["pieces"]}


def build_job(
    c: Config,
    tasks: Tasks,
    task: Task,
    attempt: int,
    hotwords: str | None,
    resume: dict[str, Any] | None = None,
) -> Job:
    """What a worker needs to run the task's stages: paths, options and the server's settings;
    `hotwords` are the server's default ones (jobs/running/hotwords.py); `resume` where an
    earlier run of the transcribing stage stopped (resume_point)."""
    return Job(
        task_id=task.id,
        attempt=attempt,
        audio_path=tasks.audio_path(task),
        work_dir=tasks.work_dir(task.id),
        stages=tuple(s.value for s in pipeline_stages(task.options)),
        options=task.options,
        pipeline=c.pipeline,
        model=task.options.get("model") or c.model,
        device=c.device,
        models_dir=c.models_dir,
        aligner=c.aligner,
        align_model=c.align_model,
        diarization=c.diarization,
        hf_token=c.hf_token,
        hotwords=hotwords,
        max_audio_seconds=c.max_audio_seconds,
        max_models=c.max_models,
        plumbing_stage_seconds=c.plumbing_stage_seconds,
        plumbing_hang=c.plumbing_hang,
        resume=resume,
        live_text=c.live_text,
    )
