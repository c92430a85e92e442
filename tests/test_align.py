"""Aligning stage: Whisper cross-attention word timings against the known word times of
tests/data/speech_en.wav, and the CTC aligner's logic on real forced_align calls."""

from __future__ import annotations

import itertools
import json
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from faster_whisper import WhisperModel

from tests.speech_truth import SPEECH, TrueWord, start_errors, truth
from transcriber.worker.pipeline.align import CtcAligner, _refine, align
from transcriber.worker.pipeline.audio import load_audio
from transcriber.worker.pipeline.ctc import Span, Vocabulary, to_words, word_spans
from transcriber.worker.pipeline.ctc_models import load_ctc_model
from transcriber.worker.pipeline.models import load_model
from transcriber.worker.pipeline.transcribe import transcribe
from transcriber.worker.pipeline.types import Cancelled, PipelineError, Segment, Transcript, Word

os.environ["HF_HUB_OFFLINE"] = "1"


def quiet(_percent: float, _detail: str) -> None:
    pass


def sentences(words: list[TrueWord], shift: float = 0.0) -> list[Segment]:
    """The true text as segments, one per sentence, with rough (whole second) bounds."""
    segments: list[Segment] = []
    current: list[TrueWord] = []
    for word in words:
        current.append(word)
        if word.word.endswith("."):
            start, end = int(current[0].start), int(current[-1].end) + 1
            text = " ".join(w.word for w in current)
            segments.append(Segment(len(segments), start + shift, end + shift, text))
            current = []
    return segments


