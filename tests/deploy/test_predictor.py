"""The predictors and their command lines, on the sample data with tiny random models: the same inputs, answers and
probabilities as the datasets' prediction path, batched as one by one, exported as eager, and every bad input."""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest
from paddlenlp.datasets import load_dataset

from paddlenlp_ext.data import MODEL_INPUTS, VisualBertCollator, loading, nlvr2_image_names
from paddlenlp_ext.deploy.export import export
from paddlenlp_ext.deploy.predictor import Nlvr2Predictor, VqaPredictor, load_features, question_tokens
from paddlenlp_ext.paths import REPO_ROOT
from paddlenlp_ext.tasks.nlvr2 import task as nlvr2_task
from paddlenlp_ext.tasks.nlvr2.dataset import Nlvr2Dataset
from paddlenlp_ext.tasks.vqa import task as vqa_task
from paddlenlp_ext.tasks.vqa.answers import AnswerVocab, save_answer_vocab
from paddlenlp_ext.tasks.vqa.dataset import VqaDataset
from paddlenlp_ext.training.args import run
from paddlenlp_ext.transformers import VisualBertForQuestionAnswering, VisualBertForVisualReasoning
from paddlenlp_ext.transformers.visualbert.configuration import VisualBertConfig

# tests/conftest.py's TINY sizes (its fixture is per test; these models are built once per module)
TINY = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=64,
    initializer_range=0.3,
)


def logits_of(model, data, tokenizer) -> np.ndarray:
    """The dataset path's logits (loading.batched_outputs, as vqa/nlvr2 task.predict run it)."""
    outputs = loading.batched_outputs(model, data, tokenizer, 16, 0, "test")
    return np.concatenate([np.asarray(output["logits"]) for _, output in outputs])


def softmax(logits):
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    return exp / exp.sum(-1, keepdims=True)


def save_centred(model, data, tokenizer, folder) -> str:
    """Save `model` with its classifier bias shifted by minus the mean logits over `data`: a random head otherwise
    gives nearly every example the same answer, and equal answers would prove little."""
    model.eval()
    model.cls.bias.set_value(model.cls.bias - paddle.to_tensor(logits_of(model, data, tokenizer).mean(0)))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def vqa_val(sample_dir):
    return load_dataset("vqa2", splits="val", data_dir=str(sample_dir / "coco"))


@pytest.fixture(scope="module")
def nlvr2_dev(sample_dir):
    return load_dataset("nlvr2", splits="dev", data_dir=str(sample_dir / "nlvr2"))


@pytest.fixture(scope="module")
def vqa_model(tmp_path_factory, tokenizer, answers, vqa_features, vqa_val):
    paddle.seed(0)
    config = VisualBertConfig(
        vocab_size=len(tokenizer.vocab), visual_embedding_dim=2048, num_labels=len(answers), **TINY
    )
    folder = tmp_path_factory.mktemp("vqa_model")
    save_centred(
        VisualBertForQuestionAnswering(config), VqaDataset(vqa_val, vqa_features, tokenizer), tokenizer, folder
    )
    save_answer_vocab(answers, str(folder))
    return str(folder)


@pytest.fixture(scope="module")
def nlvr2_model(tmp_path_factory, tokenizer, nlvr2_features, nlvr2_dev):
    paddle.seed(0)
    config = VisualBertConfig(vocab_size=len(tokenizer.vocab), visual_embedding_dim=1024, num_labels=2, **TINY)
    folder = tmp_path_factory.mktemp("nlvr2_model")
    data = Nlvr2Dataset(nlvr2_dev, nlvr2_features, tokenizer)
    return save_centred(VisualBertForVisualReasoning(config), data, tokenizer, folder)


@pytest.fixture(scope="module")
def vqa_export(vqa_model, tmp_path_factory):
    return export(vqa_model, "vqa", str(tmp_path_factory.mktemp("export") / "vqa"))


@pytest.fixture(scope="module")
def vqa(vqa_model):
    return VqaPredictor.from_pretrained(vqa_model)


@pytest.fixture(scope="module")
def nlvr(nlvr2_model):
    return Nlvr2Predictor.from_pretrained(nlvr2_model)


