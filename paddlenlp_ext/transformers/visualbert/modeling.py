"""VisualBERT (Li et al. 2019) in PaddlePaddle: the mathematics and parameter tree of HF transformers' visual_bert.

Read top to bottom, in the order of HF's modeling_visual_bert.py: embeddings -> attention -> layer -> encoder ->
pooler -> base model -> heads. Every block has one path, built from Paddle's own operators; it is the path a GPU user
runs. (On CPU, `paddlenlp_ext.cpu_backend` swaps in fused versions of some blocks, with the same parameters and the
same numbers; `paddlenlp_ext.cpu_backend.set_enabled(False)` keeps this file's path everywhere.)
Parameter names follow HF's state dict exactly, so checkpoint conversion is a transpose list (see convert.py).
Shapes: B batch, T text length, V number of boxes, S = T + V, H hidden size, D visual_embedding_dim, R output rows.
"""

import math
import os
from dataclasses import dataclass

import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddlenlp.transformers.model_outputs import (
    BaseModelOutput,
    BaseModelOutputWithPooling,
    ModelOutput,
    MultipleChoiceModelOutput,
    SequenceClassifierOutput,
)
from paddlenlp.transformers.model_utils import PretrainedModel

from . import convert, sources
from .configuration import VisualBertConfig

__all__ = [
    "VisualBertPretrainedModel",
    "VisualBertModel",
    "VisualBertForPreTraining",
    "VisualBertForQuestionAnswering",
    "VisualBertForVisualReasoning",
    "VisualBertForMultipleChoice",
    "VisualBertForRegionToPhraseAlignment",
    "VisualBertForPreTrainingOutput",
]


def _activation(name):
    # HF's "gelu" is the exact erf form; Paddle's default F.gelu is exact too, the tanh form must be asked for.
    acts = {"gelu": F.gelu, "gelu_new": lambda x: F.gelu(x, approximate=True), "relu": F.relu, "tanh": paddle.tanh}
    if name not in acts:
        raise ValueError(f"hidden_act {name!r} is not supported; use one of {sorted(acts)}")
    return acts[name]


def take_rows(hidden_states, rows):
    """hidden_states [B, S, H] at positions rows [B, R] -> [B, R, H] (rows None: hidden_states itself)."""
    if rows is None:
        return hidden_states
    return paddle.take_along_axis(hidden_states, rows.unsqueeze(-1), axis=1, broadcast=True)


class VisualBertEmbeddings(nn.Layer):
    """Word + position + token-type embeddings of the text, then projected boxes + visual position + visual type."""

    def __init__(self, config: VisualBertConfig):
        super().__init__()
        self.pad_token_id = config.pad_token_id
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.visual_token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.visual_position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.visual_projection = nn.Linear(config.visual_embedding_dim, config.hidden_size)

    def _word_embeddings(self, input_ids):
        # HF builds this table with padding_idx=pad_token_id: the lookup of that id passes no gradient to its row
        # (the tied MLM decoder still does). Paddle's padding_idx would also zero the output, so detach instead.
        embeds = self.word_embeddings(input_ids)
        return paddle.where((input_ids == self.pad_token_id).unsqueeze(-1), embeds.detach(), embeds)

    def forward(
        self,
        input_ids=None,
        token_type_ids=None,
        position_ids=None,
        inputs_embeds=None,
        visual_embeds=None,
        visual_token_type_ids=None,
        image_text_alignment=None,
    ):
        if inputs_embeds is None:
            inputs_embeds = self._word_embeddings(input_ids)  # [B, T, H]
        if position_ids is None:
            position_ids = paddle.arange(inputs_embeds.shape[1], dtype="int64").unsqueeze(0)
        if token_type_ids is None:
            token_type_ids = paddle.zeros(inputs_embeds.shape[:-1], dtype="int64")
        embeddings = (
            inputs_embeds + self.token_type_embeddings(token_type_ids) + self.position_embeddings(position_ids)
        )

        if visual_embeds is not None:
            if visual_token_type_ids is None:  # HF's default; the data pipeline always passes explicit ids
                visual_token_type_ids = paddle.ones(visual_embeds.shape[:-1], dtype="int64")
            num_boxes = visual_embeds.shape[1]
            visual_positions = self.visual_position_embeddings(paddle.zeros([1, num_boxes], dtype="int64"))
            if image_text_alignment is not None:
                visual_positions = visual_positions + self._aligned_text_positions(image_text_alignment, num_boxes)
            visual_embeddings = (
                self.visual_projection(visual_embeds)
                + visual_positions
                + self.visual_token_type_embeddings(visual_token_type_ids)
            )  # [B, V, H]
            embeddings = paddle.concat([embeddings, visual_embeddings], axis=1)  # [B, S, H]

        return self.dropout(self.LayerNorm(embeddings))

    def _aligned_text_positions(self, image_text_alignment, num_boxes):
        """Mean of the text position embeddings at the word indices each box is aligned to ([B, V, A], -1 = none)."""
        aligned = (image_text_alignment != -1).astype(self.position_embeddings.weight.dtype)  # [B, V, A]
        positions = self.position_embeddings(image_text_alignment.clip(min=0))  # -1 -> 0, masked out below
        summed = (positions * aligned.unsqueeze(-1)).sum(2)  # [B, V, H]
        count = aligned.sum(2)
        count = paddle.where(count == 0, paddle.ones_like(count), count)  # boxes aligned to nothing: avoid 0/0
        if summed.shape[1] < num_boxes:
            raise ValueError(f"image_text_alignment covers {summed.shape[1]} boxes but visual_embeds has {num_boxes}")
        return (summed / count.unsqueeze(-1))[:, :num_boxes]


