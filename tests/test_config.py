"""Config: TRANSCRIBER_* variables, CLI overrides on top, validation with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from transcriber.cli import parse
from transcriber.config import Config


def test_environment_then_flags() -> None:
    env = {
        "TRANSCRIBER_PORT": "9001",
        "TRANSCRIBER_WORKERS": "2",
        "TRANSCRIBER_MODEL": "tiny.en",
        "TRANSCRIBER_HEARTBEAT": "5",
        "TRANSCRIBER_ALLOWED_ORIGINS": "https://a, https://b",
        "TRANSCRIBER_ACCESS_LOG": "true",
        "TRANSCRIBER_DATA_DIR": "/srv/t",
    }
    config = Config.from_env(env, port=9002, model=None)
    assert (config.port, config.workers, config.model, config.heartbeat) == (
        9002,
        2,
        "tiny.en",
        5.0,
    )
    assert config.allowed_origins == ("https://a", "https://b")
    assert config.access_log is True
    assert config.db_path == Path("/srv/t/transcriber.sqlite3")


def test_defaults_are_safe() -> None:
    config = Config.from_env({})
    assert (config.host, config.port, config.pipeline, config.model) == (
        "127.0.0.1",
        8000,
        "real",
        "base",
    )
    assert (config.token, config.access_log, config.max_upload_bytes) == (None, False, 4 * 1024**3)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("pipeline", "fake", "pipeline must be one of"),
        ("device", "tpu", "device must be one of"),
        ("workers", 0, "workers must be at least 1"),
        ("heartbeat", 0.0, "heartbeat must be positive"),
    ],
)
def test_invalid_values_are_refused(name: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Config(**{name: value})  # type: ignore[arg-type]


def test_cli_flags_reach_config() -> None:
    args = parse(
        [
            "serve",
            "--port",
            "8123",
            "--data-dir",
            "/tmp/x",
            "--workers",
            "3",
            "--model",
            "tiny.en",
            "--device",
            "cpu",
            "--access-log",
        ]
    )
    overrides = {k: v for k, v in vars(args).items() if k not in ("command", "func")}
    config = Config.from_env({}, **overrides)
    assert (config.port, config.data_dir, config.workers, config.device) == (
        8123,
        Path("/tmp/x"),
        3,
        "cpu",
    )
    assert config.access_log is True


def test_every_setting_is_a_flag_and_a_variable_with_its_help() -> None:
    import argparse
    import dataclasses

    from transcriber.config import add_flags, env_name

    parser = argparse.ArgumentParser()
    add_flags(parser)
    text = " ".join(parser.format_help().split())
    for f in dataclasses.fields(Config):
        flag = "--" + f.name.replace("_", "-")
        assert flag in text and env_name(f.name) in text, f.name
        assert f.metadata["help"] in text, f.name
    samples = {"port": "9", "heartbeat": "2.5", "allowed_origins": "a,b", "data_dir": "/d"}
    config = Config.from_env({env_name(k): v for k, v in samples.items()})
    assert (config.port, config.heartbeat, config.allowed_origins, config.data_dir) == (
        9,
        2.5,
        ("a", "b"),
        Path("/d"),
    )
