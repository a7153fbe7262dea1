#!/usr/bin/env bash
# The check to run on a GPU host that has JAX and no TensorFlow, in about 10 minutes, ending
# with one table. Everything runs under Keras' JAX backend (docs/design.md §4.1):
#   a. tools/accelerator_jax.py peak     bfloat16 matmul FLOP/s
#   b. tools/accelerator_jax.py step     train-step time, tokens/s and MFU (against the peak
#                                        measured in the same process) for `small`, and for
#                                        LSUN's width, heads and window at one block per stack
#   c. (in b)                            the device's peak memory against tools/plan_run.py's
#                                        prediction, for both configs
#   d. dctformer train-portable          a timed `shapes` run (--minutes, default 7.5) of the
#                                        model tools/accelerator_jax.py choose picks from b's
#                                        MFU; its run.json and weights come back under
#                                        OUT/shapes_run/ for `dctformer import-weights`
#
# Usage: tools/accelerator_check.sh [--dry-run] [--out DIR] [--minutes M] [--wheels DIR]
#            [--python PY] [--workers N]
#   --dry-run      every stage at toy size on the CPU (JAX_PLATFORMS=cpu): `tiny` models in
#                  b, a 256² matmul, a few steps of d. The test suite runs it (tests/tools).
#   --out DIR      logs, results.jsonl, table.txt and shapes_run/ (default
#                  outputs/accelerator_check; $OUT when set, as on the device host)
#   --minutes M    wall time of stage d (default 7.5: with its set-up, d alone fits a
#                  10-minute command)
#   --wheels DIR   wheels to install first (default .whl; `tools/accelerator_wheels.sh`
#                  fills it: keras, gin-config and what keras needs beyond the host's image)
#   --python PY    the interpreter with JAX (default python3)
#   --workers N    input worker processes of stage d (default: cores - 2)
#   --stages S     the stages to run, as letters (default abcd). A 10-minute window holds
#                  either abc or d: run `--stages abc`, then `--stages d` (which measures
#                  the small step itself when b did not run before it in the same call)
#
# One command from a clean checkout; the repository is used in place (PYTHONPATH), nothing
# is built. Record the table in docs/benchmarks.md and the run in docs/results.md.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT_DIR="${OUT:-$ROOT/outputs/accelerator_check}"
MINUTES=7.5
WHEELS="$ROOT/.whl"
PY="python3"
DRY_RUN=0
WORKERS=""
STAGES="abcd"

usage() { sed -n '2,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --out) OUT_DIR="${2:?--out needs a folder}"; shift ;;
    --minutes) MINUTES="${2:?--minutes needs a number}"; shift ;;
    --wheels) WHEELS="${2:?--wheels needs a folder}"; shift ;;
    --python) PY="${2:?--python needs an interpreter}"; shift ;;
    --workers) WORKERS="${2:?--workers needs a number}"; shift ;;
    --stages) STAGES="${2:?--stages needs letters from abcd}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "accelerator_check.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if [[ ! "$MINUTES" =~ ^[0-9]+([.][0-9]+)?$ ]]; then
  echo "accelerator_check.sh: --minutes '$MINUTES' is not a number" >&2; exit 2
fi
if [[ -n "$WORKERS" && ! "$WORKERS" =~ ^[0-9]+$ ]]; then
  echo "accelerator_check.sh: --workers '$WORKERS' is not a whole number" >&2; exit 2
fi
if [[ ! "$STAGES" =~ ^[abcd]+$ ]]; then
  echo "accelerator_check.sh: --stages '$STAGES': letters from abcd" >&2; exit 2
fi
if [[ -z "$WORKERS" ]]; then
  WORKERS=$(( $(nproc) > 2 ? $(nproc) - 2 : 0 ))
