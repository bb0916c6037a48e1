"""A sentence-transformer as a TF Hub text-encoder SavedModel.

`build_encoder` converts a loaded `SentenceTransformer` (BERT family or
MPNet) into a `tf.Module` that follows the TF Hub conventions for text
encoders (like the BERT encoders on tfhub.dev) and adds the
sentence-transformer's own embedding; `save_encoder` writes it as a reusable
SavedModel that loads with `tf.saved_model.load`, `hub.KerasLayer` (tf_keras)
and `keras_rec.hub.HubLayer` (Keras 3), and serves with TF Serving.
"""

from __future__ import annotations

import json
import os
from typing import Any

import tensorflow as tf

from keras_rec.hub.bert_encoder import BertEncoder
from keras_rec.hub.mpnet_encoder import MPNetEncoder
from keras_rec.hub.sentence_head import SentenceHead

INPUT_KEYS = ("input_word_ids", "input_mask", "input_type_ids")
SENTENCE_EMBEDDING_KEY = "sentence_embedding"
METADATA_PATH = os.path.join("assets.extra", "keras_rec_encoder.json")

# model_type -> (encoder class, HF class name, example checkpoints)
_ARCHITECTURES = {
    "bert": (BertEncoder, "BertModel", "all-MiniLM-*, paraphrase-MiniLM-*, multi-qa-MiniLM-*"),
    "mpnet": (MPNetEncoder, "MPNetModel", "all-mpnet-base-v2"),
}


