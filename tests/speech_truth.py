"""Ground truth of tests/data/speech_en.wav (made by scripts/make_speech.sh) and the measures
that compare a transcript with it: word error rate and word start-time error."""

from __future__ import annotations

import csv
import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from transcriber.worker.pipeline.types import Transcript

DATA = Path(__file__).parent / "data"
SPEECH = DATA / "speech_en.wav"


@dataclass(frozen=True)
class TrueWord:
    word: str
    start: float
    end: float


def truth(path: Path = SPEECH) -> list[TrueWord]:
    with path.with_suffix(".words.tsv").open(newline="") as f:
        return [
            TrueWord(row["word"], float(row["start"]), float(row["end"]))
            for row in csv.DictReader(f, delimiter="\t")
        ]


def normalize(text: str) -> list[str]:
    """Lower case words without punctuation, as WER is usually counted."""
    return re.sub(r"[^\w\s']", " ", text.lower()).split()


def wer(hypothesis: str, reference: str) -> float:
    """Word error rate: word-level edit distance over the reference's length."""
    hyp, ref = normalize(hypothesis), normalize(reference)
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        current = [i]
        for j, h in enumerate(hyp, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1] / max(len(ref), 1)


def start_errors(transcript: Transcript, reference: list[TrueWord]) -> list[float]:
    """|aligned start - true start| in seconds, for each word the transcript got right."""
    aligned = [(w.word, w.start) for s in transcript.segments for w in s.words]
    hyp = [" ".join(normalize(word)) for word, _ in aligned]
    ref = [" ".join(normalize(w.word)) for w in reference]
    matcher = difflib.SequenceMatcher(None, hyp, ref, autojunk=False)
    return [
        abs(aligned[block.a + k][1] - reference[block.b + k].start)
        for block in matcher.get_matching_blocks()
        for k in range(block.size)
    ]
