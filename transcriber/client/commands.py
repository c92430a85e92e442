"""Command-line client: submit (with live progress bars and, asked, the text as it is decoded),
status, get, list, cancel; `profiles` (client/profiles.py).

Talks to a running server over HTTP and the WebSocket, falling back to long-polling like the
page does. Exit codes: 0 done, 1 a task failed or was cancelled, 3 the server refused the
request (unknown task, not ready, bad file...), 4 the server could not be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from transcriber.client.progress import Bars
from transcriber.client.text import LiveText, segments_after
from transcriber.protocol.stages import Stage

EXIT_FAILED, EXIT_REFUSED, EXIT_UNREACHABLE = 1, 3, 4
CHUNK = 256 * 1024


class Refused(Exception):
    """The server answered with an error body."""

    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", ""))
        self.status = status
        self.error = error


class Client:
    def __init__(self, session: aiohttp.ClientSession, url: str, token: str | None) -> None:
        self.session = session
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        async with self.session.request(method, self.url + path, headers=headers, **kwargs) as resp:
            if resp.status >= 400:
                try:
                    error = (await resp.json())["error"]
                except (aiohttp.ContentTypeError, KeyError, json.JSONDecodeError):
                    error = {"code": "HTTP_" + str(resp.status), "message": await resp.text()}
                raise Refused(resp.status, error)
            if resp.content_type == "application/json":
                return await resp.json()
            return await resp.text()

    async def upload(self, path: Path, options: dict[str, Any], bars: Bars) -> dict[str, Any]:
        size = path.stat().st_size
        snap = await self.call(
            "POST", "/api/tasks", json={"filename": path.name, "size": size, "options": options}
        )
        bars.update(path.name, snap)

        async def body() -> AsyncIterator[bytes]:
            sent = 0
            with path.open("rb") as f:
                while chunk := f.read(CHUNK):
                    sent += len(chunk)
                    bars.uploading(path.name, sent, size)
                    yield chunk

        snap = await self.call(
            "PUT",
            f"/api/tasks/{snap['id']}/audio",
            data=body(),
            headers={"Content-Length": str(size)},
        )
        bars.update(path.name, snap)
        return dict(snap)

    async def follow(
        self, names: dict[str, str], bars: Bars, text: LiveText | None = None
    ) -> dict[str, dict[str, Any]]:
        """Follow tasks (id -> display name) to their end: WebSocket first, then long-polling;
        with `text`, their segments too, as they are decoded."""
        final: dict[str, dict[str, Any]] = {}
        try:
            await self._follow_ws(names, bars, final, text)
        except (aiohttp.ClientError, TimeoutError, ConnectionError):
            bars.note("WebSocket unavailable, polling")
        for task_id in names:
            while task_id not in final:
                await self._poll(task_id, names[task_id], bars, final, text)
        return final

    async def _follow_ws(
        self,
        names: dict[str, str],
        bars: Bars,
        final: dict[str, dict[str, Any]],
        text: LiveText | None,
    ) -> None:
        # The token goes in the header, as on every other request: never in a URL.
        async with self.session.ws_connect(
            self.url + "/api/ws", headers=self.headers, heartbeat=30
        ) as ws:
            for task_id in names:
                subscribe: dict[str, Any] = {"type": "subscribe", "task_id": task_id}
                if text is not None:
                    subscribe["last_segment"] = text.last[task_id]
                await ws.send_json(subscribe)
            while len(final) < len(names):
                msg = await ws.receive(timeout=75)
                if msg.type != aiohttp.WSMsgType.TEXT:
                    raise ConnectionError(f"socket closed: {msg.type}")
                data = json.loads(msg.data)
                if data["type"] == "task" and data["task"]["id"] in names:
                    self._seen(data["task"], names, bars, final)
                elif data["type"] == "segments" and text is not None:
                    text.add(data["task_id"], data["segments"])

    async def _poll(
        self,
        task_id: str,
        name: str,
        bars: Bars,
        final: dict[str, dict[str, Any]],
        text: LiveText | None,
    ) -> None:
        snap = await self.call("GET", f"/api/tasks/{task_id}")
        while not Stage(snap["stage"]).terminal:
            bars.update(name, snap)
            # The snapshot counts the segments stored: fetch those not shown yet.
            if text is not None and snap["segments_count"] > text.last[task_id] + 1:
                text.add(task_id, await segments_after(self, task_id, text.last[task_id]))
            snap = await self.call(
                "GET", f"/api/tasks/{task_id}", params={"wait": "25", "since": str(snap["seq"])}
            )
        self._seen(snap, {task_id: name}, bars, final)

    @staticmethod
    def _seen(
        snap: dict[str, Any], names: dict[str, str], bars: Bars, final: dict[str, dict[str, Any]]
    ) -> None:
        bars.update(names[snap["id"]], snap)
        if Stage(snap["stage"]).terminal:
            final[snap["id"]] = snap


async def _submit(client: Client, args: argparse.Namespace) -> int:
    options: dict[str, Any] = {"diarize": not args.no_diarize}
    if args.language:
        options["language"] = args.language
    if args.speakers:
        options["num_speakers"] = args.speakers
    if args.hotwords:
        options["hotwords"] = args.hotwords
    if args.initial_prompt:
        options["initial_prompt"] = args.initial_prompt
    if args.callback:
        options["callback_url"] = args.callback
    paths = [Path(p) for p in args.files]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"transcriber: no such file: {', '.join(missing)}", file=sys.stderr)
        return EXIT_REFUSED
    bars = Bars([p.name for p in paths], sys.stderr)
    names: dict[str, str] = {}
    final: dict[str, dict[str, Any]] = {}
    text: LiveText | None = None
    code = 0
    try:
        for path in paths:
            try:
                snap = await client.upload(path, options, bars)
                names[snap["id"]] = path.name
            except Refused as exc:
                bars.fail(path.name, exc.error)
                code = EXIT_REFUSED
        if (args.follow or args.text) and names:
            text = LiveText(names, bars.line) if args.text else None
            final = await client.follow(names, bars, text)
            if any(s["stage"] != Stage.COMPLETE for s in final.values()):
                code = code or EXIT_FAILED
    finally:
        bars.close()
    for task_id, name in names.items():
        print(f"{task_id}\t{name}")
    if text is not None:
        complete = [task_id for task_id, snap in final.items() if snap["stage"] == Stage.COMPLETE]
        await text.print_final(client, complete)
    return code


async def _status(client: Client, args: argparse.Namespace) -> int:
    snap = await client.call("GET", f"/api/tasks/{args.id}")
    if args.json:
        print(json.dumps(snap, indent=1))
    else:
        print(
            f"{snap['id']}  {snap['filename']}  {Stage(snap['stage']).label} "
            f"{snap['progress']}%  {snap['detail']}"
        )
        if snap["error"]:
            error = snap["error"]
            print(f"error {error['code']}: {error['message']}\n  {error['detail']}")
    failed = snap["stage"] in (Stage.FAILED, Stage.CANCELLED)
    return EXIT_FAILED if failed else 0


async def _get(client: Client, args: argparse.Namespace) -> int:
    body = await client.call(
        "GET", f"/api/tasks/{args.id}/transcript", params={"format": args.format}
    )
    text = body if isinstance(body, str) else json.dumps(body, indent=1, ensure_ascii=False)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


async def _list(client: Client, args: argparse.Namespace) -> int:
    params = {"limit": str(args.limit)} | ({"owner": "me"} if args.mine else {})
    page = await client.call("GET", "/api/tasks", params=params)
    for t in page["tasks"]:
        print(
            f"{t['id']}  {t['created_at'][:19]}  {t['stage']:<12} {t['progress']:>3}%  "
            f"{t['owner']:<12} {t['filename']}"
        )
    return 0


async def _cancel(client: Client, args: argparse.Namespace) -> int:
    snap = await client.call("POST", f"/api/tasks/{args.id}/cancel")
    print(f"{snap['id']}  {snap['stage']}")
    return 0


COMMANDS = {"submit": _submit, "status": _status, "get": _get, "list": _list, "cancel": _cancel}


Action = Callable[[Client, argparse.Namespace], Awaitable[int]]


async def with_client(args: argparse.Namespace, action: Action) -> int:
    """Run one command against the server: its exit status, a refusal or an unreachable
    server said in one line."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(sock_connect=10)) as s:
        client = Client(s, args.server, args.token)
        try:
            return await action(client, args)
        except Refused as exc:
            print(
                f"transcriber: {exc.error.get('message')} ({exc.error.get('code')})",
                file=sys.stderr,
            )
            return EXIT_REFUSED
        except aiohttp.ClientConnectionError as exc:
            print(f"transcriber: cannot reach {args.server}: {exc}", file=sys.stderr)
            return EXIT_UNREACHABLE


