"""Loading as PaddleNLP users load any model: the Auto classes on folders this project writes, every local
from_pretrained source, PaddleNLP's torch-checkpoint path (convert_from_torch=True) against convert.py, and the
errors for what cannot be found. Nothing here goes to the network."""

import os

import alignment as compare
import numpy as np
import paddle
import pytest
import torch
import transformers
from paddlenlp.transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMultipleChoice,
    AutoModelForPretraining,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    BertConfig,
    BertModel,
    BertTokenizer,
)
from paddlenlp.transformers.conversion_utils import StateDictNameMapping

from paddlenlp_ext.transformers.visualbert import convert, modeling, sources

AUTO_HEADS = [
    (AutoModel, "VisualBertModel"),
    (AutoModelForPretraining, "VisualBertForPreTraining"),
    (AutoModelForQuestionAnswering, "VisualBertForQuestionAnswering"),
    (AutoModelForMultipleChoice, "VisualBertForMultipleChoice"),
    (AutoModelForSequenceClassification, "VisualBertForVisualReasoning"),
]


def _first_output(model, architecture, config):
    inputs = {k: v for k, v in compare.make_inputs(architecture, config, seed=4).items() if "labels" not in k}
    with paddle.no_grad():
        return model.eval()(**{k: paddle.to_tensor(v) for k, v in inputs.items()})[0].numpy()


@pytest.mark.parametrize("auto, architecture", AUTO_HEADS, ids=[a.__name__ for a, _ in AUTO_HEADS])
def test_auto_classes_return_the_visualbert_class_with_its_outputs(tiny, tmp_path, auto, architecture):
    folder = str(tmp_path / "model")
    getattr(modeling, architecture)(tiny[1](num_labels=5)).save_pretrained(folder)
    loaded = auto.from_pretrained(folder)
    assert type(loaded) is getattr(modeling, architecture)
    expected = _first_output(getattr(modeling, architecture).from_pretrained(folder), architecture, loaded.config)
    np.testing.assert_array_equal(_first_output(loaded, architecture, loaded.config), expected)
    assert type(AutoConfig.from_pretrained(folder)).__name__ == "VisualBertConfig"


def test_an_auto_class_without_a_visualbert_head_fails_clearly(tiny, tmp_path):
    folder = str(tmp_path / "qa")
    modeling.VisualBertForQuestionAnswering(tiny[1]()).save_pretrained(folder)
    with pytest.raises(AttributeError, match="only supports the following classes: VisualBertPretrainedModel"):
        AutoModelForTokenClassification.from_pretrained(folder)


def test_auto_tokenizer_on_a_saved_folder_and_a_plain_bert_folder_still_loads_as_bert(minilm_dir, tmp_path):
    folder = str(tmp_path / "model")
    modeling.VisualBertModel(modeling.VisualBertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                                       intermediate_size=37)).save_pretrained(folder)  # fmt: skip
    BertTokenizer(os.path.join(minilm_dir, "vocab.txt")).save_pretrained(folder)  # as the trainer's checkpoints
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert type(tokenizer) is BertTokenizer
    assert tokenizer("What color is the umbrella?")["input_ids"] == [101, 2054, 3609, 2003, 1996, 12977, 1029, 102]

    bert = str(tmp_path / "bert")
    BertModel(
        BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37)
    ).save_pretrained(bert)
    assert type(AutoModel.from_pretrained(bert)) is BertModel


def test_the_nine_names_load_their_converted_folders_through_the_auto_classes(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "CHECKPOINT_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=f"visualbert-nlvr2: no converted checkpoint at {tmp_path}"):
        AutoModelForSequenceClassification.from_pretrained("visualbert-nlvr2")
    model = modeling.VisualBertForVisualReasoning(tiny[1]())
    model.save_pretrained(str(tmp_path / "visualbert-nlvr2"))
    loaded = AutoModelForSequenceClassification.from_pretrained("visualbert-nlvr2")
    assert type(loaded) is modeling.VisualBertForVisualReasoning
    np.testing.assert_array_equal(loaded.cls.weight.numpy(), model.cls.weight.numpy())


def test_a_missing_folder_is_named_without_going_to_the_network(tmp_path):
    for name in (str(tmp_path / "no-such-model"), "./no-such-model/"):
        with pytest.raises(FileNotFoundError, match=f"{name}: no such folder"):
            modeling.VisualBertForQuestionAnswering.from_pretrained(name)


@pytest.mark.parametrize("safe", [True, False], ids=["model.safetensors", "pytorch_model.bin"])
@pytest.mark.parametrize("architecture", ["VisualBertForQuestionAnswering", "VisualBertForPreTraining"])
def test_convert_from_torch_gives_convert_pys_tensors(tiny, tmp_path, safe, architecture):
    torch.manual_seed(0)
    hf_model = getattr(transformers, architecture)(tiny[0](architecture, num_labels=5))
    hf_dir = str(tmp_path / "hf")
    hf_model.save_pretrained(hf_dir, safe_serialization=safe)
    before = sorted(os.listdir(hf_dir))
    convert.convert_hf_checkpoint(hf_dir, str(tmp_path / "converted"))
    expected = getattr(modeling, architecture).from_pretrained(str(tmp_path / "converted")).state_dict()

    auto = (
        AutoModelForQuestionAnswering if architecture == "VisualBertForQuestionAnswering" else AutoModelForPretraining
    )
    for loader in (getattr(modeling, architecture), auto):
        model = loader.from_pretrained(hf_dir, convert_from_torch=True)
        assert type(model) is getattr(modeling, architecture)
        state = model.state_dict()
        assert state.keys() == expected.keys()
        for name, tensor in expected.items():
            np.testing.assert_array_equal(state[name].numpy(), tensor.numpy(), err_msg=name)
    assert sorted(os.listdir(hf_dir)) == before  # nothing written beside the torch checkpoint

    # PaddleNLP's own use of the name mappings (StateDictNameMapping.run) gives the same tensors
    hf_state = {k: v.numpy() for k, v in hf_model.state_dict().items()}
    mappings = modeling.VisualBertPretrainedModel._get_name_mappings(model.config)
    assert all(isinstance(m, StateDictNameMapping) for m in mappings) and len(mappings) == len(expected)
    for mapping in mappings:
        np.testing.assert_array_equal(
            mapping.run(hf_state, mapping.source_name), expected[mapping.target_name].numpy()
        )


def test_convert_from_torch_is_strict(tiny, tmp_path):
    architecture = "VisualBertForPreTraining"
    torch.manual_seed(0)
    hf_model = getattr(transformers, architecture)(tiny[0](architecture))
    state = hf_model.state_dict()
    state["cls.predictions.decoder.bias"] = state["cls.predictions.decoder.bias"] + 1  # a tied copy that differs
    hf_dir = str(tmp_path / "hf")
    hf_model.save_pretrained(hf_dir, state_dict=state, safe_serialization=False)
    with pytest.raises(convert.ConversionError, match="decoder.bias differs from cls.predictions.bias"):
        modeling.VisualBertForPreTraining.from_pretrained(hf_dir, convert_from_torch=True)
