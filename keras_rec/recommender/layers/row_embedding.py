"""`RowEmbedding`: an `Embedding` whose lookup and gradient touch only the batch's rows."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="keras_rec")
class RowEmbedding(keras.layers.Embedding):
    """`keras.layers.Embedding` that reads only the rows it looks up.

    Keras' `Embedding` reads its whole table as a tensor before gathering.
    In TensorFlow a sparse optimizer update of a variable whose full value
    is still held must first copy the table, so with a million ids each
    step copies the table (~130 ms for 1M x 32 on 2 cores, whatever the
    batch). Here the TensorFlow backend gathers from the variable itself
    (`ResourceGather`): the step costs the batch's rows (~3.5 ms at 1M and
    at 10M ids with `keras_rec.recommender.LazyAdam`). Other backends use the
    parent's lookup. Arguments and config are `Embedding`'s.
    """

    def call(self, inputs):
        if keras.backend.backend() != "tensorflow" or self.quantization_mode or self.lora_enabled:
            return super().call(inputs)
        import tensorflow as tf

        table = self.embeddings
        table = table.value if isinstance(table, keras.Variable) else table
        outputs = tf.nn.embedding_lookup(table, tf.cast(inputs, tf.int64))
        return tf.cast(outputs, self.compute_dtype)