class VisualBertSelfAttention(nn.Layer):
    """Multi-head scaled dot-product attention. query_rows [B, R]: only those positions ask (the output is
    [B, R, H]); every position is a key and a value."""

    def __init__(self, config: VisualBertConfig):
        super().__init__()
        if config.hidden_size % config.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size {config.hidden_size} is not a multiple of "
                f"num_attention_heads {config.num_attention_heads}"
            )
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = config.hidden_size // config.num_attention_heads
        self.scale = 1.0 / math.sqrt(self.attention_head_size)
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def transpose_for_scores(self, x):
        """[B, S, H] -> [B, heads, S, head_size]."""
        return x.reshape([0, 0, self.num_attention_heads, self.attention_head_size]).transpose([0, 2, 1, 3])

    def forward(self, hidden_states, attention_mask=None, head_mask=None, output_attentions=False, query_rows=None):
        """attention_mask: additive, [B, 1, 1, S] (0 kept, the dtype's minimum masked); head_mask [1, heads, 1, 1]."""
        queries = take_rows(hidden_states, query_rows)  # [B, Q, H], Q = S or R
        # The scale goes on the query ([B, Q, H]) rather than on the scores ([B, heads, Q, S], larger for S > 64);
        # it is a power of two at head size 64, so the scores are bit-identical to HF's (q @ k) / sqrt(head_size).
        query = self.transpose_for_scores(self.query(queries) * self.scale)  # [B, heads, Q, head_size]
        key = self.transpose_for_scores(self.key(hidden_states))  # [B, heads, S, head_size]
        value = self.transpose_for_scores(self.value(hidden_states))

        scores = paddle.matmul(query, key, transpose_y=True)  # [B, heads, Q, S]
        if attention_mask is not None:
            scores = scores + attention_mask
        probs = self.dropout(F.softmax(scores, axis=-1))
        if head_mask is not None:
            probs = probs * head_mask
        context = paddle.matmul(probs, value).transpose([0, 2, 1, 3])  # [B, Q, heads, head_size]
        context = context.reshape([0, 0, -1])  # [B, Q, H]
        return (context, probs) if output_attentions else (context,)


class VisualBertSelfOutput(nn.Layer):
    def __init__(self, config: VisualBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states, input_tensor):
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + input_tensor)


class VisualBertAttention(nn.Layer):
    def __init__(self, config: VisualBertConfig):
        super().__init__()
        self.self = VisualBertSelfAttention(config)
        self.output = VisualBertSelfOutput(config)

    def forward(self, hidden_states, attention_mask=None, head_mask=None, output_attentions=False, query_rows=None):
        self_outputs = self.self(hidden_states, attention_mask, head_mask, output_attentions, query_rows)
        return (self.output(self_outputs[0], take_rows(hidden_states, query_rows)),) + self_outputs[1:]


class VisualBertIntermediate(nn.Layer):
    def __init__(self, config: VisualBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = _activation(config.hidden_act)

    def forward(self, hidden_states):
        return self.intermediate_act_fn(self.dense(hidden_states))


class VisualBertOutput(nn.Layer):
    def __init__(self, config: VisualBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states, input_tensor):
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + input_tensor)


