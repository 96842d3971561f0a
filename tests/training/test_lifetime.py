"""Real processes, real kill -9: DataLoader workers end with their trainer, ranks (and theirs) with the launcher.

Every process of a test carries a unique environment variable, inherited by all its descendants: survivors are
found by it even after they have been re-parented."""

import os
import signal
import subprocess
import sys
import time
import uuid

from paddlenlp_ext.paths import REPO_ROOT

TAG = "VISUALBERT_LIFETIME_TEST"


def tagged(tag: str, with_env: str = "") -> list:
    """Live (not zombie) pids whose environment holds TAG=tag (and the variable with_env, when given)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if f"{TAG}={tag}".encode() in env and state != "Z":
            if not with_env or any(e.startswith(f"{with_env}=".encode()) for e in env):
                found.append(int(pid))
    return found


def wait_for(condition, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def start(command: list, tmp_path):
    tag = uuid.uuid4().hex
    env = {**os.environ, TAG: tag}
    env.pop("PADDLE_LOCAL_RANK", None)
    log = open(tmp_path / "stderr.log", "w")
    return subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=log), tag, log


def train_args(sample_dir, out, config, workers: int) -> list:
    return [
        os.path.join(REPO_ROOT, "NLVR2", "run_nlvr2.py"), "--input_dir", os.path.join(sample_dir, "nlvr2"),
        "--config", config, "--tokenizer_name_or_path", os.path.join(sample_dir, "vocab.txt"),
        "--output_dir", str(out), "--batch_size", "2", "--max_steps", "100000", "--save_steps", "100000",
        "--max_seq_length", "48",
        "--dev_split", "", "--num_workers", str(workers), "--device", "cpu", "--cpu_threads", "1",
    ]  # fmt: skip


def kill_and_expect_no_survivor(proc, tag: str, log, tmp_path):
    try:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        # 30 s: a rank's watcher wakes every second, but on a 2-core machine under other load the ranks took over 10 s
        wait_for(lambda: not tagged(tag), 30, f"no survivor (left: {tagged(tag)})")
    finally:
        for pid in tagged(tag):  # only this test's processes carry the tag
            os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def test_dataloader_workers_end_with_the_trainer(sample_dir, tmp_path, tiny_config):
    proc, tag, log = start([sys.executable, *train_args(sample_dir, tmp_path / "out", tiny_config(), 2)], tmp_path)

    def workers_running():
        assert proc.poll() is None, (tmp_path / "stderr.log").read_text()[-3000:]
        return len(tagged(tag)) >= 3  # the trainer and its two workers

    try:
        wait_for(workers_running, 60, "the DataLoader workers")
    finally:
        kill_and_expect_no_survivor(proc, tag, log, tmp_path)


def test_ranks_and_their_workers_end_with_the_launcher(sample_dir, tmp_path, tiny_config):
    launcher = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2"]
    launcher += ["--log_dir", str(tmp_path / "logs")]
    proc, tag, log = start([*launcher, *train_args(sample_dir, tmp_path / "out", tiny_config(), 1)], tmp_path)

    def ranks_training():
        assert proc.poll() is None, (tmp_path / "stderr.log").read_text()[-3000:]
        return len(tagged(tag, with_env="PADDLE_LOCAL_RANK")) >= 4  # two ranks, each with its worker

    try:
        wait_for(ranks_training, 90, "two ranks with their DataLoader workers")
    finally:
        kill_and_expect_no_survivor(proc, tag, log, tmp_path)


RANK = """
import os, sys, time
first_parent = os.getppid()
import paddlenlp_ext.lifetime as lifetime
print("imported", flush=True)
while os.getppid() == first_parent:  # the launcher dies after the import, before the rank asks
    time.sleep(0.05)
lifetime.exit_with_launcher(interval=0.1)
time.sleep(60)
"""

LAUNCHER = """
import subprocess, sys
rank = subprocess.Popen([sys.executable, "-c", sys.argv[1]], stdout=subprocess.PIPE, stderr=open(sys.argv[2], "w"))
rank.stdout.readline()
"""


def test_a_rank_whose_launcher_died_before_it_asked_still_exits(tmp_path):
    tag = uuid.uuid4().hex
    env = {**os.environ, TAG: tag, "PADDLE_LOCAL_RANK": "0"}
    launcher = [sys.executable, "-c", LAUNCHER, RANK, str(tmp_path / "rank.log")]
    subprocess.run(launcher, env=env, check=True, timeout=120)
    try:
        wait_for(lambda: not tagged(tag), 30, "the orphaned rank to exit")
    finally:
        for pid in tagged(tag):
            os.kill(pid, signal.SIGKILL)
    assert "the launcher" in (tmp_path / "rank.log").read_text()
