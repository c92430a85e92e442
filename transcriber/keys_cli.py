"""`transcriber keys add|list|revoke`: keys per person, in the server's own database.

The database is found as `serve` finds it: --data-dir, else TRANSCRIBER_DATA_DIR, else the
default. A running server sees a change within a few seconds (jobs/access.py KEYS_TTL).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from transcriber.config import Config, env_name
from transcriber.jobs.access import BadName, check_name, new_key
from transcriber.store.apikeys import ApiKey, DuplicateName, KeyStore
from transcriber.store.db import NewerDatabase, Store

EXIT_REFUSED = 2


def add_keys_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        type=Path,
        help=f"the server's data folder ({env_name('data_dir')}, default {Config.data_dir})",
    )
    p = sub.add_parser("keys", help="keys per person: add, list, revoke")
    actions = p.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", parents=[common], help="make a key; it is printed once")
    add.add_argument("name", help="whose key: 1 to 32 letters, digits, '.', '_' or '-'")
    add.add_argument("--admin", action="store_true", help="sees and changes every task")
    actions.add_parser("list", parents=[common], help="name, admin, created, last used")
    revoke = actions.add_parser("revoke", parents=[common], help="delete a key at once")
    revoke.add_argument("name")
    p.set_defaults(func=keys)


def data_dir(args: argparse.Namespace) -> Path:
    if args.data_dir is not None:
        return Path(args.data_dir)
    return Path(os.environ.get(env_name("data_dir")) or Config.data_dir)


def keys(args: argparse.Namespace) -> int:
    db_path = Config(data_dir=data_dir(args)).db_path
    try:
        if args.action != "list":
            check_name(args.name)
        return asyncio.run(_run(args, db_path))
    except (BadName, DuplicateName, NewerDatabase) as exc:
        message = str(exc)
        if isinstance(exc, DuplicateName):
            message = f"a key named {message!r} exists; revoke it first to replace it"
        print(f"transcriber: {message}", file=sys.stderr)
        return EXIT_REFUSED


async def _run(args: argparse.Namespace, db_path: Path) -> int:
    store = await Store.open(db_path)
    try:
        ring = KeyStore(store.db)
        if args.action == "add":
            key, row = new_key(args.name, args.admin)
            await ring.add(row)
            kind = "an admin key" if args.admin else "a key"
            print(f"{kind} for {row.name}; it is shown only this once:", file=sys.stderr)
            print(key)
            return 0
        if args.action == "revoke":
            if not await ring.revoke(args.name):
                print(f"transcriber: no key named {args.name!r}", file=sys.stderr)
                return EXIT_REFUSED
            print(f"revoked the key of {args.name}", file=sys.stderr)
            return 0
        _print_table(await ring.all())
        return 0
    finally:
        await store.close()


def _print_table(rows: list[ApiKey]) -> None:
    print(f"{'name':<32}  {'admin':<5}  {'created':<24}  last used")
    for row in rows:
        admin = "yes" if row.admin else "no"
        print(f"{row.name:<32}  {admin:<5}  {row.created_at:<24}  {row.last_used or 'never'}")
