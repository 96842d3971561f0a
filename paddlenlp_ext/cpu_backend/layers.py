"""Fused fp32 CPU versions of modeling.py's blocks: subclasses with the same parameters, each computing what its
parent computes, through the kernels, where `runs_on` holds, and deferring to its parent everywhere else (GPU,
autocast, paddle.jit.to_static, the backend switched off). `apply` swaps them into a built model.

What they save, at BERT-base on CPU: Paddle's CPU operators for the bias additions, GELU, softmax, LayerNorm and
dropout run on one thread, one operation per pass over memory; the kernels fuse what touches the same memory and use
every core. The encoder of the heads that read a few positions also leaves out the padding (`Encoder`).
"""

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ..transformers.visualbert import modeling
from . import kernels
from .control import runs_on


def _column_sums(x):
    """Sums over the rows of 2-D x as a matrix-vector product with ones: Paddle's CPU sum over axis 0 (the broadcast
    reduction its own bias and LayerNorm gradients use) is 10-20x slower."""
    return paddle.matmul(paddle.ones([1, x.shape[0]], x.dtype), x).reshape([-1])


class _LinearFunction(paddle.autograd.PyLayer):
    """x [..., in] @ weight (+ bias; then x is 2-D), with the backward Paddle's own linear would run, except the bias
    gradient, which `_column_sums` computes. Without a bias, x keeps its shape: Paddle's matmul folds the leading axes
    itself, and the backward flattens them where autograd does not record it."""

    @staticmethod
    def forward(ctx, x, weight, bias, transpose_weight):
        ctx.save_for_backward(x, weight)
        ctx.transpose_weight = transpose_weight
        ctx.has_bias = bias is not None
        ctx.bias_frozen = bias is not None and bias.stop_gradient
        if bias is None:
            return paddle.matmul(x, weight, transpose_y=transpose_weight)
        if transpose_weight:
            return paddle.matmul(x, weight, transpose_y=True).add_(bias)
        return paddle.addmm(bias, x, weight)  # the bias add rides in the matmul: one pass over the output

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensor()
        grad_x = grad_weight = grad_bias = None
        if not x.stop_gradient:
            grad_x = paddle.matmul(grad, weight, transpose_y=not ctx.transpose_weight)
        x, grad = x.reshape([-1, x.shape[-1]]), grad.reshape([-1, grad.shape[-1]])
        if not weight.stop_gradient:  # a frozen weight gets None, as Paddle requires
            if ctx.transpose_weight:
                grad_weight = paddle.matmul(grad, x, transpose_x=True)
            else:
                grad_weight = paddle.matmul(x, grad, transpose_x=True)
        if not ctx.has_bias:
            return grad_x, grad_weight
        if not ctx.bias_frozen:
            grad_bias = _column_sums(grad)
        return grad_x, grad_weight, grad_bias


def linear(x, weight, bias=None, transpose_weight=False):
    """x [..., in] @ weight [in, out] (or [out, in] with transpose_weight) (+ bias [out]) via _LinearFunction."""
    if bias is None:
        return _LinearFunction.apply(x, weight, None, transpose_weight)
    out = _LinearFunction.apply(x.reshape([-1, x.shape[-1]]), weight, bias, transpose_weight)
    return out.reshape(x.shape[:-1] + out.shape[-1:])


class Linear(nn.Linear):
    def forward(self, x):
        if not runs_on(x):
            return super().forward(x)
        return linear(x, self.weight, self.bias)


class LayerNorm(nn.LayerNorm):
    def plain(self) -> bool:
        """Over the last axis, with a weight and a bias: the LayerNorm the kernels compute."""
        return len(self._normalized_shape) == 1 and self.weight is not None and self.bias is not None

    def takes(self, x) -> bool:
        """Whether the kernel computes this LayerNorm of x."""
        return self.plain() and runs_on(x)

    def forward(self, x):
        if not self.takes(x):
            return super().forward(x)
        return kernels.layer_norm(x, self.weight, self.bias, self._epsilon)


