#!/usr/bin/env bash
# The GPU check (scripts/gpu_check.py) on any CUDA machine, also one without network:
#   bash scripts/gpu_check.sh [--device cuda] [--steps 200] [--out DIR]
# It uses the packages of the Python it runs ($PYTHON, else python3) and, when compressai, optuna,
# pytorch_msssim or bjontegaard are missing there, installs the binary wheels in .whl/ into a folder of its own
# (nothing is built there; Ray and plotly are not needed). To run it on your own GPU machine:
#   1. there, with the Python that will run it (torch with CUDA installed):
#        python3 -m pip freeze > freeze.txt; python3 --version; ldd --version   # the Python and glibc versions
#   2. on a networked machine, in a checkout of this project, with that file:
#        make wheels TARGET=freeze.txt PYTHON_VERSION=3.12 PLATFORM=manylinux_2_34_x86_64
#      (PLATFORM: manylinux_2_<glibc minor>_<arch>); scripts/check_wheels.py then checks that the wheels and
#      freeze.txt together hold everything the check imports
#   3. copy the checkout, .whl/ included, to the GPU machine
#   4. there, in the copy: bash scripts/gpu_check.sh --device cuda
# The same script runs in the test suite on the CPU:
#   bash scripts/gpu_check.sh --device cpu --steps 2 --crop 128 --batch 1 --search-schedule smoke
set -euo pipefail
export GPU_CHECK_T0=${GPU_CHECK_T0:-$(date +%s.%N)}  # the check's time budget counts from here, pip included
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c "import compressai, optuna, pytorch_msssim, bjontegaard" 2>/dev/null; then
  ls .whl/*.whl >/dev/null 2>&1 || { echo "gpu_check: compressai/optuna missing and no .whl/ here: run" \
    "'make wheels TARGET=freeze.txt' on a networked machine first (see this script's header)" >&2; exit 2; }
  site=${TMPDIR:-/tmp}/asymllic-site
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec "$PY" scripts/gpu_check.py "$@"