class VisualBertLayer(nn.Layer):
    """One post-LayerNorm transformer block: self-attention, then the feed-forward network."""

    def __init__(self, config: VisualBertConfig):
        super().__init__()
        self.attention = VisualBertAttention(config)
        self.intermediate = VisualBertIntermediate(config)
        self.output = VisualBertOutput(config)

    def forward(self, hidden_states, attention_mask=None, head_mask=None, output_attentions=False, query_rows=None):
        """query_rows [B, R]: the output at those positions only (see VisualBertModel.forward's output_rows)."""
        attention_outputs = self.attention(hidden_states, attention_mask, head_mask, output_attentions, query_rows)
        attention_output = attention_outputs[0]
        layer_output = self.output(self.intermediate(attention_output), attention_output)
        return (layer_output,) + attention_outputs[1:]


class VisualBertEncoder(nn.Layer):
    def __init__(self, config: VisualBertConfig):
        super().__init__()
        self.layer = nn.LayerList([VisualBertLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, hidden_states, attention_mask=None, head_mask=None, output_attentions=False,
                output_hidden_states=False, output_rows=None):  # fmt: skip
        """output_rows [B, R]: the last layer computes those positions only."""
        all_hidden_states = () if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for i, layer in enumerate(self.layer):
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
            rows = output_rows if i == len(self.layer) - 1 else None
            layer_outputs = layer(
                hidden_states, attention_mask, None if head_mask is None else head_mask[i], output_attentions, rows
            )
            hidden_states = layer_outputs[0]
            if output_attentions:
                all_attentions += (layer_outputs[1],)
        if output_hidden_states:
            all_hidden_states += (hidden_states,)
        return BaseModelOutput(
            last_hidden_state=hidden_states, hidden_states=all_hidden_states, attentions=all_attentions
        )


class VisualBertPooler(nn.Layer):
    """tanh(Linear(h[CLS]))."""

    def __init__(self, config: VisualBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden_states):
        return paddle.tanh(self.dense(hidden_states[:, 0]))


class VisualBertPredictionHeadTransform(nn.Layer):
    def __init__(self, config: VisualBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.transform_act_fn = _activation(config.hidden_act)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps)

    def forward(self, hidden_states):
        return self.LayerNorm(self.transform_act_fn(self.dense(hidden_states)))


class VisualBertLMPredictionHead(nn.Layer):
    """Linear -> act -> LayerNorm -> decoder, hidden states [..., H] -> logits [..., vocab]. The decoder weight is the
    word embedding table (tied, as HF) unless `untied_decoder`, which HF's RegionToPhraseAlignment has; the bias is
    this layer's own `bias`."""

    def __init__(self, config: VisualBertConfig, untied_decoder: bool = False):
        super().__init__()
        self.transform = VisualBertPredictionHeadTransform(config)
        if untied_decoder:
            self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias_attr=False)  # only its weight is used
        self.bias = self.create_parameter([config.vocab_size], is_bias=True)

    def forward(self, hidden_states, word_embeddings=None):
        hidden_states = self.transform(hidden_states)
        if word_embeddings is None:  # the untied decoder, Paddle's [H, vocab] layout
            return paddle.matmul(hidden_states, self.decoder.weight) + self.bias
        return paddle.matmul(hidden_states, word_embeddings, transpose_y=True) + self.bias  # [..., vocab]


class VisualBertPreTrainingHeads(nn.Layer):
    def __init__(self, config: VisualBertConfig, untied_decoder: bool = False):
        super().__init__()
        self.predictions = VisualBertLMPredictionHead(config, untied_decoder)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)

    def forward(self, sequence_output, pooled_output, word_embeddings=None):
        return self.predictions(sequence_output, word_embeddings), self.seq_relationship(pooled_output)


