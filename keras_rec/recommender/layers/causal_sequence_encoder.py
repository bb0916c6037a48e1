"""`CausalSequenceEncoder`: a causal transformer over a user's recent item vectors."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_rec")
class CausalSequenceEncoder(keras.layers.Layer):
    """Reads item vectors in time order; position `t` sees only positions `<= t`.

    Pre-layer-norm transformer blocks (self-attention with a causal and a
    padding mask, then a GELU feed-forward block, each with a residual
    connection and dropout) over the item vectors plus a learned embedding
    of each position. Sequences are left-padded, so the last position is
    always the latest item and position embeddings say how recent an item
    is. Padded positions are never attended to (each position always
    attends to itself, so a padded query reads no NaNs).

    Args:
        max_history: int. Sequence length `L`.
        num_layers: int. Transformer blocks.
        num_heads: int. Attention heads (the width must divide by it).
        feedforward_dim: int or None. Hidden width of the feed-forward
            block (default: twice the input width).
        dropout: float. Dropout on the embeddings and after each sub-block.
        seed: int or None.

    Call arguments:
        vectors: float `[B, L, D]`, the items' vectors (anything where padded).
        valid: bool `[B, L]`, false at padding.
        last_only: bool. Return only the last position's state (the last
            block then computes only that position: what serving needs).

    Returns:
        float `[B, L, D]` (`[B, 1, D]` with `last_only`): at position `t`, the
        state after reading items `0 .. t` (layer-normalized).
    """

    def __init__(
        self,
        max_history: int,
        num_layers: int = 2,
        num_heads: int = 2,
        feedforward_dim: int | None = None,
        dropout: float = 0.2,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (
            ("max_history", max_history),
            ("num_layers", num_layers),
            ("num_heads", num_heads),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer. Received: {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout!r}")
        self.max_history = max_history
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.feedforward_dim = feedforward_dim
        self.dropout = float(dropout)
        self.seed = seed

    def build(self, vectors_shape, valid_shape=None):
        width = int(vectors_shape[-1])
        if width % self.num_heads:
            raise ValueError(
                f"The item vector width ({width}) must be divisible by `num_heads` "
                f"({self.num_heads})."
            )
        hidden = self.feedforward_dim or 2 * width
        self.positions = self.add_weight(
            shape=(self.max_history, width),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="positions",
        )
        self.input_dropout = keras.layers.Dropout(self.dropout, seed=self.seed)
        sequence_shape = (None, self.max_history, width)
        self.attention_norms, self.attentions, self.feedforward_norms = [], [], []
        self.hidden_layers, self.output_layers, self.block_dropouts = [], [], []
        for index in range(self.num_layers):
            attention_norm = keras.layers.LayerNormalization(
                epsilon=1e-6, name=f"attention_norm_{index}"
            )
            attention = keras.layers.MultiHeadAttention(
                self.num_heads,
                width // self.num_heads,
                dropout=self.dropout,
                seed=self.seed,
                name=f"attention_{index}",
            )
            feedforward_norm = keras.layers.LayerNormalization(
                epsilon=1e-6, name=f"feedforward_norm_{index}"
            )
            hidden_layer = keras.layers.Dense(hidden, activation="gelu", name=f"hidden_{index}")
            output_layer = keras.layers.Dense(width, name=f"output_{index}")
            attention_norm.build(sequence_shape)
            attention.build(sequence_shape, sequence_shape)
            feedforward_norm.build(sequence_shape)
            hidden_layer.build(sequence_shape)
            output_layer.build((None, self.max_history, hidden))
            self.attention_norms.append(attention_norm)
            self.attentions.append(attention)
            self.feedforward_norms.append(feedforward_norm)
            self.hidden_layers.append(hidden_layer)
            self.output_layers.append(output_layer)
            self.block_dropouts.append(keras.layers.Dropout(self.dropout, seed=self.seed))
        self.final_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="final_norm")
        self.final_norm.build((None, self.max_history, width))

    def call(self, vectors, valid, training=False, last_only=False):
        length = self.max_history
        valid = ops.cast(valid, "bool")
        x = ops.where(valid[..., None], vectors, ops.zeros_like(vectors))
        x = self.input_dropout(x + self.positions[None, :, :], training=training)
        causal = ops.tril(ops.ones((length, length), "bool"))
        itself = ops.eye(length, dtype="bool")
        mask = ops.logical_and(
            causal[None, :, :], ops.logical_or(valid[:, None, :], itself[None, :, :])
        )
        for index in range(self.num_layers):
            dropout = self.block_dropouts[index]
            h = self.attention_norms[index](x)
            if last_only and index == self.num_layers - 1:
                # Only the last position's query: keys and values are still every position.
                x, query, mask = x[:, -1:], h[:, -1:], mask[:, -1:]
            else:
                query = h
            h = self.attentions[index](query, h, attention_mask=mask, training=training)
            x = x + dropout(h, training=training)
            h = self.feedforward_norms[index](x)
            h = self.output_layers[index](self.hidden_layers[index](h))
            x = x + dropout(h, training=training)
        return self.final_norm(x)

    def compute_output_shape(self, vectors_shape, valid_shape=None, last_only=False):
        return (*vectors_shape[:-2], 1, vectors_shape[-1]) if last_only else vectors_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "max_history": self.max_history,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "feedforward_dim": self.feedforward_dim,
                "dropout": self.dropout,
                "seed": self.seed,
            }
        )
        return config
