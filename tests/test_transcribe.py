"""Transcribing stage on real bundled models (tiny.en, base), fully offline."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import ctranslate2
import numpy as np
import pytest
from faster_whisper import WhisperModel

from tests.speech_truth import DATA, SPEECH, truth, wer
from transcriber.worker.pipeline.audio import load_audio
from transcriber.worker.pipeline.models import load_model, resolve_model
from transcriber.worker.pipeline.transcribe import _decode_options, temperatures, transcribe
from transcriber.worker.pipeline.types import Cancelled, PipelineError, Transcript, clock

os.environ["HF_HUB_OFFLINE"] = "1"

Calls = list[tuple[float, str]]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("models")
    yield folder
    shutil.rmtree(folder)  # a joined base is 145 MB; a CI runner may have little disk to spare


@pytest.fixture(scope="module")
def tiny(models_dir: Path) -> WhisperModel:
    return load_model("tiny.en", "cpu", models_dir)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return load_audio(SPEECH)


@pytest.fixture(scope="module")
def transcribed(tiny: WhisperModel, speech: np.ndarray) -> tuple[Transcript, Calls]:
    calls: Calls = []
    result = transcribe(tiny, speech, {"language": None}, lambda p, d: calls.append((p, d)), "t")
    return result, calls


@pytest.mark.slow
def test_tiny_en_transcribes_the_speech(transcribed: tuple[Transcript, Calls]) -> None:
    result, _ = transcribed
    text = " ".join(s.text for s in result.segments)
    error = wer(text, " ".join(w.word for w in truth()))
    print(f"tiny.en WER {error:.1%}: {text}")
    assert error <= 0.3
    assert "lazy dog" in text and "tomorrow morning at the old library" in text
    assert result.language == "en"
    assert result.model == "t"
    assert result.duration == pytest.approx(22.77, abs=0.01)


@pytest.mark.slow
def test_segments_are_ordered_without_words(transcribed: tuple[Transcript, Calls]) -> None:
    result, _ = transcribed
    assert [s.id for s in result.segments] == list(range(len(result.segments)))
    for segment in result.segments:
        assert 0 <= segment.start < segment.end <= result.duration
        assert segment.text == segment.text.strip() != ""
        assert segment.words == []
    ends = [s.end for s in result.segments]
    assert ends == sorted(ends)


@pytest.mark.slow
def test_progress_follows_segments_to_100(transcribed: tuple[Transcript, Calls]) -> None:
    result, calls = transcribed
    # Sub-steps (-1: a note, the percent stays) come before each 30 s window the decoder starts.
    notes = [d for p, d in calls if p < 0]
    assert notes and all(
        re.fullmatch(r"Window \d+(, attempt \d+)? - 0:\d\d of 0:22", d) for d in notes
    )
    assert notes[0] == "Window 1 - 0:00 of 0:22"
    values = [p for p, _ in calls if p >= 0]
    assert values == sorted(values)
    assert values[0] == 0 and values[-1] == 100
    assert values[-2] > 90  # the last segment ends near the end of the audio
    details = [d for p, d in calls[1:-1] if p >= 0]
    assert len(details) == len(result.segments)
    assert all(re.fullmatch(r"Segment \d+ - 0:\d\d of 0:22", d) for d in details), details


@pytest.mark.slow
def test_cancel_from_progress_stops_transcription(tiny: WhisperModel, speech: np.ndarray) -> None:
    seen: list[float] = []

    def progress(percent: float, _detail: str) -> None:
        seen.append(percent)
        if percent > 0:
            raise Cancelled("transcribing")

    with pytest.raises(Cancelled):
        transcribe(tiny, speech, {}, progress, "tiny.en")
    # The language line, the first window's note, then the first segment: no more decoding.
    assert seen[:2] == [0, -1] and len(seen) == 3


@pytest.mark.slow
def test_cancel_from_a_window_note_stops_before_decoding(
    tiny: WhisperModel, speech: np.ndarray
) -> None:
    """A cancel seen at a sub-step (before a window is encoded) stops there; the cached model
    is left as it was, for the next job."""
    inner = tiny.model
    notes: list[str] = []

    def progress(percent: float, detail: str) -> None:
        if percent < 0:
            notes.append(detail)
            raise Cancelled("transcribing")

    with pytest.raises(Cancelled):
        transcribe(tiny, speech, {}, progress, "tiny.en")
    assert notes == ["Window 1 - 0:00 of 0:22"]
    assert tiny.model is inner


@pytest.mark.slow
def test_english_only_model_refuses_another_language(
    tiny: WhisperModel, speech: np.ndarray
) -> None:
    with pytest.raises(PipelineError) as caught:
        transcribe(tiny, speech[:16000], {"language": "de"}, lambda p, d: None, "tiny.en")
    assert caught.value.code == "BAD_REQUEST"


def test_temperature_starts_whispers_fallback_schedule() -> None:
    assert temperatures(0.0) == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    assert temperatures(0.3) == (0.3, 0.5, 0.7, 0.9)
    assert temperatures(0.9) == (0.9,)
    assert temperatures(1.0) == (1.0,)


@pytest.mark.slow
def test_task_temperature_reaches_faster_whisper(tiny: WhisperModel, speech: np.ndarray) -> None:
    kwargs = _decode_options(tiny, {"language": "en", "temperature": 0.3})
    _, info = tiny.transcribe(speech[: 5 * 16000], **kwargs)
    assert list(info.transcription_options.temperatures) == [0.3, 0.5, 0.7, 0.9]
    # Tasks stored before the option existed decode as they did: faster-whisper's default.
    assert _decode_options(tiny, {"language": "en"})["temperature"] == temperatures(0.0)


@pytest.mark.slow
def test_base_is_joined_offline_and_detects_the_language(models_dir: Path) -> None:
    model = load_model("base", "cpu", models_dir)
    german = load_audio(DATA / "speech_de.wav")
    result = transcribe(model, german, {"language": None}, lambda p, d: None, "base")
    text = " ".join(s.text for s in result.segments)
    print(f"base on German: {result.language}: {text}")
    assert result.language == "de"
    assert "Morgen" in text


def test_base_is_joined_once_and_repaired(tmp_path: Path) -> None:
    folder = Path(resolve_model("base", tmp_path))
    assert folder == tmp_path / "whisper-base"
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json",
        "model.bin",
        "tokenizer.json",
        "vocabulary.txt",
    ]
    size = (folder / "model.bin").stat().st_size
    assert size > 140_000_000
    assert [p.name for p in tmp_path.iterdir()] == ["whisper-base"]  # no temporary left over
    stamp = (folder / "model.bin").stat().st_mtime_ns
    begin = time.monotonic()
    assert resolve_model("base", tmp_path) == str(folder)
    assert time.monotonic() - begin < 0.1
    assert (folder / "model.bin").stat().st_mtime_ns == stamp
    with (folder / "model.bin").open("r+b") as f:
        f.truncate(1000)  # as a crash or a full disk might leave it
    assert resolve_model("base", tmp_path) == str(folder)
    assert (folder / "model.bin").stat().st_size == size
    shutil.rmtree(folder)


def test_tiny_en_and_folders_resolve_to_themselves(tmp_path: Path) -> None:
    tiny = Path(resolve_model("tiny.en", tmp_path))
    assert (tiny / "model.bin").is_file() and tiny.name == "model"
    assert resolve_model(str(tiny), tmp_path) == str(tiny)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", ["no-such-model", "someone/faster-whisper-nothing", "small"])
def test_missing_model_is_unavailable_fast(name: str, tmp_path: Path) -> None:
    begin = time.monotonic()
    with pytest.raises(PipelineError) as caught:
        load_model(name, "cpu", tmp_path)
    assert time.monotonic() - begin < 5
    error = caught.value
    assert error.code == "MODEL_UNAVAILABLE"
    assert name in error.message and "tiny.en" in error.message
    assert error.detail


@pytest.mark.skipif(ctranslate2.get_cuda_device_count() > 0, reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(PipelineError) as caught:
        load_model("tiny.en", "cuda", tmp_path)
    assert caught.value.code == "MODEL_UNAVAILABLE"
    assert "cuda" in caught.value.message


def test_folder_without_a_model_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(PipelineError) as caught:
        resolve_model(str(tmp_path), tmp_path)
    assert caught.value.code == "MODEL_UNAVAILABLE"
    assert "model.bin" in caught.value.message


def test_clock() -> None:
    assert [clock(s) for s in (0, 9.9, 250, 720, 3723)] == [
        "0:00",
        "0:09",
        "4:10",
        "12:00",
        "1:02:03",
    ]


def test_long_audio_is_cut_in_its_quietest_seconds() -> None:
    from transcriber.worker.pipeline.transcribe import pieces

    rate = 16000
    loud = np.random.default_rng(0).normal(0, 0.3, 50 * 60 * rate).astype(np.float32)
    silences = [580, 1190, 1800, 2410]  # seconds: each within a minute of the next 10-min mark
    for quiet in silences:
        loud[quiet * rate : (quiet + 2) * rate] = 0.0
    cuts = pieces(loud, 600.0)
    assert cuts[0][0] == 0 and cuts[-1][1] == len(loud)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(cuts))
    # Each cut lies inside the silence near its mark; the last piece takes the remaining 9:50.
    assert len(cuts) == 5
    for (first, _), quiet in zip(cuts[1:], silences, strict=True):
        assert quiet * rate < first < (quiet + 2) * rate


@pytest.mark.slow
def test_pieces_give_the_same_transcript(
    tiny: WhisperModel, speech: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cut into pieces of about 8 s (as an hour is cut into pieces of 10 minutes): the text,
    the times and the numbering read as one transcript."""
    from transcriber.worker.pipeline import transcribe as module

    monkeypatch.setattr(module, "PIECE_SECONDS", 8.0)
    calls: Calls = []
    result = transcribe(tiny, speech, {"language": None}, lambda p, d: calls.append((p, d)), "t")
    text = " ".join(s.text for s in result.segments)
    assert wer(text, " ".join(w.word for w in truth())) <= 0.3
    assert "lazy dog" in text and "tomorrow morning" in text and "harbor" in text
    assert [s.id for s in result.segments] == list(range(len(result.segments)))
    starts = [s.start for s in result.segments]
    assert starts == sorted(starts) and result.segments[-1].end > 16.0
    assert calls[-1][0] == 100