class Dropout(nn.Dropout):
    """Also the identity outside training (Paddle's dropout operator copies its input even then). Paddle's CPU dropout
    draws one mt19937 number per element on one thread; the kernel hashes a counter on every core."""

    def kernel_rate(self):
        """The rate the kernels apply (0 outside training), or None where they do not take this dropout."""
        if not self.training:
            return 0.0
        plain = self.axis is None and self.mode == "upscale_in_train"
        return self.p if plain and kernels.dropout_threshold_ok(self.p) else None

    def forward(self, x):
        if not runs_on(x) or self.kernel_rate() is None:
            return super().forward(x)
        return kernels.dropout(x, self.p) if self.kernel_rate() else x


class SelfAttention(modeling.VisualBertSelfAttention):
    """Where nothing reads the probabilities (no head_mask, no output_attentions): the projections' matmuls, then
    the bias, scale and head layout in one pass per projection, the masked softmax, and dropout with the context
    product (the backward keeps a one-byte mask, not the dropped probabilities). In inference (nothing dropped, no
    gradient), one kernel computes everything after the three matmuls, per sequence and head in a thread's cache."""

    def _projections(self):
        return [p for layer in (self.query, self.key, self.value) for p in (layer.weight, layer.bias)]

    def inference(self, hidden_states) -> bool:
        """Whether kernels.attention computes this attention: nothing dropped, no gradient, MKL at hand."""
        return (
            self.dropout.kernel_rate() == 0
            and not kernels.records_grad(hidden_states, *self._projections())
            and kernels.mkl_available()
        )

    def fused(self, queries, hidden_states, mask=None, offsets=None):
        """kernels.attention over queries [B, Q, H] and keys hidden_states [B, S, H] with an additive mask, or over
        a batch without its padding (queries [Nq, H], keys [Nk, H], offsets as kernels.attention takes them)."""
        return kernels.attention(
            linear(queries, self.query.weight), linear(hidden_states, self.key.weight),
            linear(hidden_states, self.value.weight), self.query.bias, self.key.bias, self.value.bias,
            self.num_attention_heads, self.scale, mask, offsets,
        )  # fmt: skip

    def heads(self, projection, x, scale=1.0, layout=None):
        """projection(x) * scale as [B, heads, S, head_size]: the matmul, then bias, scale and layout in one pass (x
        [B, S, H], or the batch's real rows [N, H] with their kernels.RowLayout)."""
        return kernels.split_heads(
            linear(x, projection.weight), projection.bias, self.num_attention_heads, scale, layout
        )

    def attend(self, query, key, value, attention_mask):
        """The context [B, heads, Q, head_size] of split heads: the masked softmax, then dropout with the context
        product (the backward keeps a one-byte mask, not the dropped probabilities)."""
        rate = self.dropout.kernel_rate()
        probs = kernels.masked_softmax(paddle.matmul(query, key, transpose_y=True), attention_mask)
        return kernels.dropout_matmul(probs, value, rate) if rate else paddle.matmul(probs, value)

    def forward(self, hidden_states, attention_mask=None, head_mask=None, output_attentions=False, query_rows=None):
        rate = self.dropout.kernel_rate()
        plain = head_mask is None and not output_attentions and attention_mask is not None and rate is not None
        if not plain or not runs_on(hidden_states, attention_mask):
            return super().forward(hidden_states, attention_mask, head_mask, output_attentions, query_rows)
        queries = modeling.take_rows(hidden_states, query_rows)
        if self.inference(hidden_states):
            return (self.fused(queries, hidden_states, mask=attention_mask),)
        query = self.heads(self.query, queries, self.scale)  # [B, heads, Q, head_size]
        key, value = self.heads(self.key, hidden_states), self.heads(self.value, hidden_states)
        return (kernels.merge_heads(self.attend(query, key, value, attention_mask)),)  # [B, Q, H]


