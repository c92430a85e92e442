"""Known voices on real speech: enrol a person from one AMI excerpt, recognise them in another.

The AMI excerpts of pyannote.audio's sdist keep their speaker ids across files: dev00/dev01
are the same two people, tst00/tst01 the same four, and among the train files trn00, trn01 and
trn03 share three people, trn07 and trn08 four, trn06 and trn09 one. Each file is diarized
once by the real pipeline ("bundled": its speakers and their centroids, as a task keeps
them) and cached, so reruns only match.

For a pair (A, B) of files sharing people: every person of A whose speech the pipeline gave a
speaker of its own (the speaker holding most of that person's speech) is enrolled from that
speaker's voice, named after the person. Then B and every file that shares nobody with A are
matched against those profiles, one file at a time, as the server matches a task. A speaker
is "really" the person who holds most of its speech. Counted:
- correct: an enrolled person speaking at least 5 s in B whose speaker gets their profile;
- wrong: such a person whose speaker gets another profile;
- false accept: a speaker of a person never enrolled (in B or any other file) given a profile.
The threshold and the mean-or-best rule are chosen on the train pairs only; dev and test are
reported with that choice. Samples for "best" vs "mean": trn00/trn01/trn03 also enrol from
two files and identify in the third.

    .venv/bin/python bench/bench_profiles.py [--cache DIR] [--speed | --durations | --reference]

--reference takes each person's voice from the reference turns (the speech where only they
talk) instead of the pipeline's speakers: what matching does when diarization is right.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from transcriber.config import Config  # noqa: E402
from transcriber.jobs.profiles import matching  # noqa: E402
from transcriber.jobs.profiles.matching import Gallery, Rule  # noqa: E402
from transcriber.worker import assets  # noqa: E402

TRAIN = [f"trn{i:02d}" for i in range(10)]
DEV, TEST = ["dev00", "dev01"], ["tst00", "tst01"]
FILES = DEV + TEST + TRAIN
# Seconds a person speaks in the second file to count as "should be recognised".
SPEAKS = 5.0
CACHE_VERSION = 1


def load_rttm(path: Path) -> dict[str, list[tuple[float, float, str]]]:
    out: dict[str, list[tuple[float, float, str]]] = {}
    for row in (line.split() for line in path.read_text().splitlines() if line.strip()):
        start, length = float(row[3]), float(row[4])
        out.setdefault(row[1], []).append((start, start + length, row[7]))
    return out


def diarized(ami: Path, cache: Path) -> dict[str, dict[str, Any]]:
    """uri -> {"turns": [...], "voices": {label: {"embedding", "seconds"}}}, from the cache
    or the real pipeline (a few minutes on a CPU for the 14 files)."""
    path = cache / f"ami-voices-v{CACHE_VERSION}.json"
    if path.is_file():
        found: dict[str, dict[str, Any]] = json.loads(path.read_text())
        return found
    import torch

    from transcriber.worker.pipeline.audio import load_audio
    from transcriber.worker.pipeline.diarize import BUNDLED, diarize_voices, load_diarizer

    torch.set_num_threads(os.cpu_count() or 1)
    models = Config.from_env().models_dir
    pipeline = load_diarizer(BUNDLED, models, "cpu")
    out = {}
    for uri in FILES:
        start = time.perf_counter()
        turns, voices = diarize_voices(
            pipeline, load_audio(ami / f"{uri}.wav"), {}, lambda p, d: None
        )
        out[uri] = {
            "turns": [[t.start, t.end, t.speaker] for t in turns],
            "voices": {
                k: {"embedding": v.embedding, "seconds": v.seconds} for k, v in voices.items()
            },
        }
        print(f"{uri}: {len(voices)} speakers, {time.perf_counter() - start:.1f} s", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out))
    return out


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


@dataclass
class File:
    uri: str
    voices: dict[str, tuple[np.ndarray, float]]  # label -> (embedding, seconds)
    owner: dict[str, str]  # label -> the person holding most of its speech
    speech: dict[str, float]  # person -> seconds in the reference
    speaker_of: dict[str, str]  # person -> the label holding most of their speech


def file_of(uri: str, out: dict[str, Any], ref: list[tuple[float, float, str]]) -> File:
    shared: dict[tuple[str, str], float] = {}
    for start, end, label in out["turns"]:
        for rs, re_, person in ref:
            shared[(label, person)] = shared.get((label, person), 0.0) + _overlap(
                (start, end), (rs, re_)
            )
    labels = {k for k, _ in shared} | set(out["voices"])
    people = {p for _, _, p in ref}
    owner = {}
    for label in labels:
        best = max(people, key=lambda p: shared.get((label, p), 0.0))
        if shared.get((label, best), 0.0) > 0:
            owner[label] = best
    speaker_of = {}
    for person in people:
        best = max(labels, key=lambda lab: shared.get((lab, person), 0.0), default=None)
        if best is not None and shared.get((best, person), 0.0) > 0 and best in out["voices"]:
            speaker_of[person] = best
    speech: dict[str, float] = {}
    for start, end, person in ref:
        speech[person] = speech.get(person, 0.0) + end - start
    voices = {
        k: (np.array(v["embedding"], dtype=np.float32), float(v["seconds"]))
        for k, v in out["voices"].items()
    }
    return File(uri, voices, owner, speech, speaker_of)


@dataclass
class Tally:
    should: int = 0
    correct: int = 0
    wrong: int = 0
    impostors: int = 0
    false_accepts: int = 0

    def add(self, other: Tally) -> None:
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def row(self) -> str:
        share = (
            (lambda n: f"{n}/{self.should} ({100 * n / self.should:.0f}%)") if self.should else str
        )
        return (
            f"{share(self.correct)} | {share(self.wrong)} | {self.false_accepts}/{self.impostors}"
        )


def trial(
    enrol: list[File],
    target: File,
    others: list[File],
    rule: Rule,
    threshold: float,
    least: float,
    verbose: bool = False,
) -> Tally:
    """Enrol every person of the `enrol` files from their speaker; match target and others."""
    samples: dict[str, list[tuple[np.ndarray, float]]] = {}
    for f in enrol:
        for person, label in f.speaker_of.items():
            if f.owner.get(label) == person and f.voices[label][1] >= least:
                samples.setdefault(person, []).append(f.voices[label])
    gallery = Gallery.build(sorted(samples.items()))
    tally = Tally()
    for f in [target, *others]:
        found = matching.match(gallery, f.voices, rule=rule, threshold=threshold, min_seconds=least)
        for label in found:
            if f.owner.get(label) not in samples:
                tally.false_accepts += 1
        tally.impostors += sum(1 for label in f.voices if f.owner.get(label) not in samples)
        if f is not target:
            continue
        for person, label in f.speaker_of.items():
            if person not in samples or f.speech[person] < SPEAKS:
                continue
            tally.should += 1
            given = found.get(label)
            if given is not None and given.profile_id == person:
                tally.correct += 1
            elif given is not None:
                tally.wrong += 1
            if verbose and (given is None or given.profile_id != person):
                enrolled = samples[person][0][0]
                print(
                    f"  missed {person} in {target.uri} (enrolled from"
                    f" {'+'.join(e.uri for e in enrol)}): {f.voices[label][1]:.1f} s, cosine"
                    f" {float(enrolled @ f.voices[label][0]):.2f}, its speaker holds"
                    f" {', '.join(p for p, lab in f.speaker_of.items() if lab == label)}"
                )
    return tally


def pairs(files: dict[str, File], uris: list[str], multi: bool) -> list[tuple[list[str], str]]:
    """(enrol files, target) for every ordered pair (or pair of files + third) sharing people."""
    out = []
    for a, b in itertools.permutations(uris, 2):
        if set(files[a].speech) & set(files[b].speech):
            out.append(([a], b))
    if multi:
        for target in uris:
            sharing = [
                u for u in uris if u != target and set(files[u].speech) & set(files[target].speech)
            ]
            if len(sharing) >= 2:
                out.append((sharing, target))
    return out


def evaluate(
    files: dict[str, File],
    uris: list[str],
    rule: Rule,
    threshold: float,
    least: float,
    multi: bool,
    verbose: bool = False,
) -> Tally:
    total = Tally()
    for enrol, target in pairs(files, uris, multi):
        people = set().union(*(files[u].speech for u in enrol))
        others = [
            f
            for u, f in files.items()
            if u not in enrol and u != target and not people & set(f.speech)
        ]
        enrolled = [files[u] for u in enrol]
        total.add(trial(enrolled, files[target], others, rule, threshold, least, verbose))
    return total


def choose(files: dict[str, File]) -> tuple[Rule, float, float]:
    """On the train files: the rule and threshold with no false accept and the most correct
    (ties: the higher threshold, safer), and the least speech."""
    best: tuple[tuple[int, int, float], Rule, float, float] | None = None
    print("| rule | least s | threshold | train correct | wrong | false accepts |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for rule in ("mean", "best"):
        for least in (1.0, 2.0, 3.0, 5.0):
            for threshold in np.arange(0.3, 0.91, 0.05):
                t = evaluate(files, TRAIN, rule, float(threshold), least, multi=True)
                key = (-t.false_accepts, t.correct - t.wrong, float(threshold))
                if t.false_accepts == 0 or threshold in (0.5, 0.6, 0.7):
                    print(f"| {rule} | {least:g} | {threshold:.2f} | {t.row()} |")
                if best is None or key > best[0]:
                    best = (key, rule, float(threshold), least)
    assert best is not None
    return best[1], best[2], best[3]


def similarity_table(files: dict[str, File]) -> None:
    """Cosine of same-person and different-person speakers across files, all splits."""
    same, different = [], []
    for a, b in itertools.combinations(files.values(), 2):
        for la, (va, sa) in a.voices.items():
            for lb, (vb, sb) in b.voices.items():
                pa, pb = a.owner.get(la), b.owner.get(lb)
                if pa is None or pb is None or min(sa, sb) < 3.0:
                    continue
                (same if pa == pb else different).append(float(va @ vb))
    for name, values in (("same person", same), ("different people", different)):
        if values:
            q = np.percentile(values, [0, 5, 50, 95, 100])
            print(
                f"{name}: {len(values)} pairs, min {q[0]:.2f} p5 {q[1]:.2f} "
                f"median {q[2]:.2f} p95 {q[3]:.2f} max {q[4]:.2f}"
            )


def alone(ref: list[tuple[float, float, str]], person: str) -> list[tuple[float, float]]:
    """The person's reference speech where nobody else speaks, in time order."""
    spans = []
    for start, end, who in sorted(ref):
        if who != person:
            continue
        cuts = [(s, e) for s, e, w in ref if w != person and e > start and s < end]
        pieces = [(start, end)]
        for cs, ce in cuts:
            pieces = [
                p for a, b in pieces for p in ((a, min(b, cs)), (max(a, ce), b)) if p[1] > p[0]
            ]
        spans += pieces
    return [(a, b) for a, b in spans if b - a >= 0.2]


