"""Each task's training step and prediction forward with this project's VisualBERT against HF transformers', side by
side on this machine with the same thread count, weights and inputs; prints a table per task and writes a JSON report.

python benchmarks/bench_model.py                          # VQA, NLVR2 and pretraining at BERT-base, padded text
python benchmarks/bench_model.py --tasks vqa --padding none --rounds 5
python benchmarks/bench_model.py --tasks vqa --batch_size 64 --phases inference   # VQA questions/s

What is timed is what users run. Both models are loaded with from_pretrained from the same random weights (an HF
folder written with save_pretrained, and the Paddle folder checkpoint/convert.py makes of it). A training step is
the trainer's own (training/trainer.py's TrainingStep: forward and backward, global-norm clipping, AdamW with the
recipe's decay groups, the LR schedule, the gradients released) against what HF's Trainer does per step
(clip_grad_norm_, torch AdamW, its linear schedule, zero_grad(set_to_none=True)). Prediction is the model in eval
mode under no_grad, every output computed. The tasks' shapes: VQA 100 boxes x 2048 and 3129 answers, NLVR2 2 x 144
boxes x 1024, pretraining caption pairs over 100 boxes x 2048 with 15% of the text masked and the sentence-image
label; text of --text_length wordpieces, right-padded (--padding real: lengths from half to all of it, as questions
and captions vary; none: every row full).

Each framework runs in its own process that imports only that framework, so the peak resident memory of the process is
its own. The two processes are built first, then take turns one timed iteration at a time (which one leads alternates),
with a pause between iterations so that the idle one's OpenMP threads stop spinning: a slow spell of the machine (other
tenants of a shared host) falls on both alike, and each pair of neighbouring iterations gives one Paddle / transformers
ratio.

Model FLOPs count the matrix multiplications of the full computation as transformers does it (2 per multiply-add); a
training step counts 3x the forward. Each timed iteration is followed by a timed fp32 n x n matmul in the same
process, so each framework's matmul throughput is measured in the same minutes as the model; model FLOP utilisation
(MFU) = model FLOPs / time / that throughput (the faster of the two frameworks' medians during the phase).

This script imports no framework at the top: `_Worker` runs it again as the worker, and the transformers worker must
not load Paddle.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, fields

import numpy as np

FRAMEWORKS = ("transformers", "paddle")
PHASES = ("inference", "train")
PADDINGS = ("real", "none")


@dataclass(frozen=True)
class Task:
    architecture: str
    num_boxes: int  # V: every box real (the VQA and COCO features hold 100, NLVR2's two images 144 each)
    visual_embedding_dim: int
    num_labels: int


TASKS = {
    "vqa": Task("VisualBertForQuestionAnswering", 100, 2048, 3129),
    "nlvr2": Task("VisualBertForVisualReasoning", 2 * 144, 1024, 2),
    "pretrain": Task("VisualBertForPreTraining", 100, 2048, 2),
}


@dataclass
class BenchConfig:
    task: str = "vqa"  # one of TASKS
    batch_size: int = 8
    text_length: int = 32  # T
    padding: str = "real"  # one of PADDINGS
    hidden_size: int = 768  # BERT-base from here down
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    vocab_size: int = 30522
    num_boxes: int = 0  # 0: the task's; smaller for tests
    visual_embedding_dim: int = 0  # 0: the task's
    threads: int = 1  # math threads in both frameworks; the CLI's default is runtime.cpu_threads()
    warmup: int = 2  # untimed iterations first: allocator and library caches settle
    steps: int = 5  # timed iterations; their median is the result
    matmul_size: int = 2048
    seed: int = 0

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task {self.task!r} is not one of {list(TASKS)}")
        if self.padding not in PADDINGS:
            raise ValueError(f"padding {self.padding!r} is not one of {PADDINGS}")
        task = TASKS[self.task]
        self.num_boxes = self.num_boxes or task.num_boxes
        self.visual_embedding_dim = self.visual_embedding_dim or task.visual_embedding_dim

    @property
    def architecture(self) -> str:
        return TASKS[self.task].architecture

    def model_config(self) -> dict:
        """The VisualBertConfig fields (the same names in both frameworks)."""
        names = ("visual_embedding_dim", "hidden_size", "num_hidden_layers", "num_attention_heads")
        names += ("intermediate_size", "vocab_size")
        return {"num_labels": TASKS[self.task].num_labels, **{name: getattr(self, name) for name in names}}


def forward_flops(cfg: BenchConfig) -> float:
    """Matmul FLOPs of one forward pass of the whole model at this config, every position computed."""
    b, t, v, h, i = cfg.batch_size, cfg.text_length, cfg.num_boxes, cfg.hidden_size, cfg.intermediate_size
    s = t + v
    projection = 2 * b * v * cfg.visual_embedding_dim * h
    per_layer = 2 * b * s * (4 * h * h + 2 * h * i) + 2 * 2 * b * s * s * h  # q, k, v, out, FFN; scores, context
    pooler = 2 * b * h * h
    if cfg.task == "pretrain":
        head = 2 * b * s * h * (h + cfg.vocab_size) + 2 * b * h * 2  # MLM transform + decoder; sentence-image
    else:
        head = 2 * b * h * TASKS[cfg.task].num_labels
    return float(projection + cfg.num_hidden_layers * per_layer + pooler + head)


def make_inputs(cfg: BenchConfig) -> dict:
    """Seeded numpy inputs: right-padded text (the first row full; every row with --padding none), every box real,
    NLVR2's second image's boxes of visual token type 1, labels for the head's loss."""
    rng = np.random.default_rng(cfg.seed)
    b, t, v = cfg.batch_size, cfg.text_length, cfg.num_boxes
    lengths = rng.integers(t // 2, t + 1, b) if cfg.padding == "real" else np.full(b, t)
    lengths[0] = t
    attention_mask = (np.arange(t) < lengths[:, None]).astype("int64")
    visual_token_type_ids = np.zeros((b, v), "int64")
    if cfg.task == "nlvr2":
        visual_token_type_ids[:, v // 2 :] = 1
    inputs = {
        # ids from 1000 up are wordpieces in BERT's vocab, clear of [PAD], [CLS], [SEP] and the unused slots
        "input_ids": rng.integers(min(1000, cfg.vocab_size // 2), cfg.vocab_size, (b, t)) * attention_mask,
        "attention_mask": attention_mask,
        "token_type_ids": np.zeros((b, t), "int64"),
        "visual_embeds": rng.random((b, v, cfg.visual_embedding_dim), dtype=np.float32),
        "visual_attention_mask": np.ones((b, v), "int64"),
        "visual_token_type_ids": visual_token_type_ids,
    }
    num_labels = TASKS[cfg.task].num_labels
    if cfg.task == "vqa":
        scores = np.zeros((b, num_labels), "float32")
        for row in scores:
            row[rng.choice(num_labels, 3, replace=False)] = [1.0, 0.6, 0.3]
        inputs["labels"] = scores
    elif cfg.task == "pretrain":
        labels = np.full((b, t + v), -100, "int64")
        masked = (rng.random((b, t)) < 0.15) & (attention_mask == 1)
        labels[:, :t][masked] = inputs["input_ids"][masked]
        inputs["labels"] = labels
        inputs["sentence_image_labels"] = rng.integers(0, 2, b)
    else:
        inputs["labels"] = rng.integers(0, num_labels, b)
    return inputs


LABELS = ("labels", "sentence_image_labels")


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def write_models(cfg: BenchConfig, folder: str) -> dict:
    """The task's model with seeded random weights as an HF folder (save_pretrained) and the Paddle folder converted
    from it (checkpoint/convert.py's conversion); returns {framework: folder}. Needs both frameworks: run it in a
    process of its own (`prepare`)."""
    import torch
    import transformers

    from paddlenlp_ext.transformers.visualbert.convert import convert_hf_checkpoint

    torch.manual_seed(cfg.seed)
    config = transformers.VisualBertConfig(**cfg.model_config())
    model = getattr(transformers, cfg.architecture)(config)
    folders = {fw: os.path.join(folder, f"{cfg.task}-{fw}") for fw in FRAMEWORKS}
    model.save_pretrained(folders["transformers"])
    convert_hf_checkpoint(folders["transformers"], folders["paddle"])
    return folders


def prepare(cfg: BenchConfig, folder: str) -> dict:
    """write_models in a subprocess (the benchmark's own process imports no framework)."""
    command = [sys.executable, os.path.abspath(__file__), "--prepare", json.dumps(asdict(cfg)), folder]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"writing the {cfg.task} models failed (exit {result.returncode}):\n{result.stderr[-4000:]}"
        )
    return json.loads(result.stdout.strip().splitlines()[-1])


class _Paddle:
    """The project's model as a user runs it: runtime.configure_cpu as a CPU run calls it, from_pretrained, and in
    training the trainer's TrainingStep with the training flags' defaults."""

    def __init__(self, threads: int):
        import paddle

        from paddlenlp_ext.runtime import configure_cpu

        paddle.set_device("cpu")
        configure_cpu(threads)
        self.paddle = paddle

    def matmul(self, n: int) -> float:
        """Seconds of one n x n fp32 matmul; the operands are drawn (and freed) outside the timing."""
        a, b = self.paddle.randn([n, n]), self.paddle.randn([n, n])
        start = time.perf_counter()
        self.paddle.matmul(a, b).numpy()
        return time.perf_counter() - start

    def build(self, cfg: BenchConfig, folder: str, inputs: dict, train: bool):
        from paddlenlp_ext.data import model_inputs
        from paddlenlp_ext.training.args import base_parser
        from paddlenlp_ext.training.trainer import TrainingStep
        from paddlenlp_ext.transformers.visualbert import modeling

        paddle = self.paddle
        paddle.seed(cfg.seed)
        model = getattr(modeling, cfg.architecture).from_pretrained(folder)
        tensors = model_inputs(inputs)
        if not train:
            model.eval()
            features = {k: v for k, v in tensors.items() if k not in LABELS}

            def infer():
                with paddle.no_grad():
                    return model(**features, return_dict=True)[0].numpy()

            return infer
        model.train()
        args = base_parser("benchmark").parse_args(["--output_dir", "unused", "--device", "cpu"])
        steps = TrainingStep(args, model, total_steps=10_000)

        def step():
            loss = steps.forward_backward(tensors)
            steps.clip_gradients()
            steps.step()
            return loss

        return step


class _Transformers:
    """HF's model as its users run it: from_pretrained, and in training what HF's Trainer does per step."""

    def __init__(self, threads: int):
        import torch

        torch.set_num_threads(threads)
        self.torch = torch

    def matmul(self, n: int) -> float:
        a, b = self.torch.randn(n, n), self.torch.randn(n, n)
        start = time.perf_counter()
        (a @ b).numpy()
        return time.perf_counter() - start

    def build(self, cfg: BenchConfig, folder: str, inputs: dict, train: bool):
        import transformers

        torch = self.torch
        torch.manual_seed(cfg.seed)
        model = getattr(transformers, cfg.architecture).from_pretrained(folder)
        tensors = {k: torch.from_numpy(v) for k, v in inputs.items()}
        if not train:
            model.eval()
            features = {k: v for k, v in tensors.items() if k not in LABELS}

            def infer():
                with torch.no_grad():
                    return model(**features, return_dict=True)[0].numpy()

            return infer
        model.train()
        groups = [{"params": [], "weight_decay": 0.01}, {"params": [], "weight_decay": 0.0}]  # the trainer's no_decay
        for name, param in model.named_parameters():
            groups[name.endswith("bias") or "LayerNorm" in name]["params"].append(param)
        optimizer = torch.optim.AdamW(groups, lr=2e-5, eps=1e-6)
        schedule = transformers.get_linear_schedule_with_warmup(optimizer, 1000, 10_000)

        def step():
            loss = model(**tensors, return_dict=True).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            return loss.item()

        return step


class _Measurement:
    """One framework's phase in this process: the model's iteration, and the matmul timed after each."""

    def __init__(self, framework: str, phase: str, cfg: BenchConfig, folder: str):
        self.cfg, self.phase = cfg, phase
        self.runner = {"paddle": _Paddle, "transformers": _Transformers}[framework](cfg.threads)
        self.fn = self.runner.build(cfg, folder, make_inputs(cfg), train=phase == "train")
        for _ in range(cfg.warmup):  # allocator and library caches settle
            self.fn()
            self.runner.matmul(cfg.matmul_size)
        self.rss_before = _rss_mb()
        self.seconds, self.matmul_seconds = [], []

    def iteration(self) -> float:
        start = time.perf_counter()
        self.fn()
        self.seconds.append(time.perf_counter() - start)
        self.matmul_seconds.append(self.runner.matmul(self.cfg.matmul_size))
        return self.seconds[-1]

    def result(self) -> dict:
        """Seconds per iteration and their median, matmul GFLOP/s (median), peak and pre-timing RSS (MB)."""
        matmul = statistics.median(self.matmul_seconds)
        return {
            "seconds": self.seconds, "median": statistics.median(self.seconds), "matmul_seconds": self.matmul_seconds,
            "matmul_gflops": 2 * self.cfg.matmul_size**3 / matmul / 1e9, "peak_rss_mb": _peak_rss_mb(),
            "rss_before_mb": self.rss_before,
        }  # fmt: skip


def measure(framework: str, phase: str, cfg: BenchConfig, folder: str) -> dict:
    """One framework's measurement of `phase` in this process, on its own (see _Measurement.result)."""
    measurement = _Measurement(framework, phase, cfg, folder)
    for _ in range(cfg.steps):
        measurement.iteration()
    return measurement.result()


_MARK = "@bench "  # the protocol's lines on the worker's stdout; anything else there is the frameworks' own output
_SETTLE_S = 0.3  # pause before each timed iteration: Intel OpenMP's idle threads spin for 200 ms by default


def _serve(framework: str, phase: str, cfg: BenchConfig, folder: str):
    """The worker: prepare and warm up, say ready, then time one iteration per "run" line on stdin until "stop"."""
    measurement = _Measurement(framework, phase, cfg, folder)
    print(_MARK + json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        print(_MARK + json.dumps({"seconds": measurement.iteration()}), flush=True)
    print(_MARK + json.dumps(measurement.result()), flush=True)


class _Worker:
    """A framework's measurement process (this script run with --worker), driven line by line."""

    def __init__(self, framework: str, phase: str, cfg: BenchConfig, folder: str):
        self.name = f"{framework} {cfg.task} {phase}"
        env = dict(os.environ, OMP_NUM_THREADS=str(cfg.threads))
        command = [sys.executable, os.path.abspath(__file__), "--worker", framework, phase, json.dumps(asdict(cfg))]
        self.process = subprocess.Popen(
            command + [folder], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        self._reply()  # ready

    def _reply(self) -> dict:
        for line in self.process.stdout:
            if line.startswith(_MARK):
                return json.loads(line[len(_MARK) :])
        error = self.process.stderr.read()[-4000:]
        raise RuntimeError(f"{self.name} failed (exit {self.process.wait()}):\n{error}")

    def run(self) -> float:
        self.process.stdin.write("run\n")
        self.process.stdin.flush()
        return self._reply()["seconds"]

    def finish(self) -> dict:
        self.process.stdin.write("stop\n")
        self.process.stdin.flush()
        result = self._reply()
        self.process.wait()
        return result

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def measure_side_by_side(phase: str, cfg: BenchConfig, folders: dict, lead: str = FRAMEWORKS[0]) -> dict:
    """Both frameworks' measurement of `phase`, their timed iterations interleaved (see the module docstring);
    `lead` goes first in the first pair. Returns {framework: _Measurement.result()}."""
    order = [lead] + [fw for fw in FRAMEWORKS if fw != lead]
    workers = {}
    try:
        for fw in order:  # one at a time: building and warming up are not timed, but they would contend
            workers[fw] = _Worker(fw, phase, cfg, folders[fw])
        for step in range(cfg.steps):
            for fw in order if step % 2 == 0 else order[::-1]:
                time.sleep(_SETTLE_S)
                workers[fw].run()
        return {fw: workers[fw].finish() for fw in FRAMEWORKS}
    finally:
        for worker in workers.values():
            worker.kill()


def summarize(runs: list, cfg: BenchConfig) -> dict:
    """Medians over rounds per framework and phase, Paddle / transformers ratios, throughput and MFU."""
    phases = [phase for phase in PHASES if phase in runs[0][FRAMEWORKS[0]]]
    median = lambda fw, phase, key: statistics.median(run[fw][phase][key] for run in runs)  # noqa: E731
    summary = {fw: {} for fw in FRAMEWORKS}
    for fw in FRAMEWORKS:
        row = summary[fw]
        for phase in phases:
            row[f"{phase}_s"] = median(fw, phase, "median")
            row[f"{phase}_peak_rss_mb"] = median(fw, phase, "peak_rss_mb")
            row[f"{phase}_gflops"] = (3 if phase == "train" else 1) * forward_flops(cfg) / row[f"{phase}_s"] / 1e9
            row[f"{phase}_matmul_gflops"] = median(fw, phase, "matmul_gflops")
            row[f"{phase}_samples_per_s"] = cfg.batch_size / row[f"{phase}_s"]
    pd, hf = summary["paddle"], summary["transformers"]
    compared = ("train_s", "inference_s", "train_peak_rss_mb", "inference_peak_rss_mb")
    summary["ratios"] = {key: pd[key] / hf[key] for key in compared if key in pd}
    summary["machine_matmul_gflops"] = {}
    summary["paired_ratios"] = {}
    for phase in phases:
        machine = max(summary[fw][f"{phase}_matmul_gflops"] for fw in FRAMEWORKS)
        summary["machine_matmul_gflops"][phase] = machine
        for fw in FRAMEWORKS:
            summary[fw][f"{phase}_mfu"] = summary[fw][f"{phase}_gflops"] / machine
        # Neighbouring iterations pair up: the spread of their ratios shows how much the machine's speed wandered.
        pairs = [
            p / t
            for run in runs
            for p, t in zip(run["paddle"][phase]["seconds"], run["transformers"][phase]["seconds"])
        ]
        summary["paired_ratios"][f"{phase}_s"] = {
            "median": statistics.median(pairs), "min": min(pairs), "max": max(pairs), "pairs": len(pairs)
        }  # fmt: skip
    summary["forward_gflop"] = forward_flops(cfg) / 1e9
    return summary


def format_table(summary: dict, cfg: BenchConfig) -> str:
    """One task's summary as a text table: transformers, paddle, paddle / transformers."""
    pd, hf, ratios = summary["paddle"], summary["transformers"], summary["ratios"]
    rows = [
        ("training step (s)", "train_s", ".3f"),
        ("training (samples/s)", "train_samples_per_s", ".1f"),
        ("prediction forward (s)", "inference_s", ".3f"),
        ("prediction (samples/s)", "inference_samples_per_s", ".1f"),
        ("peak RSS, training (MB)", "train_peak_rss_mb", ".0f"),
        ("peak RSS, prediction (MB)", "inference_peak_rss_mb", ".0f"),
        ("fp32 matmul, with training (GFLOP/s)", "train_matmul_gflops", ".0f"),
        ("fp32 matmul, with prediction (GFLOP/s)", "inference_matmul_gflops", ".0f"),
        ("MFU, training", "train_mfu", ".2f"),
        ("MFU, prediction", "inference_mfu", ".2f"),
    ]
    lines = [
        f"{cfg.task}: {cfg.architecture}, batch {cfg.batch_size}, text {cfg.text_length} (padding: {cfg.padding}), "
        f"boxes {cfg.num_boxes} x {cfg.visual_embedding_dim}, {cfg.num_hidden_layers} layers x {cfg.hidden_size}, "
        f"fp32, {cfg.threads} thread(s); forward {summary['forward_gflop']:.1f} GFLOP",
        f"{'':40}{'transformers':>14}{'paddle':>12}{'paddle/hf':>11}",
    ]
    for name, key, fmt in rows:
        if key in pd:
            ratio = f"{ratios[key]:>11.2f}" if key in ratios else ""
            lines.append(f"{name:40}{hf[key]:>14{fmt}}{pd[key]:>12{fmt}}{ratio}")
    for key, paired in summary["paired_ratios"].items():
        name = {"train_s": "training", "inference_s": "prediction"}[key]
        lines.append(
            f"paddle/hf {name}, iteration by iteration: median {paired['median']:.2f} "
            f"(from {paired['min']:.2f} to {paired['max']:.2f} over {paired['pairs']} pairs)"
        )
    return "\n".join(lines)


def machine_info(threads: int) -> dict:
    """The CPU's model name and the vector instruction sets the matmul libraries pick from, cores, threads."""
    from paddlenlp_ext.runtime import cpu_info  # imports no framework

    cpu = cpu_info()
    known = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    instruction_sets = [name for name in known if name in cpu["flags"]]
    return {
        "cpu": cpu["model"] or platform.processor(), "instruction_sets": instruction_sets, "cores": cores,
        "threads": threads, "python": platform.python_version(),
    }  # fmt: skip


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("paddlepaddle", "paddlenlp", "torch", "transformers", "numpy"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


def run(cfg: BenchConfig, rounds: int = 3, phases=PHASES, log=print) -> dict:
    """`rounds` x each phase side by side, alternating which framework leads; returns the task's report."""
    with tempfile.TemporaryDirectory(prefix="bench_model-") as folder:
        folders = prepare(cfg, folder)
        runs = []
        for r in range(rounds):
            results = {fw: {} for fw in FRAMEWORKS}
            for phase in phases:
                measured = measure_side_by_side(phase, cfg, folders, lead=FRAMEWORKS[r % 2])
                for fw in FRAMEWORKS:
                    result = results[fw][phase] = measured[fw]
                    log(f"{cfg.task} round {r + 1}/{rounds} {fw:12} {phase:9} median {result['median']:.4f} s, "
                        f"peak RSS {result['peak_rss_mb']:.0f} MB")  # fmt: skip
            runs.append(results)
    return {"config": asdict(cfg), "rounds": rounds, "summary": summarize(runs, cfg), "runs": runs}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument("--padding", choices=PADDINGS, default=BenchConfig.padding)
    for field in fields(BenchConfig):  # the fields' own defaults: 0 boxes stays "the task's"
        if field.name not in ("task", "padding", "threads"):
            parser.add_argument(f"--{field.name}", type=type(field.default), default=field.default)
    parser.add_argument("--threads", type=int, help="math threads in both frameworks (default: OMP_NUM_THREADS, else "
                        "every core this process may use)")  # fmt: skip
    parser.add_argument("--phases", nargs="+", choices=PHASES, default=list(PHASES))
    parser.add_argument(
        "--rounds", type=int, default=3, help="repeat everything; the report takes medians over rounds"
    )
    parser.add_argument(
        "--out",
        default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "model_vs_hf.json"),
        help="JSON report",
    )
    return parser.parse_args(argv)


def configs(args, threads: int) -> list[BenchConfig]:
    """One BenchConfig per task the command line names, each with its task's shapes unless given."""
    values = {f.name: getattr(args, f.name) for f in fields(BenchConfig) if f.name not in ("task", "threads")}
    return [BenchConfig(task=task, **values, threads=threads) for task in args.tasks]


def main(argv=None) -> int:
    from paddlenlp_ext.runtime import cpu_threads

    args = parse_args(argv)
    threads = cpu_threads(args.threads)
    phases = [phase for phase in PHASES if phase in args.phases]
    report = {"machine": machine_info(threads), "versions": _versions(), "tasks": {}}
    tables = []
    for cfg in configs(args, threads):
        task = cfg.task
        report["tasks"][task] = run(cfg, args.rounds, phases)
        tables.append(format_table(report["tasks"][task]["summary"], cfg))
    machine = report["machine"]
    print(f"{machine['cpu']} ({', '.join(machine['instruction_sets'])}), {machine['threads']} thread(s)")
    print("\n\n".join(tables))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    print(f"report: {os.path.abspath(args.out)}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        framework, phase, config, folder = sys.argv[2:6]
        _serve(framework, phase, BenchConfig(**json.loads(config)), folder)
    elif sys.argv[1:2] == ["--prepare"]:
        print(json.dumps(write_models(BenchConfig(**json.loads(sys.argv[2])), sys.argv[3])))
    else:
        sys.exit(main())
