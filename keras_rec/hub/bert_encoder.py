"""`BertEncoder`: a Hugging Face `BertModel` as TensorFlow variables and ops."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from keras_rec.hub import transformer_blocks as blocks


class BertEncoder(tf.Module):
    """The BERT encoder of a sentence-transformer (all-MiniLM-*, paraphrase-MiniLM-*, ...).

    Computes what `transformers.BertModel` computes (absolute position
    embeddings, token type embeddings, post-LayerNorm layers, tanh pooler)
    with float32 TensorFlow ops on packed tokens (see
    `keras_rec.hub.transformer_blocks`): padding costs nothing and cannot
    change real tokens' outputs.

    Args:
        state: dict of numpy arrays. The `BertModel` state dict (keys such
            as `"embeddings.word_embeddings.weight"`; a `"bert."` prefix is
            stripped).
        config: dict. The Hugging Face config (`BertConfig.to_dict()`).
        name: str. Module name.
        precision: str. `"float32"` (exact) or `"bfloat16"` (dense kernels and
            matmuls in bfloat16, layer norms and softmax in float32; see
            `keras_rec.hub.transformer_blocks`).

    Call arguments:
        input_word_ids: int32 `[B, T]` token ids.
        input_mask: int32 `[B, T]`, 1 for tokens and 0 for padding.
        input_type_ids: int32 `[B, T]` segment ids.
        training: bool. Enables dropout.

    Returns:
        A `keras_rec.hub.transformer_blocks.EncoderOutputs`: packed per-layer
        outputs and the `[B, H]` pooled output. Without pooler weights in
        `state`, the pooled output is the first token's final hidden state.

    Example:

    >>> from transformers import BertModel
    >>> encoder = BertEncoder.from_transformers(BertModel.from_pretrained(path))
    """

    def __init__(
        self,
        state: dict[str, np.ndarray],
        config: dict[str, Any],
        name: str = "bert",
        precision: str = "float32",
    ):
        super().__init__(name=name)
        blocks.matmul_dtype(precision)
        self.precision = precision
        state = _strip_prefix(state, "bert.")
        position_type = config.get("position_embedding_type", "absolute")
        if position_type != "absolute":
            raise ValueError(
                "Only absolute position embeddings are supported. "
                f"Received: position_embedding_type={position_type!r}"
            )
        self.num_layers = int(config["num_hidden_layers"])
        self.max_positions = int(config["max_position_embeddings"])
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
        self.token_type_embeddings = var(
            state["embeddings.token_type_embeddings.weight"],
            "embeddings/token_type_embeddings/embeddings",
        )
        self.embedding_norm_gamma = var(
            state["embeddings.LayerNorm.weight"], "embeddings/layer_norm/gamma"
        )
        self.embedding_norm_beta = var(
            state["embeddings.LayerNorm.bias"], "embeddings/layer_norm/beta"
        )
        self.layers = blocks.make_blocks(
            state,
            config,
            sublayers={
                "query": "attention.self.query",
                "key": "attention.self.key",
                "value": "attention.self.value",
                "attention_output": "attention.output.dense",
                "attention_norm": "attention.output.LayerNorm",
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
    ) -> BertEncoder:
        """Builds the encoder from a loaded `transformers.BertModel`.

        Args:
            model: `transformers.BertModel`.
            has_pooler: bool or None. Whether to export the model's pooler
                weights; `None` exports them when the model has a pooler.
            precision: str. `"float32"` or `"bfloat16"` (see
                `keras_rec.hub.transformer_blocks`).
        """
        state = blocks.state_from_transformers(model, has_pooler)
        return cls(state, model.config.to_dict(), precision=precision)

    def __call__(
        self,
        input_word_ids: tf.Tensor,
        input_mask: tf.Tensor,
        input_type_ids: tf.Tensor,
        training: bool = False,
    ) -> blocks.EncoderOutputs:
        input_mask = blocks.check_seq_length(
            input_mask, self.max_positions, f"max_position_embeddings={self.max_positions}"
        )
        packed = blocks.pack_tokens(input_mask)
        embeddings = (
            tf.gather(self.word_embeddings, packed.gather(input_word_ids))
            + tf.gather(self.token_type_embeddings, packed.gather(input_type_ids))
            + tf.gather(self.position_embeddings, packed.positions)
        )
        x = blocks.layer_norm(
            embeddings, self.embedding_norm_gamma, self.embedding_norm_beta, self.layer_norm_epsilon
        )
        x = blocks.dropout(x, self.hidden_dropout, training)
        layer_outputs = blocks.run_blocks(self.layers, x, packed, input_mask, training)
        pooled = blocks.pool_first_token(layer_outputs[-1], packed, self.pooler)
        return blocks.EncoderOutputs(packed, layer_outputs, pooled)


def _strip_prefix(state: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    if all(key.startswith(prefix) for key in state):
        return {key[len(prefix) :]: value for key, value in state.items()}
    return state
