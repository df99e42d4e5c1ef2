#!/usr/bin/env bash
# The GPU work of a lent machine (no network, no tfds folder), stage by stage:
#
#   scripts/device_run.sh OUT STAGE...
#
# stages:
#   setup     install carried wheels (WHEELS, default .whl) and unpack the carried CIFAR-10
#             parts (PARTS, default .gpu) into DEATTACK_CIFAR_ARRAYS (scripts/pack_cifar.py)
#   bench     deattack bench on resnet20: forward limit, 256 images in flight at the paper
#             budget, the peers (scipy, torchattacks, ART on the GPU) on the first 8, scaling
#             and memory
#   wrappers  configs/defenses.py:resnet20_wrappers (median3, repair vs resnet20)
#   train     configs/train_defenses.py resnet20_deadpixel and resnet20_advde, side by side
#   trained   configs/defenses.py:resnet20_trained (the two trained defenses vs resnet20)
#   operators configs/operators.py:followup-resnet20 (issue 7's resnet20 follow-up, 54 units)
#
# wrappers, trained and operators resume from the repository's committed runs (the working
# tree travels with the run): the evaluation folders under docs/results/defense_runs/h200-*
# and the follow-up's store are copied into RUNS first, so a lease only runs what no earlier
# session finished (RESUME=0 starts from nothing). Bring a store back with `deattack merge`,
# a defense folder by copying its new *.sqlite over the committed ones.
#
# Seen on one H200 (2026-11-27): setup 12-18 s; train 161 s (both trainings, compiles
# included); trained 235 s did the default sweep (18 cells, 50 images) and 1 of its 12
# adaptive cells; wrappers 95 s did 3 of 18 cells; bench outran 200 s before printing
# (it needs more, or smaller BENCH_* sizes). Compiling a cell costs seconds on the GPU.
#
# Everything lands in RUNS (default /tmp/deattack-runs); after each stage RUNS is packed
# into OUT/results.tar.gz, so a stage cut short by its time limit (STAGE_SECONDS_<stage>)
# keeps what finished before it. Sizes: IMAGES (defense evaluations), BENCH_* below.
set -u -a
OUT=${1:?usage: scripts/device_run.sh OUT STAGE...}
shift
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
export PYTHONUNBUFFERED=1 PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$REPO
export DEATTACK_CIFAR_ARRAYS=${DEATTACK_CIFAR_ARRAYS:-/tmp/cifar}
# Two trainings share the GPU, and torch runs beside JAX in the bench: no preallocation.
export XLA_PYTHON_CLIENT_PREALLOCATE=${XLA_PYTHON_CLIENT_PREALLOCATE:-false}
PY=${PY:-python3}
RUNS=${RUNS:-/tmp/deattack-runs}
IMAGES=${IMAGES:-50}
BENCH_IMAGES=${BENCH_IMAGES:-256}
BENCH_GENS=${BENCH_GENS:-100}
BENCH_PEER_IMAGES=${BENCH_PEER_IMAGES:-8}
BENCH_PEERS=${BENCH_PEERS:-scipy,torchattacks,art}
BENCH_SCALING_SLOTS=${BENCH_SCALING_SLOTS:-1,16,256,1024}
BENCH_BATCHES=${BENCH_BATCHES:-256,1024,4096,8000,16384,32768}
BENCH_MEMORY=${BENCH_MEMORY:-1024,8192,32768,65536,131072}
TRAIN_SET=${TRAIN_SET:-}    # e.g. "--epochs 1 --set train_limit=256" for a dry run
DEFENSE_SET=${DEFENSE_SET:-}  # e.g. "--set attack.population_size=20" for a dry run (with RESUME=0)
RESUME=${RESUME:-1}
mkdir -p "$RUNS" "$OUT"

