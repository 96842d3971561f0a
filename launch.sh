#!/usr/bin/env bash
# Shared by the six training scripts: `./launch.sh SCRIPT ARGS...` runs SCRIPT under paddle.distributed.launch.
# Environment (defaults in brackets):
#   DATA_DIR, OUTPUT_DIR, MODEL      set by the calling script, overridable
#   LOG_DIR [$OUTPUT_DIR/logs]       per-process logs of the launcher
#   DEVICES [0]                      GPU ids, e.g. 0,1,2,3: one process per GPU
#   DEVICE [gpu], NPROC [1]          DEVICE=cpu runs NPROC CPU processes instead
#   GLOBAL_BATCH                     the paper's batch, split evenly across the processes
#   PYTHON [.venv/bin/python if present, else python]
set -euo pipefail
cd "$(dirname "$0")"
script=$1
shift
for var in DATA_DIR OUTPUT_DIR MODEL GLOBAL_BATCH; do
  if [ -z "${!var:-}" ]; then
    echo "error: set $var=... (see the recipe's header and launch.sh)" >&2
    exit 2
  fi
done
if [ ! -d "$DATA_DIR" ]; then
  echo "error: set DATA_DIR=... to the folder of the task's data ($DATA_DIR is not one)" >&2
  exit 2
fi
LOG_DIR=${LOG_DIR:-$OUTPUT_DIR/logs}
DEVICE=${DEVICE:-gpu}
if [ -x .venv/bin/python ]; then PYTHON=${PYTHON:-.venv/bin/python}; else PYTHON=${PYTHON:-python}; fi
if [ "$DEVICE" != cpu ] && [ "$("$PYTHON" -c "import paddle; print(paddle.is_compiled_with_cuda())" 2>/dev/null)" != True ]; then
  echo "error: this Paddle has no GPU support: run with DEVICE=cpu" >&2
  exit 2
fi
if [ "$DEVICE" = cpu ]; then
  NPROC=${NPROC:-1}
  LAUNCH=(--nproc_per_node "$NPROC")
else
  DEVICES=${DEVICES:-0}
  NPROC=$(echo "$DEVICES" | tr ',' '\n' | wc -l)
  LAUNCH=(--devices "$DEVICES")
fi
if [ $((GLOBAL_BATCH % NPROC)) -ne 0 ]; then
  echo "error: GLOBAL_BATCH=$GLOBAL_BATCH is not divisible by the $NPROC processes" >&2
  exit 2
fi
exec "$PYTHON" -m paddle.distributed.launch "${LAUNCH[@]}" --log_dir "$LOG_DIR" "$script" \
  --device "$DEVICE" --input_dir "$DATA_DIR" --output_dir "$OUTPUT_DIR" --model_name_or_path "$MODEL" \
  --batch_size $((GLOBAL_BATCH / NPROC)) "$@"