def vqa_inputs(records, features):
    return [record["question_str"] for record in records], [features.load(r["image_name"]) for r in records]


def nlvr2_inputs(records, features):
    pairs = [[features.load(name) for name in nlvr2_image_names(r["identifier"])] for r in records]
    return [r["sentence"] for r in records], [left for left, _ in pairs], [right for _, right in pairs]


def test_question_tokens_are_pythias():
    assert question_tokens("What's the man's T-shirt colour, red or blue?") == [
        "what", "'", "s", "the", "man", "'", "s", "t", "-", "shirt", "colour", "red", "or", "blue",
    ]  # fmt: skip
    assert question_tokens("  How many   dogs?? ") == ["how", "many", "dogs"]


def test_vqa_inputs_are_the_datasets(vqa, vqa_val, vqa_features, tokenizer):
    """From question_str alone, the predictor builds the batch VqaDataset + the collator build from the imdb's
    question_tokens."""
    assert all(question_tokens(record["question_str"]) == record["question_tokens"] for record in vqa_val)
    batch = VisualBertCollator(tokenizer.pad_token_id)(list(VqaDataset(vqa_val, vqa_features, tokenizer)))
    inputs = vqa.encode(*vqa_inputs(vqa_val, vqa_features))
    assert sorted(inputs) == sorted(MODEL_INPUTS)
    for key in MODEL_INPUTS:
        np.testing.assert_array_equal(inputs[key], batch[key], err_msg=key)


def test_vqa_answers_and_probabilities_are_the_dataset_predictions(vqa, vqa_model, vqa_val, vqa_features, tokenizer):
    model = VisualBertForQuestionAnswering.from_pretrained(vqa_model)
    data = VqaDataset(vqa_val, vqa_features, tokenizer, vqa.answers)
    _, indices, top_probs = vqa_task.predict(model, data, tokenizer, 16, 0, top_k=5)
    logits = logits_of(model, data, tokenizer)
    logits[:, 0] = -np.inf
    probs = softmax(logits.astype(np.float64))
    questions, features = vqa_inputs(vqa_val, vqa_features)
    top = [vqa(question, array) for question, array in zip(questions[:12], features[:12])]  # one at a time
    top += vqa(questions[12:], features[12:])  # the rest in one batch
    assert [answers[0][0] for answers in top] == [vqa.answers[i] for i in indices[:, 0]]
    assert len({answers[0][0] for answers in top}) >= 3  # the answers differ between questions
    for row, answers in enumerate(top):
        assert len(answers) == 5
        got = np.array([p for _, p in answers])
        np.testing.assert_allclose(got, top_probs[row], atol=1e-5)
        np.testing.assert_allclose(got, [probs[row, vqa.answers.index(a)] for a, _ in answers], atol=1e-5)


def test_vqa_batched_equals_one_by_one(vqa, vqa_val, vqa_features):
    """Questions of different lengths and images of 1 to 6 boxes: the padding changes nothing."""
    questions, features = vqa_inputs(vqa_val[:9], vqa_features)
    features = [array[: 1 + i % 6] for i, array in enumerate(features)]
    batched = vqa(questions, features, top_k=3)
    assert len({len(q) for q in questions}) > 1
    for answers, question, array in zip(batched, questions, features):
        single = vqa(question, array, top_k=3)
        assert [a for a, _ in answers] == [a for a, _ in single]
        np.testing.assert_allclose([p for _, p in answers], [p for _, p in single], atol=1e-5)


def test_vqa_truncates_long_questions_and_boxes_as_the_dataset(vqa, tokenizer, rng):
    question = "what color is the cube " * 30 + "?"
    inputs = vqa.encode(question, rng.normal(size=(150, 2048)))
    text = tokenizer.convert_ids_to_tokens([int(i) for i in inputs["input_ids"][0]])
    assert vqa.max_seq_length == 64 == len(text)  # 128 capped at the tiny model's max_position_embeddings
    assert text[:6] == ["[CLS]", "what", "color", "is", "the", "cube"] and text[-3:] == ["?", "[MASK]", "[SEP]"]
    assert inputs["visual_embeds"].shape == (1, 100, 2048)  # the released features' 100 boxes


