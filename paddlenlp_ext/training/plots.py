"""The PNG of a run's curves: training loss and every dev metric against the optimizer step."""

import matplotlib

from ..files import atomic_file

matplotlib.use("Agg")  # files only: training machines have no display
import matplotlib.pyplot as plt  # noqa: E402


def plot_history(history: list, path: str):
    """Write the PNG at `path`; history: dicts with "step" and "loss" (training) or "dev/<metric>" entries."""
    train = [(h["step"], h["loss"]) for h in history if "loss" in h]
    dev_keys = sorted({k for h in history for k in h if k.startswith("dev/") and isinstance(h[k], (int, float))})
    fig, axes = plt.subplots(1, 1 + bool(dev_keys), figsize=(11 if dev_keys else 6, 4), squeeze=False)
    if train:
        axes[0][0].plot(*zip(*train), label="train loss")
    axes[0][0].set(xlabel="step", ylabel="loss", title="training loss")
    for key in dev_keys:
        points = [(h["step"], h[key]) for h in history if key in h]
        axes[0][1].plot(*zip(*points), marker="o", label=key[len("dev/") :])
    if dev_keys:
        axes[0][1].set(xlabel="step", title="dev")
        axes[0][1].legend()
    fig.tight_layout()
    with atomic_file(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
