"""The model benchmark at a tiny size: inputs, FLOP count, both frameworks' measurements, the side-by-side workers,
the report."""

import bench_model as benchmark
import numpy as np
import pytest

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, vocab_size=99)


@pytest.fixture
def cfg():
    return benchmark.BenchConfig(batch_size=2, text_length=6, num_boxes=3, visual_embedding_dim=16, num_labels=5,
                                 warmup=1, steps=2, matmul_size=64, **TINY)  # fmt: skip


@pytest.mark.parametrize("architecture", benchmark.ARCHITECTURES)
def test_inputs_are_seeded_and_fit_the_head(cfg, architecture):
    cfg.architecture = architecture
    first, second = benchmark.make_inputs(cfg), benchmark.make_inputs(cfg)
    assert first.keys() == second.keys() and all(np.array_equal(first[k], second[k]) for k in first)
    assert first["attention_mask"][0].all() and first["input_ids"].max() < cfg.vocab_size
    if architecture == "VisualBertForPreTraining":
        assert first["labels"].shape == (2, cfg.text_length + cfg.num_boxes)


def test_forward_flops_counts_every_matmul(cfg):
    b, s, h, i = 2, 9, 32, 37
    layer = 2 * b * s * (4 * h * h + 2 * h * i) + 4 * b * s * s * h
    expected = 2 * b * 3 * 16 * h + 2 * layer + 2 * b * h * h + 2 * b * h * 5
    assert benchmark.forward_flops(cfg) == expected


def test_measurements_and_report(cfg):
    runs = [
        {fw: {phase: benchmark.measure(fw, phase, cfg) for phase in benchmark.PHASES} for fw in benchmark.FRAMEWORKS}
    ]
    for phase in benchmark.PHASES:
        result = runs[0]["paddle"][phase]
        assert len(result["seconds"]) == len(result["matmul_seconds"]) == cfg.steps
        assert (
            result["peak_rss_mb"] > result["rss_before_mb"] - 1 > 0 and result["matmul_gflops"] > 0
        )  # ru_maxrss and statm may differ by a page
    summary = benchmark.summarize(runs, cfg)
    assert summary["ratios"]["train_s"] == pytest.approx(
        summary["paddle"]["train_s"] / summary["transformers"]["train_s"]
    )
    machine = max(runs[0][fw]["inference"]["matmul_gflops"] for fw in benchmark.FRAMEWORKS)
    assert summary["paddle"]["inference_mfu"] == pytest.approx(summary["paddle"]["inference_gflops"] / machine)
    paddle_s, hf_s = runs[0]["paddle"]["train"]["seconds"], runs[0]["transformers"]["train"]["seconds"]
    assert summary["paired_ratios"]["train_s"]["max"] == max(p / t for p, t in zip(paddle_s, hf_s))
    table = benchmark.format_table(summary, cfg)
    assert "training step (s)" in table and "MFU, inference" in table and "train, iteration by iteration" in table


def test_side_by_side_workers_take_turns(cfg):
    """Two worker processes, one per framework, each timing one iteration per request; a failing one says so."""
    results = benchmark.measure_side_by_side("inference", cfg, lead="paddle")
    for fw in benchmark.FRAMEWORKS:
        assert len(results[fw]["seconds"]) == cfg.steps and results[fw]["median"] > 0
        assert results[fw]["peak_rss_mb"] >= results[fw]["rss_before_mb"] > 0
    cfg.architecture = "VisualBertForNothing"
    with pytest.raises(RuntimeError, match="transformers inference failed"):
        benchmark.measure_side_by_side("inference", cfg, lead="transformers")
