#!/usr/bin/env bash
# The GPU acceptance check (docs/development.md): on one GPU, in under 8 minutes,
#   1. the test suite with CUDA visible;
#   2. `benchmark.py speed` for resnet50 at the course protocol's shapes (model-only vs end to end, train and eval);
#   3. `benchmark.py speed --protocol linear` (feature extraction at 224 x 224, whole image), with the JPEGs decoded
#      in the workers (torchvision), then with --decode device (nvJPEG, batched, on the GPU);
#   4. a 2-epoch synthetic training run in bf16 (resnet18);
#   5. a --deterministic run done twice, its metrics compared (MATCH / DIFFER).
# Everything goes into one folder (default gpu_check_out/, or $1); a summary table ends the output
# and is kept in summary.txt. Exit status 1 when a step failed or the two runs differ.
#
# Without a GPU it runs a CPU fallback: no test suite (run pytest on its own), 2 timed steps and one
# repeat for `benchmark.py speed`, and training on a small synthetic set generated into the folder.
# GPU_CHECK_QUICK=1 shrinks every step to a tiny model on a tiny set (a minute or two on a CPU):
# a check of the script itself, not of the hardware.
# Other settings: PYTHON (default python), GPU_CHECK_PYTEST_TIMEOUT (seconds, default 240),
# GPU_CHECK_STEP_TIMEOUT (seconds per benchmark step, default 300).
set -euo pipefail

OUT=${1:-gpu_check_out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")/.."  # the repository root: benchmark.py and tests/ are there
PY=${PYTHON:-python}
QUICK=${GPU_CHECK_QUICK:-0}
PYTEST_TIMEOUT=${GPU_CHECK_PYTEST_TIMEOUT:-240}
STEP_TIMEOUT=${GPU_CHECK_STEP_TIMEOUT:-300}

CUDA=$("$PY" -c "import torch; print(torch.cuda.is_available())")
if [[ $QUICK == 1 ]]; then
    MODE="quick (GPU_CHECK_QUICK=1: tiny model, tiny set)"
elif [[ $CUDA == True ]]; then
    MODE="gpu ($("$PY" -c "import torch; print(torch.cuda.get_device_name(0))"))"
else
    MODE="cpu fallback (no CUDA device)"
fi
echo "gpu_check: $MODE; writing to $OUT"

# -- what each mode runs ---------------------------------------------------------------------
SPEED_MODEL=resnet50
TRAIN_MODEL=resnet18
COURSE_SHAPE=()  # speed's default: the course protocol's, resize 400 -> FiveCrop 224, batch 8, eval batch 16
if [[ $QUICK == 1 ]]; then
    SPEED_MODEL=test_resnet
    TRAIN_MODEL=test_resnet
    SYNTH=(--train 24 --val 12)
    SPEED=(--speed-steps 2 --speed-repeats 1 --num-workers 0)
    COURSE_SHAPE=(--resize 40 --crop 32)
    TRAIN=(--resize 32 --crop 32 --crops full --batch-size 8 --lr 1e-3 --num-workers 0)
    DETERMINISTIC=(--epochs 1)
elif [[ $CUDA == True ]]; then
    SYNTH=()  # the standard synthetic set (benchmark.py --data synthetic, data/synthetic, generated once)
    SPEED=()  # 20 timed steps after 3 warm-up steps, 3 repeats
    TRAIN=()  # the synthetic set's CPU-sized protocol: 112 x 112, batch 16, Adam 1e-3
    DETERMINISTIC=(--epochs 1)
else
    SYNTH=(--train 160 --val 64)
    SPEED=(--speed-steps 2 --speed-repeats 1)
    TRAIN=(--resize 112 --crop 112 --crops full --batch-size 16 --lr 1e-3)  # as the CPU-sized protocol
    DETERMINISTIC=(--epochs 1 --limit-train-batches 4)
fi

# -- steps and the summary -------------------------------------------------------------------
NAMES=() STATUSES=() SECONDS_TAKEN=() FIGURES=()

record() {  # record NAME STATUS SECONDS FIGURE
    NAMES+=("$1") STATUSES+=("$2") SECONDS_TAKEN+=("$3") FIGURES+=("$4")
    echo "-- $1: $2 (${3}s) $4"
}

run_step() {  # run_step NAME LOG COMMAND...: runs it with its output in LOG; sets RC and TOOK
    local name=$1 log=$2
    shift 2
    echo "== $name: $*"
    local start=$SECONDS
    RC=0
    "$@" >"$log" 2>&1 || RC=$?
    TOOK=$((SECONDS - start))
    if [[ $RC != 0 ]]; then
        echo "   exit status $RC; the last lines of $log:"
        tail -n 5 "$log" | sed 's/^/   | /'
    fi
}

status_of() {  # status_of RC: OK, TIMEOUT or FAIL(rc)
    case $1 in
        0) echo OK ;;
        124) echo TIMEOUT ;;
        *) echo "FAIL($1)" ;;
    esac
}

