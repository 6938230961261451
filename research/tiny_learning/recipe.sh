#!/usr/bin/env bash
# Best recipe found (see FINDINGS.md, E11+E12): pre-render once (seed 0 = held-out split source,
# seed 1 = extra training pairs), stage 1 (tower on masks), stage 2 (LM verdict, tower frozen).
# Usage: bash research/tiny_learning/recipe.sh [stage1_minutes=10] [stage2_minutes=1] [extra stage-1 args...]
set -euo pipefail
cd "$(dirname "$0")/../.."
S1=${1:-10}; S2=${2:-1}; shift 2 || true
PY=.venv/bin/python
DATA=/tmp/zoo8x112.npz; EXTRA=/tmp/zoo8x112_s1.npz
OUT=${OUT:-/tmp/tl/recipe}
[ -f "$DATA" ] || $PY research/tiny_learning/prerender.py --pairs-per-generator 400 --seed 0 --out "$DATA" --workers 2
[ -f "$EXTRA" ] || $PY research/tiny_learning/prerender.py --pairs-per-generator 600 --seed 1 --out "$EXTRA" --workers 2
$PY research/tiny_learning/stage1.py --data "$DATA" --extra-data "$EXTRA" --flip --threads 2 --minutes "$S1" \
    --frames overlap --init tdiff --lr 3e-4 --downsample 2 --save "$OUT/stage1" --name "recipe stage1 ${S1}min 2thr" "$@"
$PY research/tiny_learning/stage2.py --data "$DATA" --ckpt "$OUT/stage1" --mode frozen --threads 2 \
    --minutes "$S2" --lr 1e-3 --save "$OUT/stage2" --name "recipe stage2 frozen ${S2}min 2thr"
$PY research/tiny_learning/check_generate.py "$OUT/stage2" 100