def _dense_dropout_add_norm(block, hidden_states, input_tensor, positions=None):
    """LayerNorm(dropout(dense(x)) + residual), the end of an attention or feed-forward block: the matmul, then the
    bias, dropout, residual and LayerNorm in one kernel pass; None where the kernel does not compute it. positions:
    see kernels.bias_dropout_add_norm."""
    if not _fuses_the_end(block) or not runs_on(hidden_states, input_tensor):
        return None
    norm = block.LayerNorm
    return kernels.bias_dropout_add_norm(
        linear(hidden_states, block.dense.weight), block.dense.bias, input_tensor, norm.weight, norm.bias,
        norm._epsilon, block.dropout.kernel_rate(), positions,
    )  # fmt: skip


def _fuses_the_end(block) -> bool:
    """Whether _dense_dropout_add_norm's kernel takes this block's dropout and LayerNorm (given fp32 CPU inputs)."""
    return block.dropout.kernel_rate() is not None and block.LayerNorm.plain()


class SelfOutput(modeling.VisualBertSelfOutput):
    def forward(self, hidden_states, input_tensor, positions=None):
        out = _dense_dropout_add_norm(self, hidden_states, input_tensor, positions)
        return super().forward(hidden_states, input_tensor) if out is None else out


class Output(modeling.VisualBertOutput):
    def forward(self, hidden_states, input_tensor, positions=None):
        out = _dense_dropout_add_norm(self, hidden_states, input_tensor, positions)
        return super().forward(hidden_states, input_tensor) if out is None else out


def _dense_gelu(dense, activation, x):
    """activation(dense(x)) with the bias and an exact GELU in one kernel pass after the matmul; None where the
    kernel does not compute it."""
    if activation is not F.gelu or not runs_on(x):
        return None
    return kernels.bias_gelu(linear(x, dense.weight), dense.bias)


class Intermediate(modeling.VisualBertIntermediate):
    def forward(self, hidden_states):
        out = _dense_gelu(self.dense, self.intermediate_act_fn, hidden_states)
        return super().forward(hidden_states) if out is None else out


class PredictionHeadTransform(modeling.VisualBertPredictionHeadTransform):
    def forward(self, hidden_states):
        out = _dense_gelu(self.dense, self.transform_act_fn, hidden_states)
        return super().forward(hidden_states) if out is None else self.LayerNorm(out)


class LMPredictionHead(modeling.VisualBertLMPredictionHead):
    """The decoder's bias gradient by `_column_sums` (over every row of a 30522-wide output: one per labelled
    position in pretraining, one per position where every position is asked)."""

    def forward(self, hidden_states, word_embeddings=None):
        weight = self.decoder.weight if word_embeddings is None else word_embeddings
        if not runs_on(hidden_states, weight):
            return super().forward(hidden_states, word_embeddings)
        return linear(self.transform(hidden_states), weight, self.bias, transpose_weight=word_embeddings is not None)