def first_seconds(spans: list[tuple[float, float]], seconds: float) -> list[tuple[float, float]]:
    out, left = [], seconds
    for a, b in spans:
        if left <= 0:
            break
        out.append((a, min(b, a + left)))
        left -= out[-1][1] - a
    return out


def reference_files(ami: Path, refs: dict[str, list], cache: Path) -> dict[str, File]:
    """Each person's voice from the reference turns instead of the pipeline's speakers: the
    unit mean of CAM++ windows over the speech where only they talk (as if diarization were
    perfect), with those seconds. Cached like the pipeline's."""
    path = cache / f"ami-reference-voices-v{CACHE_VERSION}.json"
    if not path.is_file():
        import torch

        from transcriber.worker.pipeline.audio import load_audio
        from transcriber.worker.pipeline.diarize import BUNDLED, load_diarizer
        from transcriber.worker.pipeline.windows import embed_windows, windows

        model = load_diarizer(BUNDLED, Config.from_env().models_dir, "cpu").embedding
        found: dict[str, dict[str, Any]] = {}
        for uri in FILES:
            audio = torch.from_numpy(load_audio(ami / f"{uri}.wav"))
            found[uri] = {}
            for person in sorted({w for _, _, w in refs[uri]}):
                spans = alone(refs[uri], person)
                if not spans:
                    continue
                with torch.inference_mode():
                    vectors = embed_windows(model, audio, windows(spans), lambda *a, **k: None)
                unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
                voice = unit.mean(axis=0)
                found[uri][person] = {
                    "embedding": (voice / np.linalg.norm(voice)).tolist(),
                    "seconds": sum(b - a for a, b in spans),
                }
        cache.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(found))
    stored = json.loads(path.read_text())
    out = {}
    for uri in FILES:
        speech: dict[str, float] = {}
        for start, end, person in refs[uri]:
            speech[person] = speech.get(person, 0.0) + end - start
        voices = {
            k: (np.array(v["embedding"], dtype=np.float32), float(v["seconds"]))
            for k, v in stored[uri].items()
        }
        out[uri] = File(uri, voices, {k: k for k in voices}, speech, {k: k for k in voices})
    return out


