"""Pretraining: the COCO captions builder and caption-pair examples, and the entry point's helpers (COCO, or task
pretraining on VQA v2 or NLVR2)."""
