"""`transcriber node`: a Dask worker with the node agent, run on a GPU box (docs/scaling.md).

One slot per GPU (or --slots on a CPU box). The node's device, models folder and hub token
are its own and never travel. When the scheduler goes away (a coordinator restart) the
worker closes, its plugin kills any job child, and the node connects again once the
scheduler is back. A node the coordinator refuses (token, versions) exits with status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import os
import socket
import sys
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transcriber.node.settings import NodeSettings
from transcriber.node.tls import is_loopback, security
from transcriber.node.wire import NODE_INFO, RESOURCE

if TYPE_CHECKING:  # distributed is imported only when a node runs
    from transcriber.node.plugin import NodePlugin

log = logging.getLogger(__name__)

RECONNECT_AFTER = 3.0
REFUSED = 2


def add_node_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("node", help="run jobs for a coordinator (`serve --executor dask`)")
    env = os.environ.get
    p.add_argument("--scheduler", required=True, help="the scheduler, e.g. tls://HOST:8786")
    p.add_argument("--tls-dir", type=Path, help="the folder `transcriber certs` wrote")
    p.add_argument(
        "--node-token",
        default=env("TRANSCRIBER_NODE_TOKEN"),
        help="the cluster's node token (TRANSCRIBER_NODE_TOKEN)",
    )
    p.add_argument(
        "--insecure",
        action="store_true",
        help="plain TCP to a loopback scheduler; plain http to a --coordinator-url elsewhere",
    )
    p.add_argument("--slots", type=int, help="jobs at once (default: one per GPU, else 1)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--models-dir", type=Path, help="this node's model cache")
    p.add_argument(
        "--hf-token",
        default=env("TRANSCRIBER_HF_TOKEN"),
        help="this node's hub token (TRANSCRIBER_HF_TOKEN)",
    )
    p.add_argument(
        "--audio",
        default="shared",
        choices=("shared", "http"),
        help="shared: the data folder is mounted at the coordinator's path; http: fetch",
    )
    p.add_argument("--coordinator-url", help="for --audio http: the coordinator's URL")
    p.add_argument("--cache-dir", type=Path, default=Path("node-cache"), help="local files")
    p.add_argument("--name", default=socket.gethostname(), help="this node's name")
    p.add_argument("--host", help="address the worker listens on (the scheduler connects to it)")
    p.add_argument("--port", type=int, default=0, help="port the worker listens on")
    p.set_defaults(func=run_node)


def run_node(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
    problem = _check(args)
    if problem is not None:
        print(f"transcriber node: {problem}", file=sys.stderr)
        return REFUSED
    return asyncio.run(_serve(args, _settings(args)))


def _check(args: argparse.Namespace) -> str | None:
    if not args.node_token:
        return "--node-token (or TRANSCRIBER_NODE_TOKEN) is required"
    if args.tls_dir is None and not (args.insecure and is_loopback(args.scheduler)):
        return "--tls-dir is required (plain TCP only with --insecure and a loopback scheduler)"
    if args.audio == "http":
        return _check_coordinator(args.coordinator_url, args.insecure)
    return None


def _check_coordinator(url: str | None, insecure: bool) -> str | None:
    """The node token and every recording travel to this URL: in clear only on loopback, or
    elsewhere when the operator says the network is trusted."""
    if not url:
        return "--audio http needs --coordinator-url"
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme == "https":
        return None
    if scheme != "http":
        return f"--coordinator-url must be an https:// (or http://) URL, not {url!r}"
    if not (insecure or is_loopback(url)):
        return (
            f"--coordinator-url {url} is plain http to another machine: the node token and the"
            " audio would cross the network in clear. Use https:// (TLS in front of the"
            " coordinator, docs/deployment.md), or pass --insecure on a network you trust"
        )
    log.warning("the node token and the audio go to %s unencrypted (plain http)", url)
    return None


def _settings(args: argparse.Namespace) -> NodeSettings:
    from transcriber.worker.assets import default_models_dir

    slots = args.slots or _gpus() or 1
    return NodeSettings(
        slots=slots,
        device=args.device,
        models_dir=args.models_dir or default_models_dir(),
        hf_token=args.hf_token,
        audio=args.audio,
        coordinator_url=args.coordinator_url,
        node_token=args.node_token,
        cache_dir=args.cache_dir.resolve(),
        threads=max(1, len(os.sched_getaffinity(0)) // slots),
    )


def _gpus() -> int:
    try:
        import torch

        return int(torch.cuda.device_count())
    except Exception:
        return 0


async def _serve(args: argparse.Namespace, settings: NodeSettings) -> int:
    import dask

    from transcriber.node.plugin import NodePlugin
    from transcriber.node.tuning import NODE

    dask.config.set(NODE)  # this process is only a node: for all its workers
    while True:
        plugin = NodePlugin(settings)
        worker = _worker(args, settings, plugin)
        try:
            await worker
            log.info("node %s: %d slots, audio %s", worker.address, settings.slots, settings.audio)
            await worker.finished()
        except (OSError, TimeoutError, RuntimeError) as exc:
            log.warning("could not reach the scheduler %s: %s", args.scheduler, exc)
        finally:
            await worker.close()
        if plugin.agent is not None and plugin.agent.refused:
            return REFUSED
        log.info("disconnected from the scheduler; connecting again in %g s", RECONNECT_AFTER)
        await asyncio.sleep(RECONNECT_AFTER)


def _worker(args: argparse.Namespace, settings: NodeSettings, plugin: NodePlugin) -> Any:
    import distributed

    from transcriber.node.guard import guard_worker
    from transcriber.node.plugin import node_info

    dd: Any = distributed
    worker = dd.Worker(
        args.scheduler,
        nthreads=settings.slots + 1,  # one per job, one spare for a job that is ending
        resources={RESOURCE: settings.slots},
        security=security(args.tls_dir, "node"),
        plugins={plugin},
        startup_information={
            NODE_INFO: functools.partial(node_info, args.node_token, settings.audio)
        },
        name=args.name,
        host=args.host,
        port=args.port,
        dashboard=False,
        dashboard_address="127.0.0.1:0",  # health and metrics: not for the network
        local_directory=str(settings.cache_dir / "dask"),
    )
    if args.tls_dir is not None:  # only the coordinator may connect to this node (guard.py)
        guard_worker(worker)
    return worker
