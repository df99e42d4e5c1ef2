#!/usr/bin/env bash
# The GPU campaign (issue 30): what a lent machine (no network, no tfds folder, <= 12 min
# of GPU time) runs first, stage by stage, each under its own time limit, results packed
# after each:
#
#   scripts/device_run.sh OUT [STAGE...]        # no stage: setup profile peers train headline tables
#   DRY_RUN=1 scripts/device_run.sh OUT         # the same stages at tiny sizes, on CPU (a test runs it)
#
# stages (GPU seconds each: STAGE_SECONDS_<stage>, defaults below, 690 s in all):
#   setup     install carried wheels (WHEELS, default .whl), unpack carried CIFAR-10 parts
#             (PARTS, default .gpu) into DEATTACK_CIFAR_ARRAYS, print the device and versions
#   profile   deattack bench on resnet20 with a jax.profiler trace of the timed attack: the
#             forward limit against the attack, 256 and 1,024 images in flight (fp32, and
#             bf16 scoring when `deattack bench --precision` exists)               90 s
#   peers     the peers (scipy, torchattacks, ART) on the same GPU, a few images at the
#             paper's budget                                                         90 s
#   train     victims at par: resnet20 (configs/train.py:resnet20-par, >= 91.25 %), then
#             Su et al.'s allconv, nin and vgg16; resumable across leases           150 s
#   headline  configs/headline.py: 1-pixel untargeted on all 10,000 test images, resnet20,
#             the paper's DE/rand/1 and the default, timed and resumed lease by lease 240 s
#   tables    the papers' tables at 500 images (configs/su2019_sweep.py, keras_table.py)
#             and the full operator grid (configs/operators.py:full), resumed         120 s
#   wrappers, train_defenses, trained, operators: the earlier defense and operator stages.
#
# Every store or run folder a stage writes starts from the one earlier leases brought back
# and committed under docs/results/gpu_runs/ (RESUME=0 starts from nothing), so a lease
# runs only what none finished. Bring results back by unpacking OUT/results.tar.gz into
# docs/results/gpu_runs/ (stores as they are; `deattack merge` joins two of one sweep).
#
# Everything lands in RUNS (default /tmp/deattack-runs); after each stage RUNS is packed
# into OUT/results.tar.gz, so a stage cut short by its time limit keeps what finished.
# Each stage logs the JAX version and device it ran on (write them beside every number).
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
GPU_RUNS=${GPU_RUNS:-docs/results/gpu_runs}
STAGE_SECONDS_profile=${STAGE_SECONDS_profile:-90}
STAGE_SECONDS_peers=${STAGE_SECONDS_peers:-90}
STAGE_SECONDS_train=${STAGE_SECONDS_train:-150}
STAGE_SECONDS_headline=${STAGE_SECONDS_headline:-240}
STAGE_SECONDS_tables=${STAGE_SECONDS_tables:-120}
HEADLINE=configs/headline.py
TRAIN_VARIANTS=${TRAIN_VARIANTS:-resnet20-par allconv nin vgg16}
TABLE_SWEEPS=${TABLE_SWEEPS:-configs/su2019_sweep.py configs/keras_table.py configs/operators.py:full}
PROFILE_SLOTS=${PROFILE_SLOTS:-256 1024}
if [ "${DRY_RUN:-0}" = 1 ]; then  # tiny sizes: the whole campaign in minutes on a CPU
  BENCH_IMAGES=2; BENCH_GENS=2; BENCH_PEER_IMAGES=1; BENCH_PEERS=${BENCH_PEERS_DRY:-scipy}
  BENCH_BATCHES=8,16; BENCH_SCALING_SLOTS=1,2; BENCH_MEMORY=8,16; PROFILE_SLOTS="2"
  TRAIN_VARIANTS="resnet20-par"; TRAIN_SET="--epochs 1 --set train_limit=64 --set test_limit=64 --set batch_size=32"
  HEADLINE=configs/headline.py:dry
  TABLE_SWEEPS="configs/su2019_sweep.py:smoke"
