"""A run redirected to a file logs plain lines: no colour codes, no progress bars, no third-party noise."""

import json
import os
import subprocess
import sys

from paddlenlp_ext.paths import REPO_ROOT

NOISE = ["\x1b[", "\r", "ccache", "distutils", "PyTorch version", "unique_endpoints"]


def test_a_redirected_training_run_logs_plain_lines(sample_dir, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            dict(
                hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                max_position_embeddings=64,
            )
        )
    )  # fmt: skip
    argv = [
        "--input_dir", os.path.join(sample_dir, "nlvr2"), "--config", str(config), "--output_dir", str(tmp_path / "o"),
        "--tokenizer_name_or_path", os.path.join(sample_dir, "vocab.txt"), "--batch_size", "8", "--max_steps", "2",
        "--save_steps", "2", "--logging_steps", "1", "--num_workers", "0",
    ]  # fmt: skip
    done = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "NLVR2", "run_nlvr2.py"), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=600,
    )
    log = done.stdout.decode()  # not text=True, which would turn the carriage returns into newlines
    assert done.returncode == 0, log[-3000:]
    assert "step 2/2" in log and "dev:" in log  # the trainer's own lines stay
    assert [noise for noise in NOISE if noise in log] == [], log[-3000:]