def build_encoder(sentence_transformer: Any, precision: str = "float32") -> tf.Module:
    """Converts a sentence-transformer into a TF Hub text-encoder `tf.Module`.

    The module holds the weights as trainable `tf.Variable`s (named like
    `encoder/layer_0/attention/query_key_value/kernel`) and computes, in
    float32, what the PyTorch model computes. With `precision="bfloat16"` the
    transformer layers' dense kernels and matmuls are bfloat16 (AMX on CPUs
    that have it; half the weight bytes), everything else float32: an
    inference export, sentence embeddings within ~1e-3 cosine of float32.

    Call arguments of the returned module:
        inputs: dict of int32 `[B, T]` tensors `input_word_ids`,
            `input_mask` (1 = token, 0 = padding) and `input_type_ids`, as a
            TF Hub BERT preprocessor emits them. `T` is dynamic (pad to the
            batch's longest row); padding never changes real tokens' outputs.
        training: Python bool. Enables dropout (the Hugging Face config's
            `hidden_dropout_prob` and `attention_probs_dropout_prob`).

    The module returns a dict:
        - `"sentence_embedding"`: `[B, D]`, the sentence-transformer's own
          embedding (its Pooling, then any Dense and Normalize modules).
        - `"pooled_output"`: `[B, H]`, the Hugging Face pooler (dense + tanh
          on the first token). A checkpoint without pooler weights gets the
          first token's final hidden state instead (no random weights).
        - `"default"`: the same tensor as `"pooled_output"`.
        - `"sequence_output"`: `[B, T, H]`, final hidden states, zeros at
          padding positions.
        - `"encoder_outputs"`: list of `[B, T, H]`, each layer's output (the
          last equals `"sequence_output"`).

    It also has `variables`, `trainable_variables` (all of them) and
    `regularization_losses` (empty) attributes, as the reusable SavedModel API
    asks, and a `serve` function (three keyword tensors, inference mode, the
    outputs above except `"encoder_outputs"`) that `save_encoder` exports as
    the `serving_default` signature.

    Args:
        sentence_transformer: a loaded `sentence_transformers.SentenceTransformer`
            whose first module is a `Transformer` around a `BertModel` or an
            `MPNetModel`, followed by `Pooling` and optionally `Dense` and
            `Normalize` modules.
        precision: str. `"float32"` (default, exact) or `"bfloat16"`.

    Returns:
        The encoder `tf.Module`.

    Example:

    >>> model = keras_rec.embeddings.load_sentence_transformer(None)
    >>> encoder = keras_rec.hub.build_encoder(model)
    >>> outputs = encoder({"input_word_ids": ids, "input_mask": mask,
    ...                    "input_type_ids": tf.zeros_like(ids)}, training=False)
    >>> outputs["sentence_embedding"].shape
    TensorShape([2, 384])
    """
    if isinstance(sentence_transformer, (str, os.PathLike)):
        raise ValueError(
            "`sentence_transformer` must be a loaded `SentenceTransformer`; to convert "
            "a saved one, call `save_encoder(path, export_dir)` or load it first with "
            "`keras_rec.embeddings.load_sentence_transformer(path)`. "
            f"Received: sentence_transformer={os.fspath(sentence_transformer)!r}"
        )
    modules = list(sentence_transformer)
    if not modules or type(modules[0]).__name__ != "Transformer":
        raise ValueError(
            "`sentence_transformer` must start with a sentence-transformers `Transformer` "
            f"module. Received modules: {[type(m).__name__ for m in modules]}"
        )
    auto_model = modules[0].auto_model
    model_type = getattr(auto_model.config, "model_type", None)
    if model_type not in _ARCHITECTURES:
        supported = "; ".join(
            f"{hf_name} (model_type={key!r}: {examples})"
            for key, (_, hf_name, examples) in _ARCHITECTURES.items()
        )
        raise ValueError(
            f"Unsupported architecture {type(auto_model).__name__} "
            f"(model_type={model_type!r}). Supported: {supported}."
        )
    encoder_class = _ARCHITECTURES[model_type][0]
    backbone = encoder_class.from_transformers(
        auto_model, has_pooler=_checkpoint_has_pooler(auto_model), precision=precision
    )
    head = SentenceHead(modules[1:])
    metadata = {
        "architecture": type(auto_model).__name__,
        "model_type": model_type,
        "hidden_size": int(auto_model.config.hidden_size),
        "num_layers": int(auto_model.config.num_hidden_layers),
        "embedding_dim": int(sentence_transformer.get_embedding_dimension()),
        "max_seq_length": sentence_transformer.max_seq_length,
        "max_position_embeddings": int(auto_model.config.max_position_embeddings),
        "pad_token_id": auto_model.config.pad_token_id,
        "has_pooler": backbone.has_pooler,
        "modules": [type(m).__name__ for m in modules],
        "precision": precision,
    }
    return _HubTextEncoder(backbone, head, metadata)


def save_encoder(
    sentence_transformer: Any, export_dir: str, precision: str = "float32"
) -> tf.Module:
    """Builds the encoder of `sentence_transformer` and saves it to `export_dir`.

    Writes a TF2 SavedModel with `__call__` traced for `training=False` and
    `training=True`, the `serving_default` signature, and
    `assets.extra/keras_rec_encoder.json` (architecture, dimensions,
    `max_seq_length`, module stack, precision).

    Args:
        sentence_transformer: a loaded `SentenceTransformer`, or the path of
            one saved with `SentenceTransformer.save` (or a Hugging Face id).
        export_dir: str. Directory to write.
        precision: str. `"float32"` (default, exact) or `"bfloat16"`; see
            `build_encoder`.

    Returns:
        The in-memory encoder module that was saved.

    Example:

    >>> keras_rec.hub.save_encoder(keras_rec.embeddings.embedded_model_path(), "/tmp/enc")
    >>> encoder = tf.saved_model.load("/tmp/enc")
    """
    if isinstance(sentence_transformer, (str, os.PathLike)):
        from keras_rec.embeddings.sentence_encoder import load_sentence_transformer

        sentence_transformer = load_sentence_transformer(os.fspath(sentence_transformer), "cpu")
    module = build_encoder(sentence_transformer, precision)
    specs = _input_specs()
    for training in (False, True):
        module.__call__.get_concrete_function(specs, training=training)
    serving = module.serve.get_concrete_function(**specs)
    export_dir = os.fspath(export_dir)
    tf.saved_model.save(module, export_dir, signatures={"serving_default": serving})
    metadata_file = os.path.join(export_dir, METADATA_PATH)
    os.makedirs(os.path.dirname(metadata_file), exist_ok=True)
    with open(metadata_file, "w") as file:
        json.dump(json.loads(module.metadata_json), file, indent=2)
    return module