def test_nlvr2_verdicts_and_probabilities_are_the_dataset_predictions(
    nlvr, nlvr2_model, nlvr2_dev, nlvr2_features, tokenizer
):
    model = VisualBertForVisualReasoning.from_pretrained(nlvr2_model)
    data = Nlvr2Dataset(nlvr2_dev, nlvr2_features, tokenizer)
    _, predictions = nlvr2_task.predict(model, data, tokenizer, 16, 0)
    probs = softmax(logits_of(model, data, tokenizer).astype(np.float64))
    statements, lefts, rights = nlvr2_inputs(nlvr2_dev, nlvr2_features)
    batch = VisualBertCollator(tokenizer.pad_token_id)(list(data))
    inputs = nlvr.encode(statements, lefts, rights)
    for key in MODEL_INPUTS:
        np.testing.assert_array_equal(inputs[key], batch[key], err_msg=key)
    verdicts = [nlvr(s, left, right) for s, left, right in zip(statements[:8], lefts[:8], rights[:8])]
    verdicts += nlvr(statements[8:], lefts[8:], rights[8:])
    assert [int(v) for v, _ in verdicts] == predictions.tolist() and 0 < sum(predictions) < len(predictions)
    np.testing.assert_allclose([p for _, p in verdicts], probs[np.arange(len(probs)), predictions], atol=1e-5)


def test_nlvr2_batched_equals_one_by_one(nlvr, nlvr2_dev, nlvr2_features):
    statements, lefts, rights = nlvr2_inputs(nlvr2_dev[:6], nlvr2_features)
    lefts = [array[: 2 + i] for i, array in enumerate(lefts)]
    batched = nlvr(statements, lefts, rights)
    for (verdict, prob), statement, left, right in zip(batched, statements, lefts, rights):
        single = nlvr(statement, left, right)
        assert verdict == single[0] and prob == pytest.approx(single[1], abs=1e-5)


def test_nlvr2_layout_and_truncation(nlvr, tokenizer, rng):
    left, right = rng.normal(size=(3, 1024)), rng.normal(size=(200, 1024))
    inputs = nlvr.encode("the left image contains two objects . " * 20, left, right)
    text = tokenizer.convert_ids_to_tokens([int(i) for i in inputs["input_ids"][0]])
    assert len(text) == 64 and text[:3] == ["[CLS]", "the", "left"] and text[-1] == "[SEP]"
    assert inputs["visual_token_type_ids"][0].tolist() == [0] * 3 + [1] * 144  # up to 144 boxes per image
    np.testing.assert_array_equal(inputs["visual_embeds"][0, 3:], right[:144].astype(np.float32))


def test_exported_vqa_gives_the_eager_answers(vqa, vqa_export, vqa_model, vqa_val, vqa_features):
    assert os.path.exists(os.path.join(vqa_export, "answers_vqa.txt"))  # the export carries the model's answers
    exported = VqaPredictor.from_pretrained(vqa_export)
    questions, features = vqa_inputs(vqa_val[:10], vqa_features)
    features = [array[: 2 + i % 5] for i, array in enumerate(features)]
    for got, want in zip(exported(questions, features) + [exported(questions[0], features[0])],
                         vqa(questions, features) + [vqa(questions[0], features[0])]):  # fmt: skip
        assert [a for a, _ in got] == [a for a, _ in want]
        np.testing.assert_allclose([p for _, p in got], [p for _, p in want], atol=1e-5)