class VisualBertPretrainedModel(PretrainedModel):
    """Initialisation, `from_pretrained` / `save_pretrained` (PaddleNLP layout) and the nine checkpoint names."""

    config_class = VisualBertConfig
    base_model_prefix = "visual_bert"
    pretrained_init_configuration = VisualBertConfig.pretrained_init_configuration
    pretrained_resource_files_map = {"model_state": {}}
    # Functions called with every model once it is built and initialised (`paddlenlp_ext` registers its CPU
    # backend here, which swaps in fused blocks with the same parameters).
    construction_hooks: list = []

    def _post_init(self, original_init, *args, **kwargs):
        super()._post_init(original_init, *args, **kwargs)
        for hook in self.construction_hooks:
            hook(self)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """A folder this project saved, converted or trained (or one transformers wrote, with
        convert_from_torch=True); one of the nine checkpoint names (checkpoint/paddle_visualbert/<name>, or
        uclanlp/<name> with from_hf_hub=True); or any name PaddleNLP resolves online (from_hf_hub=True,
        from_aistudio=True, its community store). See sources.py."""
        source = sources.resolve(str(pretrained_model_name_or_path), kwargs)
        if os.path.isdir(source):
            return super().from_pretrained(source, *args, **kwargs)
        with sources.clear_failures(source, kwargs):
            return super().from_pretrained(source, *args, **kwargs)

    @classmethod
    def convert(cls, weight_file, config, cache_dir=None):
        """PaddleNLP's hook for from_pretrained(..., convert_from_torch=True): convert.py's strict conversion (every
        key used, tied copies checked), writing nothing beside the torch checkpoint."""
        return sources.torch_checkpoint_to_paddle(weight_file, config)

    @classmethod
    def _get_name_mappings(cls, config):
        """PaddleNLP's name mappings from torch checkpoints: convert.py's list (same names, linear weights
        transposed) for the checkpoint's class."""
        from paddlenlp.transformers.conversion_utils import StateDictNameMapping

        architecture = (config.architectures or [cls.__name__])[0]
        return [
            StateDictNameMapping(hf_name, name, "transpose" if transpose else None)
            for hf_name, name, transpose in convert.name_mappings(architecture, config)
        ]

    def _init_weights(self, layer):
        """HF's initialisation: every table and linear weight drawn from N(0, initializer_range), biases 0,
        LayerNorm 1 and 0. The visual type and position tables are drawn like the others (HF's post_init redraws
        them after the copy that `special_visual_initialize` makes); the copy of the text tables is the original's
        recipe after loading BERT, where the text tables are trained: see convert.bert_to_visualbert_state_dict."""
        std = self.config.initializer_range
        if isinstance(layer, (nn.Linear, nn.Embedding)):
            layer.weight.set_value(paddle.normal(0.0, std, layer.weight.shape).astype(layer.weight.dtype))
            if getattr(layer, "bias", None) is not None:
                layer.bias.set_value(paddle.zeros_like(layer.bias))
        elif isinstance(layer, nn.LayerNorm):
            layer.weight.set_value(paddle.ones_like(layer.weight))
            layer.bias.set_value(paddle.zeros_like(layer.bias))
        elif isinstance(layer, VisualBertLMPredictionHead):
            layer.bias.set_value(paddle.zeros_like(layer.bias))


def extended_attention_mask(mask, dtype):
    """[B, S] of 1 (attend) / 0 (ignore) -> additive [B, 1, 1, S]: 0 where kept, the dtype's minimum where masked.

    Built by hand because Paddle's attention would treat a float 0/1 mask as additive and mask nothing."""
    return (1.0 - mask.astype(dtype).unsqueeze([1, 2])) * paddle.finfo(dtype).min


def _head_mask(head_mask, num_layers, dtype):
    """[heads] or [layers, heads] of 1/0 -> [layers, 1, heads, 1, 1] multiplied into the attention probabilities."""
    if head_mask is None:
        return None
    head_mask = head_mask.astype(dtype)
    if head_mask.ndim == 1:
        head_mask = head_mask.unsqueeze(0).expand([num_layers, -1])
    return head_mask.unsqueeze([1, 3, 4])


