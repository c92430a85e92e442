#!/usr/bin/env bash
# Install what is missing, then start the server on http://127.0.0.1:8000 with the bundled
# offline models. Extra arguments go to `transcriber serve` (e.g. --model tiny.en --port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
export PYANNOTE_METRICS_ENABLED=false
exec .venv/bin/transcriber serve "$@"
