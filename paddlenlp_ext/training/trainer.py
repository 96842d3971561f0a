"""The one training loop behind every entry point (pretraining, VQA2 and NLVR2 finetuning).

AdamW with no decay on biases and LayerNorm, linear warmup then linear decay, global-norm gradient clipping,
gradient accumulation, optional AMP, paddle.DataParallel + DistributedBatchSampler under
`python -m paddle.distributed.launch`, evaluation / checkpointing / logging every `save_steps` on rank 0, and exact
resumption (`--resume`). Batches are dicts of numpy arrays from the data package's collator.

Nothing fails silently: a non-finite loss, gradient norm or model stops every rank at once (TrainingDiverged) and is
never saved; an output_dir holding another run is refused unless `--resume` or `--overwrite_output_dir` says what to
do with it; DataLoader workers and ranks end with their parent process (lifetime.py).
"""

import json
import math
import os
import re
import shutil
import time
from contextlib import nullcontext

import numpy as np
import paddle
import paddle.distributed as dist
from paddle.io import DistributedBatchSampler
from paddlenlp.transformers import LinearDecayWithWarmup
from paddlenlp.utils.log import logger
from tqdm import tqdm

from .. import lifetime
from ..data import BatchLoader, VisualBertCollator, model_inputs
from . import checkpoint as ckpt
from .args import write_run_info
from .plots import plot_history


def amp_dtype(device: str) -> str | None:
    """bfloat16 where the GPU has it, else float16 on GPU; None (fp32) on CPU, where Paddle's autocast does nothing
    (it warns and casts no tensor) and no bfloat16/float16 CPU kernel of matmul, layer_norm or softmax exists."""
    if not device.startswith("gpu"):
        return None
    return "bfloat16" if paddle.amp.is_bfloat16_supported() else "float16"


def no_decay(name: str) -> bool:
    """Biases and LayerNorm parameters take no weight decay (BERT's recipe)."""
    return name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name


def total_steps(args, batches_per_epoch: int) -> int:
    steps_per_epoch = math.ceil(batches_per_epoch / args.gradient_accumulation_steps)
    return args.max_steps if args.max_steps > 0 else steps_per_epoch * args.num_train_epochs


class TrainingDiverged(ValueError):
    """A non-finite loss, gradient norm or model: the run stops (a ValueError, so entry points exit 2 with it)."""


class TrainingStep:
    """What the trainer does with one batch and at each optimizer step, and all it does (the benchmark times this):
    the forward and backward pass under autocast when --use_amp has a dtype (the loss divided by the accumulation
    steps, DataParallel's all-reduce held back until the last micro-batch), then global-norm gradient clipping,
    AdamW with no decay on biases and LayerNorm, the LR schedule's step, and the gradients released (not zeroed:
    a zeroed gradient keeps its memory through the next forward pass)."""

    def __init__(self, args, model, total_steps: int):
        self.args, self.model = args, model
        self.lr = LinearDecayWithWarmup(args.learning_rate, total_steps, args.warmup_proportion)
        decay = [p.name for n, p in model.named_parameters() if not no_decay(n)]
        self.optimizer = paddle.optimizer.AdamW(
            learning_rate=self.lr,
            parameters=model.parameters(),
            weight_decay=args.weight_decay,
            epsilon=args.adam_epsilon,
            apply_decay_param_fun=lambda name: name in decay,
        )
        self.amp_dtype = amp_dtype(args.device) if args.use_amp else None
        if args.use_amp and self.amp_dtype is None:
            logger.warning("--use_amp: no fp16/bf16 autocast on this device; training in fp32")
        self.scaler = paddle.amp.GradScaler() if self.amp_dtype == "float16" else None
        self.world_size = dist.get_world_size()
        self.parallel = paddle.DataParallel(model) if self.world_size > 1 else model

    def forward_backward(self, inputs: dict, sync: bool = True) -> float:
        """Loss of one (micro-)batch of model inputs, its gradients added to the parameters' (all-reduced across
        ranks when `sync`)."""
        with self.parallel.no_sync() if (not sync and self.world_size > 1) else nullcontext():
            with paddle.amp.auto_cast(enable=self.amp_dtype is not None, dtype=self.amp_dtype or "float16"):
                loss = self.parallel(**inputs, return_dict=True).loss
            scaled = loss / self.args.gradient_accumulation_steps
            (self.scaler.scale(scaled) if self.scaler else scaled).backward()
        return float(loss)

    @paddle.no_grad()
    def clip_gradients(self) -> float:
        """Scale the gradients to a global norm of at most --max_grad_norm (0: no clipping) and return their norm
        before clipping, computed once for both (Paddle's ClipGradByGlobalNorm's arithmetic: every gradient times
        max_norm / max(norm, max_norm))."""
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        if not grads:
            return 0.0
        norm = paddle.stack([paddle.square(g.astype("float32")).sum() for g in grads]).sum().sqrt()
        value, max_norm = float(norm), self.args.max_grad_norm  # one wait for the device
        if max_norm > 0 and math.isfinite(value) and value > max_norm:
            factor = paddle.to_tensor(max_norm, dtype="float32") / norm
            for g in grads:
                g.multiply_(factor.astype(g.dtype))
        return value

    def step(self):
        """The optimizer and LR schedule step; the gradients are released."""
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.clear_grad(set_to_zero=False)
        self.lr.step()


