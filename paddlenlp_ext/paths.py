"""The one place that knows where the checkout is (the package is installed from it in editable mode)."""

import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Where `from_pretrained("visualbert-vqa")` looks: checkpoint/paddle_visualbert/<name>, written by convert.py.
CHECKPOINT_HOME = os.environ.get(
    "VISUALBERT_CHECKPOINT_HOME", os.path.join(REPO_ROOT, "checkpoint", "paddle_visualbert")
)