def durations(ami: Path, files: dict[str, File], refs: dict[str, list]) -> None:
    """How much speech a voice needs: embed only the first N seconds of a person's speech
    (where nobody else talks, from the reference turns) and compare with the same person's
    voice from another file, and with every other person's, as the pipeline kept them."""
    import torch

    from transcriber.worker.pipeline.audio import load_audio
    from transcriber.worker.pipeline.diarize import BUNDLED, load_diarizer
    from transcriber.worker.pipeline.windows import embed_windows, windows

    model = load_diarizer(BUNDLED, Config.from_env().models_dir, "cpu").embedding
    lengths = (1.0, 2.0, 3.0, 5.0, 8.0, 12.0)
    same: dict[float, list[float]] = {n: [] for n in lengths}
    other: dict[float, list[float]] = {n: [] for n in lengths}
    for uri, f in files.items():
        audio = torch.from_numpy(load_audio(ami / f"{uri}.wav"))
        for person in f.speech:
            spans = alone(refs[uri], person)
            if sum(b - a for a, b in spans) < max(lengths):
                continue
            mine = [
                g.voices[lab][0]
                for g in files.values()
                if g.uri != uri
                for lab, who in g.owner.items()
                if who == person and g.voices[lab][1] >= 3
            ]
            theirs = [
                g.voices[lab][0]
                for g in files.values()
                for lab, who in g.owner.items()
                if who != person and g.voices[lab][1] >= 3
            ]
            for n in lengths:
                cut = np.array(windows(first_seconds(spans, n)))
                with torch.inference_mode():
                    vectors = embed_windows(model, audio, cut, lambda *a, **k: None)
                unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
                voice = unit.mean(axis=0)
                voice /= np.linalg.norm(voice)
                same[n] += [float(voice @ v) for v in mine]
                other[n] += [float(voice @ v) for v in theirs]
    print("\n| speech s | same person: pairs, min, median | others: pairs, max, share >= 0.60 |")
    print("| ---: | ---: | ---: |")
    for n in lengths:
        a, b = np.array(same[n]), np.array(other[n])
        print(
            f"| {n:g} | {len(a)}, {a.min():.2f}, {np.median(a):.2f} |"
            f" {len(b)}, {b.max():.2f}, {np.mean(b >= 0.6):.1%} |"
        )


