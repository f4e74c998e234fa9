#!/usr/bin/env bash
# The GPU check (scripts/gpu_check.py): on a GPU machine without network, run as
#   bash scripts/gpu_check.sh [--device cuda] [--steps 200] [--out DIR]
# after `make wheels` here: the binary wheels in .whl/ (CPython 3.12, manylinux x86-64; checked against the
# machine's packages, scripts/device_packages.txt, by scripts/check_wheels.py) travel with the source tree and
# are installed into a folder of their own when the packages are missing; nothing is built there. Ray and
# plotly are not needed. The same script runs in the test suite on the CPU:
#   bash scripts/gpu_check.sh --device cpu --steps 2 --crop 128 --batch 1 --search-schedule smoke
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c "import compressai, optuna, thop, pytorch_msssim, bjontegaard" 2>/dev/null; then
  ls .whl/*.whl >/dev/null 2>&1 || { echo "gpu_check: compressai/optuna missing and no .whl/ here: run 'make wheels' first" >&2; exit 2; }
  site=${TMPDIR:-/tmp}/asymllic-site
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec "$PY" scripts/gpu_check.py "$@"
