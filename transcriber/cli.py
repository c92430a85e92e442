"""`transcriber serve ...` and the other subcommands."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from transcriber.config import Config, add_flags


def _serve_args(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the server (every option also as TRANSCRIBER_*)")
    add_flags(p)


def _certs_args(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("certs", help="write a CA and coordinator/node certificates (dask)")
    p.add_argument("dir", type=Path, help="folder to write them into (--tls-dir)")
    p.set_defaults(func=certs)


def certs(args: argparse.Namespace) -> int:
    from transcriber.node.tls import write_certs

    for path in write_certs(args.dir):
        print(path)
    print("copy ca.pem, node.pem and node.key to each node; keep coordinator.key here")
    return 0


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="transcriber", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_args(sub)
    _certs_args(sub)
    from transcriber.keys_cli import add_keys_command

    add_keys_command(sub)
    from transcriber.node.main import add_node_command

    add_node_command(sub)
    from transcriber.client.commands import add_client_commands

    add_client_commands(sub)
    return parser.parse_args(argv)


def serve(args: argparse.Namespace) -> None:
    overrides = {k: v for k, v in vars(args).items() if k not in ("command", "func")}
    try:
        config = Config.from_env(**overrides)
    except ValueError as exc:
        sys.exit(f"transcriber: {exc}")
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from transcriber.store.db import NewerDatabase
    from transcriber.web.server import create_app

    print(
        f"transcriber: serving on http://{config.host}:{config.port} "
        f"(model {config.model}, pipeline {config.pipeline}, data {config.data_dir})",
        flush=True,
    )
    try:
        web.run_app(
            create_app(config),
            host=config.host,
            port=config.port,
            print=None,
            access_log=logging.getLogger("aiohttp.access") if config.access_log else None,
        )
    except NewerDatabase as exc:
        sys.exit(f"transcriber: {config.db_path}: {exc}")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.command == "serve":
        serve(args)
    else:
        sys.exit(args.func(args))