class VisualBertModel(VisualBertPretrainedModel):
    """The bare VisualBERT encoder: returns the hidden states of text then boxes, and the pooled [CLS] output."""

    def __init__(self, config: VisualBertConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.embeddings = VisualBertEmbeddings(config)
        self.encoder = VisualBertEncoder(config)
        self.pooler = VisualBertPooler(config) if add_pooling_layer else None
        self.bypass_transformer = config.bypass_transformer
        if self.bypass_transformer:
            self.additional_layer = VisualBertLayer(config)

    def get_input_embeddings(self):
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value):
        self.embeddings.word_embeddings = value

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        head_mask=None,
        inputs_embeds=None,
        visual_embeds=None,
        visual_attention_mask=None,
        visual_token_type_ids=None,
        image_text_alignment=None,
        output_attentions=None,
        output_hidden_states=None,
        return_dict=None,
        output_rows=None,
    ):
        """input_ids [B, T], visual_embeds [B, V, D]; masks are 1 for real tokens/boxes, 0 for padding.

        output_rows [B, R] (positions; not in HF): the last layer computes its output at these positions only, after
        its key and value projections of every position, and last_hidden_state is [B, R, H]. Row 0 of it feeds the
        pooler. The heads that read a few positions pass it (the pretraining head with labels: [CLS] and the
        labelled ones): the rest of the last layer is work they discard."""
        output_attentions = self.config.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = (
            self.config.output_hidden_states if output_hidden_states is None else output_hidden_states
        )
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        if output_rows is not None and (output_attentions or output_hidden_states):
            raise ValueError("output_rows leaves out part of the last layer: it cannot go with output_attentions "
                             "or output_hidden_states")  # fmt: skip
        text_shape = input_ids.shape if input_ids is not None else inputs_embeds.shape[:-1]
        if visual_embeds is not None and visual_embeds.shape[-1] != self.config.visual_embedding_dim:
            raise ValueError(
                f"visual_embeds has feature size {visual_embeds.shape[-1]}, "
                f"the model expects visual_embedding_dim={self.config.visual_embedding_dim}"
            )

        embedding_output = self.embeddings(
            input_ids=input_ids,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            visual_embeds=visual_embeds,
            visual_token_type_ids=visual_token_type_ids,
            image_text_alignment=image_text_alignment,
        )  # [B, S, H]
        dtype = embedding_output.dtype
        if attention_mask is None:
            attention_mask = paddle.ones(text_shape, dtype=dtype)
        if visual_embeds is not None:
            if visual_attention_mask is None:
                visual_attention_mask = paddle.ones(visual_embeds.shape[:-1], dtype=dtype)
            attention_mask = paddle.concat([attention_mask.astype(dtype), visual_attention_mask.astype(dtype)], -1)
        extended_mask = extended_attention_mask(attention_mask, dtype)  # [B, 1, 1, S]
        head_mask = _head_mask(head_mask, self.config.num_hidden_layers, dtype)

        if self.bypass_transformer and visual_embeds is not None:
            # Text runs through the encoder alone, then one extra layer sees text and boxes together.
            # HF indexes the mask as [:, :, text_length, :text_length] (a bug); this is the intended slice.
            text_length = text_shape[1]
            encoder_outputs = self.encoder(
                embedding_output[:, :text_length],
                extended_mask[:, :, :, :text_length],
                head_mask,
                output_attentions,
                output_hidden_states,
            )
            combined = paddle.concat([encoder_outputs[0], embedding_output[:, text_length:]], axis=1)
            sequence_output = self.additional_layer(combined, extended_mask, query_rows=output_rows)[0]
        else:
            encoder_outputs = self.encoder(
                embedding_output, extended_mask, head_mask, output_attentions, output_hidden_states, output_rows
            )
            sequence_output = encoder_outputs[0]  # [B, S, H], or [B, R, H] with output_rows
        pooled_output = self.pooler(sequence_output) if self.pooler is not None else None

        output = BaseModelOutputWithPooling(
            last_hidden_state=sequence_output,
            pooler_output=pooled_output,
            hidden_states=encoder_outputs.hidden_states,
            attentions=encoder_outputs.attentions,
        )
        return output if return_dict else output.to_tuple()


def _pretraining_rows(labels):
    """output_rows [B, R] for the pretraining heads with MLM labels [B, S]: [CLS] (the pooler's), then each row's
    labelled positions in order, filled up with [CLS] to the batch's most; and which of the rows are labelled, bool
    [B, R]. The last layer then computes those positions only (the MLM head reads nothing else)."""
    labelled = labels >= 0
    length = labels.shape[1]
    positions = paddle.arange(length, dtype="int64").unsqueeze(0)
    order = paddle.argsort(paddle.where(labelled, positions, positions + length), axis=1)  # labelled ones first
    counts = labelled.astype("int64").sum(1, keepdim=True)  # [B, 1]
    most = int(counts.max())
    taken = paddle.arange(most, dtype="int64").unsqueeze(0) < counts  # [B, most]
    rows = paddle.where(taken, order[:, :most], paddle.zeros_like(order[:, :most]))
    cls = paddle.zeros([labels.shape[0], 1], dtype="int64")
    return paddle.concat([cls, rows], axis=1), paddle.concat([paddle.zeros_like(cls, dtype="bool"), taken], axis=1)


