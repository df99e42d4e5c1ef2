#!/usr/bin/env bash
# The L0 evaluation protocol at CPU scale (issue 29): robust accuracy against k on lenet,
# untargeted, 10,000 queries an image and k (Sparse-AutoAttack's budget), for Sparse-RS,
# the default DE and the paper's DE/rand/1, on the same images. Resumable: rerun to go on.
#   scripts/l0_protocol.sh [IMAGES] [OUT]
set -euo pipefail
images=${1:-50}
out=${2:-docs/results/l0_runs/lenet-${images}}
ks=1,3,5,10,20
common=(--model lenet --ks "$ks" --images "$images" --mode untargeted)
deattack robustness "${common[@]}" --set search=sparse-rs --popsize 1 --max-gens 9999 \
  --set chunk_generations=100 --out "$out/sparse-rs" --json > /dev/null
deattack robustness "${common[@]}" --popsize 400 --max-gens 24 --out "$out/default" --json > /dev/null
deattack robustness "${common[@]}" --preset su2019 --popsize 400 --max-gens 24 --out "$out/rand1" --json > /dev/null
echo "done: $out"