def speed(profiles: int = 1000, samples: int = 3, speakers: int = 6, rounds: int = 50) -> None:
    rng = np.random.default_rng(0)
    gallery = Gallery.build(
        [
            (f"p{i}", [(rng.standard_normal(192), 10.0) for _ in range(samples)])
            for i in range(profiles)
        ]
    )
    voices = {f"SPEAKER_{k:02d}": (rng.standard_normal(192), 20.0) for k in range(speakers)}
    for rule in ("mean", "best"):
        start = time.perf_counter()
        for _ in range(rounds):
            matching.match(gallery, voices, rule=rule)
        ms = (time.perf_counter() - start) / rounds * 1000
        print(
            f"matching {speakers} speakers with {profiles} profiles x {samples} samples,"
            f" {rule}: {ms:.2f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    models = Config.from_env().models_dir
    parser.add_argument("--cache", type=Path, default=models / "bench-cache")
    parser.add_argument("--speed", action="store_true", help="only time the matching")
    parser.add_argument("--durations", action="store_true", help="speech a voice needs")
    parser.add_argument(
        "--reference", action="store_true", help="voices from the reference turns instead"
    )
    args = parser.parse_args()
    if args.speed:
        speed()
        return
    ami = assets.fetch_ami_excerpts(models)
    refs: dict[str, list[tuple[float, float, str]]] = {}
    for part in ("train", "development", "test"):
        refs.update(load_rttm(ami / f"debug.{part}.rttm"))
    if args.reference:
        files = reference_files(ami, refs, args.cache)
    else:
        outputs = diarized(ami, args.cache)
        files = {uri: file_of(uri, outputs[uri], refs[uri]) for uri in FILES}
    if args.durations:
        durations(ami, files, refs)
        return
    similarity_table(files)
    rule, threshold, least = choose(files)
    print(f"\nchosen on train: rule {rule}, threshold {threshold:.2f}, least speech {least:g} s\n")
    print("| split | correct | named wrongly | false accepts / impostor speakers |")
    print("| --- | ---: | ---: | ---: |")
    for name, uris in (("train", TRAIN), ("dev", DEV), ("test", TEST), ("dev+test", DEV + TEST)):
        t = evaluate(files, uris, rule, threshold, least, multi=name == "train")
        print(f"| {name} | {t.row()} |")
    print(
        f"\nthe server's constants: rule {matching.RULE}, threshold {matching.THRESHOLD}, "
        f"least {matching.MIN_SECONDS} s"
    )
    for name, uris in (("train", TRAIN), ("dev", DEV), ("test", TEST)):
        t = evaluate(
            files,
            uris,
            matching.RULE,
            matching.THRESHOLD,
            matching.MIN_SECONDS,
            name == "train",
            verbose=True,
        )
        print(f"| {name} | {t.row()} |")
    speed()


if __name__ == "__main__":
    main()
