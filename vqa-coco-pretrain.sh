#!/usr/bin/env bash
# COCO caption pretraining for VQA (2048-d, 100 boxes): from BERT (checkpoint/convert.py --visual_embedding_dim 2048),
# batch 48, lr 5e-5, 10 epochs, train+val captions minus the VQA minival images (VQA_DIR [data/vqa2]).
# Environment: DATA_DIR, OUTPUT_DIR, MODEL, GLOBAL_BATCH and the devices (see launch.sh); TOKENIZER
# [bert-base-uncased], as the converted BERT folder holds no vocab.txt.
# Extra arguments pass through to run_pretrain.py, e.g. --max_steps 100 or --resume.
set -euo pipefail
cd "$(dirname "$0")"
export DATA_DIR=${DATA_DIR:-data/coco}
export OUTPUT_DIR=${OUTPUT_DIR:-output/vqa-coco-pretrain}
export MODEL=${MODEL:-checkpoint/bert-base-uncased-visualbert-2048}
export GLOBAL_BATCH=${GLOBAL_BATCH:-48}
exec ./launch.sh run_pretrain.py --tokenizer_name_or_path "${TOKENIZER:-bert-base-uncased}" \
  --dataset coco_captions --learning_rate 5e-5 --num_train_epochs 10 --train_splits train val \
  --exclude_vqa_imdb "${VQA_DIR:-data/vqa2}/imdb/imdb_minival2014.npy" "$@"
