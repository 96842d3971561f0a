#!/usr/bin/env bash
# VQA v2 task pretraining (masked LM on question + answer): from visualbert-vqa-coco-pre, batch 64, lr 5e-5, 10 epochs.
# Environment: DATA_DIR, OUTPUT_DIR, MODEL, GLOBAL_BATCH and the devices (see launch.sh).
# Extra arguments pass through to run_pretrain.py, e.g. --max_steps 100 or --resume.
set -euo pipefail
cd "$(dirname "$0")"
export DATA_DIR=${DATA_DIR:-data/vqa2}
export OUTPUT_DIR=${OUTPUT_DIR:-output/vqa-pretrain}
export MODEL=${MODEL:-visualbert-vqa-coco-pre}
export GLOBAL_BATCH=${GLOBAL_BATCH:-64}
exec ./launch.sh run_pretrain.py \
  --dataset vqa2 --learning_rate 5e-5 --num_train_epochs 10 --train_splits trainval "$@"
