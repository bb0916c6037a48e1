"""Post-LayerNorm transformer math shared by the BERT and MPNet encoders.

The encoders run on *packed* tokens: the `[B, T]` batch is flattened and
only real tokens (plus the first position of every row, so each row has at
least one) are kept, giving `[N, H]` activations. Dense layers, layer norms
and GELUs (most of the work) then skip padding entirely. Only attention
goes back to a padded layout: the rows are sorted by length into
`ATTENTION_GROUPS` groups, each padded to its own longest row, and one
gather per group builds `[3, rows, heads, T_group, head_dim]` (packing and
head transpose at once). Padding therefore cannot change any real token's
output, and a batch costs about what its real tokens cost.

The ops are plain TensorFlow ops (no XLA, servable by TF Serving), written
in the shapes that TensorFlow's oneDNN graph rewrites fuse on CPU:
`MatMul + BiasAdd + GELU(erf)`, `MatMul + BiasAdd + residual` (via `add_n`)
and `BatchMatMul * scale + mask`.

Precision (`keras_rec.precision.PRECISIONS`): `"float32"` computes what PyTorch computes in
float32. `"bfloat16"` stores the dense kernels and biases in bfloat16 and runs
every matmul (projections, feed-forward, both attention products) in
bfloat16, which oneDNN runs on AMX tiles on CPUs that have them; the
residual stream, layer norms, softmax and pooling stay float32, with one cast
into bfloat16 before each pair of projections and one back after each.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from keras_rec.precision import check_precision

_ACTIVATIONS: dict[str, Callable[[tf.Tensor], tf.Tensor]] = {
    "gelu": lambda x: tf.nn.gelu(x, approximate=False),
    "gelu_new": lambda x: tf.nn.gelu(x, approximate=True),
    "gelu_pytorch_tanh": lambda x: tf.nn.gelu(x, approximate=True),
    "relu": tf.nn.relu,
}


def get_activation(name: str) -> Callable[[tf.Tensor], tf.Tensor]:
    """Returns the TF function for a Hugging Face `hidden_act` name."""
    if name not in _ACTIVATIONS:
        raise ValueError(
            f"`hidden_act` must be one of {sorted(_ACTIVATIONS)}. Received: hidden_act={name!r}"
        )
    return _ACTIVATIONS[name]


# Encoder precision (`keras_rec.precision.PRECISIONS`) -> dtype of the dense kernels and matmuls.
_MATMUL_DTYPES = {"float32": tf.float32, "bfloat16": tf.bfloat16}


def matmul_dtype(precision: str) -> tf.DType:
    """The matmul dtype of a precision name; a clear error for any other."""
    return _MATMUL_DTYPES[check_precision(precision)]


def dense(x: tf.Tensor, kernel: tf.Variable, bias: tf.Variable) -> tf.Tensor:
    """`x @ kernel + bias` on `[N, in]`, as `MatMul + BiasAdd` (fusable).

    `x` is cast to the kernel's dtype first (a no-op when they match).
    """
    return tf.nn.bias_add(tf.matmul(tf.cast(x, kernel.dtype), kernel), bias)


def layer_norm(x: tf.Tensor, gamma: tf.Variable, beta: tf.Variable, epsilon: float) -> tf.Tensor:
    """Layer normalization over the last axis, biased variance like PyTorch.

    (A `FusedBatchNormV3` formulation, which oneDNN rewrites to its fused
    layer norm, measured 2.4x slower for one text's ~40 rows on this CPU.)
    """
    centered = x - tf.reduce_mean(x, axis=-1, keepdims=True)
    variance = tf.reduce_mean(tf.square(centered), axis=-1, keepdims=True)
    return centered * tf.math.rsqrt(variance + epsilon) * gamma + beta


def dropout(x: tf.Tensor, rate: float, training: bool) -> tf.Tensor:
    """Inverted dropout, active only when `training` is True."""
    if training and rate > 0.0:
        return tf.nn.dropout(x, rate=rate)
    return x


def check_seq_length(input_mask: tf.Tensor, max_length: int, limit: str) -> tf.Tensor:
    """Returns `input_mask`, failing first unless `1 <= T <= max_length`.

    Everything downstream depends on the returned mask, so the clear
    `InvalidArgumentError` comes before any cryptic out-of-range gather.
    """
    seq_length = tf.shape(input_mask)[1]
    checks = [
        tf.debugging.assert_greater_equal(
            seq_length,
            1,
            message="The encoder inputs need at least one column (the first token); "
            "received [batch, 0] tensors.",
        ),
        tf.debugging.assert_less_equal(
            seq_length,
            max_length,
            message=f"The encoder takes at most {max_length} tokens per row ({limit}); "
            "truncate the inputs (the preprocessor's seq_length).",
        ),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(input_mask)


def state_from_transformers(model: Any, has_pooler: bool | None) -> dict[str, np.ndarray]:
    """A transformers model's weights as numpy arrays; pooler dropped if `has_pooler is False`."""
    state = {key: value.detach().cpu().numpy() for key, value in model.state_dict().items()}
    if has_pooler is False:
        state = {key: value for key, value in state.items() if not key.startswith("pooler.")}
    return state


def make_variable(value: np.ndarray, name: str, dtype: tf.DType = tf.float32) -> tf.Variable:
    """A trainable variable of `dtype` holding a copy of `value` (rounded to nearest)."""
    value = tf.cast(tf.constant(np.asarray(value, dtype=np.float32)), dtype)
    return tf.Variable(value, trainable=True, name=name)


class PackedTokens(NamedTuple):
    """Index bookkeeping between a padded `[B, T]` batch and its packed tokens.

    Fields:
        batch_size: scalar int32 tensor, `B`.
        seq_length: scalar int32 tensor, `T`.
        flat_index: `[N]` int32, position `b * T + t` of each packed token.
        rows: `[N]` int32, the row `b` of each packed token.
        positions: `[N]` int32, the position `t` of each packed token.
        token_mask: `[N]` float32, 1.0 for real tokens, 0.0 for the first
            position of an all-padding row (packed only to keep rows non-empty).
        padded_to_packed: `[B * T]` int32, the packed index of each padded
            position (0 for padding: any real row works, it is masked out).
        first_token: `[B]` int32, the packed index of each row's position 0.
    """

    batch_size: tf.Tensor
    seq_length: tf.Tensor
    flat_index: tf.Tensor
    rows: tf.Tensor
    positions: tf.Tensor
    token_mask: tf.Tensor
    padded_to_packed: tf.Tensor
    first_token: tf.Tensor

    def gather(self, padded: tf.Tensor) -> tf.Tensor:
        """Packs a `[B, T, ...]` tensor into `[N, ...]`."""
        flat = tf.reshape(padded, tf.concat([[-1], tf.shape(padded)[2:]], axis=0))
        return tf.gather(flat, self.flat_index)

    def unpack(self, packed: tf.Tensor) -> tf.Tensor:
        """Scatters `[N, H]` back to `[B, T, H]`, with zeros at padding."""
        width = tf.shape(packed)[-1]
        packed = packed * tf.expand_dims(self.token_mask, 1)
        flat = tf.scatter_nd(
            tf.expand_dims(self.flat_index, 1), packed, [self.batch_size * self.seq_length, width]
        )
        return tf.reshape(flat, [self.batch_size, self.seq_length, width])


def pack_tokens(input_mask: tf.Tensor) -> PackedTokens:
    """Builds the `PackedTokens` of an int `[B, T]` mask (1 = token, 0 = padding)."""
    batch_size, seq_length = tf.shape(input_mask)[0], tf.shape(input_mask)[1]
    is_first = tf.expand_dims(tf.equal(tf.range(seq_length), 0), 0)
    keep = tf.logical_or(input_mask > 0, is_first)
    flat_index = tf.cast(tf.where(tf.reshape(keep, [-1]))[:, 0], tf.int32)
    num_tokens = tf.size(flat_index)
    padded_to_packed = tf.scatter_nd(
        tf.expand_dims(flat_index, 1), tf.range(num_tokens), [batch_size * seq_length]
    )
    token_mask = tf.cast(tf.gather(tf.reshape(input_mask, [-1]), flat_index) > 0, tf.float32)
    return PackedTokens(
        batch_size=batch_size,
        seq_length=seq_length,
        flat_index=flat_index,
        rows=flat_index // seq_length,
        positions=flat_index % seq_length,
        token_mask=token_mask,
        padded_to_packed=padded_to_packed,
        first_token=tf.gather(padded_to_packed, tf.range(batch_size) * seq_length),
    )


class EncoderOutputs(NamedTuple):
    """What a packed encoder returns.

    Fields:
        packed: `PackedTokens` of the batch.
        layer_outputs: list of `[N, H]` packed outputs, one per layer; the
            last one is the sequence output.
        pooled_output: `[B, H]` float32.
    """

    packed: PackedTokens
    layer_outputs: list
    pooled_output: tf.Tensor


# Attention runs on the padded layout, so a batch pays `rows * T_max**2`. The
# rows are sorted by length and split into this many groups, each padded only
# to its own longest row (T-bucketing inside the batch, with static shapes).
ATTENTION_GROUPS = 4


class AttentionGroup(NamedTuple):
    """One length group of rows.

    Fields:
        qkv_rows: `[3, rows, heads, T_group]` int32 rows of the
            `[N * 3 * heads, head_dim]` view of the fused query/key/value
            projection.
        bias: float32 additive attention bias, broadcastable to
            `[rows, heads, T_group, T_group]`.
    """

    qkv_rows: tf.Tensor
    bias: tf.Tensor


class AttentionLayout(NamedTuple):
    """Gather indices between packed `[N, 3H]` projections and padded heads.

    Fields:
        groups: list of `AttentionGroup`, shortest rows first.
        context_rows: `[N, heads]` int32 rows of the concatenated
            `[rows * heads * T_group, head_dim]` contexts of all groups.
    """

    groups: list
    context_rows: tf.Tensor


def attention_layout(
    packed: PackedTokens,
    input_mask: tf.Tensor,
    num_heads: int,
    position_bias: tf.Tensor | None = None,
    num_groups: int | None = None,
) -> AttentionLayout:
    """Computes the `AttentionLayout` once per batch (shared by all layers).

    Args:
        packed: `PackedTokens` of the batch.
        input_mask: int `[B, T]` mask.
        num_heads: int.
        position_bias: float32 `[1, heads, T, T]` or None. Added to every
            group's scores (sliced to the group's length).
        num_groups: int or None. Length groups; None uses `ATTENTION_GROUPS`.
    """
    num_groups = num_groups or ATTENTION_GROUPS
    batch_size, seq_length = packed.batch_size, packed.seq_length
    # Each row's extent: one past its last packed position (>= 1).
    extent = tf.math.unsorted_segment_max(packed.positions, packed.rows, batch_size) + 1
    order = tf.argsort(extent, stable=True)
    rank = tf.scatter_nd(tf.expand_dims(order, 1), tf.range(batch_size), [batch_size])
    group_size = tf.maximum((batch_size + num_groups - 1) // num_groups, 1)
    token_grid = tf.reshape(packed.padded_to_packed, [batch_size, seq_length])
    mask_bias = (1.0 - tf.cast(input_mask, tf.float32)) * np.finfo(np.float32).min
    head_offsets = tf.reshape(tf.range(3 * num_heads), [3, 1, num_heads, 1])
    groups, lengths, sizes = [], [], []
    for group in range(num_groups):
        members = order[group * group_size : (group + 1) * group_size]
        size = tf.size(members)
        length = tf.reduce_max(tf.concat([[1], tf.gather(extent, members)], axis=0))
        grid = tf.gather(token_grid, members)[:, :length]
        qkv_rows = tf.reshape(grid, [1, size, 1, length]) * (3 * num_heads) + head_offsets
        # `expand_dims` (not `[:, None, None, :]`) keeps the shape visible to
        # the oneDNN rewrite that fuses the bias into the batch matmul.
        bias = tf.expand_dims(tf.expand_dims(tf.gather(mask_bias, members)[:, :length], 1), 1)
        if position_bias is not None:
            bias = bias + position_bias[:, :, :length, :length]
        groups.append(AttentionGroup(qkv_rows=qkv_rows, bias=bias))
        lengths.append(length)
        sizes.append(size)
    lengths, sizes = tf.stack(lengths), tf.stack(sizes)
    offsets = tf.cumsum(sizes * num_heads * lengths, exclusive=True)
    row_group = rank // group_size
    row_length = tf.gather(lengths, row_group)
    row_base = tf.gather(offsets, row_group) + (rank % group_size) * num_heads * row_length
    token_base = tf.gather(row_base, packed.rows) + packed.positions
    context_rows = tf.expand_dims(token_base, 1) + tf.expand_dims(
        tf.gather(row_length, packed.rows), 1
    ) * tf.expand_dims(tf.range(num_heads), 0)
    return AttentionLayout(groups=groups, context_rows=context_rows)


class TransformerBlock(tf.Module):
    """One post-LayerNorm transformer layer (BERT/MPNet) on packed tokens.

    Args:
        weights: dict of numpy arrays, keyed `qkv_kernel` `[H, 3H]`,
            `qkv_bias`, `attention_output_kernel` `[H, H]`,
            `attention_output_bias`, `attention_norm_gamma`/`_beta`,
            `intermediate_kernel` `[H, I]`, `intermediate_bias`,
            `output_kernel` `[I, H]`, `output_bias`, `output_norm_gamma`/`_beta`
            (kernels in `x @ kernel` layout).
        num_heads: int. Attention heads; must divide `H`.
        activation: str. Hugging Face `hidden_act` of the feed-forward layer.
        layer_norm_epsilon: float.
        hidden_dropout: float. Dropout rate after each sublayer (training only).
        attention_dropout: float. Dropout rate on attention probabilities.
        name: str. Prefix of the variable names, e.g. `"encoder/layer_0"`.
        precision: str. `"float32"` or `"bfloat16"`: the dtype of the dense kernels,
            dense biases and matmuls (layer norms stay float32).

    Call arguments:
        x: `[N, H]` float32 packed hidden states.
        layout: `AttentionLayout` of the batch (with its attention biases).
        training: bool.

    Returns:
        The `[N, H]` output hidden states.
    """

    def __init__(
        self,
        weights: dict[str, np.ndarray],
        num_heads: int,
        activation: str,
        layer_norm_epsilon: float,
        hidden_dropout: float,
        attention_dropout: float,
        name: str,
        precision: str = "float32",
    ):
        super().__init__(name=name.replace("/", "_"))
        self.compute_dtype = matmul_dtype(precision)
        hidden_size = int(weights["qkv_kernel"].shape[0])
        if hidden_size % num_heads:
            raise ValueError(
                "`num_heads` must divide the hidden size. "
                f"Received: num_heads={num_heads}, hidden_size={hidden_size}"
            )
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.activation = get_activation(activation)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.hidden_dropout = float(hidden_dropout)
        self.attention_dropout = float(attention_dropout)
        names = {
            "qkv_kernel": "attention/query_key_value/kernel",
            "qkv_bias": "attention/query_key_value/bias",
            "attention_output_kernel": "attention/output/kernel",
            "attention_output_bias": "attention/output/bias",
            "attention_norm_gamma": "attention/layer_norm/gamma",
            "attention_norm_beta": "attention/layer_norm/beta",
            "intermediate_kernel": "intermediate/kernel",
            "intermediate_bias": "intermediate/bias",
            "output_kernel": "output/kernel",
            "output_bias": "output/bias",
            "output_norm_gamma": "output/layer_norm/gamma",
            "output_norm_beta": "output/layer_norm/beta",
        }
        for key, suffix in names.items():
            dtype = tf.float32 if "_norm_" in key else self.compute_dtype
            setattr(self, key, make_variable(weights[key], f"{name}/{suffix}", dtype))

    def __call__(self, x: tf.Tensor, layout: AttentionLayout, training: bool) -> tf.Tensor:
        qkv = tf.reshape(dense(x, self.qkv_kernel, self.qkv_bias), [-1, self.head_dim])
        scale = tf.constant(1.0 / math.sqrt(self.head_dim), self.compute_dtype)
        contexts = []
        for group in layout.groups:
            # [N, 3H] -> [3, rows, heads, T_group, head_dim] in one gather.
            group_qkv = tf.gather(qkv, group.qkv_rows)
            query, key, value = group_qkv[0], group_qkv[1], group_qkv[2]
            scores = tf.cast(tf.matmul(query, key, transpose_b=True) * scale, tf.float32)
            probs = tf.nn.softmax(scores + group.bias)
            probs = tf.cast(dropout(probs, self.attention_dropout, training), self.compute_dtype)
            contexts.append(tf.reshape(tf.matmul(probs, value), [-1, self.head_dim]))
        # All groups' [rows, heads, T_group, head_dim] -> [N, H], again one gather.
        context = tf.gather(tf.concat(contexts, axis=0), layout.context_rows)
        context = tf.reshape(context, [-1, self.num_heads * self.head_dim])
        attention = self._residual(
            dense(context, self.attention_output_kernel, self.attention_output_bias), x, training
        )
        x = layer_norm(
            attention, self.attention_norm_gamma, self.attention_norm_beta, self.layer_norm_epsilon
        )
        hidden = self.activation(dense(x, self.intermediate_kernel, self.intermediate_bias))
        output = self._residual(dense(hidden, self.output_kernel, self.output_bias), x, training)
        return layer_norm(
            output, self.output_norm_gamma, self.output_norm_beta, self.layer_norm_epsilon
        )

    def _residual(self, y: tf.Tensor, x: tf.Tensor, training: bool) -> tf.Tensor:
        # `add_n` lets oneDNN fuse the residual into the matmul (MatMul+BiasAdd+Add).
        return tf.add_n([tf.cast(dropout(y, self.hidden_dropout, training), x.dtype), x])


def run_blocks(
    blocks: list[TransformerBlock],
    x: tf.Tensor,
    packed: PackedTokens,
    input_mask: tf.Tensor,
    training: bool,
    position_bias: tf.Tensor | None = None,
) -> list[tf.Tensor]:
    """Runs `blocks` in turn; returns every block's `[N, H]` output.

    Batches with fewer rows than `ATTENTION_GROUPS` take a one-group branch:
    empty groups cost nothing in FLOPs but each still runs its ops, which
    is ~10% of a single text's latency on CPU.
    """

    def run(num_groups: int) -> list[tf.Tensor]:
        layout = attention_layout(
            packed, input_mask, blocks[0].num_heads, position_bias, num_groups
        )
        hidden, outputs = x, []
        for block in blocks:
            hidden = block(hidden, layout, training)
            outputs.append(hidden)
        return outputs

    if ATTENTION_GROUPS <= 1:
        return run(1)
    return tf.cond(
        packed.batch_size < ATTENTION_GROUPS,
        lambda: run(1),
        lambda: run(ATTENTION_GROUPS),
    )


def linear_weights(state: dict[str, np.ndarray], prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """`(kernel, bias)` of a PyTorch `nn.Linear` in `x @ kernel` layout."""
    return state[f"{prefix}.weight"].T, state[f"{prefix}.bias"]


def block_weights(
    state: dict[str, np.ndarray],
    query: str,
    key: str,
    value: str,
    attention_output: str,
    attention_norm: str,
    intermediate: str,
    output: str,
    output_norm: str,
) -> dict[str, np.ndarray]:
    """Maps one PyTorch layer's state-dict entries to `TransformerBlock` weights.

    Each argument is the state-dict prefix of that sub-layer, e.g.
    `query="encoder.layer.0.attention.self.query"`. Query, key and value are
    concatenated into one `[H, 3H]` kernel (one matmul instead of three).
    """
    projections = [linear_weights(state, prefix) for prefix in (query, key, value)]
    weights = {
        "qkv_kernel": np.concatenate([kernel for kernel, _ in projections], axis=1),
        "qkv_bias": np.concatenate([bias for _, bias in projections], axis=0),
    }
    for name, prefix in (
        ("attention_output", attention_output),
        ("intermediate", intermediate),
        ("output", output),
    ):
        weights[f"{name}_kernel"], weights[f"{name}_bias"] = linear_weights(state, prefix)
    for name, prefix in (("attention_norm", attention_norm), ("output_norm", output_norm)):
        weights[f"{name}_gamma"] = state[f"{prefix}.weight"]
        weights[f"{name}_beta"] = state[f"{prefix}.bias"]
    return weights


def make_blocks(
    state: dict[str, np.ndarray], config: dict, sublayers: dict[str, str], precision: str
) -> list[TransformerBlock]:
    """One `TransformerBlock` per `encoder.layer.{i}` of a PyTorch state dict.

    Args:
        state: dict of numpy arrays, the model's state dict.
        config: dict, the Hugging Face config.
        sublayers: dict. The state-dict name, inside `encoder.layer.{i}.`, of
            each sub-layer: keys `query`, `key`, `value`, `attention_output`,
            `attention_norm`, `intermediate`, `output`, `output_norm`.
        precision: str. `"float32"` or `"bfloat16"`.
    """
    blocks = []
    for i in range(int(config["num_hidden_layers"])):
        prefixes = {role: f"encoder.layer.{i}.{name}" for role, name in sublayers.items()}
        blocks.append(
            TransformerBlock(
                block_weights(state, **prefixes),
                num_heads=int(config["num_attention_heads"]),
                activation=config["hidden_act"],
                layer_norm_epsilon=float(config["layer_norm_eps"]),
                hidden_dropout=float(config["hidden_dropout_prob"]),
                attention_dropout=float(config["attention_probs_dropout_prob"]),
                name=f"encoder/layer_{i}",
                precision=precision,
            )
        )
    return blocks


def make_pooler(state: dict[str, np.ndarray]) -> tuple[tf.Variable, tf.Variable] | None:
    """The `pooler.dense` kernel and bias variables, or None without them."""
    if "pooler.dense.weight" not in state:
        return None
    kernel, bias = linear_weights(state, "pooler.dense")
    return make_variable(kernel, "pooler/kernel"), make_variable(bias, "pooler/bias")


def pool_first_token(
    sequence: tf.Tensor, packed: PackedTokens, pooler: tuple[tf.Variable, tf.Variable] | None
) -> tf.Tensor:
    """`tanh(dense(.))` of each row's position 0, or that hidden state without a pooler."""
    first = tf.gather(sequence, packed.first_token)
    if pooler is None:
        return first
    return tf.tanh(dense(first, *pooler))
