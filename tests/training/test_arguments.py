"""Flags, --config files, the tokenizer and the launcher are checked before any work; errors name the culprit."""

import json
import os
import re
import subprocess
from types import SimpleNamespace

import paddle
import pytest

from paddlenlp_ext.data import text
from paddlenlp_ext.paths import REPO_ROOT
from paddlenlp_ext.training import args as cli
from paddlenlp_ext.transformers.visualbert.configuration import VisualBertConfig


def parse(*argv, training=True):
    return cli.base_parser("test", training=training).parse_args(["--output_dir", "out", *argv])


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--batch_size", "0"),
        ("--max_seq_length", "4"),
        ("--seed", "-1"),
        ("--num_workers", "-1"),
        ("--cpu_threads", "0"),
        ("--learning_rate", "0"),
        ("--warmup_proportion", "1.5"),
        ("--warmup_proportion", "-0.1"),
        ("--gradient_accumulation_steps", "0"),
        ("--logging_steps", "0"),
        ("--save_steps", "-1"),
        ("--num_train_epochs", "-1"),
    ],
)
def test_a_flag_out_of_range_is_named_with_its_value(flag, value):
    with pytest.raises(ValueError, match=rf"^{flag} must be .*, got {re.escape(value)}"):
        cli.check(parse(flag, value))


def test_flags_in_range_pass_and_prediction_flags_are_checked_too():
    cli.check(parse("--save_steps", "0", "--warmup_proportion", "0", "--num_train_epochs", "0", "--max_steps", "3"))
    cli.check(parse("--max_seq_length", str(cli.MIN_SEQ_LENGTH), training=False))
    with pytest.raises(ValueError, match="--batch_size"):
        cli.check(parse("--batch_size", "-4", training=False))


def test_zero_epochs_without_max_steps_is_an_error():
    with pytest.raises(ValueError, match="--num_train_epochs 0 without --max_steps"):
        cli.check(parse("--num_train_epochs", "0"))


def config_file(tmp_path, content):
    path = tmp_path / "config.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


@pytest.mark.parametrize(
    "content, fragments",
    [
        ("{", ["is not JSON"]),
        ([1, 2], ["expected a JSON object"]),
        ({"num_hiden_layers": 2}, ["'num_hiden_layers'", "did you mean 'num_hidden_layers'"]),
        ({"hidden_size": "big"}, ["hidden_size is 'big', expected int"]),
        ({"num_hidden_layers": 3.5}, ["num_hidden_layers is 3.5, expected int"]),
        ({"bypass_transformer": 1}, ["bypass_transformer is 1, expected bool"]),
        ({"hidden_size": 30, "num_attention_heads": 4}, ["hidden_size 30", "num_attention_heads 4"]),
    ],
)
def test_a_bad_config_names_the_file_and_the_field(tmp_path, content, fragments):
    path = config_file(tmp_path, content)
    with pytest.raises(ValueError) as caught:
        cli.read_config(path, {"vocab_size": 100})
    message = str(caught.value)
    assert "\n" not in message and path in message and all(f in message for f in fragments), message


def test_a_good_config_reads_with_defaults_saved_fields_and_ints_for_floats(tmp_path):
    fields = {"hidden_size": 32, "num_attention_heads": 2, "hidden_dropout_prob": 0, "architectures": ["X"]}
    config = cli.read_config(config_file(tmp_path, fields), {"vocab_size": 100})
    assert config.vocab_size == 100 and config.hidden_size == 32 and config.hidden_dropout_prob == 0


def test_a_missing_config_names_the_file(tmp_path):
    with pytest.raises(OSError, match=r"--config .*nowhere\.json: No such file"):
        cli.read_config(str(tmp_path / "nowhere.json"), {})


def last_error(capsys):
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: "), err
    return err


@pytest.fixture
def nlvr2(sample_dir, tmp_path, entry_point):
    """nlvr2(*argv) -> exit code of NLVR2/run_nlvr2.py on the sample data."""
    base = ["--input_dir", os.path.join(sample_dir, "nlvr2"), "--output_dir", str(tmp_path / "out")]
    base += ["--max_steps", "1", "--num_workers", "0"]
    return lambda *argv: entry_point("NLVR2/run_nlvr2.py")(base + list(argv))


def test_a_tokenizer_larger_than_the_model_names_both(sample_dir, nlvr2, tiny_config, capsys):
    vocab = os.path.join(sample_dir, "vocab.txt")
    assert nlvr2("--config", tiny_config(vocab_size=10), "--tokenizer_name_or_path", vocab) == 2
    err = last_error(capsys)
    assert vocab in err and "vocab_size 10" in err and "tokens" in err, err


