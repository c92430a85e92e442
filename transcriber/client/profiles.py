"""`transcriber profiles`: the server's voice profiles from the command line.

transcriber profiles list
transcriber profiles add TASK SPEAKER [--name NAME]   (SPEAKER: the label, SPEAKER_00)
transcriber profiles rename ID NAME
transcriber profiles delete ID
transcriber profiles export [-o FILE]                 (the only file with embeddings)
transcriber profiles import FILE
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from transcriber.client.commands import EXIT_REFUSED, Client, with_client


def _line(profile: dict[str, Any]) -> str:
    samples = len(profile["samples"])
    return (
        f"{profile['id']}  {profile['name']}  {profile['seconds']:.0f} s of speech"
        f" in {samples} sample{'s' if samples != 1 else ''}"
    )


async def _list(client: Client, args: argparse.Namespace) -> int:
    for profile in (await client.call("GET", "/api/profiles"))["profiles"]:
        print(_line(profile))
    return 0


async def _add(client: Client, args: argparse.Namespace) -> int:
    body = {"task_id": args.task, "speaker": args.speaker}
    if args.name is not None:
        body["name"] = args.name
    print(_line(await client.call("POST", "/api/profiles", json=body)))
    return 0


async def _rename(client: Client, args: argparse.Namespace) -> int:
    profile = await client.call("PATCH", f"/api/profiles/{args.id}", json={"name": args.name})
    print(_line(profile))
    return 0


async def _delete(client: Client, args: argparse.Namespace) -> int:
    await client.call("DELETE", f"/api/profiles/{args.id}")
    print(f"{args.id}  deleted, with every sample of the voice")
    return 0


async def _export(client: Client, args: argparse.Namespace) -> int:
    text = json.dumps(await client.call("GET", "/api/profiles/export"), indent=1)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    else:
        sys.stdout.write(text + "\n")
    return 0


async def _import(client: Client, args: argparse.Namespace) -> int:
    data = Path(args.file).read_bytes()
    made = await client.call(
        "POST", "/api/profiles/import", data=data, headers={"Content-Type": "application/json"}
    )
    for profile in made["profiles"]:
        print(_line(profile))
    return 0


ACTIONS = {
    "list": _list,
    "add": _add,
    "rename": _rename,
    "delete": _delete,
    "export": _export,
    "import": _import,
}


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(with_client(args, ACTIONS[args.action]))
    except OSError as exc:  # import: a file that cannot be read
        print(f"transcriber: {exc}", file=sys.stderr)
        return EXIT_REFUSED


def add_profile_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    top = sub.add_parser("profiles", help="voice profiles: known voices named in every task")
    actions = top.add_subparsers(dest="action", required=True)
    actions.add_parser("list", parents=[common], help="every profile, by name")
    p = actions.add_parser("add", parents=[common], help="remember a task's speaker")
    p.add_argument("task")
    p.add_argument("speaker", help="its label in the JSON transcript, e.g. SPEAKER_00")
    p.add_argument("--name", help="default: the name the speaker has in that task")
    p = actions.add_parser("rename", parents=[common], help="rename a profile")
    p.add_argument("id")
    p.add_argument("name")
    p = actions.add_parser("delete", parents=[common], help="delete a profile and its voice")
    p.add_argument("id")
    p = actions.add_parser("export", parents=[common], help="every profile with embeddings")
    p.add_argument("-o", "--output")
    p = actions.add_parser("import", parents=[common], help="import an export file")
    p.add_argument("file")
    top.set_defaults(func=run)
