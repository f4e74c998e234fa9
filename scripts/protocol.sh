#!/usr/bin/env bash
# The whole asymmetric protocol at one training schedule on the bundled photos:
# teacher -> stage 1 (paper g_s) -> stage 2 (paper hyperprior path) -> combine -> eval on held-out photos.
#   bash scripts/protocol.sh [smoke|cpu|paper] [OUT]     (default: cpu, results/protocol-<schedule>)
# Stage 2 trains through stage 1's g_s, frozen (the sequential reading, the searches' default);
# STAGE2_SYNTHESIS=teacher trains it through the teacher's g_s (the factorized reading).
# TEACHER=MODEL starts from a teacher already trained (an official LIC_TCM checkpoint, say) instead of training one.
# INHERIT=none|copy|slice: how the light parts start from the teacher's weights (default none; see the README).
set -euo pipefail
schedule=${1:-cpu}
out=${2:-results/protocol-$schedule}
lmbda=${LMBDA:-0.0067}
case "${STAGE2_SYNTHESIS:-stage1}" in
  stage1) through=(--synthesis-from "$out/stage1/codec.pt") ;;
  teacher) through=() ;;
  *) echo "protocol.sh: STAGE2_SYNTHESIS is stage1 or teacher, not '$STAGE2_SYNTHESIS'" >&2; exit 2 ;;
esac
A="${ASYMLLIC:-.venv/bin/asymllic}"
mkdir -p "$out"
teacher=${TEACHER:-$out/teacher/codec.pt}
[ -n "${TEACHER:-}" ] || $A teacher train --schedule "$schedule" --lmbda "$lmbda" --out "$out/teacher"
$A train stage1 --teacher "$teacher" --decoder paper --schedule "$schedule" --lmbda "$lmbda" --out "$out/stage1" --cache "$out/cache" --inherit "${INHERIT:-none}"
$A train stage2 --teacher "$teacher" --hyperprior paper --schedule "$schedule" --lmbda "$lmbda" --out "$out/stage2" --cache "$out/cache" --inherit "${INHERIT:-none}" "${through[@]}"
$A train combine --stage1 "$out/stage1/codec.pt" --stage2 "$out/stage2/codec.pt" --out "$out/asymllic.pt"
max_side=$([ "$schedule" = smoke ] && echo 128 || echo 0)
for name in teacher stage1 stage2 asymllic; do
  case $name in teacher) m=$teacher ;; asymllic) m=$out/asymllic.pt ;; *) m=$out/$name/codec.pt ;; esac
  $A eval "$m" --name "$name" --jpeg --max-side "$max_side" --device cpu --quiet --out "$out/eval-$name.json"
done
