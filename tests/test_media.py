"""Bad files get their exact code and lose nothing; valid oddities are accepted and decode.
All against the real server process."""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from faster_whisper import decode_audio

from transcriber.worker.pipeline.audio import SAMPLE_RATE, _Buffer, load_audio, probe
from transcriber.worker.pipeline.types import PipelineError

from .conftest import assert_error, upload, wait_for_stage
from .media import SOURCE, lying_mp3, make_bad, make_valid, wav_header
from .serverproc import ServerProcess, running_plumbing_server

STATUS = {"UNSUPPORTED_MEDIA": 415, "NO_AUDIO_STREAM": 422, "DECODE_FAILED": 422}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The real server process (plumbing pipeline: these tests are about the files)."""
    yield from running_plumbing_server(
        tmp_path_factory.mktemp("media"), "--max-audio-seconds", "600", stage_seconds=0.1
    )


@pytest.fixture
async def client(server: ServerProcess) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=server.url) as session:
        yield session


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_valid(tmp_path_factory.mktemp("valid"))


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    return make_bad(tmp_path_factory.mktemp("bad"))


@pytest.mark.parametrize(
    "name",
    ["empty.wav", "random.bin", "notes.wav", "header_only.wav", "image.png", "silent_video.mp4"],
)
async def test_bad_file_gets_its_code(
    client: Any, server: ServerProcess, bad_files: dict[str, tuple[Path, str]], name: str
) -> None:
    path, code = bad_files[name]
    error = await assert_error(
        await upload(client, path.read_bytes(), filename=name), STATUS[code], code
    )
    snap = await (await client.get(f"/api/tasks/{error['task_id']}")).json()
    assert (snap["stage"], snap["error"]["code"], snap["filename"]) == ("failed", code, name)
    assert snap["error"]["stage"] == "uploading"
    # The server's own paths never reach the client.
    assert "/tasks/" not in snap["error"]["detail"]
    # Nothing lost: the bytes as sent are kept with the failed task until it is deleted.
    stored = server.data_dir / "tasks" / snap["id"]
    assert [p.read_bytes() for p in stored.iterdir()] == [path.read_bytes()]


@pytest.mark.parametrize(
    "name",
    [
        "mulaw_8k.wav",
        "float_48k.wav",
        "six_channels.wav",
        "speech.mp3",
        "speech.opus",
        "speech.m4a",
        "speech.flac",
        "video_with_audio.mp4",
    ],
)
async def test_valid_oddity_is_accepted_and_decodes(
    client: Any, valid_files: dict[str, Path], name: str
) -> None:
    path = valid_files[name]
    assert probe(path) == pytest.approx(4.0, abs=0.1)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) / SAMPLE_RATE == pytest.approx(4.0, abs=0.1)
    assert float(np.abs(audio).max()) > 0.05  # real speech, not silence
    # The same samples as faster-whisper's own decoder, which keeps two copies at its peak.
    assert np.array_equal(audio, decode_audio(str(path)))
    resp = await upload(client, path.read_bytes(), filename=name)
    assert resp.status == 201, await resp.text()
    snap = await resp.json()
    assert snap["duration"] == pytest.approx(4.0, abs=0.1)
    assert (await wait_for_stage(client, snap["id"], {"complete", "failed"}))["stage"] == (
        "complete"
    )


async def test_truncated_wav_keeps_what_arrived(client: Any, tmp_path: Path) -> None:
    data = SOURCE.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) // 2])  # the header still claims the full length
    audio = load_audio(cut)
    assert len(audio) / SAMPLE_RATE == pytest.approx((len(data) // 2 - 44) / 32000, abs=0.05)
    resp = await upload(client, cut.read_bytes(), filename="cut.wav")
    assert resp.status == 201


async def test_header_claiming_4gb_is_read_for_what_it_holds(client: Any) -> None:
    pcm = SOURCE.read_bytes()[44:32044]  # one second
    resp = await upload(client, wav_header(4_000_000_000) + pcm, filename="claims_4gb.wav")
    assert resp.status == 201
    assert (await resp.json())["duration"] == pytest.approx(1.0, abs=0.01)


async def test_audio_too_long_is_refused_from_the_container(client: Any) -> None:
    long = SOURCE.read_bytes()[:44] + bytes(16000 * 2 * 700)  # 700 s of silence, limit 600
    error = await assert_error(
        await upload(client, wav_header(len(long) - 44) + long[44:]), 422, "AUDIO_TOO_LONG"
    )
    assert "the limit is 600 s" in error["detail"]
    snap = await (await client.get(f"/api/tasks/{error['task_id']}")).json()
    assert (snap["stage"], snap["error"]["code"]) == ("failed", "AUDIO_TOO_LONG")


def test_long_audio_reports_while_it_is_read(tmp_path: Path) -> None:
    """Reading reports the seconds read and the container's length, once a minute of audio."""
    speech = SOURCE.read_bytes()[44:]
    pcm = speech * (150 * 32000 // len(speech) + 1)
    path = tmp_path / "long.wav"
    path.write_bytes(wav_header(150 * 32000) + pcm[: 150 * 32000])
    seen: list[tuple[float, float]] = []
    audio = load_audio(path, lambda done, total: seen.append((done, total)))
    assert len(audio) == 150 * SAMPLE_RATE
    assert [round(done) // 60 for done, _ in seen] == [1, 2]
    assert {total for _, total in seen} == {150.0}
    assert np.array_equal(audio[: len(speech) // 2], load_audio(SOURCE)[: len(speech) // 2])


def test_buffer_grows_past_an_understated_length() -> None:
    """A container that claims less than it holds: the array grows and keeps every sample."""
    buffer = _Buffer(10)
    chunks = [np.arange(n, dtype=np.int16) * 7 for n in (9000, 12000, 30000)]
    for chunk in chunks:
        buffer.add(chunk)
    audio = buffer.audio()
    assert audio.dtype == np.float32
    assert np.array_equal(audio, np.concatenate(chunks).astype(np.float32) / 32768.0)


# 16 kHz mono float32: what one second of decoded audio holds.
SECOND_BYTES = SAMPLE_RATE * 4
LIED = "decoding stopped at 31 s, past the limit of 30 s; the container claimed 10 s"


def test_a_lying_header_stops_decoding_at_the_limit(tmp_path: Path) -> None:
    """The container claims 10 s and holds 310: decoding stops a second past the 30 s limit,
    having held no more than that (the memory peak of the whole decode is over ten times it)."""
    path = lying_mp3(tmp_path, claimed=10, real=310)
    assert probe(path) == pytest.approx(10.0, abs=0.2)
    tracemalloc.start()
    try:
        whole = len(load_audio(path))
        whole_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        with pytest.raises(PipelineError) as caught:
            load_audio(path, most_seconds=30)
        limited_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert whole / SAMPLE_RATE == pytest.approx(310, abs=1)
    assert whole_peak > 310 * SECOND_BYTES
    assert (caught.value.code, caught.value.detail) == ("AUDIO_TOO_LONG", LIED)
    # At most two arrays of the limit's size: the one that grew and the one it grew into.
    assert limited_peak < 2 * 31 * SECOND_BYTES


@pytest.mark.slow
async def test_a_lying_header_passes_the_probe_and_fails_in_the_worker(
    make_client: Any, tmp_path: Path
) -> None:
    path = lying_mp3(tmp_path, claimed=10, real=310)
    client = await make_client(pipeline="real", model="tiny.en", device="cpu", max_audio_seconds=30)
    resp = await upload(client, path.read_bytes(), filename="lying.mp3", diarize="false")
    assert resp.status == 201, await resp.text()
    snap = await resp.json()
    assert snap["duration"] == pytest.approx(10.0, abs=0.2)
    final = await wait_for_stage(client, snap["id"], {"complete", "failed"}, timeout=300)
    assert final["stage"] == "failed"
    error = final["error"]
    assert (error["code"], error["stage"], error["detail"]) == (
        "AUDIO_TOO_LONG",
        "transcribing",
        LIED,
    )