speed_figure() {  # speed_figure SPEED_JSON: the first row's train and eval rates, model-only and end to end
    [[ -f $1 ]] || { echo "no $1: see the log"; return; }
    "$PY" - "$1" <<'EOF' || echo "unreadable: $1"
import json, sys
rows = json.load(open(sys.argv[1]))
row = rows[0]
if "error" in row:
    print(row["error"][:100])
    sys.exit()
text = f"{row['model']} {row['precision']}:"
if "model_only_train_images_per_s" in row:  # feature extraction (--protocol linear) has no train side
    text += (f" train {row['model_only_train_images_per_s']:g} model-only / {row['e2e_train_images_per_s']:g} e2e"
             " img/s,")
text += f" eval {row['model_only_eval_images_per_s']:g} / {row['e2e_eval_images_per_s']:g}"
try:  # the data pipeline alone (speed_data.json beside speed.json): img/s of one worker per loader
    data = json.load(open(sys.argv[1].replace("speed.json", "speed_data.json")))["data_only"]
    text += "".join(f", data-only {r['stage']} {r['images_per_s']:g}/worker" for r in data if r["workers"] == 1)
except (OSError, KeyError, ValueError):
    pass
print(text)
EOF
}

result_figure() {  # result_figure RESULT_JSON: mAP, train img/s and precision of a run
    [[ -f $1 ]] || { echo "no $1: see the log"; return; }
    "$PY" - "$1" <<'EOF' || echo "unreadable: $1"
import json, sys
r = json.load(open(sys.argv[1]))
if r["status"] != "ok":
    print(f"failed: {(r.get('error') or '')[:100]}")
    sys.exit()
precision = (r.get("environment") or {}).get("precision", "?")
rate = (r.get("throughput") or {}).get("train_images_per_s")
print(f"mAP {r['metrics']['mAP']:.4f}, train {rate} img/s, {precision}, {r['config']['epochs']} epoch(s)")
EOF
}

