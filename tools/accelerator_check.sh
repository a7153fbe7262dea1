#!/usr/bin/env bash
# The check to run on a lent GPU, in at most about 8 minutes, ending with one table:
#   1. pytest -m accelerator        the device against the CPU (tests/test_accelerator.py)
#   2. tools/bench_model.py         the `small` train step under XLA, float32 and bfloat16
#   3. tools/plan_run.py            the largest per-device batch of a Table 3 model that fits
#   4. tools/accelerator_step.py    train steps of that model at full depth and that batch,
#                                   measured peak memory against the plan
#   5. tools/bench_sampling.py      cached sampling against the no-cache loop
#
# Usage: tools/accelerator_check.sh [--dry-run] [--out DIR] [--config NAME]
#            [--memory-gib N] [--python PY] [--no-remat] [--float32]
#   --dry-run      on a machine without an accelerator: check the tools and their arguments
#                  (each tool's --help, the plan), skip every device step
#   --out DIR      logs and JSON of each step (default outputs/accelerator_check)
#   --config NAME  the Table 3 model of step 4 (default lsun; any gin/models/NAME.gin)
#   --memory-gib   device memory for the plan (default: what the GPU reports)
#   --python PY    the interpreter that has this project installed (default python3)
#
# It needs TensorFlow with GPU support importable by PY (`pip install -e .` of this
# repository); it says so and stops when it is not. Record the table in docs/benchmarks.md.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/outputs/accelerator_check"
CONFIG="lsun"
MEMORY_GIB=""
PY="python3"
DRY_RUN=0
REMAT=1
PRECISION="bfloat16"

usage() { sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --out) OUT="${2:?--out needs a folder}"; shift ;;
    --config) CONFIG="${2:?--config needs a name}"; shift ;;
    --memory-gib) MEMORY_GIB="${2:?--memory-gib needs a number}"; shift ;;
    --python) PY="${2:?--python needs an interpreter}"; shift ;;
    --no-remat) REMAT=0 ;;
    --float32) PRECISION="float32" ;;
    -h|--help) usage; exit 0 ;;
    *) echo "accelerator_check.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if [[ ! -f "$ROOT/gin/models/$CONFIG.gin" ]]; then
  echo "accelerator_check.sh: --config '$CONFIG': no gin/models/$CONFIG.gin" >&2; exit 2
fi
if [[ -n "$MEMORY_GIB" && ! "$MEMORY_GIB" =~ ^[0-9]+([.][0-9]+)?$ ]]; then
  echo "accelerator_check.sh: --memory-gib '$MEMORY_GIB' is not a number" >&2; exit 2
fi
mkdir -p "$OUT" || { echo "accelerator_check.sh: cannot create $OUT" >&2; exit 2; }
cd "$ROOT" || exit 2
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"

ROWS=()
row() { ROWS+=("$(printf '%-24s %-8s %7s  %s' "$1" "$2" "$3" "$4")"); }

# step NAME LIMIT_S FIGURE_COMMAND -- COMMAND...: runs COMMAND under a time limit, logs it to
# $OUT/NAME.log, and records a row whose figure is FIGURE_COMMAND's output on that log.
step() {
  local name="$1" limit="$2" figure="$3"; shift 4
  local start=$SECONDS status=ok
  timeout -k 15 "$limit" "$@" >"$OUT/$name.log" 2>&1 || status="FAIL($?)"
  row "$name" "$status" "$((SECONDS - start))s" "$(eval "$figure" <"$OUT/$name.log" 2>/dev/null)"
}

# The environment: TensorFlow and its devices, or why not.
if ! ENV_LINE="$("$PY" -c 'import tensorflow as tf; g = tf.config.list_physical_devices("GPU"); print(tf.__version__, len(g))' 2>"$OUT/environment.log")"; then
  echo "accelerator_check.sh: $PY cannot import tensorflow ($(tail -n 1 "$OUT/environment.log"))." >&2
  echo "Install this project on the machine first (pip install -e .); on a machine that cannot" >&2
  echo "fetch packages, TensorFlow and its CUDA libraries must be brought as wheels." >&2
  exit 3