class Trainer:
    """Trains `model` on `train_dataset`; `evaluate(model) -> {metric: value}` runs on rank 0 at every save.

    `metric` names the entry of evaluate's result that picks the best checkpoint (higher is better)."""

    def __init__(self, args, model, tokenizer, train_dataset, collate_fn, evaluate=None, metric=None, save_with=None):
        self.args = args
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.is_main = self.rank == 0
        self.model = model
        self.tokenizer = tokenizer
        self.dataset = train_dataset
        self.loader = BatchLoader(train_dataset, collate_fn, args.num_workers)  # one for the run: it keeps its memory
        self.evaluate = evaluate
        self.metric = metric
        self.save_with = save_with

        self.sampler = DistributedBatchSampler(train_dataset, args.batch_size, shuffle=True, drop_last=False)
        self.total_steps = total_steps(args, len(self.sampler))
        self.steps = TrainingStep(args, model, self.total_steps)
        self.optimizer, self.lr = self.steps.optimizer, self.steps.lr

        # Where the run is: optimizer steps taken, and the data position (epoch, batches of it consumed).
        self.state = {"step": 0, "epoch": 0, "batch": 0, "best": None, "history": []}

    # ---- resumption --------------------------------------------------------------------------------------------

    def resume(self, path: str):
        """Restore model, optimizer (with the LR schedule), step, data position and RNG from a checkpoint folder."""
        training = ckpt.load_training_state(path)
        self.model.set_state_dict(paddle.load(os.path.join(path, "model_state.pdparams")))
        ckpt.set_optimizer_state(self.optimizer, self.model, training["optimizer"])
        self.state = training["state"]
        ckpt.set_rng_states(training["rng"])
        if self.is_main:
            logger.info(f"resumed from {path} at step {self.state['step']} (epoch {self.state['epoch']})")

    # ---- the loop ----------------------------------------------------------------------------------------------

    def _epoch_batches(self, epoch: int) -> list:
        # DistributedBatchSampler shuffles with the epoch number as its only seed: fold the run's seed in.
        self.sampler.set_epoch(self.args.seed * 100_003 + epoch)
        return list(self.sampler)

    def _diverged(self, step: int, what: str):
        found = ckpt.list_checkpoints(self.args.output_dir)
        last = f"the last good checkpoint is {found[-1]}" if found else "there is no checkpoint to go back to"
        return TrainingDiverged(f"training diverged at step {step}: {what}; {last}")

    def _check_loss(self, losses: list):
        """Stop on a non-finite loss, on every rank alike: the loss is averaged over the ranks (a NaN anywhere stays
        NaN)."""
        loss = paddle.to_tensor(float(np.mean(losses)), dtype="float32")
        if self.world_size > 1:
            dist.all_reduce(loss)
            loss = loss / self.world_size
        if not math.isfinite(float(loss)):
            raise self._diverged(self.state["step"] + 1, f"loss {float(loss)}")

    def train(self):
        """Run to `total_steps`; returns the final state (step, best metric, history)."""
        args = self.args
        self.model.train()
        progress = tqdm(
            total=self.total_steps,
            initial=self.state["step"],
            desc="train",
            disable=None if self.is_main else True,
            smoothing=0.05,
        )
        window_losses, window_start, run_start, start_step = [], time.time(), time.time(), self.state["step"]
        while self.state["step"] < self.total_steps:
            batches = self._epoch_batches(self.state["epoch"])
            if hasattr(self.dataset, "set_epoch"):  # per-epoch randomness: masking, caption negatives
                self.dataset.set_epoch(self.state["epoch"])
            accumulated, step_losses = 0, []
            for batch in self.loader.iterate(batches[self.state["batch"] :]):
                self.state["batch"] += 1
                accumulated += 1
                end_of_epoch = self.state["batch"] == len(batches)
                sync = accumulated == args.gradient_accumulation_steps or end_of_epoch
                step_losses.append(self.steps.forward_backward(model_inputs(batch), sync))
                if not sync:
                    continue
                self._check_loss(step_losses)
                norm = self.steps.clip_gradients()  # equal on every rank: DataParallel all-reduced the gradients
                if not math.isfinite(norm) and self.steps.scaler is None:  # fp16 loss scaling skips such steps
                    raise self._diverged(self.state["step"] + 1, f"gradient norm {norm}")
                window_losses += step_losses
                accumulated, step_losses = 0, []
                self.steps.step()
                self.state["step"] += 1
                progress.update(1)
                step = self.state["step"]
                if step % args.logging_steps == 0 or step == self.total_steps:
                    self._log(window_losses, window_start, run_start, start_step, progress)
                    window_losses, window_start = [], time.time()
                if (args.save_steps > 0 and step % args.save_steps == 0) or step == self.total_steps:
                    self._evaluate_and_save()
                if step >= self.total_steps:
                    break
            else:
                self.state["epoch"] += 1
                self.state["batch"] = 0
        progress.close()
        if self.is_main:
            plot_history(self.state["history"], os.path.join(args.output_dir, "training_curves.png"))
        return self.state

    def _log(self, losses, window_start, run_start, start_step, progress):
        step = self.state["step"]
        loss = float(np.mean(losses)) if losses else float("nan")
        elapsed = time.time() - window_start
        samples = len(losses) * self.args.batch_size * self.world_size
        steps_done = step - start_step
        eta = (time.time() - run_start) / max(steps_done, 1) * (self.total_steps - step)
        lr = self.optimizer.get_lr()
        self.state["history"].append({"step": step, "loss": loss, "lr": lr})
        if not self.is_main:
            return
        progress.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}")
        logger.info(
            f"step {step}/{self.total_steps} epoch {self.state['epoch']} loss {loss:.4f} lr {lr:.3e} "
            f"samples/s {samples / max(elapsed, 1e-9):.1f} eta {time.strftime('%H:%M:%S', time.gmtime(eta))}"
        )
        self._scalars({"train/loss": loss, "train/lr": lr})

    def _scalars(self, values: dict):
        if not hasattr(self, "_writer"):
            from visualdl import LogWriter

            self._writer = LogWriter(logdir=os.path.join(self.args.output_dir, "visualdl"))
        for tag, value in values.items():
            self._writer.add_scalar(tag=tag, value=value, step=self.state["step"])

    def _evaluate_and_save(self):
        # On every rank (the parameters are equal on all), so that all stop together.
        finite = paddle.stack([paddle.isfinite(p).all() for p in self.model.parameters()])
        if not bool(finite.all()):
            name = next(n for (n, _), ok in zip(self.model.named_parameters(), finite.numpy()) if not ok)
            raise self._diverged(self.state["step"], f"non-finite parameters ({name}), not saved")
        if not self.is_main:
            return
        metrics = {}
        if self.evaluate is not None:
            self.model.eval()
            metrics = self.evaluate(self.model)
            self.model.train()
            logger.info(f"step {self.state['step']} dev: " + json.dumps(metrics))
            self.state["history"].append({"step": self.state["step"], **{f"dev/{k}": v for k, v in metrics.items()}})
            self._scalars({f"dev/{k}": v for k, v in metrics.items() if isinstance(v, (int, float))})
        if self.metric is not None and self.metric in metrics:
            if self.state["best"] is None or metrics[self.metric] > self.state["best"]:
                self.state["best"] = metrics[self.metric]
                ckpt.save_best(
                    self.args.output_dir, self.model, self.tokenizer, {"step": self.state["step"], **metrics},
                    self.save_with,
                )  # fmt: skip
        ckpt.save_checkpoint(
            self.args.output_dir,
            self.state["step"],
            self.model,
            self.tokenizer,
            self.optimizer,
            self.state,
            self.args.save_total_limit,
            self.save_with,
        )


