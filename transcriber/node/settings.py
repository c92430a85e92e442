"""A node's own settings: its device, models, hub token and where the audio comes from.

In a module of their own, so that the agent (which runs jobs) and fetch (which moves their
files) both read them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from transcriber.worker.assets import default_models_dir


@dataclass(frozen=True)
class NodeSettings:
    """What is the node's own: its device, models, hub token and where the audio comes from."""

    slots: int = 1
    device: str = "auto"
    models_dir: Path = field(default_factory=default_models_dir)
    hf_token: str | None = None
    audio: str = "shared"  # "shared": the coordinator's paths; "http": fetched over HTTP
    coordinator_url: str | None = None
    node_token: str | None = None
    cache_dir: Path = Path("node-cache")
    threads: int = 1