fi
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

versions() {
  "$PY" -c "import jax; print('jax', jax.__version__, jax.devices())"
}

stage_profile() {
  versions
  local precisions="default"
  deattack bench --help | grep -q -- "--precision" && precisions="default bf16"
  for slots in $PROFILE_SLOTS; do
    for precision in $precisions; do
      local extra=()
      [ "$precision" != default ] && extra=(--precision "$precision")
      deattack bench --model resnet20 --images "$slots" --slots "$slots" --max-gens "$BENCH_GENS" --peers none \
        --batch-sizes "$BENCH_BATCHES" --forward-seconds 1 --profile "$RUNS/profile-$slots-$precision" \
        "${extra[@]}" --out "$RUNS/bench_gpu.jsonl" --json
    done
  done
}

stage_peers() {
  versions
  deattack bench --model resnet20 --images "$BENCH_PEER_IMAGES" --slots "$BENCH_PEER_IMAGES" \
    --max-gens "$BENCH_GENS" --peers "$BENCH_PEERS" --peer-images "$BENCH_PEER_IMAGES" --batch-sizes "$BENCH_BATCHES" \
    --forward-seconds 1 --out "$RUNS/bench_peers_gpu.jsonl" --json
}

stage_train() {
  versions
  mkdir -p "$RUNS/train" "$RUNS/checkpoints"
  for variant in $TRAIN_VARIANTS; do
    resume_from "$GPU_RUNS/train/$variant" "$RUNS/train/$variant"
    deattack train --config "configs/train.py:$variant" --workdir "$RUNS/train/$variant" \
      --out "$RUNS/checkpoints/$variant" --overwrite $TRAIN_SET > "$RUNS/train/$variant.log" 2>&1
    log "training $variant exited $?"; tail -n 2 "$RUNS/train/$variant.log"
  done
}

stage_headline() {
  versions
  local store="$RUNS/headline/headline-resnet20-1px.sqlite"
  mkdir -p "$RUNS/headline"
  resume_from "$GPU_RUNS/headline/headline-resnet20-1px.sqlite" "$store"
  deattack sweep "$HEADLINE" --store "$store" --plan | tail -n 1
  deattack sweep "$HEADLINE" --store "$store" --json
}

stage_tables() {
  versions
  mkdir -p "$RUNS/tables"
  for sweep in $TABLE_SWEEPS; do
    local name; name=$(basename "${sweep%%:*}" .py)
    [[ "$sweep" == *:* ]] && name="$name-${sweep#*:}"
    local store="$RUNS/tables/$name.sqlite"
    resume_from "$GPU_RUNS/tables/$name.sqlite" "$store"
    deattack sweep "$sweep" --store "$store" --json
  done
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

stage_train_defenses() {  # the two trained defenses side by side (their checkpoints are shipped now)
  mkdir -p "$RUNS/train" "$RUNS/checkpoints"
  local pids=()
  for variant in resnet20_deadpixel resnet20_advde; do
    deattack train --config configs/train_defenses.py:$variant --workdir "$RUNS/train/$variant" \
      --out "$RUNS/checkpoints/$variant" $TRAIN_SET > "$RUNS/train/$variant.log" 2>&1 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; log "training $pid exited $?"; done
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

stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(setup profile peers train headline tables)
for stage in "${stages[@]}"; do
  log "stage $stage (limit $(limit "$stage") s)"
  started=$SECONDS
  if [ "$stage" = setup ]; then stage_setup; else
    # No unpacked arrays (a machine with a tfds folder, e.g. the CPU dry run): read tfds.
    [ -n "${DEATTACK_CIFAR_ARRAYS:-}" ] && [ ! -f "$DEATTACK_CIFAR_ARRAYS/test.npz" ] && unset DEATTACK_CIFAR_ARRAYS
    export -f deattack log resume_from versions
    timeout "$(limit "$stage")" bash -c "$(declare -f "stage_$stage"); stage_$stage" 2>&1
  fi
  log "stage $stage rc $? after $((SECONDS - started)) s"
  save
done