def bad_vqa_inputs():
    good = np.ones((4, 2048), dtype=np.float32)
    nan, inf = good.copy(), good.copy()
    nan[1, 5], inf[2, 0] = np.nan, np.inf
    return [
        ("What?", np.ones((4, 100)), {}, r"features has 100 features per box, the model takes 2048"),
        ("What?", np.ones(2048), {}, r"features must be 2-D \[boxes, 2048\], got shape \(2048,\)"),
        ("What?", good[None], {}, r"features must be 2-D"),
        ("What?", good[:0], {}, r"features has zero boxes"),
        ("What?", nan, {}, r"features holds NaN or infinite values"),
        ("What?", inf, {}, r"features holds NaN or infinite values"),
        ("What?", np.array([["a"] * 2048]), {}, r"features is not an array of numbers"),
        ("", good, {}, r"question is empty"),
        (" \t\n", good, {}, r"question is empty"),
        ("??", good, {}, r"question '\?\?' has no words"),
        (7, good, {}, r"give a question \(a string\) or a non-empty list of them, got int"),
        ([7], [good], {}, r"question\[0\] must be a string, got int"),
        ("What?", good, {"top_k": 0}, r"top_k must be an integer 1 \.\. "),
        ("What?", good, {"top_k": 10**6}, r"top_k must be an integer 1 \.\. "),
        (["What?", "Who?"], [good], {}, r"2 questions need a list of 2 features arrays"),
        ([], [], {}, r"non-empty list"),
        (["What?", " "], [good, good], {}, r"question\[1\] is empty"),
        (["What?", "Who?"], [good, good[:0]], {}, r"features\[1\] has zero boxes"),
    ]


@pytest.mark.parametrize(("question", "features", "kwargs", "message"), bad_vqa_inputs())
def test_bad_vqa_input_raises_naming_it(vqa, question, features, kwargs, message):
    with pytest.raises(ValueError, match=message):
        vqa(question, features, **kwargs)


@pytest.mark.parametrize(
    ("statement", "left", "right", "message"),
    [
        ("It is.", np.ones((3, 2048)), np.ones((3, 1024)), r"left has 2048 features per box, the model takes 1024"),
        ("It is.", np.ones((3, 1024)), np.full((3, 1024), np.nan), r"right holds NaN or infinite values"),
        ("It is.", np.ones((3, 1024)), np.ones((0, 1024)), r"right has zero boxes"),
        ("  ", np.ones((3, 1024)), np.ones((3, 1024)), r"statement is empty"),
        (["It is.", "No."], [np.ones((3, 1024))] * 2, [np.ones((3, 1024))], r"2 statements need .* 2 right arrays"),
    ],
)
def test_bad_nlvr2_input_raises_naming_it(nlvr, statement, left, right, message):
    with pytest.raises(ValueError, match=message):
        nlvr(statement, left, right)


def test_bad_models_raise_naming_them(vqa_model, nlvr2_model, vqa_export, tmp_path, answers):
    with pytest.raises(ValueError, match="holds a VisualBertForVisualReasoning, not a VisualBertForQuestionAnswering"):
        VqaPredictor.from_pretrained(nlvr2_model, answers_file=os.path.join(vqa_model, "answers_vqa.txt"))
    with pytest.raises(ValueError, match="is an exported vqa model, not a nlvr2 one"):
        Nlvr2Predictor.from_pretrained(vqa_export)
    without_answers = shutil.copytree(vqa_export, tmp_path / "export")
    os.remove(without_answers / "answers_vqa.txt")
    with pytest.raises(FileNotFoundError, match=r"no answer vocabulary .*answers_vqa.txt: pass answers_file"):
        VqaPredictor.from_pretrained(str(without_answers))
    save_answer_vocab(AnswerVocab(answers.answers[:-1]), str(tmp_path))
    with pytest.raises(ValueError, match=rf"the model has {len(answers)} answers, .* {len(answers) - 1}"):
        VqaPredictor.from_pretrained(vqa_model, answers_file=str(tmp_path / "answers_vqa.txt"))
    with pytest.raises(ValueError, match=r"max_seq_length must be 4 \.\. 64 \(max_position_embeddings\), got 65"):
        VqaPredictor.from_pretrained(vqa_model, max_seq_length=65)
    words = (Path(vqa_model) / "vocab.txt").read_text(encoding="utf-8").split()
    (tmp_path / "vocab.txt").write_text("\n".join(words + [f"extra{i}" for i in range(10)]), encoding="utf-8")
    with pytest.raises(ValueError, match=rf"the tokenizer has {len(words) + 10} wordpieces, the model {len(words)}"):
        VqaPredictor.from_pretrained(vqa_model, tokenizer=str(tmp_path / "vocab.txt"))


def test_load_features_names_a_bad_file(tmp_path):
    (tmp_path / "empty.npy").write_bytes(b"")
    np.savez(tmp_path / "two.npz", a=np.ones(2))
    for name, message in [("empty.npy", "cannot read"), ("two.npz", "is not one .npy array"), ("none.npy", "cannot")]:
        with pytest.raises(ValueError, match=f"{message}.*{name}|{name}.*{message}"):
            load_features(str(tmp_path / name))


