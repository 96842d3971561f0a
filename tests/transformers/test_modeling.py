"""Every head on a tiny config: parity with HF transformers (outputs, loss, gradients), and the behaviours HF has."""

import alignment as compare
import numpy as np
import paddle
import paddle.nn.functional as F
import pytest
import torch
import transformers

from paddlenlp_ext.transformers.visualbert import convert, modeling, sources

HEADS = [name for name in convert.HEAD_CLASSES if name != "VisualBertModel"]


def paddle_twin(hf_model, architecture, config):
    """The Paddle model of that class holding the HF model's weights, through the converter's state-dict function."""
    state = {k: v.numpy() for k, v in hf_model.state_dict().items()}
    model = getattr(modeling, architecture)(config)
    model.set_state_dict(convert.hf_to_paddle_state_dict(state, architecture, config))
    return model.eval()


def test_registered_into_paddlenlp():
    from paddlenlp.transformers import VisualBertConfig, VisualBertForQuestionAnswering
    from paddlenlp.transformers.visualbert.modeling import VisualBertModel

    assert VisualBertForQuestionAnswering is modeling.VisualBertForQuestionAnswering
    assert VisualBertModel is modeling.VisualBertModel
    assert VisualBertConfig().layer_norm_eps == 1e-12


@pytest.mark.parametrize("architecture", HEADS)
def test_head_matches_hf(tiny, backend, architecture):
    hf_config, pd_config = tiny
    torch.manual_seed(0)
    hf_model = getattr(transformers, architecture)(hf_config(architecture, num_labels=5)).eval()
    pd_model = paddle_twin(hf_model, architecture, pd_config(num_labels=5))
    inputs = compare.make_inputs(architecture, pd_model.config, batch_size=4, seed=1)
    hf_out, hf_grads = compare.run_hf(hf_model, inputs, grads=True)
    pd_out, pd_grads = compare.run_paddle(pd_model, inputs, grads=True)
    report = compare.differences(hf_out, pd_out, hf_grads, pd_grads)
    assert "loss" in report and "gradients" in report
    assert all(row["ok"] for row in report.values()), {k: v for k, v in report.items() if not v["ok"]}


def test_alignment_head_mask_and_attentions_match_hf(tiny, backend, rng):
    hf_config, pd_config = tiny
    torch.manual_seed(0)
    hf_model = transformers.VisualBertModel(hf_config("VisualBertModel")).eval()
    pd_model = paddle_twin(hf_model, "VisualBertModel", pd_config())
    inputs = compare.make_inputs("VisualBertModel", pd_model.config, batch_size=3, seed=2)
    alignment = rng.integers(-1, 8, (3, 10, 3))
    alignment[0, 0] = -1  # a box aligned to no word
    inputs["image_text_alignment"] = alignment
    inputs["head_mask"] = np.array([[1, 0, 1, 1], [0, 1, 1, 0]], "float32")
    with torch.no_grad():
        hf_out = hf_model(**{k: torch.from_numpy(v) for k, v in inputs.items()}, output_attentions=True)
    pd_out = pd_model(**{k: paddle.to_tensor(v) for k, v in inputs.items()}, output_attentions=True, return_dict=True)
    np.testing.assert_allclose(pd_out.last_hidden_state.numpy(), hf_out.last_hidden_state.numpy(), atol=1e-5)
    np.testing.assert_allclose(pd_out.pooler_output.numpy(), hf_out.pooler_output.numpy(), atol=1e-5)
    for pd_att, hf_att in zip(pd_out.attentions, hf_out.attentions):
        np.testing.assert_allclose(pd_att.numpy(), hf_att.numpy(), rtol=1e-4, atol=1e-6)
    assert float(np.abs(pd_out.attentions[0].numpy()[:, 1]).max()) == 0.0  # head 1 of layer 0 masked