log() { echo "[$(date +%T)] $*"; }
save() { tar czf "$OUT/results.tar.gz" -C "$RUNS" . && log "saved $(du -h "$OUT/results.tar.gz" | cut -f1)"; }
limit() { local name="STAGE_SECONDS_$1"; echo "${!name:-600}"; }
deattack() { "$PY" -m deattack "$@"; }
# Copies a committed run (folder or store) to where a stage writes, unless one is there.
resume_from() {
  if [ "$RESUME" = 1 ] && [ -e "$REPO/$1" ] && [ ! -e "$2" ]; then
    mkdir -p "$(dirname "$2")" && cp -r "$REPO/$1" "$2" && rm -f "$2"/*.sqlite-wal "$2"/*.sqlite-shm
    log "resuming $2 from $1"
  fi
}

stage_setup() {
  if compgen -G "${WHEELS:-.whl}/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "${WHEELS:-.whl}"/*.whl
  fi
  [ -d /tmp/site ] && export PYTHONPATH=/tmp/site:$PYTHONPATH
  mkdir -p /tmp/parts
  cp "${PARTS:-.gpu}"/*.npz /tmp/parts/ 2>/dev/null
  ls -la /tmp/parts
  # A split is unpacked once all its parts are here (the train split travels in two calls).
  for split in test train; do
    if [ ! -f "$DEATTACK_CIFAR_ARRAYS/$split.npz" ] && compgen -G "/tmp/parts/cifar10-$split-*.npz" >/dev/null; then
      "$PY" scripts/pack_cifar.py unpack /tmp/parts/cifar10-$split-*.npz --out "$DEATTACK_CIFAR_ARRAYS" || true
    fi
  done
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  "$PY" -c "import jax, flax, optax, numpy; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, 'numpy', numpy.__version__, jax.devices())"
  "$PY" -c "import torch, torchattacks, art; print('torch', torch.__version__, 'torchattacks', torchattacks.__version__, 'art', art.__version__)" || true
}

stage_bench() {
  deattack bench --model resnet20 --images "$BENCH_IMAGES" --slots "$BENCH_IMAGES" --max-gens "$BENCH_GENS" \
    --peers "$BENCH_PEERS" --peer-images "$BENCH_PEER_IMAGES" --batch-sizes "$BENCH_BATCHES" --forward-seconds 1 \
    --scaling-slots "$BENCH_SCALING_SLOTS" --scaling-popsizes 100,400,800 --scaling-gens 5 \
    --memory --memory-batch-sizes "$BENCH_MEMORY" --out "$RUNS/bench_gpu.jsonl" --json
}

stage_wrappers() {
  resume_from docs/results/defense_runs/h200-resnet20_wrappers "$RUNS/defenses/resnet20_wrappers"
  deattack defenses configs/defenses.py:resnet20_wrappers --out "$RUNS/defenses/resnet20_wrappers" --no-figures \
    --set images.count="$IMAGES" --set chunk_images=64 $DEFENSE_SET --json
}

stage_train() {
  mkdir -p "$RUNS/train" "$RUNS/checkpoints"
  local pids=()
  for variant in resnet20_deadpixel resnet20_advde; do
    deattack train --config configs/train_defenses.py:$variant --workdir "$RUNS/train/$variant" \
      --out "checkpoints/$variant" $TRAIN_SET > "$RUNS/train/$variant.log" 2>&1 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; log "training $pid exited $?"; done
  cp checkpoints/resnet20_deadpixel.* checkpoints/resnet20_advde.* "$RUNS/checkpoints/" 2>/dev/null
  tail -n 3 "$RUNS"/train/*.log
}

stage_trained() {
  resume_from docs/results/defense_runs/h200-resnet20_trained "$RUNS/defenses/resnet20_trained"
  deattack defenses configs/defenses.py:resnet20_trained --out "$RUNS/defenses/resnet20_trained" --no-figures \
    --set images.count="$IMAGES" --set chunk_images=64 $DEFENSE_SET --json
}

stage_operators() {
  local store="$RUNS/operators/operators-followup-resnet20.sqlite"
  resume_from docs/results/operator_runs/operators-followup-resnet20.sqlite "$store"
  deattack sweep configs/operators.py:followup-resnet20 --store "$store" --plan | tail -n 1  # what is left
  deattack sweep configs/operators.py:followup-resnet20 --store "$store" \
    --reuse "$REPO/docs/results/operator_runs/operators-h2h-resnet20.sqlite" --json
}

for stage in "$@"; do
  log "stage $stage (limit $(limit "$stage") s)"
  started=$SECONDS
  if [ "$stage" = setup ]; then stage_setup; else
    export -f deattack log resume_from
    timeout "$(limit "$stage")" bash -c "$(declare -f "stage_$stage"); stage_$stage" 2>&1
  fi
  log "stage $stage rc $? after $((SECONDS - started)) s"
  save
done
