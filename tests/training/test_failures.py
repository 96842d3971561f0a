"""A diverging run stops at once and saves nothing non-finite; an output folder never mixes two runs."""

import json
import os
import subprocess
import sys

import numpy as np
import paddle
import pytest

from paddlenlp_ext.paths import REPO_ROOT
from paddlenlp_ext.training import trainer as trainer_module


def nlvr2_args(sample_dir, out, config, *extra):
    return [
        "--input_dir", os.path.join(sample_dir, "nlvr2"), "--config", config, "--output_dir", str(out),
        "--tokenizer_name_or_path", os.path.join(sample_dir, "vocab.txt"), "--batch_size", "4",
        "--dev_split", "dev", "--num_workers", "0", "--logging_steps", "1", "--seed", "1", "--max_seq_length", "48",
        *extra,
    ]  # fmt: skip


def last_error(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    return lines[-1] if lines else ""


def test_a_diverging_run_stops_at_the_step_and_saves_nothing_non_finite(
    sample_dir, tmp_path, tiny_config, entry_point, weights, capsys
):
    out = tmp_path / "out"
    argv = nlvr2_args(sample_dir, out, tiny_config(), "--max_steps", "40", "--save_steps", "1")
    argv += ["--learning_rate", "1e6", "--warmup_proportion", "0"]
    assert entry_point("NLVR2/run_nlvr2.py")(argv) == 2
    err = last_error(capsys)
    assert err.startswith("error: training diverged at step ") and "the last good checkpoint is " in err, err
    step = int(err.split("at step ")[1].split(":")[0])
    assert step < 40  # stopped at once, not at the end
    checkpoints = sorted((p for p in os.listdir(out) if p.startswith("checkpoint-")), key=lambda p: int(p[11:]))
    assert err.endswith(str(out / checkpoints[-1]))
    assert all(int(p[11:]) < step for p in checkpoints)
    for folder in checkpoints + (["best"] if (out / "best").exists() else []):
        assert all(np.isfinite(v).all() for v in weights(out / folder).values()), folder
    assert not any(name.startswith(".") for name in os.listdir(out))  # no half-written folder either


def test_a_run_diverging_before_any_checkpoint_says_there_is_none(
    sample_dir, tmp_path, tiny_config, entry_point, capsys
):
    out = tmp_path / "out"
    argv = nlvr2_args(sample_dir, out, tiny_config(), "--max_steps", "40", "--learning_rate", "1e30")
    assert entry_point("NLVR2/run_nlvr2.py")(argv) == 2
    err = last_error(capsys)
    assert err.startswith("error: training diverged at step ") and "there is no checkpoint" in err, err
    assert not (out / "best").exists() and not [p for p in os.listdir(out) if p.startswith("checkpoint-")]


@pytest.mark.parametrize("what", ["gradient", "parameter"])
def test_a_non_finite_gradient_or_parameter_stops_the_run(
    sample_dir, tmp_path, tiny_config, entry_point, monkeypatch, capsys, what
):
    """Injected in step 3: a NaN gradient (the loss is still finite) or an inf parameter (seen before saving)."""
    name = {"gradient": "clip_gradients", "parameter": "step"}[what]
    original, calls = getattr(trainer_module.TrainingStep, name), []

    def poisoned(self):
        calls.append(1)
        target = next(p for p in self.model.parameters() if p.grad is not None)
        if len(calls) == 3 and what == "gradient":
            target.grad.set_value(paddle.full_like(target.grad, float("nan")))
        result = original(self)
        if len(calls) == 3 and what == "parameter":
            target.set_value(paddle.full_like(target, float("inf")))
        return result

    monkeypatch.setattr(trainer_module.TrainingStep, name, poisoned)
    out = tmp_path / "out"
    argv = nlvr2_args(sample_dir, out, tiny_config(), "--max_steps", "6", "--save_steps", "1", "--dev_split", "")
    assert entry_point("NLVR2/run_nlvr2.py")(argv) == 2
    expected = {"gradient": "gradient norm nan", "parameter": "non-finite parameters"}[what]
    err = last_error(capsys)
    assert err.startswith(f"error: training diverged at step 3: {expected}") and err.endswith(
        str(out / "checkpoint-2")
    ), err
    assert sorted(p for p in os.listdir(out) if p.startswith("checkpoint-")) == ["checkpoint-1", "checkpoint-2"]


def test_every_rank_stops_when_training_diverges(sample_dir, tmp_path, tiny_config, weights):
    """Two ranks with gradient accumulation: both stop with the message, neither waits for the other."""
    out = tmp_path / "out"
    argv = nlvr2_args(sample_dir, out, tiny_config(), "--max_steps", "40", "--save_steps", "1", "--dev_split", "")
    argv += ["--learning_rate", "1e6", "--warmup_proportion", "0", "--gradient_accumulation_steps", "2"]
    argv += ["--device", "cpu", "--cpu_threads", "1"]
    launcher = ["-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir", str(tmp_path / "logs")]
    script = os.path.join(REPO_ROOT, "NLVR2", "run_nlvr2.py")
    result = subprocess.run(
        [sys.executable, *launcher, script, *argv], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    logs = [(tmp_path / "logs" / f"workerlog.{rank}").read_text() for rank in (0, 1)]
    for log in logs:
        assert "error: training diverged at step " in log, log[-3000:]
    for folder in (p for p in os.listdir(out) if p.startswith("checkpoint-")):
        assert all(np.isfinite(v).all() for v in weights(out / folder).values()), folder


def test_an_output_dir_with_another_run_is_refused_unless_resumed_or_overwritten(
    sample_dir, tmp_path, tiny_config, entry_point, capsys
):
    run = entry_point("NLVR2/run_nlvr2.py")
    out = tmp_path / "out"
    config = tiny_config()
    first = nlvr2_args(sample_dir, out, config, "--max_steps", "4", "--save_steps", "2", "--save_total_limit", "3")
    assert run(first) == 0
    assert (out / "checkpoint-4").is_dir() and (out / "best").is_dir()
    best = (out / "best" / "metrics.json").read_text()
    run_info = (out / "run_info.json").read_text()

    second = nlvr2_args(sample_dir, out, config, "--max_steps", "1", "--save_steps", "1")
    assert run(second) == 2
    err = last_error(capsys)
    assert all(f in err for f in (str(out), "--resume", "--overwrite_output_dir")), err
    assert sorted(p for p in os.listdir(out) if p.startswith("checkpoint-")) == ["checkpoint-2", "checkpoint-4"]
    assert (out / "best" / "metrics.json").read_text() == best  # untouched
    assert (out / "run_info.json").read_text() == run_info  # a refused start writes nothing

    longer = nlvr2_args(sample_dir, out, config, "--max_steps", "6", "--save_steps", "2", "--save_total_limit", "3")
    assert run(longer + ["--resume"]) == 0  # continues the first run from checkpoint-4
    assert sorted(p for p in os.listdir(out) if p.startswith("checkpoint-")) == [f"checkpoint-{i}" for i in (2, 4, 6)]
    assert (out / "run_info.json").read_text() == run_info  # the first start's, beside the resumed one's
    assert json.loads((out / "run_info.resume-4.json").read_text())["args"]["max_steps"] == 6

    assert run(second + ["--resume", "--overwrite_output_dir"]) == 2
    assert "give one" in last_error(capsys)

    assert run(second + ["--overwrite_output_dir"]) == 0
    assert sorted(p for p in os.listdir(out) if p.startswith("checkpoint-")) == ["checkpoint-1"]
    assert json.loads((out / "best" / "metrics.json").read_text())["step"] == 1


def test_an_output_dir_without_a_run_needs_no_flag(sample_dir, tmp_path, tiny_config, entry_point):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    argv = nlvr2_args(sample_dir, out, tiny_config(), "--max_steps", "1", "--dev_split", "")
    assert entry_point("NLVR2/run_nlvr2.py")(argv) == 0
    assert (out / "notes.txt").read_text() == "mine" and (out / "checkpoint-1").is_dir()