def test_bypass_transformer_uses_the_intended_text_mask(tiny, backend):
    """HF's bypass path is broken (mask indexing, tuple output), so the reference is HF's own modules composed as
    the original intended: text through the encoder alone, then the additional layer over text and boxes."""
    hf_config, pd_config = tiny
    torch.manual_seed(0)
    hf_model = transformers.VisualBertModel(hf_config("VisualBertModel", bypass_transformer=True)).eval()
    pd_model = paddle_twin(hf_model, "VisualBertModel", pd_config(bypass_transformer=True))
    inputs = compare.make_inputs("VisualBertModel", pd_model.config, batch_size=3, seed=3)
    t = {k: torch.from_numpy(v) for k, v in inputs.items()}
    text_length = inputs["input_ids"].shape[1]
    with torch.no_grad():
        embeddings = hf_model.embeddings(
            input_ids=t["input_ids"],
            token_type_ids=t["token_type_ids"],
            visual_embeds=t["visual_embeds"],
            visual_token_type_ids=t["visual_token_type_ids"],
        )
        mask = torch.cat([t["attention_mask"], t["visual_attention_mask"]], -1).float()
        extended = (1.0 - mask[:, None, None, :]) * torch.finfo(torch.float32).min
        text = hf_model.encoder(embeddings[:, :text_length], attention_mask=extended[:, :, :, :text_length])[0]
        expected = hf_model.additional_layer(torch.cat([text, embeddings[:, text_length:]], 1), extended)[0]
    pd_out = pd_model(**{k: paddle.to_tensor(v) for k, v in inputs.items()}, return_dict=True)
    np.testing.assert_allclose(pd_out.last_hidden_state.numpy(), expected.numpy(), atol=1e-5)
    np.testing.assert_allclose(pd_out.pooler_output.numpy(), hf_model.pooler(expected).detach().numpy(), atol=1e-5)


def test_padded_boxes_and_tokens_change_nothing(tiny, backend, rng):
    model = modeling.VisualBertModel(tiny[1]()).eval()
    ids = paddle.to_tensor([[2, 5, 7, 9, 3]])
    boxes = paddle.to_tensor(rng.normal(size=(1, 4, 16)).astype("float32"))
    base = model(ids, visual_embeds=boxes, return_dict=True)
    padded = model(
        paddle.to_tensor([[2, 5, 7, 9, 3, 0, 0]]),
        attention_mask=paddle.to_tensor([[1, 1, 1, 1, 1, 0, 0]]),
        visual_embeds=paddle.concat([boxes, paddle.randn([1, 3, 16]) * 100], axis=1),
        visual_attention_mask=paddle.to_tensor([[1, 1, 1, 1, 0, 0, 0]]),
        return_dict=True,
    )
    kept = padded.last_hidden_state.numpy()[:, [0, 1, 2, 3, 4, 7, 8, 9, 10]]
    np.testing.assert_allclose(kept, base.last_hidden_state.numpy(), atol=1e-5)
    np.testing.assert_allclose(padded.pooler_output.numpy(), base.pooler_output.numpy(), atol=1e-5)


def test_pretraining_ignores_every_negative_label(tiny, rng):
    model = modeling.VisualBertForPreTraining(tiny[1]()).eval()
    inputs = {k: paddle.to_tensor(v) for k, v in compare.make_inputs("VisualBertForPreTraining", model.config).items()}
    labels = inputs.pop("labels").numpy()
    out_100 = model(**inputs, labels=paddle.to_tensor(labels), return_dict=True)
    out_1 = model(**inputs, labels=paddle.to_tensor(np.where(labels < 0, -1, labels)), return_dict=True)
    assert float(out_100.loss) == pytest.approx(float(out_1.loss), rel=1e-6)
    # by hand: mean cross entropy over labelled positions + mean cross entropy of the sentence-image head; with
    # labels, prediction_logits holds the labelled positions' rows in row-major order
    labelled = labels[labels >= 0]
    logits = out_100.prediction_logits.numpy().astype("float64")
    assert logits.shape == (labelled.size, model.config.vocab_size)
    log_probs = (
        logits
        - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True))
        - logits.max(-1, keepdims=True)
    )
    mlm = -log_probs[np.arange(labelled.size), labelled].mean()
    sic_logits = out_100.seq_relationship_logits.numpy().astype("float64")
    sic = sic_logits - np.log(np.exp(sic_logits).sum(-1, keepdims=True))
    sil = inputs["sentence_image_labels"].numpy()
    expected = mlm - sic[np.arange(len(sil)), sil].mean()
    assert float(out_100.loss) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("output_all_logits", [False, True])