def mean_error_ms(transcript: Transcript, reference: list[TrueWord]) -> float:
    errors = start_errors(transcript, reference)
    assert len(errors) >= 0.75 * len(reference)
    return 1000 * statistics.mean(errors)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> WhisperModel:
    return load_model("tiny.en", "cpu", tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return load_audio(SPEECH)


@pytest.fixture(scope="module")
def known_text() -> Transcript:
    return Transcript("en", 22.77, "truth", sentences(truth()))


@pytest.mark.slow
def test_true_text_aligns_within_bounds(
    tiny: WhisperModel, speech: np.ndarray, known_text: Transcript
) -> None:
    calls: list[tuple[float, str]] = []
    result = align(tiny, speech, known_text, lambda p, d: calls.append((p, d)))
    error = mean_error_ms(result, truth())
    raw = mean_error_ms(align(tiny, speech, known_text, quiet, refine=False), truth())
    print(f"tiny.en word start error: {error:.0f} ms mean ({raw:.0f} ms without pause refinement)")
    assert error < 200
    for before, after in zip(known_text.segments, result.segments, strict=True):
        assert [w.word for w in after.words] == before.text.split()
        assert (after.start, after.end) == (after.words[0].start, after.words[-1].end)
        assert all(0 <= w.probability <= 1 for w in after.words)
    times = [(w.start, w.end) for s in result.segments for w in s.words]
    assert all(a <= b for a, b in times)
    assert all(end <= start for (_, end), (start, _) in itertools.pairwise(times))
    # All four sentences fit one 30 s window: one encoder pass.
    assert calls == [(0, "Aligning segment 1/4"), (100, "Aligned 4 segments")]
    assert known_text.segments[0].words == []  # the input is left as it was


@pytest.mark.slow
def test_transcript_from_tiny_aligns(tiny: WhisperModel, speech: np.ndarray) -> None:
    transcript = transcribe(tiny, speech, {}, quiet, "tiny.en")
    begin = time.perf_counter()
    result = align(tiny, speech, transcript, quiet)
    seconds = time.perf_counter() - begin
    error = mean_error_ms(result, truth())
    print(f"tiny.en transcript: start error {error:.0f} ms mean, align RTF {seconds / 22.77:.3f}")
    assert error < 200
    assert all(s.words for s in result.segments)


@pytest.mark.slow
def test_windows_beyond_30_seconds(tiny: WhisperModel, speech: np.ndarray) -> None:
    """Two copies of the speech: more than one encoder window, each word still in place."""
    double = np.concatenate([speech, speech])
    shift = len(speech) / 16000
    reference = truth() + [TrueWord(w.word, w.start + shift, w.end + shift) for w in truth()]
    segments = sentences(truth()) + sentences(truth(), shift)
    segments = [replace(s, id=i) for i, s in enumerate(segments)]
    result = align(tiny, double, Transcript("en", 2 * shift, "truth", segments), quiet)
    first, second = result.segments[:4], result.segments[4:]
    error_first = mean_error_ms(replace(result, segments=first), reference[:43])
    error_second = mean_error_ms(replace(result, segments=second), reference[43:])
    print(f"two windows: {error_first:.0f} ms and {error_second:.0f} ms")
    assert error_first < 200 and error_second < 200


@pytest.mark.slow
def test_empty_segments_and_cancel(
    tiny: WhisperModel, speech: np.ndarray, known_text: Transcript
) -> None:
    segments = [*known_text.segments, Segment(4, 22.0, 22.7, "  ")]
    result = align(tiny, speech, replace(known_text, segments=segments), quiet)
    assert result.segments[4] == segments[4]
    assert align(tiny, speech, replace(known_text, segments=[]), quiet).segments == []

    def cancel(_percent: float, _detail: str) -> None:
        raise Cancelled("aligning")

    with pytest.raises(Cancelled):
        align(tiny, speech, known_text, cancel)


def test_refine_moves_boundaries_into_pauses() -> None:
    # Speech 0.0-1.0 and 1.2-2.0 s (a 200 ms pause), aligned with the boundary at 1.3 s.
    rate = 16000
    chunk = np.zeros(2 * rate, dtype=np.float32)
    chunk[:rate] = 0.5 * np.sin(np.arange(rate) / 5)
    chunk[int(1.2 * rate) :] = 0.5 * np.sin(np.arange(int(0.8 * rate)) / 5)
    words = [Word("one", 0.0, 1.3), Word("two", 1.3, 2.0)]
    from transcriber.worker.pipeline.align import _loud_frames

    _refine(words, _loud_frames(chunk), 0.0)
    assert [(w.start, w.end) for w in words] == [(0.0, 1.0), (1.2, 2.0)]
    # Steady noise has no pauses: nothing moves.
    noise = np.random.default_rng(0).normal(0, 0.1, 2 * rate).astype(np.float32)
    words = [Word("one", 0.0, 1.3), Word("two", 1.3, 2.0)]
    _refine(words, _loud_frames(noise), 0.0)
    assert [(w.start, w.end) for w in words] == [(0.0, 1.3), (1.3, 2.0)]


# CTC: real torchaudio forced_align calls on emissions made up frame by frame.

LABELS = ("-", "|", "E", "T", "A", "O", "H", "I", "N", "S", "L", "Y", "U", "'")


def emission(plan: str, labels: tuple[str, ...] = LABELS) -> torch.Tensor:
    """Log-probabilities where frame i is confidently plan[i] ('-' is the blank)."""
    frames = torch.full((len(plan), len(labels)), -8.0)
    for i, label in enumerate(plan):
        frames[i, labels.index(label)] = -0.01
    return torch.log_softmax(frames, dim=-1)


def test_vocabulary_follows_the_labels() -> None:
    vocabulary = Vocabulary.from_labels(LABELS)
    assert "|" not in vocabulary.ids and "-" not in vocabulary.ids
    assert vocabulary.tokens("Hi!") == [LABELS.index("H"), LABELS.index("I")]
    assert vocabulary.tokens("tôt") == [LABELS.index(c) for c in "TOT"]
    assert vocabulary.tokens("42") == []
    lower = Vocabulary.from_labels(("-", "a", "l", "'"))
    assert lower.tokens("ALL'") == [1, 2, 2, 3]


def test_word_spans_from_forced_align() -> None:
    vocabulary = Vocabulary.from_labels(LABELS)
    plan = "-----HHHII-------YYOUUU------ALL-L---"
    words = ["hi", "you", "all"]
    spans = word_spans(emission(plan), [vocabulary.tokens(w) for w in words], 0)
    assert spans[0] is not None and (spans[0].start, spans[0].end) == (5, 10)
    assert spans[1] is not None and (spans[1].start, spans[1].end) == (17, 23)
    assert spans[2] is not None and (spans[2].start, spans[2].end) == (29, 34)
    assert all(s is not None and s.score > 0.9 for s in spans)
    result = to_words(words, spans, 0.02, 10.0, (10.0, 10.8))
    assert [(w.word, w.start, w.end) for w in result] == [
        ("hi", 10.1, 10.2),
        ("you", 10.34, 10.46),
        ("all", 10.58, 10.68),
    ]


def test_words_without_letters_and_too_short_audio() -> None:
    vocabulary = Vocabulary.from_labels(LABELS)
    words = ["hi", "42", "you"]
    tokens = [vocabulary.tokens(w) for w in words]
    spans = word_spans(emission("--HI---YOU--"), tokens, 0)
    assert spans[1] is None
    result = to_words(words, spans, 0.02, 0.0, (0.0, 0.24))
    assert (result[1].start, result[1].end) == (result[0].end, result[0].end)
    # Fewer frames than letters: no alignment, the words share the segment evenly.
    short = word_spans(emission("HIY"), tokens, 0)
    assert short == [None, None, None]
    even = to_words(words, short, 0.02, 0.0, (1.0, 1.6))
    assert [(w.start, w.end, w.probability) for w in even] == [
        (1.0, 1.2, 0.0),
        (1.2, 1.4, 0.0),
        (1.4, 1.6, 0.0),
    ]
    leading = to_words(["42", "hi"], [None, Span(5, 7, 1.0)], 0.1, 0.0, (0.0, 1.0))
    assert (leading[0].start, leading[0].end) == (0.5, 0.5)


TINY_WAV2VEC2 = {
    "feat_extract_norm": "group",
    "conv_dim": [8] * 7,
    "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
    "conv_stride": [5, 2, 2, 2, 2, 2, 2],
    "conv_bias": False,
    "hidden_size": 16,
    "num_conv_pos_embeddings": 8,
    "num_conv_pos_embedding_groups": 2,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "do_stable_layer_norm": False,
    "pad_token_id": 0,
}


def hugging_face_folder(folder: Path) -> Path:
    """A tiny, randomly initialized Wav2Vec2ForCTC checkpoint in Hugging Face's layout."""
    from safetensors.torch import save_file
    from torchaudio.models import wav2vec2_model

    from transcriber.worker.pipeline.ctc_models import torchaudio_params

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4}
    vocab.update({c: 5 + i for i, c in enumerate("ETAOHINSRDLUYWMCGFPBK'")})
    config = TINY_WAV2VEC2 | {"vocab_size": len(vocab)}
    torch.manual_seed(0)
    model = wav2vec2_model(**torchaudio_params(config), aux_num_out=len(vocab))
    renames = (
        ("feature_extractor.", "wav2vec2.feature_extractor."),
        ("encoder.feature_projection.", "wav2vec2.feature_projection."),
        ("encoder.transformer.", "wav2vec2.encoder."),
        ("aux.", "lm_head."),
    )
    state = {}
    for key, value in model.state_dict().items():
        old, new = next((o, n) for o, n in renames if key.startswith(o))
        key = new + key[len(old) :]
        key = key.replace("parametrizations.weight.original0", "weight_g")
        state[key.replace("parametrizations.weight.original1", "weight_v")] = value.contiguous()
    state["wav2vec2.masked_spec_embed"] = torch.zeros(16)  # pre-training only: dropped
    save_file(state, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    return folder


def test_ctc_aligner_loads_a_hugging_face_folder(tmp_path: Path) -> None:
    aligner = CtcAligner(str(hugging_face_folder(tmp_path)), tmp_path)
    assert aligner.vocabulary.blank == 0 and "E" in aligner.vocabulary.ids
    audio = np.random.default_rng(1).normal(0, 0.1, 3 * 16000).astype(np.float32)
    transcript = Transcript(
        "en", 3.0, "x", [Segment(0, 0.5, 2.5, "hello there"), Segment(1, 2.5, 3.0, "")]
    )
    calls: list[tuple[float, str]] = []
    result = aligner.align(audio, transcript, lambda p, d: calls.append((p, d)))
    words = result.segments[0].words
    assert [w.word for w in words] == ["hello", "there"]
    assert 0.2 <= words[0].start <= words[0].end <= words[1].start <= words[1].end <= 2.8
    assert result.segments[1].words == []
    assert calls[-1] == (100, "Aligned 2 segments")


def test_ctc_models_unavailable(tmp_path: Path) -> None:
    for name in ("NO_SUCH_BUNDLE", "WAV2VEC2_BASE", "WAV2VEC2_ASR_BASE_960H", "MMS_FA"):
        begin = time.monotonic()
        with pytest.raises(PipelineError) as caught:
            load_ctc_model(name, tmp_path)
        assert time.monotonic() - begin < 2
        assert caught.value.code == "MODEL_UNAVAILABLE", name
        assert name in caught.value.message
    (tmp_path / "broken").mkdir()
    with pytest.raises(PipelineError) as caught:
        load_ctc_model(str(tmp_path / "broken"), tmp_path)
    assert caught.value.code == "MODEL_UNAVAILABLE"
    assert "FileNotFoundError" in caught.value.detail


def test_aligner_ctc_setting_runs_the_ctc_model_in_the_worker(tmp_path: Path) -> None:
    """`--aligner ctc --align-model DIR` reaches the worker's Aligning stage: real forced_align."""
    from transcriber.config import Config
    from transcriber.worker import process
    from transcriber.worker.job import Job

    (tmp_path / "ctc").mkdir()
    folder = hugging_face_folder(tmp_path / "ctc")
    config = Config(aligner="ctc", align_model=str(folder))
    work = tmp_path / "work"
    work.mkdir()
    transcript = Transcript(
        "en", 4.0, "x", [Segment(0, 0.2, 1.8, "hello there"), Segment(1, 2.0, 3.8, "general")]
    )
    (work / "transcribing.json").write_text(json.dumps(transcript.to_dict()))
    job = Job(
        task_id="t",
        attempt=1,
        audio_path=SPEECH,
        work_dir=work,
        stages=("transcribing", "aligning"),
        options={"diarize": False},
        model="tiny.en",
        device="cpu",
        models_dir=tmp_path,
        aligner=config.aligner,
        align_model=config.align_model,
    )
    result = process.run_job(job)
    assert result.done_stages == ["transcribing", "aligning"]
    aligned = json.loads((work / "aligning.json").read_text())
    words = [[w["word"] for w in seg["words"]] for seg in aligned["segments"]]
    assert words == [["hello", "there"], ["general"]]
    first = aligned["segments"][0]["words"]
    assert 0.0 <= first[0]["start"] <= first[0]["end"] <= first[1]["start"] <= 2.1
    with pytest.raises(ValueError, match="aligner ctc needs align_model"):
        Config(aligner="ctc")
