"""`transcriber serve ...` and the other subcommands."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from aiohttp import web

from transcriber.config import DEVICES, PIPELINES, Config


def _serve_args(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the server (every option also as TRANSCRIBER_*)")
    p.add_argument("--host", help="address to bind (TRANSCRIBER_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (TRANSCRIBER_PORT, default 8000)")
    p.add_argument("--data-dir", help="database and files (TRANSCRIBER_DATA_DIR, default ./data)")
    p.add_argument("--models-dir", help="model cache (TRANSCRIBER_MODELS_DIR)")
    p.add_argument("--workers", type=int, help="worker processes (TRANSCRIBER_WORKERS, 1)")
    p.add_argument("--model", help="whisper model: base, tiny.en, a folder or a hub name")
    p.add_argument("--device", choices=DEVICES, help="auto, cpu or cuda (TRANSCRIBER_DEVICE)")
    p.add_argument("--diarization", help="'bundled', a pretrained pipeline name or a folder")
    p.add_argument("--hf-token", help="hub token for pretrained pipelines (TRANSCRIBER_HF_TOKEN)")
    p.add_argument("--pipeline", choices=PIPELINES, help="'plumbing' only for tests")
    p.add_argument("--token", help="require this bearer token (TRANSCRIBER_TOKEN)")
    p.add_argument("--heartbeat", type=float, help="WebSocket heartbeat seconds (30)")
    p.add_argument("--max-upload-bytes", type=int, help="upload size cap (4 GiB)")
    p.add_argument("--max-audio-seconds", type=float, help="audio duration cap (6 h)")
    p.add_argument("--allowed-origins", help="comma-separated extra WebSocket origins")
    p.add_argument(
        "--access-log",
        action="store_true",
        default=None,
        help="log every request (TRANSCRIBER_ACCESS_LOG)",
    )


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="transcriber", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_args(sub)
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
    from transcriber.web.server import create_app

    print(
        f"transcriber: serving on http://{config.host}:{config.port} "
        f"(model {config.model}, pipeline {config.pipeline}, data {config.data_dir})",
        flush=True,
    )
    web.run_app(
        create_app(config),
        host=config.host,
        port=config.port,
        print=None,
        access_log=logging.getLogger("aiohttp.access") if config.access_log else None,
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.command == "serve":
        serve(args)
    else:
        sys.exit(args.func(args))
