#!/usr/bin/env bash
# VQA v2 finetuning as the paper: from visualbert-vqa-pre, batch 64, lr 2e-5, 10 epochs, trainval -> minival.
# Environment: DATA_DIR, OUTPUT_DIR, MODEL, GLOBAL_BATCH and the devices (see launch.sh).
# Extra arguments pass through to VQA2/run_vqa2.py, e.g. --max_steps 100 or --resume.
set -euo pipefail
cd "$(dirname "$0")"
export DATA_DIR=${DATA_DIR:-data/vqa2}
export OUTPUT_DIR=${OUTPUT_DIR:-output/vqa-finetune}
export MODEL=${MODEL:-visualbert-vqa-pre}
export GLOBAL_BATCH=${GLOBAL_BATCH:-64}
exec ./launch.sh VQA2/run_vqa2.py \
  --learning_rate 2e-5 --num_train_epochs 10 --train_split trainval --dev_split minival "$@"
