"""BatchLoader's shared memory: a tensor keeps the bytes of its slot while it lives, slots come back when tensors
go, a pass left early leaves its slots behind, and every way out of a worker gives the same batch."""

import os

import numpy as np
import paddle
import pytest

from paddlenlp_ext.data import BatchLoader, VisualBertCollator
from paddlenlp_ext.data.loader import SLOTS_PER_WORKER, SharedSlots
from paddlenlp_ext.tasks.vqa.dataset import VqaDataset

BATCH_SIZE = 4


@pytest.fixture(scope="module")
def vqa(vqa_records, vqa_features, tokenizer, answers):
    dataset = VqaDataset(vqa_records, vqa_features, tokenizer, answers)
    batches = [list(range(i, min(i + BATCH_SIZE, len(dataset)))) for i in range(0, len(dataset), BATCH_SIZE)]
    # enough batches that each worker goes round its slots more than once in a pass
    assert len(batches) > 4 * SLOTS_PER_WORKER
    collator = VisualBertCollator(tokenizer.pad_token_id)
    expected = [collator([dataset[i] for i in indices]) for indices in batches]
    return dataset, collator, batches, expected


def assert_batch(got: dict, expected: dict):
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        array = got[key].numpy()
        assert array.dtype == value.dtype and array.shape == value.shape and array.tobytes() == value.tobytes(), key


def slot_states(loader) -> np.ndarray:
    return loader.collate.slots.state.copy()


def test_a_held_batch_keeps_its_bytes_while_the_slots_go_round(vqa):
    dataset, collator, batches, expected = vqa
    loader = BatchLoader(dataset, collator, num_workers=2)
    first, rest = None, 0
    for batch in loader.iterate(batches):
        if first is None:
            first = batch  # held through the pass: its slot must not be written again
        rest += 1
    del batch
    assert rest == len(batches)
    states = slot_states(loader)
    assert (states == -1).sum() == 1  # the held batch's slot; every other slot is free again
    assert (states == 0).sum() == len(states) - 1
    assert_batch(first, expected[0])
    del first
    assert (slot_states(loader) == 0).all()


def paddle_shared_files() -> set:
    return {name for name in os.listdir("/dev/shm") if name.startswith("paddle_")}


def test_every_array_of_a_batch_comes_through_its_slot(vqa):
    dataset, collator, batches, expected = vqa
    loader = BatchLoader(dataset, collator, num_workers=2)
    before, seen = paddle_shared_files(), set()
    for got, want in zip(loader.iterate(batches), expected, strict=True):
        seen |= paddle_shared_files()  # a tensor Paddle sends lives in a file of its own until received
        assert_batch(got, want)
    assert seen <= before  # question_id too: nothing took Paddle's way


def test_slots_stay_with_the_loader_from_pass_to_pass_and_a_pass_left_early_leaves_them(vqa):
    dataset, collator, batches, expected = vqa
    loader = BatchLoader(dataset, collator, num_workers=2)
    for got, want in zip(loader.iterate(batches), expected, strict=True):
        assert_batch(got, want)
    slots = loader.collate.slots
    passing = loader.iterate(batches)
    assert_batch(next(passing), expected[0])
    assert loader.collate.slots is slots  # a pass that ran to its end: the next reuses the memory
    # this pass stops here, its workers still running: the next pass must not share its slots
    for got, want in zip(loader.iterate(batches), expected, strict=True):
        assert_batch(got, want)
    assert loader.collate.slots is not slots
    passing.close()


def test_a_batch_without_a_slot_takes_paddles_way_with_the_same_bytes(vqa):
    dataset, collator, batches, expected = vqa
    loader = BatchLoader(dataset, collator, num_workers=2)
    loader.collate.slots = small = SharedSlots(2, SLOTS_PER_WORKER, slot_bytes=4096)  # no batch fits
    held = [batch for batch in loader.iterate(batches)]
    assert loader.collate.slots is small and (small.state == 0).all()  # none was used
    for got, want in zip(held, expected, strict=True):
        assert_batch(got, want)
    # holding every batch: the workers run out of slots and the rest go Paddle's way
    loader = BatchLoader(dataset, collator, num_workers=2)
    held = [batch for batch in loader.iterate(batches)]
    assert (slot_states(loader) == -1).sum() == 2 * SLOTS_PER_WORKER
    for got, want in zip(held, expected, strict=True):
        assert_batch(got, want)


def test_on_an_accelerator_the_batch_is_copied_and_its_slot_free_at_once(vqa, monkeypatch):
    dataset, collator, batches, expected = vqa
    monkeypatch.setattr(paddle, "get_device", lambda: "gpu:0")  # to_tensor still places on the CPU here
    loader = BatchLoader(dataset, collator, num_workers=2)
    held = [batch for batch in loader.iterate(batches)]
    assert (slot_states(loader) == 0).all()
    for got, want in zip(held, expected, strict=True):
        assert_batch(got, want)
