"""`MPNetEncoder`: a Hugging Face `MPNetModel` as TensorFlow variables and ops."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import tensorflow as tf

from keras_rec.hub import transformer_blocks as blocks

# `transformers.MPNetEmbeddings` hard-codes the padding index (it ignores
# `config.pad_token_id`); position ids start right after it.
PADDING_IDX = 1
# `MPNetEncoder.compute_position_bias` always buckets with these defaults,
# whatever `config.relative_attention_num_buckets` says.
NUM_BUCKETS = 32
MAX_DISTANCE = 128


def relative_position_buckets(
    relative_position: np.ndarray,
    num_buckets: int = NUM_BUCKETS,
    max_distance: int = MAX_DISTANCE,
) -> np.ndarray:
    """MPNet's (T5-style) bucket of each `key - query` distance, as int32.

    Half of the buckets are for keys before the query, half for keys after;
    within a half, distances below `num_buckets // 4` get their own bucket and
    longer ones share log-spaced buckets up to `max_distance`. Computed in
    float32 like the PyTorch reference, so bucket edges agree exactly.
    """
    distance = -np.asarray(relative_position, dtype=np.int64)
    half = num_buckets // 2
    buckets = (distance < 0).astype(np.int64) * half
    distance = np.abs(distance)
    max_exact = half // 2
    scaled = (
        np.log(np.maximum(distance, 1).astype(np.float32) / np.float32(max_exact))
        / np.float32(math.log(max_distance / max_exact))
        * np.float32(half - max_exact)
    )
    large = np.minimum(max_exact + scaled.astype(np.int64), half - 1)
    buckets += np.where(distance < max_exact, distance, large)
    return buckets.astype(np.int32)


class MPNetEncoder(tf.Module):
    """The MPNet encoder of a sentence-transformer (all-mpnet-base-v2, ...).

    Computes what `transformers.MPNetModel` computes with float32 TensorFlow
    ops on packed tokens (see `keras_rec.hub.transformer_blocks`): position
    ids count non-padding tokens starting at `padding_idx + 1 = 2`, there are
    no token type embeddings, and every layer adds the same relative
    position bias (32 log-spaced buckets of `key - query`, a learned
    `[buckets, heads]` table) to its attention scores.

    Args:
        state: dict of numpy arrays. The `MPNetModel` state dict (an
            `"mpnet."` prefix is stripped).
        config: dict. The Hugging Face config (`MPNetConfig.to_dict()`).
        name: str. Module name.
        precision: str. `"float32"` (exact) or `"bfloat16"` (dense kernels and
            matmuls in bfloat16, layer norms and softmax in float32; see
            `keras_rec.hub.transformer_blocks`).

    Call arguments:
        input_word_ids: int32 `[B, T]` token ids.
        input_mask: int32 `[B, T]`, 1 for tokens and 0 for padding.
        input_type_ids: ignored (MPNet has no segment embeddings).
        training: bool. Enables dropout.

    Returns:
        A `keras_rec.hub.transformer_blocks.EncoderOutputs`. Without pooler
        weights in `state`, the pooled output is the first token's final
        hidden state.

    Example:

    >>> from transformers import MPNetModel
    >>> encoder = MPNetEncoder.from_transformers(MPNetModel.from_pretrained(path))
    """

    def __init__(
        self,
        state: dict[str, np.ndarray],
        config: dict[str, Any],
        name: str = "mpnet",
        precision: str = "float32",
    ):
        super().__init__(name=name)
        blocks.matmul_dtype(precision)
        self.precision = precision
        prefix = "mpnet."
        if all(key.startswith(prefix) for key in state):
            state = {key[len(prefix) :]: value for key, value in state.items()}
        num_buckets = int(config.get("relative_attention_num_buckets", NUM_BUCKETS))
        if num_buckets < NUM_BUCKETS:
            raise ValueError(
                f"`relative_attention_num_buckets` must be at least {NUM_BUCKETS} (MPNet "
                f"always uses {NUM_BUCKETS} buckets). Received: "
                f"relative_attention_num_buckets={num_buckets}"
            )
        self.num_layers = int(config["num_hidden_layers"])
        self.num_heads = int(config["num_attention_heads"])
        self.max_positions = int(config["max_position_embeddings"])
        # Position ids run up to T + padding_idx.
        self.max_seq_length = self.max_positions - PADDING_IDX - 1
        self.layer_norm_epsilon = float(config["layer_norm_eps"])
        self.hidden_dropout = float(config["hidden_dropout_prob"])
        var = blocks.make_variable
        self.word_embeddings = var(
            state["embeddings.word_embeddings.weight"], "embeddings/word_embeddings/embeddings"
        )
        self.position_embeddings = var(
            state["embeddings.position_embeddings.weight"],
            "embeddings/position_embeddings/embeddings",
        )
        self.embedding_norm_gamma = var(
            state["embeddings.LayerNorm.weight"], "embeddings/layer_norm/gamma"
        )
        self.embedding_norm_beta = var(
            state["embeddings.LayerNorm.bias"], "embeddings/layer_norm/beta"
        )
        self.relative_attention_bias = var(
            state["encoder.relative_attention_bias.weight"],
            "encoder/relative_attention_bias/embeddings",
        )
        # Bucket of every distance -(P - 1) .. P - 1, looked up per batch.
        span = self.max_positions - 1
        self._bucket_table = relative_position_buckets(np.arange(-span, span + 1))
        self.layers = blocks.make_blocks(
            state,
            config,
            sublayers={
                "query": "attention.attn.q",
                "key": "attention.attn.k",
                "value": "attention.attn.v",
                "attention_output": "attention.attn.o",
                "attention_norm": "attention.LayerNorm",
                "intermediate": "intermediate.dense",
                "output": "output.dense",
                "output_norm": "output.LayerNorm",
            },
            precision=precision,
        )
        self.pooler = blocks.make_pooler(state)
        self.has_pooler = self.pooler is not None

    @classmethod
    def from_transformers(
        cls, model: Any, has_pooler: bool | None = None, precision: str = "float32"
    ) -> MPNetEncoder:
        """Builds the encoder from a loaded `transformers.MPNetModel`.

        Args:
            model: `transformers.MPNetModel`.
            has_pooler: bool or None. Whether to export the model's pooler
                weights; `None` exports them when the model has a pooler.
            precision: str. `"float32"` or `"bfloat16"` (see
                `keras_rec.hub.transformer_blocks`).
        """
        state = blocks.state_from_transformers(model, has_pooler)
        return cls(state, model.config.to_dict(), precision=precision)

    def relative_position_bias(self, seq_length: tf.Tensor) -> tf.Tensor:
        """The `[1, heads, T, T]` bias shared by all layers."""
        positions = tf.range(seq_length)
        distance = tf.expand_dims(positions, 0) - tf.expand_dims(positions, 1)
        buckets = tf.gather(tf.constant(self._bucket_table), distance + (self.max_positions - 1))
        bias = tf.gather(self.relative_attention_bias, buckets)  # [T, T, heads]
        return tf.expand_dims(tf.transpose(bias, [2, 0, 1]), 0)

    def __call__(
        self,
        input_word_ids: tf.Tensor,
        input_mask: tf.Tensor,
        input_type_ids: tf.Tensor | None = None,
        training: bool = False,
    ) -> blocks.EncoderOutputs:
        input_mask = blocks.check_seq_length(
            input_mask,
            self.max_seq_length,
            f"max_position_embeddings={self.max_positions}, positions start at {PADDING_IDX + 1}",
        )
        seq_length = tf.shape(input_mask)[1]
        packed = blocks.pack_tokens(input_mask)
        not_padding = tf.cast(tf.not_equal(input_word_ids, PADDING_IDX), tf.int32)
        position_ids = tf.cumsum(not_padding, axis=1) * not_padding + PADDING_IDX
        embeddings = tf.gather(self.word_embeddings, packed.gather(input_word_ids)) + tf.gather(
            self.position_embeddings, packed.gather(position_ids)
        )
        x = blocks.layer_norm(
            embeddings, self.embedding_norm_gamma, self.embedding_norm_beta, self.layer_norm_epsilon
        )
        x = blocks.dropout(x, self.hidden_dropout, training)
        layer_outputs = blocks.run_blocks(
            self.layers,
            x,
            packed,
            input_mask,
            training,
            position_bias=self.relative_position_bias(seq_length),
        )
        pooled = blocks.pool_first_token(layer_outputs[-1], packed, self.pooler)
        return blocks.EncoderOutputs(packed, layer_outputs, pooled)