class Encoder(modeling.VisualBertEncoder):
    """With output_rows (the QA, NLVR2 and multiple-choice heads), every layer computes the batch's real rows only:
    they are gathered into [N, H]. In prediction each sequence attends within its own rows (kernels.attention with
    offsets). In training the attention runs on the padded layout, the real rows placed into it by split_heads and
    taken back by merge_heads, and everything else on the real rows, with the padded batch's dropout masks. Only the
    padding's own outputs depend on the padding (a masked key's attention weight is exactly 0) and no output row is
    padding, so the real rows' outputs and every gradient are the padded computation's. Elsewhere, modeling.py's loop
    over the layers."""

    def _real_positions(self, hidden_states, attention_mask, output_rows):
        """bool [B, S], the batch's real positions, where it can run without its padding: the mask is [B, 1, 1, S],
        0 / the dtype's minimum, and no output row is padding; else None."""
        batch, length, _ = hidden_states.shape
        if attention_mask.shape != [batch, 1, 1, length]:
            return None
        mask = attention_mask.reshape([batch, length])
        real = mask == 0
        if not bool((real | (mask == paddle.finfo(mask.dtype).min)).all()):
            return None
        read = paddle.take_along_axis(real.astype("int32"), output_rows, axis=1)
        return real if bool(read.all()) else None

    def forward(self, hidden_states, attention_mask=None, head_mask=None, output_attentions=False,
                output_hidden_states=False, output_rows=None):  # fmt: skip
        real = None
        if output_rows is not None and attention_mask is not None and head_mask is None:
            plain = not output_attentions and not output_hidden_states and runs_on(hidden_states, attention_mask)
            if plain and all(layer.attention.self.dropout.kernel_rate() is not None for layer in self.layer):
                real = self._real_positions(hidden_states, attention_mask, output_rows)
        if real is None:
            return super().forward(
                hidden_states, attention_mask, head_mask, output_attentions, output_hidden_states, output_rows
            )
        batch, length, hidden = hidden_states.shape
        layout = kernels.RowLayout.of(real)
        outputs = (paddle.arange(batch, dtype="int64").unsqueeze(1) * length + output_rows).reshape([-1])  # [B * R]
        rows = layout.slots.gather(outputs)  # the output positions' rows among the real ones
        hidden_states = hidden_states.reshape([-1, hidden]).gather(layout.positions)  # [N, H]
        if all(layer.attention.self.inference(hidden_states) for layer in self.layer):
            hidden_states = self._predict(hidden_states, real, rows.reshape(output_rows.shape))
        else:
            hidden_states = self._train(hidden_states, attention_mask, layout, outputs, rows, output_rows.shape)
        return modeling.BaseModelOutput(last_hidden_state=hidden_states.reshape(output_rows.shape + [hidden]))

    def _predict(self, hidden_states, real, rows):
        """The layers on the real rows [N, H], each sequence attending within its own; the last layer at rows [B, R]
        (indices into the N rows) only."""
        starts = paddle.concat([paddle.zeros([1], "int64"), paddle.cumsum(real.astype("int64").sum(1))])
        for i, layer in enumerate(self.layer):
            query_rows = rows if i == len(self.layer) - 1 else None
            queries = hidden_states if query_rows is None else hidden_states.gather(query_rows.reshape([-1]))
            offsets = starts, starts
            if query_rows is not None:
                offsets = paddle.arange(rows.shape[0] + 1, dtype="int64") * rows.shape[1], starts
            context = layer.attention.self.fused(queries, hidden_states, offsets=offsets)
            attention_output = layer.attention.output(context, queries)
            hidden_states = layer.output(layer.intermediate(attention_output), attention_output)
        return hidden_states

    def _train(self, hidden_states, attention_mask, layout, outputs, rows, shape):
        """The layers on the real rows [N, H] (layout), the attention in the padded layout; the last layer at the
        positions `outputs` [B * R] (rows [B * R] among the N, shape [B, R]) only. Dropout draws by padded position."""
        for i, layer in enumerate(self.layer):
            attention, last = layer.attention.self, i == len(self.layer) - 1
            if last:
                queries, positions = hidden_states.gather(rows), outputs  # [B * R, H]
                query = attention.heads(attention.query, queries.reshape(shape + [-1]), attention.scale)
            else:
                queries, positions = hidden_states, layout.positions
                query = attention.heads(attention.query, queries, attention.scale, layout)
            key = attention.heads(attention.key, hidden_states, layout=layout)
            value = attention.heads(attention.value, hidden_states, layout=layout)
            context = kernels.merge_heads(
                attention.attend(query, key, value, attention_mask), None if last else layout
            )
            context = context.reshape([-1, context.shape[-1]])
            attention_output = layer.attention.output(context, queries, positions)
            hidden_states = layer.output(layer.intermediate(attention_output), attention_output, positions)
        return hidden_states


FUSED = {
    nn.Linear: Linear,
    nn.LayerNorm: LayerNorm,
    nn.Dropout: Dropout,
    modeling.VisualBertSelfAttention: SelfAttention,
    modeling.VisualBertSelfOutput: SelfOutput,
    modeling.VisualBertOutput: Output,
    modeling.VisualBertIntermediate: Intermediate,
    modeling.VisualBertPredictionHeadTransform: PredictionHeadTransform,
    modeling.VisualBertLMPredictionHead: LMPredictionHead,
    modeling.VisualBertEncoder: Encoder,
}
