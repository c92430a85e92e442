"""The edges, tried as a stranger would, against the real server process (docs/security.md)."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import FormData

from transcriber import __version__

from .conftest import assert_error, tone_wav, upload, wait_for_stage
from .serverproc import ServerProcess, running_plumbing_server

HTML = b"<!doctype html><html><body><script>document.title='pwned'</script></body></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from running_plumbing_server(
        tmp_path_factory.mktemp("open"), "--allowed-hosts", "lab.example", stage_seconds=0.1
    )


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from running_plumbing_server(
        tmp_path_factory.mktemp("locked"), "--token", "s3cret-token", stage_seconds=0.1
    )


@pytest.fixture
async def client(server: ServerProcess) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=server.url) as session:
        yield session


async def _failed_upload(client: Any, data: bytes, name: str) -> str:
    """The task of an upload the probe refused (its bytes are kept, by design)."""
    resp = await upload(client, data, filename=name)
    codes = {415: "UNSUPPORTED_MEDIA", 422: "NO_AUDIO_STREAM"}  # SVG reads as a picture
    error = await assert_error(resp, resp.status, codes.get(resp.status, "?"))
    return str(error["task_id"])


@pytest.mark.parametrize(("data", "name"), [(HTML, "x.html"), (SVG, "x.svg")])
async def test_a_stored_file_is_never_served_as_a_page(
    client: Any, server: ServerProcess, data: bytes, name: str
) -> None:
    task_id = await _failed_upload(client, data, name)
    resp = await client.get(f"/api/tasks/{task_id}/audio")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/octet-stream"
    assert resp.headers["Content-Disposition"].startswith("attachment;")
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert await resp.read() == data
    stored = [p.name for p in (server.data_dir / "tasks" / task_id).iterdir()]
    assert stored == ["source"]  # no .html/.svg suffix on disk


async def test_audio_is_served_as_what_the_probe_found(client: Any) -> None:
    snap = await (await upload(client, tone_wav(1.0), filename="talk.html")).json()
    resp = await client.get(f"/api/tasks/{snap['id']}/audio", headers={"Range": "bytes=0-3"})
    assert resp.status == 206 and await resp.read() == b"RIFF"
    assert resp.headers["Content-Type"] == "audio/wav"
    assert resp.headers["Content-Disposition"].startswith("inline;")
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


async def test_security_headers_on_page_and_api(client: Any) -> None:
    page = ("script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'")
    api = ("default-src 'none'", "frame-ancestors 'none'")
    for path in ("/", "/static/app.js", "/api/health", "/api/tasks", "/api/nothing"):
        resp = await client.get(path)
        csp = resp.headers["Content-Security-Policy"]
        for part in api if path.startswith("/api/") else page:
            assert part in csp, (path, csp)
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Referrer-Policy"] == "no-referrer"
    # The answers the middleware does not return itself: a 304 raised by a handler, a
    # method the route does not have, and the WebSocket's handshake (sent by its handler).
    snap = await (await upload(client, tone_wav(1.0))).json()
    await wait_for_stage(client, snap["id"], {"complete"})
    etag = (await client.get(f"/api/tasks/{snap['id']}")).headers["ETag"]
    resp = await client.get(f"/api/tasks/{snap['id']}", headers={"If-None-Match": etag})
    others = [resp, await client.patch("/api/health")]
    async with client.ws_connect("/api/ws") as ws:
        others.append(ws._response)
    assert [r.status for r in others] == [304, 405, 101]
    for resp in others:
        assert resp.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert resp.headers["X-Content-Type-Options"] == "nosniff"


async def test_models_only_from_the_allowlist(client: Any) -> None:
    for model in ("/etc", "openai/whisper-large-v3", "../models"):
        body = await assert_error(
            await client.post(
                "/api/tasks", json={"filename": "a.wav", "options": {"model": model}}
            ),
            400,
            "BAD_REQUEST",
        )
        assert "base, tiny.en" in body["message"] and "/etc" not in body["detail"]
    ok = await client.post(
        "/api/tasks", json={"filename": "a.wav", "options": {"model": "tiny.en"}}
    )
    assert ok.status == 201 and (await ok.json())["options"]["model"] == "tiny.en"
    models = await (await client.get("/v1/models")).json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == ["base", "tiny.en"]
    assert all(m["object"] == "model" for m in models["data"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"filename": "a.wav", "options": []}, "Options must be a JSON object"),
        ({"filename": "a.wav", "options": {"diarize": [1]}}, "diarize"),
        ({"filename": "a.wav", "options": {"num_speakers": "many"}}, "num_speakers"),
        ({"filename": "a.wav", "options": {"colour": "red"}}, "colour"),
        ({"filename": "a.wav", "extra": 1}, "extra"),
    ],
)
async def test_json_bodies_are_validated(client: Any, body: dict[str, Any], field: str) -> None:
    error = await assert_error(await client.post("/api/tasks", json=body), 400, "BAD_REQUEST")
    assert field in error["message"] + error["detail"]


async def test_unknown_or_repeated_form_fields_are_refused(client: Any) -> None:
    for fields in ([("colour", "red")], [("language", "en"), ("language", "de")]):
        form = FormData()
        for name, value in fields:
            form.add_field(name, value)
        form.add_field("file", io.BytesIO(tone_wav(0.5)), filename="a.wav")
        error = await assert_error(await client.post("/api/tasks", data=form), 400, "BAD_REQUEST")
        assert fields[0][0] in error["message"]


async def test_host_names_that_are_not_ours_are_refused(server: ServerProcess) -> None:
    async with aiohttp.ClientSession() as session:
        for host, status in (("evil.example", 403), ("lab.example", 200), ("localhost", 200)):
            resp = await session.get(f"{server.url}/api/health", headers={"Host": host})
            assert resp.status == status, host
        resp = await session.get(f"{server.url}/", headers={"Host": "rebound.attacker.test:8000"})
        await assert_error(resp, 403, "FORBIDDEN")


async def test_websocket_origin_must_be_an_allowed_host(server: ServerProcess) -> None:
    port = server.url.rsplit(":", 1)[1]
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(
                f"{server.url}/api/ws", headers={"Origin": "http://evil.example"}
            )
        assert refused.value.status == 403
        own = {"Origin": f"http://localhost:{port}", "Host": f"localhost:{port}"}
        async with session.ws_connect(f"{server.url}/api/ws", headers=own) as ws:
            assert (await ws.receive_json())["type"] == "hello"


async def test_internal_errors_carry_a_reference_and_no_paths(server: ServerProcess) -> None:
    async with aiohttp.ClientSession(base_url=server.url) as session:
        error = await assert_error(
            await session.get("/api/tasks", params={"limit": "x"}), 400, "BAD_REQUEST"
        )
        assert str(server.data_dir) not in json.dumps(error)
        task_id = await _failed_upload(session, b"not audio at all" * 100, "notes.wav")
        snap = await (await session.get(f"/api/tasks/{task_id}")).json()
        assert str(server.data_dir) not in json.dumps(snap)
        assert "/tasks/" not in snap["error"]["detail"]


async def test_token_by_cookie_for_the_page_and_bearer_for_programs(
    locked: ServerProcess,
) -> None:
    port = locked.url.rsplit(":", 1)[1]
    own = {"Origin": f"http://127.0.0.1:{port}"}
    # unsafe: aiohttp's jar keeps no cookies for IP addresses unless told (browsers do).
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(base_url=locked.url, cookie_jar=jar) as session:
        await assert_error(await session.get("/api/tasks"), 401, "UNAUTHORIZED")
        # A token in the URL counts for nothing.
        await assert_error(
            await session.get("/api/tasks", params={"token": "s3cret-token"}), 401, "UNAUTHORIZED"
        )
        state = await (await session.get("/api/session")).json()
        assert state == {"token_required": True, "signed_in": False, "name": None, "admin": False}
        bad = await session.post("/api/session", json={"token": "wrong"}, headers=own)
        await assert_error(bad, 401, "UNAUTHORIZED")
        good = await session.post("/api/session", json={"token": "s3cret-token"}, headers=own)
        assert good.status == 200
        cookie = good.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "s3cret" not in cookie
        assert await good.json() == {
            "token_required": True,
            "signed_in": True,
            "name": "admin",
            "admin": True,
        }
        assert (await session.get("/api/tasks")).status == 200
        # A change by cookie from another site is refused; from the page it goes through.
        cross = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
        resp = await session.post("/api/tasks", json={"filename": "a.wav"}, headers=cross)
        await assert_error(resp, 403, "FORBIDDEN")
        resp = await session.post("/api/tasks", json={"filename": "a.wav"}, headers=own)
        assert resp.status == 201
        assert (await session.delete("/api/session", headers=own)).status == 200
        await assert_error(await session.get("/api/tasks"), 401, "UNAUTHORIZED")
    async with aiohttp.ClientSession(base_url=locked.url) as program:
        bearer = {"Authorization": "Bearer s3cret-token"}
        assert (await program.get("/api/tasks", headers=bearer)).status == 200
        # Any Host is answered when a token guards the server (behind a proxy, say).
        assert (await program.get("/api/health", headers={"Host": "proxy.example"})).status == 200


async def test_health_shows_settings_only_to_token_holders(
    server: ServerProcess, locked: ServerProcess
) -> None:
    full = {"status", "version", "device", "model", "pipeline", "diarization", "workers"}
    full |= {"queue", "retention_days"}
    async with aiohttp.ClientSession(base_url=server.url) as session:
        assert set(await (await session.get("/api/health")).json()) == full  # no token set
    port = locked.url.rsplit(":", 1)[1]
    async with aiohttp.ClientSession(
        base_url=locked.url, cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as session:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            resp = await session.get("/api/health", headers=headers)
            assert resp.status == 200
            assert await resp.json() == {"status": "ok", "version": __version__}
        bearer = await session.get("/api/health", headers={"Authorization": "Bearer s3cret-token"})
        assert set(await bearer.json()) == full
        own = {"Origin": f"http://127.0.0.1:{port}"}
        await session.post("/api/session", json={"token": "s3cret-token"}, headers=own)
        page = await (await session.get("/api/health")).json()  # the page, by its cookie
        assert set(page) == full and page["retention_days"] is None and page["model"] == "base"


def test_subtitles_cannot_break_their_cues() -> None:
    import srt
    import webvtt

    from transcriber.formats.text import to_srt, to_vtt

    evil = "a <b>bold</b> & --> 00:00:00.000 --> 00:00:09.000\n\n2\nfake cue"
    data: dict[str, Any] = {
        "language": "en",
        "duration": 2.0,
        "model": "x",
        "speakers": [],
        "segments": [
            {"id": 0, "start": 0.0, "end": 1.0, "text": evil, "speaker": None, "words": []},
            {"id": 1, "start": 1.0, "end": 2.0, "text": "second", "speaker": None, "words": []},
        ],
    }
    vtt = to_vtt(data)
    cues = webvtt.from_buffer(io.StringIO(vtt))
    assert len(cues) == 2
    assert "<b>" not in vtt and "&lt;b&gt;" in vtt and "&amp;" in vtt
    assert all("-->" not in c.text for c in cues)
    subs = list(srt.parse(to_srt(data)))
    assert [s.index for s in subs] == [1, 2]
    assert "fake cue" in subs[0].content and "-->" not in subs[0].content