def _labelled_rows(hidden_states, labelled, labels):
    """The rows of hidden_states [B, S, H] where labelled [B, S], in row-major order: ([N, H], their labels [N]).

    N depends on the labels, so on a GPU finding the rows waits for the device once per step (PaddleNLP's BERT is
    given masked_positions by its data pipeline instead; this model keeps HF's inputs)."""
    positions = paddle.nonzero(labelled.reshape([-1])).reshape([-1])  # [N] indices into B * S
    rows = paddle.gather(hidden_states.reshape([-1, hidden_states.shape[-1]]), positions)
    return rows, paddle.gather(labels.reshape([-1]), positions)


def _masked_lm_loss(logits, labels):
    """Mean cross entropy over positions with a label >= 0: both HF's -100 and the original's -1 are ignored; 0 when
    no position has one. logits [..., vocab], labels [...].

    Paddle's mean with ignore_index divides by every position, HF's by the labelled ones: divide by hand."""
    labels = labels.reshape([-1])
    valid = labels >= 0
    losses = F.cross_entropy(
        logits.reshape([-1, logits.shape[-1]]), paddle.where(valid, labels, paddle.zeros_like(labels)),
        reduction="none",
    ).reshape([-1])  # fmt: skip
    num_valid = valid.astype(losses.dtype).sum()
    return (losses * valid.astype(losses.dtype)).sum() / paddle.clip(num_valid, min=1.0)


def _soft_target_loss(logits, soft_labels):
    """KL(soft_labels || softmax(logits)) averaged over the batch; returns (loss, log-probabilities).

    The log-probabilities are logits - logsumexp(logits), log_softmax's value: Paddle's CPU log_softmax takes about
    10x longer forward and backward at the VQA head's [B, 3129]. In fp32 under autocast, as log_softmax would be
    (Paddle's black list): logsumexp and kl_div are on neither list and would run in float16/bfloat16."""
    if logits.dtype in (paddle.float16, paddle.bfloat16):
        logits = logits.astype("float32")
    log_probs = logits - paddle.logsumexp(logits, axis=-1, keepdim=True)
    return F.kl_div(log_probs, soft_labels.astype(log_probs.dtype), reduction="batchmean"), log_probs


@dataclass
class VisualBertForPreTrainingOutput(ModelOutput):
    """loss = masked-LM loss + sentence-image loss (either alone when only its labels are given).

    prediction_logits: [B, S, vocab] (every position) without labels or with output_all_logits=True; with labels
    otherwise [N, vocab], the N positions with a label >= 0 in row-major order of the labels, as PaddleNLP's
    BertForPretraining returns them with masked_positions: their argmax is compared with `labels[labels >= 0]`."""

    loss: paddle.Tensor | None = None
    prediction_logits: paddle.Tensor | None = None  # [B, S, vocab], or [N, vocab] with labels (see above)
    seq_relationship_logits: paddle.Tensor | None = None  # [B, 2]; class 1 = the text matches the image
    hidden_states: tuple[paddle.Tensor] | None = None
    attentions: tuple[paddle.Tensor] | None = None


