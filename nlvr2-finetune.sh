#!/usr/bin/env bash
# NLVR2 finetuning as the paper: from visualbert-nlvr2-pre, batch 64, lr 2e-5, 10 epochs, train -> dev.
# Environment: DATA_DIR, OUTPUT_DIR, MODEL, GLOBAL_BATCH and the devices (see launch.sh).
# Extra arguments pass through to NLVR2/run_nlvr2.py, e.g. --max_steps 100 or --resume.
set -euo pipefail
cd "$(dirname "$0")"
export DATA_DIR=${DATA_DIR:-data/nlvr2}
export OUTPUT_DIR=${OUTPUT_DIR:-output/nlvr2-finetune}
export MODEL=${MODEL:-visualbert-nlvr2-pre}
export GLOBAL_BATCH=${GLOBAL_BATCH:-64}
exec ./launch.sh NLVR2/run_nlvr2.py \
  --learning_rate 2e-5 --num_train_epochs 10 --train_split train --dev_split dev "$@"
