"""Server configuration: one frozen dataclass, filled from TRANSCRIBER_* variables and CLI flags."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transcriber.worker.assets import default_models_dir

PIPELINES = ("real", "plumbing")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("data")
    models_dir: Path = field(default_factory=default_models_dir)
    workers: int = 1
    model: str = "base"
    device: str = "auto"
    diarization: str = "bundled"
    hf_token: str | None = None
    # "plumbing" walks the stages without models: only for fast tests of the server itself.
    pipeline: str = "real"
    max_upload_bytes: int = 4 * 1024**3
    max_audio_seconds: float = 6 * 3600.0
    heartbeat: float = 30.0
    token: str | None = None
    allowed_origins: tuple[str, ...] = ()
    max_attempts: int = 3
    # aiohttp's per-request log line costs about a quarter of a small GET: off unless asked.
    access_log: bool = False
    # Seconds per stage of the plumbing pipeline.
    plumbing_stage_seconds: float = 0.3

    def __post_init__(self) -> None:
        if self.pipeline not in PIPELINES:
            raise ValueError(f"pipeline must be one of {PIPELINES}, not {self.pipeline!r}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, not {self.device!r}")
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if self.heartbeat <= 0:
            raise ValueError("heartbeat must be positive")
        if self.max_upload_bytes < 1:
            raise ValueError("max_upload_bytes must be positive")

    @property
    def db_path(self) -> Path:
        return self.data_dir / "transcriber.sqlite3"

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "tasks"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Config:
        """Environment first, then explicit overrides (CLI flags) that are not None."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get("TRANSCRIBER_" + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _parse(f.name, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        for name in ("data_dir", "models_dir"):
            if name in values:
                values[name] = Path(values[name])
        if "allowed_origins" in values and isinstance(values["allowed_origins"], str):
            values["allowed_origins"] = _parse("allowed_origins", values["allowed_origins"])
        return cls(**values)


def _parse(name: str, raw: str) -> Any:
    if name in ("port", "workers", "max_upload_bytes", "max_attempts"):
        return int(raw)
    if name in ("heartbeat", "max_audio_seconds", "plumbing_stage_seconds"):
        return float(raw)
    if name == "access_log":
        return raw.lower() in ("1", "true", "yes", "on")
    if name == "allowed_origins":
        return tuple(o.strip() for o in raw.split(",") if o.strip())
    return raw
