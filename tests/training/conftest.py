import importlib.util
import json
import os

import numpy as np
import paddle
import pytest

from paddlenlp_ext.paths import REPO_ROOT
from paddlenlp_ext.training.args import run


@pytest.fixture(scope="session")
def entry_point():
    """entry_point("VQA2/run_vqa2.py") -> the script's main(argv), called in-process."""
    return _main_of


def _main_of(relative_path: str):
    """Import an entry-point script (VQA2/run_vqa2.py, ...) as a module, to call its main(argv) in-process."""
    spec = importlib.util.spec_from_file_location(
        relative_path.replace("/", "_")[:-3], os.path.join(REPO_ROOT, relative_path)
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return lambda argv: run(lambda: module.main(argv))  # as `python SCRIPT` runs it: errors become exit code 2


@pytest.fixture(scope="session")
def tiny_config(tmp_path_factory):
    """A tiny VisualBertConfig JSON (vocab and feature sizes are filled in from the data by the entry points)."""

    def write(**overrides):
        fields = dict(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
        )
        fields.update(overrides)
        path = tmp_path_factory.mktemp("config") / "config.json"
        path.write_text(json.dumps(fields))
        return str(path)

    return write


@pytest.fixture(scope="session")
def weights():
    """weights(folder) -> {name: array} of a saved model folder."""
    return _weights


def _weights(folder) -> dict:
    return {
        k: np.asarray(v)
        for k, v in paddle.load(os.path.join(folder, "model_state.pdparams"), return_numpy=True).items()
    }