def run(args: argparse.Namespace) -> int:
    return asyncio.run(with_client(args, COMMANDS[args.command]))


def add_client_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--server", default=os.environ.get("TRANSCRIBER_URL", "http://127.0.0.1:8000")
    )
    common.add_argument(
        "--token",
        default=os.environ.get("TRANSCRIBER_TOKEN"),
        help="the server's token or your key (TRANSCRIBER_TOKEN)",
    )
    p = sub.add_parser("submit", parents=[common], help="upload files (and follow them)")
    p.add_argument("files", nargs="+")
    p.add_argument("--follow", action="store_true", help="show progress until the end")
    p.add_argument(
        "--text",
        action="store_true",
        help="show each segment as it is decoded, then the final transcript with speakers"
        " (implies --follow)",
    )
    p.add_argument("--language")
    p.add_argument("--speakers", type=int, help="number of speakers, if known")
    p.add_argument("--no-diarize", action="store_true")
    p.add_argument("--hotwords", help="names and words Whisper should expect")
    p.add_argument("--initial-prompt", help="context for Whisper: names, spellings")
    p.add_argument(
        "--callback", metavar="URL", help="POST the final state here when it ends (a webhook)"
    )
    p = sub.add_parser("status", parents=[common], help="one task's state")
    p.add_argument("id")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("get", parents=[common], help="download a transcript")
    p.add_argument("id")
    p.add_argument("--format", default="txt", choices=("json", "txt", "srt", "vtt", "tsv", "md"))
    p.add_argument("-o", "--output")
    p = sub.add_parser("list", parents=[common], help="recent tasks")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--mine", action="store_true", help="only the tasks made with my key")
    p = sub.add_parser("cancel", parents=[common], help="cancel a task")
    p.add_argument("id")
    for name in COMMANDS:
        sub.choices[name].set_defaults(func=run)
    from transcriber.client.profiles import add_profile_commands  # it imports this module

    add_profile_commands(sub, common)