fi
mkdir -p "$OUT_DIR" || { echo "accelerator_check.sh: cannot create $OUT_DIR" >&2; exit 2; }
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
RESULTS="$OUT_DIR/results.jsonl"
WORK="$(mktemp -d)"  # what the stages pass on: what comes back is in results.jsonl
LOG="$OUT_DIR/log.txt"
: > "$RESULTS"
: > "$LOG"
cd "$ROOT" || exit 2
export PYTHONUNBUFFERED=1 KERAS_BACKEND=jax PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
if [[ $DRY_RUN == 1 ]]; then
  export JAX_PLATFORMS=cpu
fi

say() { echo "$*" | tee -a "$LOG"; }
fail() { say "accelerator_check.sh: $*"; exit 1; }

# --- wheels: listed with their sizes, at most 64 MiB together (what a command may carry) --
if compgen -G "$WHEELS/*.whl" > /dev/null; then
  total=0
  say "wheels in $WHEELS:"
  for wheel in "$WHEELS"/*.whl; do
    size=$(stat -c %s "$wheel")
    total=$(( total + size ))
    say "  $(basename "$wheel")  $(( (size + 1023) / 1024 )) KiB"
  done
  say "  total $(( (total + 1048575) / 1048576 )) MiB"
  (( total <= 64 * 1048576 )) || fail "the wheels are over 64 MiB"
  if [[ $DRY_RUN == 0 ]]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/accelerator_site "$WHEELS"/*.whl >> "$LOG" 2>&1 \
      || fail "installing the wheels failed (see $LOG)"
    export PYTHONPATH="$PYTHONPATH:/tmp/accelerator_site"
  fi
fi
"$PY" - >> "$LOG" 2>&1 <<'EOF' || fail "jax, keras and gin must import (see $LOG); carry the wheels"
import gin, jax, keras
print("jax", jax.__version__, "keras", keras.__version__, "backend", keras.backend.backend(),
      "devices", jax.devices())
EOF
tail -1 "$LOG"

jax_tool() { "$PY" tools/accelerator_jax.py "$@" 2>> "$LOG" | tail -1; }

# --- a. matmul peak ----------------------------------------------------------------------
if [[ $DRY_RUN == 1 ]]; then PEAK_SIZE=256; else PEAK_SIZE=8192; fi
if [[ $STAGES == *a* ]]; then
  say "a. bfloat16 matmul peak (${PEAK_SIZE}²)"
  jax_tool peak --size "$PEAK_SIZE" --dtype bfloat16 | tee -a "$RESULTS" || fail "stage a failed"
fi

# --- b + c. train steps, MFU, memory against the plan --------------------------------------
LSUN_DEPTH=(--gin_bindings "architecture.encoder_spec = [(1, 2)]"
            --gin_bindings "architecture.channel_spec = [(1, 2)]"
            --gin_bindings "architecture.position_spec = [(1, 2)]"
            --gin_bindings "architecture.value_spec = [(1, 2)]")
if [[ $DRY_RUN == 1 ]]; then
  SMALL=(--config tiny --label small --batch 2 --steps 2)
  WIDE=(--config tiny --label lsun-width --batch 2 --steps 2 "${LSUN_DEPTH[@]}")
else
  SMALL=(--config small --batch 32 --steps 20)
  WIDE=(--config lsun --label lsun-width --batch 8 --steps 10 --remat "${LSUN_DEPTH[@]}")
fi
small_step() {
  jax_tool step "${SMALL[@]}" --bf16 --peak-size "$PEAK_SIZE" > "$WORK/step_small.json" \
    || fail "stage b (small) failed (see $LOG)"
  [[ -s "$WORK/step_small.json" ]] || fail "stage b (small) printed nothing (see $LOG)"
  cat "$WORK/step_small.json" | tee -a "$RESULTS"
}
if [[ $STAGES == *b* || $STAGES == *c* ]]; then
  say "b/c. train steps in bfloat16: ${SMALL[*]:0:2} and ${WIDE[*]:0:2} (LSUN width, one block per stack)"
  small_step
  jax_tool step "${WIDE[@]}" --bf16 --peak-size "$PEAK_SIZE" | tee -a "$RESULTS" \
    || fail "stage b (lsun-width) failed (see $LOG)"
fi

# --- d. the timed shapes run ---------------------------------------------------------------
if [[ $STAGES == *d* ]]; then
  [[ -s "$WORK/step_small.json" ]] || small_step  # choose reads the small step
  RUN_DIR="$OUT_DIR/shapes_run"
  rm -rf "$RUN_DIR"
  jax_tool choose --small-json "$WORK/step_small.json" --minutes "$MINUTES" \
    > "$WORK/choose.json" || fail "choosing the stage d model failed (see $LOG)"
  [[ -s "$WORK/choose.json" ]] || fail "choosing the stage d model printed nothing (see $LOG)"
  cat "$WORK/choose.json" | tee -a "$RESULTS"
  CHOSEN=(--gin_file gin/models/small.gin --gin_file gin/data/shapes.gin
          --gin_file gin/runs/train.gin --gin_file gin/runs/quickstart.gin)
  while IFS= read -r line; do CHOSEN+=(--gin_bindings "$line"); done < <(
    "$PY" -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1]))["gin_bindings"]))' \
      "$WORK/choose.json")
  if [[ $DRY_RUN == 1 ]]; then
    CHOSEN+=(--gin_bindings "train.batch_size = 4" --gin_bindings "build_sequences.num_examples = 64")
    LENGTH=(--steps 6 --steps_per_epoch 3)
  else
    CHOSEN+=(--gin_bindings "train.mixed_precision = True")
    # The schedule spans --steps; --minutes stops the run: steps from the estimate, +20 %.
    STEPS=$("$PY" -c 'import json, sys; c = json.load(open(sys.argv[1])); print(max(100, int(1.2 * float(sys.argv[2]) * 60000 / c["estimated_step_ms"])))' \
      "$WORK/choose.json" "$MINUTES")
    LENGTH=(--steps "$STEPS" --minutes "$MINUTES" --steps_per_epoch 200)
  fi
  say "d. timed shapes run: ${LENGTH[*]}, $WORKERS input workers"
  "$PY" -m dctformer_tf.cli.main train-portable --model_dir "$RUN_DIR" "${CHOSEN[@]}" \
    "${LENGTH[@]}" --workers "$WORKERS" >> "$LOG" 2>&1 || fail "stage d failed (see $LOG)"
  "$PY" -c 'import json, sys; r = json.load(open(sys.argv[1])); r["stage"] = "train"; print(json.dumps(r))' \
    "$RUN_DIR/portable_run.json" | tee -a "$RESULTS"
fi

# --- the table -----------------------------------------------------------------------------
"$PY" - "$RESULTS" <<'EOF' | tee "$OUT_DIR/table.txt"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
for r in rows:
    if r["stage"] == "peak":
        print(f"matmul peak {r['dtype']} {r['size']}²: {r['tflops']} TFLOP/s on {r['device']}")
print(f"{'step':<12}{'batch':>6}{'params':>13}{'step ms':>10}{'loss tok/s':>12}{'MFU':>8}"
      f"{'peak GiB':>10}{'plan GiB':>10}{'meas/plan':>10}")
for r in rows:
    if r["stage"] == "step":
        print(f"{r['label']:<12}{r['batch']:>6}{r['parameters']:>13,}{r['step_ms']:>10}"
              f"{r['loss_tokens_per_s']:>12}{r['mfu']:>8.1%}{str(r['peak_gib']):>10}"
              f"{str(r.get('planned_gib')):>10}{str(r.get('measured_over_plan')):>10}")
for r in rows:
    if r["stage"] == "train":
        print(f"shapes run: {r['steps']} steps, {r['tokens_seen']:,} loss tokens in "
              f"{r['wall_seconds']} s ({r['parameters']:,} parameters, step "
              f"{r['step_ms_median']} ms); last loss {r['loss'][-1] if r['loss'] else None}")
EOF
if [[ $STAGES == *d* ]]; then
  say "weights and run.json: $RUN_DIR (at home: dctformer import-weights --model_dir DIR)"
fi
