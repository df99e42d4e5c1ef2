#!/usr/bin/env bash
# The paper-config runs reported in the engine issue's note (Su et al. 2019:
# DE/rand/1, F = 0.5, no crossover, population 400, 100 generations), on the
# correctly classified images among the first N CIFAR-10 test images.
# Each appends one JSON summary line to docs/results/engine_runs.jsonl.
# Resumable: rerunning skips finished images (results in runs/engine-*).
set -euo pipefail
cd "$(dirname "$0")/.."
DEATTACK=${DEATTACK:-.venv/bin/deattack}
OUT=docs/results/engine_runs.jsonl
run() {
  local name=$1; shift
  echo "== $name: deattack attack $*" >&2
  "$DEATTACK" attack --preset su2019 "$@" --out "docs/results/engine/$name" --json --figure "docs/results/engine/$name/examples.png" \
    | python3 -c "import json,sys; d=json.loads(sys.stdin.read()); d['run']='$name'; d['command']='deattack attack --preset su2019 $*'; print(json.dumps(d))" >> "$OUT"
}
targets=${*:-lenet}
for target in $targets; do
  case $target in
    lenet)
      run lenet-1px --model lenet --pixels 1 --mode untargeted --images 100
      run lenet-3px --model lenet --pixels 3 --mode untargeted --images 100
      run lenet-5px --model lenet --pixels 5 --mode untargeted --images 100
      run lenet-1px-targeted --model lenet --pixels 1 --mode targeted --targets all --images 20
      ;;
    resnet20)
      run resnet20-1px --model resnet20 --pixels 1 --mode untargeted --images 100
      ;;
  esac
done
