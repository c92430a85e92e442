"""A page on another site may change nothing: no upload, cancel, retry or delete, whatever the
token (docs/security.md). Browsers say where a request came from (Origin, Sec-Fetch-Site);
scripts say nothing and are let through."""

from __future__ import annotations

import io
from typing import Any

import pytest
from aiohttp import FormData

from transcriber.web.keys import STORE

from .conftest import ClientFactory, assert_error, wait_for_stage

EVIL = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
BEARER = {"Authorization": "Bearer s3cret"}


def own(client: Any) -> dict[str, str]:
    """What a browser sends with a fetch from the server's own page."""
    return {
        "Origin": f"http://{client.server.host}:{client.server.port}",
        "Sec-Fetch-Site": "same-origin",
    }


async def rows(client: Any) -> int:
    _, total = await client.app[STORE].page(1, 0)
    return int(total)


async def raw_upload(client: Any, data: bytes, headers: dict[str, str]) -> Any:
    return await client.post(
        "/api/tasks",
        params={"filename": "tone.wav"},
        data=data,
        headers={"Content-Type": "text/plain", **headers},
    )


@pytest.mark.parametrize("token", [None, "s3cret"])
async def test_uploads_from_another_site_are_refused(
    make_client: ClientFactory, wav_bytes: bytes, token: str | None
) -> None:
    client = await make_client(token=token)
    auth = BEARER if token else {}
    # text/plain and multipart need no CORS preflight: any page can send them.
    error = await assert_error(await raw_upload(client, wav_bytes, EVIL | auth), 403, "FORBIDDEN")
    assert error["detail"] == "Origin 'https://evil.example', Sec-Fetch-Site 'cross-site'"
    form = FormData()
    form.add_field("file", io.BytesIO(wav_bytes), filename="tone.wav", content_type="audio/wav")
    openai = await client.post("/v1/audio/transcriptions", data=form, headers=EVIL | auth)
    await assert_error(openai, 403, "FORBIDDEN")
    assert await rows(client) == 0
    # The page itself, and curl, still upload.
    page = await client.post("/api/tasks", json={"filename": "a.wav"}, headers=own(client) | auth)
    assert page.status == 201
    assert (await raw_upload(client, wav_bytes, auth)).status == 201
    assert await rows(client) == 2


@pytest.mark.parametrize("token", [None, "s3cret"])
async def test_cancel_retry_and_delete_from_another_site_change_nothing(
    make_client: ClientFactory, token: str | None
) -> None:
    client = await make_client(token=token)
    auth = BEARER if token else {}
    created = await client.post("/api/tasks", json={"filename": "a.wav"}, headers=auth)
    before = await created.json()
    bad = {"Origin": "http://evil.example"} | auth  # an older browser sends Origin alone
    for method, path in (
        ("POST", "/cancel"),
        ("POST", "/retry"),
        ("DELETE", ""),
        ("PUT", "/audio"),
    ):
        resp = await client.request(method, f"/api/tasks/{before['id']}{path}", headers=bad)
        await assert_error(resp, 403, "FORBIDDEN")
    after = await client.app[STORE].get(before["id"])
    assert after is not None and (after.stage.value, after.seq) == ("uploading", before["seq"])
    # From the page, the same cancel and delete go through.
    resp = await client.post(f"/api/tasks/{before['id']}/cancel", headers=own(client) | auth)
    assert resp.status == 200 and (await resp.json())["stage"] == "cancelled"
    resp = await client.delete(f"/api/tasks/{before['id']}", headers=own(client) | auth)
    assert resp.status == 204 and await rows(client) == 0


async def test_a_retry_from_another_site_does_not_queue_the_task(
    make_client: ClientFactory, wav_bytes: bytes
) -> None:
    client = await make_client(plumbing_stage_seconds=5.0)
    task_id = (await (await raw_upload(client, wav_bytes, {})).json())["id"]
    assert (await client.post(f"/api/tasks/{task_id}/cancel")).status == 200
    cancelled = await wait_for_stage(client, task_id, {"cancelled"})
    await assert_error(
        await client.post(f"/api/tasks/{task_id}/retry", headers=EVIL), 403, "FORBIDDEN"
    )
    task = await client.app[STORE].get(task_id)
    assert task is not None and (task.stage.value, task.seq) == ("cancelled", cancelled["seq"])
    retried = await client.post(f"/api/tasks/{task_id}/retry")  # curl
    assert retried.status == 200 and (await retried.json())["stage"] == "queued"


async def test_which_browser_requests_may_change_things(make_client: ClientFactory) -> None:
    client = await make_client(allowed_origins=("https://app.lab.example",))
    refused: list[dict[str, str]] = [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain's page
        {"Sec-Fetch-Site": "same-site", "Origin": "https://wiki.lab.example"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},  # a sandboxed frame, a data: URL
        {"Origin": f"http://{client.server.host}:1"},  # another port is another origin
    ]
    for headers in refused:
        resp = await client.post("/api/tasks", json={"filename": "a.wav"}, headers=headers)
        await assert_error(resp, 403, "FORBIDDEN")
    assert await rows(client) == 0
    allowed: list[dict[str, str]] = [
        {},  # curl, scripts
        {"Sec-Fetch-Site": "none"},  # the person's own doing (typed, bookmarked)
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "same-site", "Origin": "https://app.lab.example"},  # listed
    ]
    for headers in allowed:
        resp = await client.post("/api/tasks", json={"filename": "a.wav"}, headers=headers)
        assert resp.status == 201, (headers, await resp.text())
    assert await rows(client) == len(allowed)
