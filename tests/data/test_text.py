import pytest

from paddlenlp_ext.data import DataFormatError, load_tokenizer, truncate_pair_from_front
from paddlenlp_ext.tasks.vqa.dataset import VqaDataset


def test_pair_truncation_cuts_the_front_of_the_longer_text():
    first, second = truncate_pair_from_front(list("abcdefgh"), list("xyz"), 7)
    assert (first, second) == (list("efgh"), list("xyz"))
    first, second = truncate_pair_from_front(list("abcdef"), list("uvwxyz"), 6)
    assert (first, second) == (list("def"), list("xyz"))
    assert truncate_pair_from_front(list("ab"), list("xy"), 10) == (list("ab"), list("xy"))


def test_vocab_without_mask_token_is_named(tmp_path, sample_dir, vqa_records, vqa_features, tokenizer):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(t for t in (sample_dir / "vocab.txt").read_text().split("\n") if t != "[MASK]"))
    with pytest.raises(DataFormatError, match=r"vocab .*vocab\.txt lacks the special tokens \['\[MASK\]'\]"):
        load_tokenizer(str(vocab))
    from paddlenlp.transformers import BertTokenizer

    with pytest.raises(DataFormatError, match=r"vocab\.txt lacks"):
        VqaDataset(vqa_records, vqa_features, BertTokenizer(vocab_file=str(vocab)))
