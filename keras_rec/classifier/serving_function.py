"""The served contract of a classifier: text -> probabilities, class id, label."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf


def classifier_serving_function(model, labels: Sequence[str]):
    """A `serving_default` function for a strings -> probabilities classifier.

    Takes `text` (tf.string `[None]`); returns `probabilities` (float32
    `[None, C]`), `class_id` (int64 `[None]`, the argmax) and `label`
    (tf.string `[None]`, its name). The label names are constants in the
    graph, so TF Serving clients need nothing else.

    Args:
        model: a Keras model taking the `text` tensor.
        labels: the C class names, in class-id order.
    """
    labels = [str(label) for label in labels]
    if int(model.outputs[0].shape[-1]) != len(labels):
        raise ValueError(
            f"The model has {model.outputs[0].shape[-1]} outputs but {len(labels)} labels "
            f"were given: {labels}"
        )
    names = tf.constant(labels)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(text):
        probabilities = model(text, training=False)
        class_id = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
        return {
            "probabilities": probabilities,
            "class_id": class_id,
            "label": tf.gather(names, class_id),
        }

    return serve
