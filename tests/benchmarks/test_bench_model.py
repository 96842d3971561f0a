"""The model benchmark at a tiny size: inputs per task, FLOP count, the model folders, both frameworks' measurements,
the side-by-side workers, the report."""

import bench_model as benchmark
import numpy as np
import pytest

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, vocab_size=99)


def tiny(task="vqa", **overrides):
    values = dict(batch_size=2, text_length=6, num_boxes=4, visual_embedding_dim=16, warmup=1, steps=2)
    return benchmark.BenchConfig(task=task, matmul_size=64, **{**values, **TINY, **overrides})


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """The VQA models as the benchmark writes them (in a process of their own)."""
    return benchmark.prepare(tiny(), str(tmp_path_factory.mktemp("models")))


@pytest.mark.parametrize("task", list(benchmark.TASKS))
def test_inputs_are_seeded_and_fit_the_head(task):
    cfg = tiny(task)
    first, second = benchmark.make_inputs(cfg), benchmark.make_inputs(cfg)
    assert first.keys() == second.keys() and all(np.array_equal(first[k], second[k]) for k in first)
    assert first["attention_mask"][0].all() and first["input_ids"].max() < cfg.vocab_size
    assert first["visual_embeds"].shape == (2, 4, 16) and first["visual_attention_mask"].all()
    if task == "pretrain":
        assert first["labels"].shape == (2, cfg.text_length + cfg.num_boxes) and "sentence_image_labels" in first
    if task == "nlvr2":  # the second image's boxes
        assert first["visual_token_type_ids"].tolist() == [[0, 0, 1, 1]] * 2


def test_padding_none_fills_every_row_and_real_pads_some():
    full = benchmark.make_inputs(tiny(padding="none", batch_size=16))["attention_mask"]
    padded = benchmark.make_inputs(tiny(padding="real", batch_size=16))["attention_mask"]
    assert full.all() and not padded.all() and padded.sum(1).min() >= 3


def test_a_task_gets_its_shapes_unless_given():
    nlvr2 = benchmark.BenchConfig(task="nlvr2")
    assert (nlvr2.num_boxes, nlvr2.visual_embedding_dim, nlvr2.model_config()["num_labels"]) == (288, 1024, 2)
    assert nlvr2.architecture == "VisualBertForVisualReasoning"
    with pytest.raises(ValueError, match="'vcr' is not one of"):
        benchmark.BenchConfig(task="vcr")


def test_forward_flops_counts_every_matmul():
    b, s, h, i = 2, 10, 32, 37
    layer = 2 * b * s * (4 * h * h + 2 * h * i) + 4 * b * s * s * h
    expected = 2 * b * 4 * 16 * h + 2 * layer + 2 * b * h * h + 2 * b * h * 3129
    assert benchmark.forward_flops(tiny()) == expected


def test_both_models_hold_the_same_weights(folders):
    """The Paddle folder is the conversion of the HF one: the same prediction from the same inputs."""
    import paddle
    import torch
    import transformers

    from paddlenlp_ext.transformers.visualbert import modeling

    inputs = {k: v for k, v in benchmark.make_inputs(tiny()).items() if k not in benchmark.LABELS}
    hf = transformers.VisualBertForQuestionAnswering.from_pretrained(folders["transformers"]).eval()
    pd = modeling.VisualBertForQuestionAnswering.from_pretrained(folders["paddle"]).eval()
    with torch.no_grad():
        expected = hf(**{k: torch.from_numpy(v) for k, v in inputs.items()}).logits.numpy()
    with paddle.no_grad():
        got = pd(**{k: paddle.to_tensor(v) for k, v in inputs.items()}, return_dict=True).logits.numpy()
    assert np.abs(got - expected).max() < 1e-5


def test_measurements_and_report(folders):
    cfg = tiny()
    runs = [
        {
            fw: {phase: benchmark.measure(fw, phase, cfg, folders[fw]) for phase in benchmark.PHASES}
            for fw in benchmark.FRAMEWORKS
        }
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
    assert "training step (s)" in table and "MFU, prediction" in table and "training, iteration by iteration" in table


def test_side_by_side_workers_take_turns(folders, tmp_path):
    """Two worker processes, one per framework, each timing one iteration per request; a failing one says so."""
    results = benchmark.measure_side_by_side("inference", tiny(), folders, lead="paddle")
    for fw in benchmark.FRAMEWORKS:
        assert len(results[fw]["seconds"]) == 2 and results[fw]["median"] > 0
        assert results[fw]["peak_rss_mb"] >= results[fw]["rss_before_mb"] > 0
    missing = {fw: str(tmp_path / fw) for fw in benchmark.FRAMEWORKS}
    with pytest.raises(RuntimeError, match="transformers vqa inference failed"):
        benchmark.measure_side_by_side("inference", tiny(), missing, lead="transformers")


def test_the_command_line_gives_each_task_its_shapes():
    args = benchmark.parse_args(["--tasks", "vqa", "nlvr2", "--padding", "none", "--batch_size", "4"])
    vqa, nlvr2 = benchmark.configs(args, threads=2)
    assert (vqa.num_boxes, vqa.visual_embedding_dim, nlvr2.num_boxes, nlvr2.visual_embedding_dim) == (
        100,
        2048,
        288,
        1024,
    )
    assert vqa.padding == nlvr2.padding == "none" and nlvr2.batch_size == 4 and nlvr2.threads == 2
