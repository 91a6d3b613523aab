#!/usr/bin/env bash
# The owed GPU check of the neural renderer, in one go with a bounded time (see gpu_neural_renderer.py).
#   here (CPU):   python benchmarks/gpu_neural_renderer.py prepare --video PEXELS.mp4 --out bench_data/pexels_256.npz
#   device:       bash benchmarks/gpu_neural_renderer.sh bench_data/pexels_256.npz 6     (carry: bench_data)
# Trains MINUTES (default 6) of wall time, then evaluates setting A on the test 30 %; results in $OUT.
set -euo pipefail
DATA=${1:-bench_data/pexels_256.npz}
MINUTES=${2:-6}
OUTDIR=${OUT:-out}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total --format=csv || true
"$PY" - <<'PY' || { echo "gpu_neural_renderer: needs python with torch (CUDA), numpy, opencv, safetensors, scipy" >&2; exit 3; }
import torch, numpy, cv2, safetensors, scipy  # noqa: F401
assert torch.cuda.is_available(), "torch sees no CUDA device"
print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))
PY
# training stops itself at MINUTES; the margin covers loading, the test pass and start-up
timeout $(( ${MINUTES%.*} * 60 + 150 )) "$PY" benchmarks/gpu_neural_renderer.py run --data "$DATA" --minutes "$MINUTES" --out "$OUTDIR"