def test_pretraining_rejects_labels_of_the_wrong_length(tiny, output_all_logits):
    model = modeling.VisualBertForPreTraining(tiny[1]())
    ids, boxes, labels = paddle.to_tensor([[2, 5, 3]]), paddle.zeros([1, 2, 16]), paddle.to_tensor([[1, 2, 3]])
    with pytest.raises(ValueError, match="text \\+ boxes"):
        model(ids, visual_embeds=boxes, labels=labels, output_all_logits=output_all_logits)


def _pretraining_labels(case, inputs):
    """make_inputs' labels (every row has labelled positions) with row 1 or every row left without any."""
    labels = inputs["labels"].copy()
    if case == "a row without labels":
        labels[1] = -100
    elif case == "no labels at all":
        labels[:] = -100
    return dict(inputs, labels=labels)


@pytest.mark.parametrize("case", ["every row labelled", "a row without labels", "no labels at all"])
def test_pretraining_head_on_the_labelled_positions_gives_the_full_computations_numbers(tiny, backend, case):
    """With labels the MLM head runs on the labelled positions only; output_all_logits=True runs it on every position
    (as HF). Same loss, logits at the labelled positions and gradients either way (dropout off). With no label at all
    the MLM loss is 0, as the full computation's mean over clip(0 positions, 1)."""
    model = modeling.VisualBertForPreTraining(tiny[1](hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    inputs = _pretraining_labels(case, compare.make_inputs("VisualBertForPreTraining", model.config, seed=9))
    tensors = {k: paddle.to_tensor(v) for k, v in inputs.items()}
    labelled = inputs["labels"] >= 0
    model.train()
    head_outputs = []
    model.cls.predictions.register_forward_post_hook(lambda layer, args, out: head_outputs.append(out.shape))
    last_rows, batch, hidden = [], labelled.shape[0], model.config.hidden_size  # the last layer's rows per sequence
    model.visual_bert.encoder.layer[-1].output.register_forward_post_hook(
        lambda layer, args, out: last_rows.append(out.size // (batch * hidden))
    )
    results = []
    for output_all_logits in (False, True):
        model.clear_gradients()
        out = model(**tensors, output_all_logits=output_all_logits, return_dict=True)
        out.loss.backward()
        mlm_only = model(**dict(tensors, sentence_image_labels=None), output_all_logits=output_all_logits)[0]
        grads = {n: p.grad.numpy() for n, p in model.named_parameters() if p.grad is not None}
        results.append((out.prediction_logits.numpy(), float(out.loss), float(mlm_only), grads))
    (logits, loss, mlm, grads), (full_logits, full_loss, full_mlm, full_grads) = results
    vocab = model.config.vocab_size
    assert head_outputs[0] == [labelled.sum(), vocab] and head_outputs[2] == list(labelled.shape) + [vocab]
    assert last_rows[0] == 1 + labelled.sum(1).max() and last_rows[2] == labelled.shape[1]  # [CLS] and the labelled
    np.testing.assert_allclose(logits, full_logits[labelled], rtol=1e-5, atol=1e-5)
    assert loss == pytest.approx(full_loss, rel=1e-5) and mlm == pytest.approx(full_mlm, rel=1e-5)
    if case == "no labels at all":
        assert mlm == full_mlm == 0.0
    assert grads.keys() == full_grads.keys() and len(grads) == len(model.parameters())
    for name, grad in full_grads.items():
        atol = max(1e-4 * np.abs(grad).max(), 1e-6)
        np.testing.assert_allclose(grads[name], grad, rtol=1e-4, atol=atol, err_msg=name)


def test_pretraining_with_a_row_without_labels_matches_hf(tiny, backend):
    """HF's loss and every gradient, and its prediction_logits of every position through output_all_logits (as
    compare.run_paddle reads them), on a batch where one row has no labelled position."""
    hf_config, pd_config = tiny
    torch.manual_seed(0)
    hf_model = transformers.VisualBertForPreTraining(hf_config()).eval()
    pd_model = paddle_twin(hf_model, "VisualBertForPreTraining", pd_config())
    inputs = compare.make_inputs("VisualBertForPreTraining", pd_model.config, batch_size=4, seed=10)
    inputs = _pretraining_labels("a row without labels", inputs)
    hf_out, hf_grads = compare.run_hf(hf_model, inputs, grads=True)
    pd_out, pd_grads = compare.run_paddle(pd_model, inputs, grads=True)
    assert pd_out["prediction_logits"].shape == hf_out["prediction_logits"].shape
    report = compare.differences(hf_out, pd_out, hf_grads, pd_grads)
    assert {"loss", "prediction_logits", "gradients"} <= set(report)
    assert all(row["ok"] for row in report.values()), {k: v for k, v in report.items() if not v["ok"]}


def test_visual_feature_size_is_checked(tiny):
    model = modeling.VisualBertModel(tiny[1]())
    with pytest.raises(ValueError, match="visual_embedding_dim=16"):
        model(paddle.to_tensor([[2, 3]]), visual_embeds=paddle.zeros([1, 2, 15]))


def test_question_answering_pools_the_mask_token_and_returns_log_probs_with_labels(tiny):
    model = modeling.VisualBertForQuestionAnswering(tiny[1](num_labels=7)).eval()
    ids = paddle.to_tensor([[2, 10, 11, 12, 4, 3, 0], [2, 10, 4, 3, 0, 0, 0]])
    mask = (ids != 0).astype("int64")
    boxes = paddle.randn([2, 3, 16])
    out = model(ids, attention_mask=mask, visual_embeds=boxes, return_dict=True)
    hidden = model.visual_bert(ids, attention_mask=mask, visual_embeds=boxes, return_dict=True).last_hidden_state
    expected = model.cls(paddle.stack([hidden[0, 4], hidden[1, 2]]))  # the token before the last [SEP]
    np.testing.assert_allclose(out.logits.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)  # two summation orders
    labels = paddle.to_tensor(np.eye(7, dtype="float32")[[1, 2]])
    with_labels = model(ids, attention_mask=mask, visual_embeds=boxes, labels=labels, return_dict=True)
    np.testing.assert_allclose(np.exp(with_labels.logits.numpy()).sum(-1), 1.0, rtol=1e-5)
    assert float(with_labels.loss) == pytest.approx(-with_labels.logits.numpy()[[0, 1], [1, 2]].mean(), rel=1e-5)


def test_dropout_is_active_only_in_train_mode(tiny):
    model = modeling.VisualBertForVisualReasoning(tiny[1]())
    inputs = {k: paddle.to_tensor(v) for k, v in compare.make_inputs("VisualBertModel", model.config).items()}
    model.train()
    first, second = model(**inputs)[0].numpy(), model(**inputs)[0].numpy()
    assert np.abs(first - second).max() > 1e-4
    model.eval()
    np.testing.assert_array_equal(model(**inputs)[0].numpy(), model(**inputs)[0].numpy())
    no_dropout = modeling.VisualBertForVisualReasoning(
        tiny[1](hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    )
    no_dropout.set_state_dict(model.state_dict())
    no_dropout.train()
    np.testing.assert_allclose(no_dropout(**inputs)[0].numpy(), model(**inputs)[0].numpy(), atol=1e-6)


def test_layer_norms_use_bert_epsilon(tiny):
    model = modeling.VisualBertForPreTraining(tiny[1]())
    norms = [layer for layer in model.sublayers() if isinstance(layer, paddle.nn.LayerNorm)]
    assert len(norms) == 1 + 2 * 2 + 1
    assert all(layer._epsilon == 1e-12 for layer in norms)


@pytest.mark.parametrize("special_visual_initialize", [True, False])
def test_a_model_built_from_a_config_draws_every_table(tiny, special_visual_initialize):
    """As HF (whose post_init redraws the copied tables): the visual type and position tables are drawn like the
    others, whatever special_visual_initialize says; the copy belongs to initialising from BERT (test_convert)."""
    config = tiny[1](initializer_range=0.02, special_visual_initialize=special_visual_initialize)
    paddle.seed(4)
    emb = modeling.VisualBertModel(config).embeddings
    for visual, text in (("visual_position", "position"), ("visual_token_type", "token_type")):
        drawn = getattr(emb, f"{visual}_embeddings").weight.numpy()
        assert np.abs(drawn - getattr(emb, f"{text}_embeddings").weight.numpy()).min() > 0
        n = drawn.size  # within 4 standard errors: of the std, 0.02 / sqrt(2n); of the mean, 0.02 / sqrt(n)
        assert drawn.std() == pytest.approx(0.02, rel=4 / np.sqrt(2 * n)) and abs(drawn.mean()) < 0.08 / np.sqrt(n)


def test_save_and_from_pretrained_round_trip(tiny, tmp_path):
    model = modeling.VisualBertForMultipleChoice(tiny[1]()).eval()
    model.save_pretrained(str(tmp_path))
    loaded = modeling.VisualBertForMultipleChoice.from_pretrained(str(tmp_path)).eval()
    inputs = {
        k: paddle.to_tensor(v)
        for k, v in compare.make_inputs("VisualBertForMultipleChoice", model.config).items()
        if k != "labels"
    }
    np.testing.assert_array_equal(model(**inputs)[0].numpy(), loaded(**inputs)[0].numpy())
    assert model(**inputs)[0].shape == [3, 2]


def test_checkpoint_names_resolve_to_converted_folders(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "CHECKPOINT_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="visualbert-nlvr2: no converted checkpoint"):
        modeling.VisualBertForVisualReasoning.from_pretrained("visualbert-nlvr2")
    with pytest.raises(FileNotFoundError, match="not one of the VisualBERT checkpoints"):
        modeling.VisualBertForVisualReasoning.from_pretrained("visualbert-nlvr3")
    model = modeling.VisualBertForVisualReasoning(tiny[1]())
    model.save_pretrained(str(tmp_path / "visualbert-nlvr2"))
    loaded = modeling.VisualBertForVisualReasoning.from_pretrained("visualbert-nlvr2")
    np.testing.assert_array_equal(loaded.cls.weight.numpy(), model.cls.weight.numpy())


def test_soft_target_loss_matches_log_softmax(rng):
    logits = paddle.to_tensor(rng.normal(0, 3, (8, 50)).astype("float32"), stop_gradient=False)
    labels = paddle.to_tensor(rng.random((8, 50)).astype("float32"))
    loss, log_probs = modeling._soft_target_loss(logits, labels)
    expected_log_probs = F.log_softmax(logits, axis=-1)
    expected = F.kl_div(expected_log_probs, labels, reduction="batchmean")
    np.testing.assert_allclose(log_probs.numpy(), expected_log_probs.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(loss.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)
    grad, expected_grad = paddle.grad([loss], [logits])[0], paddle.grad([expected], [logits])[0]
    np.testing.assert_allclose(grad.numpy(), expected_grad.numpy(), rtol=1e-5, atol=1e-6)


def test_output_rows_computes_those_positions_of_the_last_layer(tiny, backend):
    paddle.seed(5)
    model = modeling.VisualBertModel(tiny[1]()).eval()
    inputs = {k: paddle.to_tensor(v) for k, v in compare.make_inputs("VisualBertModel", model.config, seed=5).items()}
    full = model(**inputs, return_dict=True)
    batch = inputs["input_ids"].shape[0]
    rows = paddle.to_tensor([[0, 3, 7], [0, 1, 2], [0, 5, 5]][:batch], dtype="int64")
    assert batch > 1
    part = model(**inputs, return_dict=True, output_rows=rows)
    expected = np.take_along_axis(full.last_hidden_state.numpy(), rows.numpy()[:, :, None], axis=1)
    # fp32 rounding of matmuls of other shapes: 1.2e-6 relative seen on values near 2
    np.testing.assert_allclose(part.last_hidden_state.numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(part.pooler_output.numpy(), full.pooler_output.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="output_rows .* cannot go with output_attentions"):
        model(**inputs, output_rows=rows, output_attentions=True)


@pytest.mark.parametrize(
    "architecture",
    ["VisualBertForQuestionAnswering", "VisualBertForVisualReasoning", "VisualBertForMultipleChoice"],
)
def test_heads_that_read_few_positions_give_the_full_computations_numbers(tiny, backend, architecture):
    """The QA, NLVR2 and multiple-choice heads let the last layer compute only the rows they read; asking for every
    hidden state makes it compute all of them. Same logits, loss and gradients either way (dropout off)."""
    model = getattr(modeling, architecture)(
        tiny[1](hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, num_labels=7)
    )
    inputs = {k: paddle.to_tensor(v) for k, v in compare.make_inputs(architecture, model.config, seed=6).items()}
    model.train()
    rows_computed = []  # per sequence, by the last layer's output block ([B, R, H], or [B * R, H] without padding)
    batch, hidden = int(np.prod(inputs["input_ids"].shape[:-1])), model.config.hidden_size  # sequences
    model.visual_bert.encoder.layer[-1].output.register_forward_post_hook(
        lambda layer, args, out: rows_computed.append(out.size // (batch * hidden))
    )
    results = []
    for every_row in (False, True):
        model.clear_gradients()
        out = model(**inputs, output_hidden_states=every_row, return_dict=True)
        out.loss.backward()
        grads = {n: p.grad.numpy() for n, p in model.named_parameters() if p.grad is not None}
        results.append((out.logits.numpy(), float(out.loss), grads))
    (logits, loss, grads), (full_logits, full_loss, full_grads) = results
    length = inputs["input_ids"].shape[-1] + inputs["visual_embeds"].shape[-2]
    assert rows_computed == [2 if architecture == "VisualBertForQuestionAnswering" else 1, length]
    np.testing.assert_allclose(logits, full_logits, atol=1e-5)
    assert loss == pytest.approx(full_loss, rel=1e-5)
    assert grads.keys() == full_grads.keys()
    for name, grad in full_grads.items():
        atol = max(1e-4 * np.abs(grad).max(), 1e-6)
        np.testing.assert_allclose(grads[name], grad, rtol=1e-4, atol=atol, err_msg=name)


class _Exported(paddle.nn.Layer):
    """A head's first output from named inputs, as an export takes them."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, token_type_ids, attention_mask, visual_embeds, visual_token_type_ids,
                visual_attention_mask):  # fmt: skip
        inputs = dict(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)
        inputs.update(visual_embeds=visual_embeds, visual_token_type_ids=visual_token_type_ids)
        return self.model(**inputs, visual_attention_mask=visual_attention_mask, return_dict=True).logits


@pytest.mark.parametrize("architecture", ["VisualBertForQuestionAnswering", "VisualBertForVisualReasoning"])
def test_to_static_traces_the_heads_and_gives_the_eager_outputs(tiny, architecture, tmp_path):
    """paddle.jit.to_static traces modeling.py's path (the CPU backend steps aside) with dynamic batch, text and box
    counts; the static program saved and loaded gives the eager model's logits (with the backend) within 1e-5."""
    from paddle.static import InputSpec

    paddle.seed(7)
    model = getattr(modeling, architecture)(tiny[1](num_labels=7)).eval()
    inputs = compare.make_inputs(architecture, model.config, batch_size=4, seed=7)
    assert inputs["attention_mask"].min() == 0  # the batch has padding
    names = ["input_ids", "token_type_ids", "attention_mask", "visual_embeds", "visual_token_type_ids",
             "visual_attention_mask"]  # fmt: skip
    specs = [
        InputSpec([None, None, model.config.visual_embedding_dim] if n == "visual_embeds" else [None, None],
                  "float32" if n == "visual_embeds" else "int64", n)
        for n in names
    ]  # fmt: skip
    exported = _Exported(model)
    static = paddle.jit.to_static(exported, input_spec=specs, full_graph=True)
    paddle.jit.save(static, str(tmp_path / "model"))
    loaded = paddle.jit.load(str(tmp_path / "model"))
    for batch in (inputs, compare.make_inputs(architecture, model.config, batch_size=2, text_length=7, seed=8)):
        tensors = [paddle.to_tensor(batch[n]) for n in names]
        with paddle.no_grad():
            eager = exported(*tensors).numpy()
            np.testing.assert_allclose(static(*tensors).numpy(), eager, atol=1e-5)
            np.testing.assert_allclose(loaded(*tensors).numpy(), eager, atol=1e-5)