def run_scripts(commands: list[list[str]]) -> list[subprocess.CompletedProcess]:
    """Run the scripts as `python SCRIPT ...` from the checkout, side by side (each spends seconds importing)."""
    processes = [
        subprocess.Popen(
            [sys.executable, *command], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for command in commands
    ]
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=120), *p.communicate()) for p in processes]


def test_command_lines(vqa, nlvr, vqa_model, nlvr2_model, vqa_export, vqa_val, vqa_features, nlvr2_dev, nlvr2_features,
                       tmp_path):  # fmt: skip
    question, features = vqa_val[0]["question_str"], vqa_features.path(vqa_val[0]["image_name"])
    (statement,), (left,), (right,) = nlvr2_inputs(nlvr2_dev[:1], nlvr2_features)
    np.save(tmp_path / "left.npy", left)
    np.save(tmp_path / "right.npy", right)
    pair = ["--left", str(tmp_path / "left.npy"), "--right", str(tmp_path / "right.npy"), "--statement", statement]
    vqa_ok, nlvr2_ok, wrong_task = run_scripts(
        [
            ["VQA2/ask.py", "--model", vqa_model, "--features", features, "--question", question, "--top_k", "3"],
            ["NLVR2/ask.py", "--model", nlvr2_model, *pair],
            ["NLVR2/ask.py", "--model", vqa_export, *pair],
        ]
    )
    assert vqa_ok.returncode == 0, vqa_ok.stderr
    assert vqa_ok.stdout.splitlines() == [f"{p:.3f}  {a}" for a, p in vqa(question, np.load(features), top_k=3)]
    assert nlvr2_ok.returncode == 0, nlvr2_ok.stderr
    verdict, prob = nlvr(statement, left, right)
    assert nlvr2_ok.stdout == f"{verdict} {prob:.3f}\n"
    assert wrong_task.returncode == 2 and wrong_task.stdout == ""
    assert wrong_task.stderr.splitlines()[-1] == f"error: {vqa_export} is an exported vqa model, not a nlvr2 one"


def script_main(relative_path: str):
    """A script's main(argv), run as `python SCRIPT` runs it (errors become exit code 2); in-process, as the
    subprocesses above spend seconds importing Paddle."""
    spec = importlib.util.spec_from_file_location(
        relative_path.replace("/", "_")[:-3], os.path.join(REPO_ROOT, relative_path)
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return lambda argv: run(lambda: module.main(argv))


@pytest.mark.parametrize(
    ("script", "arguments", "message"),
    [
        ("VQA2/ask.py", ["--features", "{wrong}", "--question", "What?"], "features has 1024 features per box"),
        ("VQA2/ask.py", ["--features", "{missing}", "--question", "What?"], "cannot read features {missing}"),
        ("VQA2/ask.py", ["--features", "{vqa}", "--question", " "], "question is empty"),
        ("VQA2/ask.py", ["--features", "{vqa}", "--question", "What?", "--top_k", "0"], "top_k must be an integer"),
        ("NLVR2/ask.py", ["--left", "{wrong}", "--right", "{nan}", "--statement", "No."], "right holds NaN"),
        ("NLVR2/ask.py", ["--left", "{wrong}", "--right", "{wrong}", "--statement", ""], "statement is empty"),
    ],
)
def test_command_line_bad_input_exits_2(script, arguments, message, vqa_model, nlvr2_model, tmp_path, capsys):
    files = {name: str(tmp_path / f"{name}.npy") for name in ("wrong", "missing", "vqa", "nan")}
    np.save(files["wrong"], np.ones((3, 1024), dtype=np.float32))
    np.save(files["vqa"], np.ones((3, 2048), dtype=np.float32))
    np.save(files["nan"], np.full((3, 1024), np.nan, dtype=np.float32))
    model = vqa_model if script.startswith("VQA2") else nlvr2_model
    argv = ["--model", model, *(argument.format(**files) for argument in arguments)]
    assert script_main(script)(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.splitlines()[-1].startswith(f"error: {message.format(**files)}")