def _input_specs() -> dict[str, tf.TensorSpec]:
    return {key: tf.TensorSpec([None, None], tf.int32, name=key) for key in INPUT_KEYS}


class _HubTextEncoder(tf.Module):
    """The exported module: an encoder backbone plus a sentence head."""

    # The reusable SavedModel API wants these as saved attributes; plain class
    # attributes shadow tf.Module's read-only properties so they can be set.
    variables = ()
    trainable_variables = ()

    def __init__(self, backbone: tf.Module, head: SentenceHead, metadata: dict[str, Any]):
        super().__init__(name="text_encoder")
        self.backbone = backbone
        self.head = head
        self.metadata_json = json.dumps(metadata)
        all_variables = list(backbone.variables) + list(head.variables)
        self.variables = all_variables
        self.trainable_variables = list(all_variables)
        self.regularization_losses = []

    @tf.function
    def __call__(self, inputs: dict[str, tf.Tensor], training: bool = False) -> dict[str, Any]:
        return self._forward(inputs, training=bool(training), encoder_outputs=True)

    @tf.function
    def serve(
        self, input_word_ids: tf.Tensor, input_mask: tf.Tensor, input_type_ids: tf.Tensor
    ) -> dict[str, tf.Tensor]:
        inputs = {
            "input_word_ids": input_word_ids,
            "input_mask": input_mask,
            "input_type_ids": input_type_ids,
        }
        return self._forward(inputs, training=False, encoder_outputs=False)

    def _forward(
        self, inputs: dict[str, tf.Tensor], training: bool, encoder_outputs: bool
    ) -> dict[str, Any]:
        if not isinstance(inputs, dict) or any(key not in inputs for key in INPUT_KEYS):
            received = sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__
            raise ValueError(
                f"`inputs` must be a dict with int32 [batch, seq_length] tensors {INPUT_KEYS} "
                f"(a TF Hub BERT preprocessor's output). Received: inputs={received}"
            )
        word_ids, mask, type_ids = (tf.cast(inputs[key], tf.int32) for key in INPUT_KEYS)
        outputs = self.backbone(word_ids, mask, type_ids, training=training)
        result = {
            SENTENCE_EMBEDDING_KEY: self.head(outputs),
            "pooled_output": outputs.pooled_output,
            "default": outputs.pooled_output,
            "sequence_output": outputs.packed.unpack(outputs.layer_outputs[-1]),
        }
        if encoder_outputs:
            layers = [outputs.packed.unpack(x) for x in outputs.layer_outputs[:-1]]
            result["encoder_outputs"] = layers + [result["sequence_output"]]
        return result


def _checkpoint_has_pooler(auto_model: Any) -> bool | None:
    """Whether the model's weight file has pooler weights; None if not found.

    Hugging Face fills a pooler missing from the checkpoint with random
    weights; exporting those would make `pooled_output` noise.
    """
    path = getattr(auto_model, "name_or_path", "") or ""
    single = os.path.join(path, "model.safetensors")
    sharded = os.path.join(path, "model.safetensors.index.json")
    if os.path.isfile(single):
        from safetensors import safe_open

        with safe_open(single, framework="numpy") as file:
            keys = list(file.keys())
    elif os.path.isfile(sharded):
        with open(sharded) as file:
            keys = list(json.load(file).get("weight_map", {}))
    else:
        return None
    return any(key.endswith("pooler.dense.weight") for key in keys)
