"""Exact resumption after a crash; 2-process data-parallel training equal to 1 process with the same global batch."""

import os
import subprocess
import sys

import numpy as np
import pytest

from paddlenlp_ext.paths import REPO_ROOT
from paddlenlp_ext.training import trainer as trainer_module


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(
    sample_dir, tmp_path, tiny_config, entry_point, weights, monkeypatch, num_workers
):
    """COCO pretraining has every kind of randomness: shuffling, caption negatives and masking per epoch, dropout."""
    run = entry_point("run_pretrain.py")
    config = tiny_config()  # dropout 0.1: the RNG state must be restored too

    def argv(out):
        return [
            "--dataset", "coco_captions", "--input_dir", os.path.join(sample_dir, "coco"), "--config", config,
            "--tokenizer_name_or_path", os.path.join(sample_dir, "vocab.txt"), "--output_dir", str(out),
            "--train_splits", "train", "--batch_size", "16", "--max_steps", "14", "--save_steps", "6",
            "--logging_steps", "5", "--learning_rate", "1e-3", "--num_workers", str(num_workers),
        ]  # fmt: skip

    assert run(argv(tmp_path / "whole")) == 0

    save = trainer_module.Trainer._evaluate_and_save

    def crash_after_step_6(self):
        save(self)
        if self.state["step"] == 6:
            raise RuntimeError("simulated crash")

    monkeypatch.setattr(trainer_module.Trainer, "_evaluate_and_save", crash_after_step_6)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(argv(tmp_path / "resumed"))
    monkeypatch.setattr(trainer_module.Trainer, "_evaluate_and_save", save)
    assert [p for p in os.listdir(tmp_path / "resumed") if p.startswith("checkpoint")] == ["checkpoint-6"]
    at_crash = weights(tmp_path / "resumed" / "checkpoint-6")
    assert run(argv(tmp_path / "resumed") + ["--resume"]) == 0

    whole, resumed = weights(tmp_path / "whole" / "checkpoint-14"), weights(tmp_path / "resumed" / "checkpoint-14")
    name = "visual_bert.encoder.layer.0.attention.self.query.weight"
    assert not np.allclose(at_crash[name], resumed[name])  # training went on after the resume
    for key in whole:
        np.testing.assert_allclose(resumed[key], whole[key], rtol=0, atol=1e-6, err_msg=key)


def test_two_processes_match_one_with_the_same_global_batch(sample_dir, tmp_path, tiny_config, weights):
    config = tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)  # no per-rank randomness

    def launch(nproc, batch_size, out):
        script = [os.path.join(REPO_ROOT, "NLVR2", "run_nlvr2.py")]
        args = [
            "--input_dir", os.path.join(sample_dir, "nlvr2"), "--config", config,
            "--tokenizer_name_or_path", os.path.join(sample_dir, "vocab.txt"), "--output_dir", str(out),
            "--batch_size", str(batch_size), "--max_steps", "5", "--save_steps", "5", "--dev_split", "",
            "--learning_rate", "1e-3", "--num_workers", "0", "--device", "cpu", "--cpu_threads", "1",
        ]  # fmt: skip
        launcher = ["-m", "paddle.distributed.launch", "--nproc_per_node", str(nproc), "--log_dir", str(out / "logs")]
        result = subprocess.run(
            [sys.executable, *(launcher if nproc > 1 else []), *script, *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0 and nproc > 1:
            logs = [open(out / "logs" / f).read() for f in os.listdir(out / "logs") if f.startswith("workerlog")]
            pytest.fail("".join(log[-3000:] for log in logs))
        assert result.returncode == 0, result.stderr[-3000:]
        return weights(out / "checkpoint-5")

    (tmp_path / "two" / "logs").mkdir(parents=True)
    two = launch(2, 4, tmp_path / "two")
    one = launch(1, 8, tmp_path / "one")
    for key in one:
        np.testing.assert_allclose(two[key], one[key], rtol=1e-4, atol=1e-5, err_msg=key)
