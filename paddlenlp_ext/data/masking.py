"""BERT's masked-language-model corruption."""

import numpy as np

# Label of every position the MLM loss ignores (unmasked text, padding, every visual position).
IGNORE_INDEX = -100


class TokenMasker:
    """Picks each maskable wordpiece with ``probability``; of those, 80% become [MASK], 10% a random token, 10% stay.

    The label of a picked position is its original id; every other label is ``IGNORE_INDEX``.
    """

    def __init__(self, tokenizer, probability: float = 0.15):
        self.probability = probability
        self.mask_token_id = tokenizer.mask_token_id
        special = set(tokenizer.all_special_ids)
        # Random replacements come from real wordpieces only: a random [CLS] or [PAD] would corrupt the layout.
        self.replacement_ids = np.array([i for i in range(len(tokenizer.vocab)) if i not in special], dtype=np.int64)

    def __call__(
        self, input_ids: np.ndarray, maskable: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Corrupted copy of ``input_ids`` and the MLM labels, both int64 ``[L]``."""
        picked = maskable & (rng.random(input_ids.shape) < self.probability)
        labels = np.where(picked, input_ids, IGNORE_INDEX).astype(np.int64)
        action = rng.random(input_ids.shape)
        masked = input_ids.copy()
        masked[picked & (action < 0.8)] = self.mask_token_id
        replaced = picked & (action >= 0.8) & (action < 0.9)
        masked[replaced] = rng.choice(self.replacement_ids, size=int(replaced.sum()))
        return masked, labels