def test_max_seq_length_beyond_the_position_table_is_named(sample_dir, nlvr2, tiny_config, capsys):
    vocab = os.path.join(sample_dir, "vocab.txt")
    assert nlvr2("--config", tiny_config(), "--tokenizer_name_or_path", vocab, "--max_seq_length", "65") == 2
    assert "--max_seq_length 65" in last_error(capsys)


def test_a_config_without_a_tokenizer_says_to_pass_one(nlvr2, tiny_config, capsys):
    assert nlvr2("--config", tiny_config()) == 2
    assert "pass --tokenizer_name_or_path" in last_error(capsys)


def test_a_missing_model_is_named_not_bert(nlvr2, tmp_path, capsys):
    assert nlvr2("--model_name_or_path", str(tmp_path / "nowhere")) == 2
    err = last_error(capsys)
    assert "--model_name_or_path" in err and "nowhere" in err and "bert-base-uncased" not in err, err


def test_a_model_folder_without_vocab_says_to_pass_a_tokenizer(nlvr2, tmp_path, capsys):
    (tmp_path / "model").mkdir()
    assert nlvr2("--model_name_or_path", str(tmp_path / "model")) == 2
    err = last_error(capsys)
    assert str(tmp_path / "model") in err and "pass --tokenizer_name_or_path" in err, err


def test_a_missing_tokenizer_path_is_named_as_given(nlvr2, tiny_config, capsys):
    assert nlvr2("--config", tiny_config(), "--tokenizer_name_or_path", "./no/vocab.txt") == 2
    assert "--tokenizer_name_or_path ./no/vocab.txt" in last_error(capsys)


def test_a_name_that_cannot_be_fetched_is_named_and_leaves_no_empty_file(tmp_path, monkeypatch):
    class Offline:
        @staticmethod
        def from_pretrained(name):  # as PaddleNLP offline: an empty file left behind
            os.makedirs(tmp_path / name)
            (tmp_path / name / "vocab.txt").write_text("")
            (tmp_path / "tmpdownload").write_text("")
            raise OSError(f"Can't load the model for '{name}'")

    monkeypatch.setattr(text, "BertTokenizer", Offline)
    monkeypatch.setattr(text, "MODEL_HOME", str(tmp_path))
    with pytest.raises(OSError, match="^tokenizer 'some-bert' could not be loaded"):
        text.load_tokenizer("some-bert")
    assert os.listdir(tmp_path) == []


def launch(tmp_path, script="launch.sh", **env):
    environ = {k: v for k, v in os.environ.items() if k not in ("DATA_DIR", "OUTPUT_DIR", "MODEL", "GLOBAL_BATCH")}
    environ.update(env)
    command = ["bash", os.path.join(REPO_ROOT, script)] + (["run_pretrain.py"] if script == "launch.sh" else [])
    done = subprocess.run(command, env=environ, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    return done.returncode, done.stderr.strip()


def test_launch_without_data_or_model_fails_before_launching(tmp_path):
    full = dict(DATA_DIR=str(tmp_path), OUTPUT_DIR=str(tmp_path / "out"), MODEL="m", GLOBAL_BATCH="8", DEVICE="cpu")
    for missing in ("DATA_DIR", "MODEL"):
        env = {k: v for k, v in full.items() if k != missing}
        assert launch(tmp_path, **env) == (2, f"error: set {missing}=... (see the recipe's header and launch.sh)")
    code, err = launch(tmp_path, "vqa-finetune.sh", DEVICE="cpu")  # the recipe's default data/vqa2 is not there
    assert code == 2 and err.startswith("error: set DATA_DIR=...") and "data/vqa2" in err, err


@pytest.mark.skipif(paddle.is_compiled_with_cuda(), reason="a GPU build of Paddle")
def test_a_gpu_recipe_on_a_cpu_paddle_says_to_set_device_cpu(tmp_path):
    env = dict(DATA_DIR=str(tmp_path), OUTPUT_DIR=str(tmp_path / "out"), MODEL="m", GLOBAL_BATCH="8")
    assert launch(tmp_path, **env) == (2, "error: this Paddle has no GPU support: run with DEVICE=cpu")


def test_the_default_max_seq_length_is_cut_to_a_small_model():
    args = parse("--config", "config.json", "--tokenizer_name_or_path", "vocab.txt")
    cli.check_model(VisualBertConfig(max_position_embeddings=64), SimpleNamespace(vocab=range(10)), args)
    assert args.max_seq_length == 64
