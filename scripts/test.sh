#!/usr/bin/env bash
# Install what is missing (Python packages; Debian's chromium, nginx, espeak-ng, sox and ffmpeg
# when run as root), then lint, type-check and run the whole test suite, real models included.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh test
export HF_HUB_OFFLINE=1 PYANNOTE_METRICS_ENABLED=false
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/lint-imports
.venv/bin/python -m pytest "$@"
