"""Command-line client subcommands (submit, status, get, list, cancel)."""

from __future__ import annotations

import argparse


def add_client_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Filled in by the clients issue; serve is the only command so far."""