class VisualBertForPreTraining(VisualBertPretrainedModel):
    """Masked language model + sentence-image matching on the pooled output.

    labels [B, T + V]: the original token id at masked text positions, negative elsewhere (ignored). With labels,
    the last layer and the MLM head (transform and the vocabulary-wide decoder) run on [CLS] and the labelled
    positions only (HF runs them on every position and discards the rest in the loss: same loss, same gradients);
    `output_all_logits=True` runs them on every position, as without labels. sentence_image_labels [B]: 1 if the text
    matches the image(s), 0 if not (the original code's convention and the released checkpoints'; HF's docstring
    states the opposite)."""

    def __init__(self, config: VisualBertConfig):
        super().__init__(config)
        self.visual_bert = VisualBertModel(config)
        self.cls = VisualBertPreTrainingHeads(config)

    def get_input_embeddings(self):
        return self.visual_bert.embeddings.word_embeddings

    def forward(self, input_ids=None, *, labels=None, sentence_image_labels=None, output_all_logits=False,
                return_dict=None, **inputs):  # fmt: skip
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        mlm_labels, rows = labels, None  # mlm_labels: paddle.jit.to_static (the export) loses a keyword-only
        # argument that the function assigns to
        if labels is not None:
            text = input_ids if input_ids is not None else inputs.get("inputs_embeds")
            boxes = inputs.get("visual_embeds")
            length = text.shape[1] + (0 if boxes is None else boxes.shape[1])
            if labels.shape[-1] != length:
                raise ValueError(f"labels have length {labels.shape[-1]}, expected text + boxes = {length}")
            if not output_all_logits and not _every_row_needed(self.config, inputs):
                rows, labelled = _pretraining_rows(labels)
        outputs = self.visual_bert(input_ids, return_dict=True, output_rows=rows, **inputs)
        sequence_output = outputs.last_hidden_state  # [B, S, H], or [B, R, H] at rows
        if rows is not None:  # the labelled positions in row-major order, as HF's loss takes them
            sequence_output, mlm_labels = _labelled_rows(
                sequence_output, labelled, paddle.take_along_axis(labels, rows, 1)
            )
        elif labels is not None and not output_all_logits:
            sequence_output, mlm_labels = _labelled_rows(sequence_output, labels >= 0, labels)  # [N, H], [N]
        prediction_logits, seq_relationship_logits = self.cls(
            sequence_output, outputs.pooler_output, self.visual_bert.embeddings.word_embeddings.weight
        )  # [B, S, vocab] or [N, vocab], [B, 2]
        loss = None if labels is None else _masked_lm_loss(prediction_logits, mlm_labels)
        if sentence_image_labels is not None:
            sentence_image_loss = F.cross_entropy(seq_relationship_logits, sentence_image_labels.reshape([-1]))
            loss = sentence_image_loss if loss is None else loss + sentence_image_loss

        output = VisualBertForPreTrainingOutput(
            loss=loss,
            prediction_logits=prediction_logits,
            seq_relationship_logits=seq_relationship_logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return output if return_dict else output.to_tuple()


def _every_row_needed(config, inputs):
    """Whether a head that reads one or two positions must still have the last layer compute all of them: when the
    caller asks for every layer's hidden states or attention."""
    return any(getattr(config, name, False) if inputs.get(name) is None else inputs[name] for name in
               ("output_attentions", "output_hidden_states"))  # fmt: skip


def _cls_rows(config, inputs, batch):
    """output_rows for a head that reads the pooled [CLS] only: [batch, 1] zeros, or None if every row is needed."""
    return None if _every_row_needed(config, inputs) else paddle.zeros([batch, 1], dtype="int64")


class VisualBertForQuestionAnswering(VisualBertPretrainedModel):
    """VQA: dropout -> Linear(H, num_labels) on the hidden state of the token at attention_mask.sum(1) - 2, the
    [MASK] before the final [SEP] of `[CLS] question ? [MASK] [SEP]` (text must be right-padded).

    labels [B, num_labels] are soft scores; the loss is KL divergence (batch mean) to softmax(logits). As in HF,
    when labels are given the returned logits are the log-probabilities."""

    def __init__(self, config: VisualBertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.visual_bert = VisualBertModel(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.cls = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, input_ids=None, *, labels=None, return_dict=None, **inputs):
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        inputs = dict(inputs, input_ids=input_ids)
        if inputs.get("attention_mask") is None:
            raise ValueError("VisualBertForQuestionAnswering needs attention_mask to find the answer token")
        answer_index = inputs["attention_mask"].astype("int64").sum(1) - 2  # [B]
        if _every_row_needed(self.config, inputs):
            outputs = self.visual_bert(**inputs, return_dict=True)
            answer_token = take_rows(outputs.last_hidden_state, answer_index.unsqueeze(1))[:, 0]
        else:  # the last layer computes [CLS] (for the pooler) and the answer token only
            rows = paddle.stack([paddle.zeros_like(answer_index), answer_index], axis=1)  # [B, 2]
            outputs = self.visual_bert(**inputs, return_dict=True, output_rows=rows)
            answer_token = outputs.last_hidden_state[:, 1]  # [B, H]
        logits = self.cls(self.dropout(answer_token))  # [B, num_labels]

        loss = None
        if labels is not None:
            loss, logits = _soft_target_loss(logits, labels)
        output = SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )
        return output if return_dict else output.to_tuple()


class VisualBertForVisualReasoning(VisualBertPretrainedModel):
    """NLVR2: dropout -> Linear(H, num_labels) on the pooled output; cross entropy. Label 1 = the sentence is true."""

    def __init__(self, config: VisualBertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.visual_bert = VisualBertModel(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.cls = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, input_ids=None, *, labels=None, return_dict=None, **inputs):
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        if input_ids is not None:  # the last layer computes [CLS] only
            inputs["output_rows"] = _cls_rows(self.config, inputs, input_ids.shape[0])
        outputs = self.visual_bert(input_ids, return_dict=True, **inputs)
        logits = self.cls(self.dropout(outputs.pooler_output))  # [B, num_labels]
        loss = None if labels is None else F.cross_entropy(logits, labels.reshape([-1]))
        output = SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )
        return output if return_dict else output.to_tuple()


class VisualBertForMultipleChoice(VisualBertPretrainedModel):
    """VCR: every input carries a choice axis, [B, C, ...]; each choice is scored by dropout -> Linear(H, 1) on its
    pooled output; logits [B, C]; cross entropy over the choices."""

    def __init__(self, config: VisualBertConfig):
        super().__init__(config)
        self.visual_bert = VisualBertModel(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.cls = nn.Linear(config.hidden_size, 1)

    def forward(self, input_ids=None, *, labels=None, return_dict=None, **inputs):
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        inputs = dict(inputs, input_ids=input_ids)
        text = inputs["input_ids"] if inputs.get("input_ids") is not None else inputs["inputs_embeds"]
        num_choices = text.shape[1]
        for name, value in inputs.items():
            if isinstance(value, paddle.Tensor) and name != "head_mask":
                inputs[name] = value.reshape([-1] + value.shape[2:])  # [B, C, ...] -> [B * C, ...]
        inputs["output_rows"] = _cls_rows(self.config, inputs, text.shape[0] * num_choices)  # each choice's [CLS]
        outputs = self.visual_bert(**inputs, return_dict=True)
        logits = self.cls(self.dropout(outputs.pooler_output)).reshape([-1, num_choices])  # [B, C]
        loss = None if labels is None else F.cross_entropy(logits, labels.reshape([-1]))
        output = MultipleChoiceModelOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )
        return output if return_dict else output.to_tuple()


class VisualBertRegionToPhraseAttention(nn.Layer):
    """One attention head scoring every phrase against every box; returns the masked scores [B, phrases, V]."""

    def __init__(self, config: VisualBertConfig):
        super().__init__()
        head_size = config.hidden_size // config.num_attention_heads
        self.scale = math.sqrt(head_size)
        self.query = nn.Linear(config.hidden_size, head_size)
        self.key = nn.Linear(config.hidden_size, head_size)
        self.value = nn.Linear(config.hidden_size, head_size)  # unused by the scores; kept for HF's weight tree

    def forward(self, query, key, attention_mask):
        scores = paddle.matmul(self.query(query), self.key(key), transpose_y=True) / self.scale
        mask = attention_mask.astype(scores.dtype).unsqueeze(1)  # [B, 1, V]
        return scores + (1.0 - mask) * paddle.finfo(scores.dtype).min


class VisualBertForRegionToPhraseAlignment(VisualBertPretrainedModel):
    """Flickr30k entities: the hidden state at each `region_to_phrase_position` (-1 = none, read as position 0)
    attends over the boxes; labels [B, phrases, V] are target distributions, the loss is KL divergence (batch mean).
    The pretraining heads are kept (untied, as in HF) only so that pretraining checkpoints load into this class."""

    def __init__(self, config: VisualBertConfig):
        super().__init__(config)
        self.visual_bert = VisualBertModel(config)
        self.cls = VisualBertPreTrainingHeads(config, untied_decoder=True)
        self.attention = VisualBertRegionToPhraseAttention(config)

    def forward(self, input_ids=None, *, region_to_phrase_position=None, labels=None, return_dict=None, **inputs):
        if region_to_phrase_position is None:
            raise ValueError("VisualBertForRegionToPhraseAlignment needs region_to_phrase_position")
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        inputs = dict(inputs, input_ids=input_ids)
        if inputs.get("visual_attention_mask") is None or inputs.get("attention_mask") is None:
            raise ValueError("VisualBertForRegionToPhraseAlignment needs attention_mask and visual_attention_mask")
        outputs = self.visual_bert(**inputs, return_dict=True)
        sequence_output = outputs.last_hidden_state
        phrases = take_rows(sequence_output, region_to_phrase_position.clip(min=0))  # [B, P, H]
        boxes = sequence_output[:, inputs["attention_mask"].shape[1] :]  # [B, V, H]
        logits = self.attention(phrases, boxes, inputs["visual_attention_mask"])  # [B, P, V]
        loss = None if labels is None else _soft_target_loss(logits, labels)[0]
        output = SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )
        return output if return_dict else output.to_tuple()