fi
read -r TF_VERSION NUM_GPUS <<<"$ENV_LINE"
if [[ "$NUM_GPUS" == "0" && "$DRY_RUN" == "0" ]]; then
  echo "accelerator_check.sh: TensorFlow $TF_VERSION sees no GPU; use --dry-run to check the tools" >&2
  exit 3
fi
if [[ -z "$MEMORY_GIB" ]]; then
  if [[ "$NUM_GPUS" != "0" ]] && command -v nvidia-smi >/dev/null; then
    MEMORY_GIB="$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -n 1 | awk '{printf "%.1f", $1 / 1024}')"
  else
    MEMORY_GIB=16
  fi
fi
row "environment" ok 0s "TensorFlow $TF_VERSION, $NUM_GPUS GPU(s), plan for $MEMORY_GIB GiB"

# The plan: the largest per-device batch of CONFIG that fits, and its predicted bytes.
PLAN="$("$PY" - "$CONFIG" "$MEMORY_GIB" "$PRECISION" "$REMAT" 2>"$OUT/plan.log" <<'EOF'
import sys
sys.path.insert(0, "tools")
import plan_run

name, memory_gib, precision, remat = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
model = plan_run.load_table3([name])[0]
budget = int(memory_gib * plan_run.GIB * 0.9)
batch = plan_run.largest_batch(model, precision, remat, budget)
planned = plan_run.total(plan_run.replica_bytes(model, max(batch, 1), precision, remat))
print(batch, f"{planned / plan_run.GIB:.2f}")
EOF
)"
if read -r BATCH PLANNED_GIB <<<"$PLAN" && [[ "$BATCH" =~ ^[0-9]+$ ]]; then
  row "plan_run" ok - "$CONFIG $PRECISION remat=$REMAT: batch $BATCH per device, plan $PLANNED_GIB GiB"
else
  row "plan_run" "FAIL(plan)" - "$(tail -n 1 "$OUT/plan.log")"
  BATCH=0
fi

STEP_ARGS=(--config "$CONFIG" --batch "$BATCH" --planned-gib "${PLANNED_GIB:-0}" --json)
[[ "$REMAT" == "1" ]] && STEP_ARGS+=(--remat)
[[ "$PRECISION" == "bfloat16" ]] && STEP_ARGS+=(--bf16)
if [[ "$DRY_RUN" == "1" ]]; then
  for tool in bench_model bench_sampling accelerator_step plan_run; do
    step "$tool --help" 60 "grep -m 1 ^usage:" -- "$PY" "tools/$tool.py" --help
  done
  step "pytest collect" 120 "tail -n 1" -- "$PY" -m pytest -q -m accelerator --collect-only tests/test_accelerator.py
  row "device steps" skipped - "dry run: pytest -m accelerator, bench_model, accelerator_step, bench_sampling"
else
  step "pytest -m accelerator" 150 "tail -n 1" -- "$PY" -m pytest -q -m accelerator tests/test_accelerator.py
  step "bench_model" 120 "grep -E '^(XLA|bf16 XLA) ' | tr -s ' ' | paste -sd ';'" -- \
    "$PY" tools/bench_model.py --batch 64 --steps 10 --modes "XLA,bf16 XLA"
  if [[ "$BATCH" -gt 0 ]]; then
    step "accelerator_step" 240 "tail -n 1" -- "$PY" tools/accelerator_step.py "${STEP_ARGS[@]}"
  else
    row "accelerator_step" skipped - "the plan fits no batch of $CONFIG in $MEMORY_GIB GiB"
  fi
  step "bench_sampling" 90 "tail -n 3 | paste -sd ';'" -- "$PY" tools/bench_sampling.py --models tiny,small
fi

printf '\n%-24s %-8s %7s  %s\n' "step" "status" "time" "figures (logs in $OUT)"
printf '%s\n' "${ROWS[@]}" | tee "$OUT/table.txt"
if printf '%s\n' "${ROWS[@]}" | grep -q ' FAIL('; then exit 1; fi