# 0. the data: the standard synthetic set on a GPU, a small one generated into OUT otherwise
if [[ ${#SYNTH[@]} == 0 ]]; then
    DATA=(--data synthetic)
    LINEAR_SPLITS=()  # --data synthetic: the frozen protocols' synthetic variant, train -> val
else
    run_step "synthetic set" "$OUT/synth.log" "$PY" -m voc synth --out "$OUT/synthetic" "${SYNTH[@]}"
    record "synthetic set" "$(status_of $RC)" "$TOOK" "${SYNTH[*]} in $OUT/synthetic"
    DATA=(--data "$OUT/synthetic")
    LINEAR_SPLITS=(--year 2012 --train-split train --eval-split val)  # a folder reads as real VOC: VOC2007 otherwise
fi

# 1. the test suite with CUDA visible
if [[ $CUDA == True && $QUICK != 1 ]]; then
    run_step "test suite" "$OUT/pytest.log" timeout "$PYTEST_TIMEOUT" "$PY" -m pytest -q -p no:cacheprovider
    record "test suite" "$(status_of $RC)" "$TOOK" "$(grep -E '(passed|failed|error)' "$OUT/pytest.log" | tail -n 1)"
else
    echo "== test suite: skipped (no GPU, or GPU_CHECK_QUICK=1): run 'python -m pytest' on its own"
    record "test suite" SKIP 0 "no GPU: run pytest on its own"
fi

# 2. speed at the course protocol's shapes (resize 400 -> FiveCrop 224, batch 8, eval batch 16)
run_step "speed course" "$OUT/speed-course.log" timeout "$STEP_TIMEOUT" "$PY" benchmark.py speed \
    --models "$SPEED_MODEL" "${DATA[@]}" "${SPEED[@]}" "${COURSE_SHAPE[@]}" --out "$OUT/speed-course"
record "speed course shapes" "$(status_of $RC)" "$TOOK" "$(speed_figure "$OUT/speed-course/speed.json")"

# 3. speed at the frozen protocol's view (224 x 224 whole image), decoded in the workers (torchvision) ...
run_step "speed linear" "$OUT/speed-linear.log" timeout "$STEP_TIMEOUT" "$PY" benchmark.py speed \
    --protocol linear --models "$SPEED_MODEL" "${DATA[@]}" "${LINEAR_SPLITS[@]}" "${SPEED[@]}" --out "$OUT/speed-linear"
record "speed --protocol linear" "$(status_of $RC)" "$TOOK" "$(speed_figure "$OUT/speed-linear/speed.json")"
# ... and decoded in batches on the device (nvJPEG on the GPU; in the main process on a CPU)
run_step "speed linear device" "$OUT/speed-linear-device.log" timeout "$STEP_TIMEOUT" "$PY" benchmark.py speed \
    --protocol linear --decode device --models "$SPEED_MODEL" "${DATA[@]}" "${LINEAR_SPLITS[@]}" "${SPEED[@]}" \
    --out "$OUT/speed-linear-device"
record "speed linear, nvJPEG" "$(status_of $RC)" "$TOOK" "$(speed_figure "$OUT/speed-linear-device/speed.json")"

# 4. a 2-epoch synthetic training run in bf16
run_step "train bf16" "$OUT/train-bf16.log" timeout "$STEP_TIMEOUT" "$PY" benchmark.py --models "$TRAIN_MODEL" \
    "${DATA[@]}" "${TRAIN[@]}" --epochs 2 --precision bf16-mixed --pretrained none --no-baseline --no-report \
    --out "$OUT/train-bf16"
record "train 2 epochs bf16" "$(status_of $RC)" "$TOOK" "$(result_figure "$OUT/train-bf16/$TRAIN_MODEL/result.json")"

# 5. --deterministic twice, metrics compared
DETERMINISTIC_RUNS=()
for run in a b; do
    run_step "deterministic $run" "$OUT/deterministic-$run.log" timeout "$STEP_TIMEOUT" "$PY" benchmark.py \
        --models "$TRAIN_MODEL" "${DATA[@]}" "${TRAIN[@]}" "${DETERMINISTIC[@]}" --deterministic --pretrained none \
        --no-baseline --no-report --out "$OUT/deterministic-$run"
    DETERMINISTIC_RUNS+=("$RC:$TOOK")
done
TOOK=$(( ${DETERMINISTIC_RUNS[0]#*:} + ${DETERMINISTIC_RUNS[1]#*:} ))
A=$OUT/deterministic-a/$TRAIN_MODEL/result.json
B=$OUT/deterministic-b/$TRAIN_MODEL/result.json
if [[ ${DETERMINISTIC_RUNS[0]%%:*} == 0 && ${DETERMINISTIC_RUNS[1]%%:*} == 0 ]]; then
    VERDICT=$("$PY" -c "
import json, sys
a, b = (json.load(open(p))['metrics'] for p in sys.argv[1:3])
print(('MATCH' if a == b else 'DIFFER') + f\" (mAP {a['mAP']!r} / {b['mAP']!r})\")
" "$A" "$B") || VERDICT="no comparison: see $OUT/deterministic-{a,b}.log"
    echo "   $VERDICT"
    STATUS=OK
    [[ $VERDICT == MATCH* ]] || STATUS=DIFFER
    record "deterministic x2" "$STATUS" "$TOOK" "$VERDICT"
else
    record "deterministic x2" "FAIL" "$TOOK" "a run failed: see $OUT/deterministic-{a,b}.log"
fi

# -- summary ---------------------------------------------------------------------------------
{
    echo
    echo "gpu_check summary: $MODE"
    printf '%-24s %-9s %7s  %s\n' step status seconds "key figure"
    printf '%-24s %-9s %7s  %s\n' ------------------------ --------- ------- ----------
    for i in "${!NAMES[@]}"; do
        printf '%-24s %-9s %7s  %s\n' "${NAMES[$i]}" "${STATUSES[$i]}" "${SECONDS_TAKEN[$i]}" "${FIGURES[$i]}"
    done
    printf '%-24s %-9s %7s\n' total "" "$SECONDS"
} | tee "$OUT/summary.txt"

for s in "${STATUSES[@]}"; do
    [[ $s == OK || $s == SKIP ]] || exit 1
done
