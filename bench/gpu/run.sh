#!/bin/bash
# One-shot GPU check of bench/bench_gpu.py on the device machine (python3 = 3.12, torch cu130).
# Runs whichever payload the call carried (build it with bench/gpu/prepare.sh; git-ignored):
#   .gpu/a  a.tar.xz: ctranslate2 4.8.5 (cp312 wheel, unpacked), faster-whisper 1.2.1, a PyAV
#           stub, and tiny.en with int8-stored weights (dequantized to float16 on load)
#           -> parts transcribe + align on cuda, float16 (the project's load_model choice)
#   .gpu/b  pyannote.audio 4.0.7 and the pure-python wheels it imports, plus the bundled
#           segmentation-3.0 + CAM++ files -> part diarize on cuda
# Results: $OUT/log.txt, $OUT/bench_a.json (+ bench_a_cpu.json: CPU baseline), $OUT/bench_b.json.
# Knobs: RUN_PARTS (ab; a or b alone), BENCH_DEVICE (cuda), BENCH_SECONDS (300), BENCH_REPEAT (3), CPU_BASELINE (1),
# A_TIMEOUT (300), CPU_TIMEOUT (150), B_TIMEOUT (240): seconds per python process.
# Two device calls (64 MiB each), from the repository root:
#   A: RUN_PARTS=a BENCH_SECONDS=300 BENCH_REPEAT=3 bash bench/gpu/run.sh  carry .gpu/a bench/gpu, timeout 540
#   B: RUN_PARTS=b BENCH_SECONDS=300 BENCH_REPEAT=3 bash bench/gpu/run.sh  carry .gpu/b, timeout 300
set -u
cd "$(dirname "$0")/../.."  # the repository root: the payload is read from .gpu/ there
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
G=/tmp/gpu
mkdir -p "$G/shim" "$G/nvcache"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 PYANNOTE_METRICS_ENABLED=false
export CUDA_CACHE_PATH="$G/nvcache" CUDA_CACHE_MAXSIZE=4294967296
SECS=${BENCH_SECONDS:-300}
REPEAT=${BENCH_REPEAT:-3}
DEV=${BENCH_DEVICE:-cuda}
# Which payloads to run: a warm machine keeps an earlier call's .gpu/a, so say which.
RUN=${RUN_PARTS:-ab}
T0=$(date +%s)
stamp() { echo "--- [$(($(date +%s) - T0)) s] $*"; }

stamp "start $(date -u +%FT%TZ)"
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv || true
python3 -V
SITES=$(python3 -c "import site; print(' '.join(site.getsitepackages()))")
echo "python3 site-packages: $SITES"
STATUS=0

if [[ $RUN == *a* ]] && [ -f .gpu/a/a.tar.xz ]; then
  stamp "unpacking .gpu/a/a.tar.xz"
  rm -rf "$G/a"
  python3 -c "import tarfile; tarfile.open('.gpu/a/a.tar.xz').extractall('$G/a', filter='tar')" || STATUS=1
  # ctranslate2 4.8.5 (newest on PyPI) is built for CUDA 12: it dlopens libcublas.so.12 and
  # needs no cuDNN. The image has CUDA 13's cuBLAS (torch cu130). Use a real cuBLAS 12 if one
  # exists, else point libcublas.so.12 at libcublas.so.13 (every symbol ct2 takes exists there,
  # same signatures; cudart is linked into ct2 statically).
  C12=$(find $SITES /usr/local/cuda*/ /usr/lib/x86_64-linux-gnu -name 'libcublas.so.12' 2>/dev/null | head -1)
  C13=$(find $SITES /usr/local/cuda*/ /usr/lib/x86_64-linux-gnu -name 'libcublas.so.13' 2>/dev/null | head -1)
  echo "libcublas.so.12: ${C12:-none}; libcublas.so.13: ${C13:-none}"
  LIBS=""
  if [ -n "$C12" ]; then
    LIBS=$(dirname "$C12")
  elif [ -n "$C13" ]; then
    ln -sf "$C13" "$G/shim/libcublas.so.12"
    LIBS="$G/shim:$(dirname "$C13")"
    echo "using the shim $G/shim/libcublas.so.12 -> $C13"
  fi
  stamp "bench A: transcribe + align on $DEV, ${SECS} s of speech"
  LD_LIBRARY_PATH="$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    PYTHONPATH="$G/a/site:$G/a/stub" CT2_VERBOSE=1 \
    timeout -k 10 "${A_TIMEOUT:-300}" python3 bench/bench_gpu.py --device "$DEV" \
    --compute-type project --model "$G/a/models/tiny.en-int8" --models-dir "$G/models" \
    --parts transcribe,align --seconds "$SECS" --repeat "$REPEAT" --compare-sequential \
    --out "$OUT/bench_a.json"
  rc=$?; stamp "bench A exit $rc"; [ $rc -eq 0 ] || STATUS=1
  if [ "${CPU_BASELINE:-1}" = 1 ] && [ "$DEV" != cpu ]; then
    stamp "bench A baseline: the same on this machine's CPU (int8), 1 run"
    PYTHONPATH="$G/a/site:$G/a/stub" timeout -k 10 "${CPU_TIMEOUT:-150}" python3 \
      bench/bench_gpu.py --device cpu --compute-type project --model "$G/a/models/tiny.en-int8" \
      --models-dir "$G/models" --parts transcribe,align --seconds "$SECS" --repeat 1 \
      --out "$OUT/bench_a_cpu.json"
    stamp "bench A baseline exit $?"
  fi
fi

if [[ $RUN == *b* ]] && ls .gpu/b/*.whl >/dev/null 2>&1; then
  stamp "installing .gpu/b wheels"
  rm -rf "$G/b"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$G/b" .gpu/b/*.whl || STATUS=1
  stamp "bench B: diarize on $DEV, ${SECS} s of three voices"
  PYTHONPATH="$G/b" timeout -k 10 "${B_TIMEOUT:-240}" python3 bench/bench_gpu.py \
    --device "$DEV" --models-dir .gpu/b/models --parts diarize --seconds "$SECS" \
    --repeat "$REPEAT" --out "$OUT/bench_b.json"
  rc=$?; stamp "bench B exit $rc"; [ $rc -eq 0 ] || STATUS=1
fi

nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv || true
stamp "done, status $STATUS"
exit $STATUS
