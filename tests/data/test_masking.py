import numpy as np

from paddlenlp_ext.data import IGNORE_INDEX, TokenMasker

N = 40_000  # tokens: 4 standard deviations of each rate below stay within the asserted bounds


def masked_sample(tokenizer, probability=0.15):
    masker = TokenMasker(tokenizer, probability)
    words = np.array([i for i in range(len(tokenizer.vocab)) if i not in tokenizer.all_special_ids])
    rng = np.random.default_rng(0)
    input_ids = rng.choice(words, size=N)
    maskable = np.ones(N, dtype=bool)
    maskable[::10] = False  # stands for [CLS]/[SEP]/padding
    masked, labels = masker(input_ids, maskable, np.random.default_rng(1))
    return input_ids, maskable, masked, labels


def test_masking_rates_are_bert_s(tokenizer):
    input_ids, maskable, masked, labels = masked_sample(tokenizer)
    picked = labels != IGNORE_INDEX
    assert not picked[~maskable].any()
    assert abs(picked[maskable].mean() - 0.15) < 0.008
    to_mask = masked[picked] == tokenizer.mask_token_id
    unchanged = masked[picked] == input_ids[picked]
    replaced = ~to_mask & ~unchanged
    assert abs(to_mask.mean() - 0.8) < 0.02
    # a random replacement can draw the original token again (1 in the number of word ids)
    assert abs(replaced.mean() - 0.1) < 0.015
    assert abs(unchanged.mean() - 0.1) < 0.015
    assert not np.isin(masked[picked][replaced], tokenizer.all_special_ids).any()


def test_labels_hold_the_original_ids_and_nothing_else(tokenizer):
    input_ids, maskable, masked, labels = masked_sample(tokenizer)
    picked = labels != IGNORE_INDEX
    np.testing.assert_array_equal(labels[picked], input_ids[picked])
    np.testing.assert_array_equal(masked[~picked], input_ids[~picked])
    assert labels.dtype == np.int64 and masked.dtype == np.int64


def test_probability_zero_masks_nothing(tokenizer):
    input_ids, _, masked, labels = masked_sample(tokenizer, probability=0.0)
    np.testing.assert_array_equal(masked, input_ids)
    assert (labels == IGNORE_INDEX).all()
