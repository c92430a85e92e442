"""The Job a worker is handed: built from the task and the server's settings."""

from __future__ import annotations

from transcriber.config import Config
from transcriber.jobs.tasks import Tasks
from transcriber.protocol.stages import pipeline_stages
from transcriber.store.task import Task
from transcriber.worker.job import Job


def build_job(c: Config, tasks: Tasks, task: Task, attempt: int, hotwords: str | None) -> Job:
    """What a worker needs to run the task's stages: paths, options and the server's settings;
    `hotwords` are the server's default ones (jobs/hotwords.py)."""
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
    )