def claim_output_dir(args):
    """Refuse an output_dir holding another run's checkpoints or best/, unless --resume continues that run or
    --overwrite_output_dir replaces it (rank 0 then removes what the trainer writes). Every rank checks, so that all
    stop together."""
    if args.resume and args.overwrite_output_dir:
        raise ValueError("--resume continues the run in --output_dir, --overwrite_output_dir replaces it: give one")
    folder = args.output_dir
    ours = re.compile(r"checkpoint-\d+|best|\.(checkpoint-\d+|best)\.(tmp|old)-\w+")
    previous = sorted(e for e in os.listdir(folder) if ours.fullmatch(e)) if os.path.isdir(folder) else []
    if not previous or args.resume:
        return
    if not args.overwrite_output_dir:
        raise ValueError(
            f"output_dir {folder} holds another run's checkpoints or best/: give --resume to continue it or "
            "--overwrite_output_dir to replace it"
        )
    if dist.get_rank() == 0:
        for entry in previous + ["visualdl", "training_curves.png"]:
            path = os.path.join(folder, entry)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)
        logger.info(f"--overwrite_output_dir: removed the previous run's {', '.join(previous)} from {folder}")


def fit(args, model, tokenizer, train_dataset, evaluate=None, metric=None, save_with=None):
    """Train with the Trainer, resuming first when --resume asks; returns the final state. save_with(folder) writes
    what a task's model folder needs besides the model and tokenizer (VQA's answer vocabulary) into every
    checkpoint and best/."""
    lifetime.exit_with_launcher()
    claim_output_dir(args)
    collator = VisualBertCollator(tokenizer.pad_token_id)
    trainer = Trainer(args, model, tokenizer, train_dataset, collator, evaluate, metric, save_with)
    resumed = False
    if args.resume:
        path = args.resume
        if path == "auto":
            found = ckpt.list_checkpoints(args.output_dir)
            path = found[-1] if found else None
            if path is None and trainer.is_main:
                logger.info(f"--resume: no checkpoint in {args.output_dir} yet; starting from the beginning")
        if path is not None:
            trainer.resume(path)
            resumed = True
    if trainer.is_main:  # the run is known to start: a refused one leaves the folder's run_info.json as it was
        write_run_info(args, resumed_at=trainer.state["step"] if resumed else None)
    state = trainer.train()
    if trainer.is_main:
        best = " and best/" if os.path.isdir(os.path.join(args.output_dir, "best")) else ""
        logger.info(f"done: step {state['step']}, checkpoints{best} in {args.output_dir}")
    return state
